"""``convcli gallery``: contact sheets checked pixel by pixel against independent references."""

from __future__ import annotations

import importlib.util
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from convcli.cli import main
from convcli.kernels import load_kernel
from convcli.options import JobOptions
from convcli.pictures.gallery import (
    GAP,
    LABEL_HEIGHT,
    gallery_file,
    gallery_kernels,
    is_edge_detector,
    make_sheet,
    split_kernel_specs,
)

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def run(cmd: list[str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*cmd, *args], capture_output=True, timeout=120, check=False)


def in_process(*args: str) -> int:
    """Run convcli in this process (much faster than a subprocess); return the exit status."""
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def reference_thumbnail(path: Path, size: int, mode: str = "RGB") -> NDArray[np.uint8]:
    """Pillow's own thumbnail of the file, made without convcli."""
    with Image.open(path) as image:
        small = image.convert(mode)
    small.thumbnail((size, size), Image.Resampling.BICUBIC)
    return np.asarray(small)


def tile_origin(index: int, tile: tuple[int, int], columns: int) -> tuple[int, int]:
    """The documented geometry, restated: gap, tile, label strip."""
    tw, th = tile
    row, column = index // columns, index % columns
    return GAP + column * (tw + GAP), GAP + row * (th + LABEL_HEIGHT + GAP)


def tile_of(sheet: NDArray[np.uint8], index: int, tile: tuple[int, int], columns: int) -> NDArray[np.uint8]:
    x, y = tile_origin(index, tile, columns)
    return sheet[y : y + tile[1], x : x + tile[0]]


def write_sheet(tmp_path: Path, source: Path, *args: str, exe: list[str]) -> NDArray[np.uint8]:
    out = tmp_path / "sheet.png"
    assert in_process("gallery", str(source), "-o", str(out), "-q", *args) == 0
    with Image.open(out) as image:
        return np.asarray(image)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A colour photo 300x200 (not square, so rows and columns cannot be swapped unnoticed)."""
    with Image.open(SAMPLES / "astronaut.png") as image:
        picture = image.convert("RGB").resize((300, 200))
    path = tmp_path / "photo.png"
    picture.save(path)
    return path


@pytest.mark.parametrize(
    ("kernels", "columns"), [("sobel,box,laplacian", 2), ("sobel,box,laplacian,emboss,sharpen", 4)]
)
def test_sheet_has_one_tile_per_kernel_plus_the_original_on_the_grid(
    tmp_path: Path, photo: Path, convcli_exe: list[str], kernels: str, columns: int
) -> None:
    size = 60
    sheet = write_sheet(tmp_path, photo, "-k", kernels, "--size", str(size), "--columns", str(columns), exe=convcli_exe)
    count = len(kernels.split(",")) + 1
    tile = (60, 40)  # 300x200 scaled to a long side of 60
    rows = math.ceil(count / columns)
    assert sheet.shape == (GAP + rows * (tile[1] + LABEL_HEIGHT + GAP), GAP + columns * (tile[0] + GAP), 3)
    # Each tile holds the picture (not background), the gaps between them are background.
    for index in range(count):
        x, y = tile_origin(index, tile, columns)
        assert tile_of(sheet, index, tile, columns).std() > 5
        assert (sheet[y : y + tile[1], x - GAP : x] == 255).all()
        assert (sheet[y - GAP : y, x : x + tile[0]] == 255).all()
    # Past the last tile, the grid's cells are empty.
    if count % columns:
        x, y = tile_origin(count, tile, columns)
        assert (sheet[y:, x:] == 255).all()


def test_default_columns_make_a_near_square_grid() -> None:
    pixels = np.zeros((10, 10), np.uint8)
    kernels = [load_kernel(name) for name in ("box", "sobel", "laplacian", "sharpen", "emboss")]
    sheet = make_sheet(pixels, None, kernels, size=10)  # 6 tiles: 3 columns, 2 rows
    assert sheet.shape == (GAP + 2 * (10 + LABEL_HEIGHT + GAP), GAP + 3 * (10 + GAP))


def test_original_tile_is_a_thumbnail_of_the_input(tmp_path: Path, photo: Path, convcli_exe: list[str]) -> None:
    sheet = write_sheet(tmp_path, photo, "-k", "box", "--size", "90", exe=convcli_exe)
    expected = reference_thumbnail(photo, 90)
    assert expected.shape == (60, 90, 3)
    got = tile_of(sheet, 0, (90, 60), 2)
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_gray_input_makes_a_gray_sheet_whose_original_is_its_thumbnail(tmp_path: Path, convcli_exe: list[str]) -> None:
    source = SAMPLES / "camera.png"
    sheet = write_sheet(tmp_path, source, "-k", "gaussian", "--size", "64", exe=convcli_exe)
    assert sheet.ndim == 2
    expected = reference_thumbnail(source, 64, "L")
    assert np.abs(tile_of(sheet, 0, (64, 64), 2).astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize(("kernel", "extra"), [("sobel", ["-m", "abs"]), ("kirsch", ["-m", "abs"]), ("box", [])])
def test_kernel_tile_equals_convcli_apply_on_the_thumbnail(
    tmp_path: Path, photo: Path, convcli_exe: list[str], kernel: str, extra: list[str]
) -> None:
    sheet = write_sheet(tmp_path, photo, "-k", kernel, "--size", "90", "--border", "edge", exe=convcli_exe)
    thumb = tmp_path / "thumb.png"
    Image.fromarray(reference_thumbnail(photo, 90)).save(thumb)
    applied = tmp_path / "applied.png"
    assert in_process("apply", str(thumb), "-k", kernel, "--border", "edge", *extra, "-o", str(applied), "-q") == 0
    with Image.open(applied) as image:
        expected = np.asarray(image).astype(int)
    got = tile_of(sheet, 1, (90, 60), 2).astype(int)
    # The thumbnail may differ by 1 from Pillow's (composited identically, rounded once): allow
    # the kernel's gain on it.
    gain = float(np.abs(load_kernel(kernel).matrices[0]).sum())
    assert np.abs(got - expected).max() <= max(1, math.ceil(gain))
    assert np.mean(got == expected) > 0.95


def test_output_mode_overrides_the_abs_default(tmp_path: Path, photo: Path, convcli_exe: list[str]) -> None:
    default = write_sheet(tmp_path, photo, "-k", "sobel-x", "--size", "90", exe=convcli_exe)
    clipped = write_sheet(tmp_path, photo, "-k", "sobel-x", "--size", "90", "-m", "clip", exe=convcli_exe)
    thumb = tmp_path / "thumb.png"
    Image.fromarray(tile_of(default, 0, (90, 60), 2)).save(thumb)
    for sheet, mode in ((default, "abs"), (clipped, "clip")):
        out = tmp_path / f"{mode}.png"
        assert in_process("apply", str(thumb), "-k", "sobel-x", "-m", mode, "-o", str(out), "-q") == 0
        with Image.open(out) as image:
            assert np.array_equal(tile_of(sheet, 1, (90, 60), 2), np.asarray(image))
    # The label says (abs) only when abs is the default the tile is shown with.
    x, y = tile_origin(1, (90, 60), 2)
    strip = slice(y + 60, y + 60 + LABEL_HEIGHT), slice(x, x + 90)
    assert not np.array_equal(default[strip], clipped[strip])


def test_every_tile_has_a_label(tmp_path: Path, photo: Path, convcli_exe: list[str]) -> None:
    sheet = write_sheet(tmp_path, photo, "-k", "sobel,gaussian:sigma=2", "--size", "90", exe=convcli_exe)
    for index in range(3):
        x, y = tile_origin(index, (90, 60), 2)
        strip = sheet[y + 60 : y + 60 + LABEL_HEIGHT, x : x + 90]
        assert (strip < 128).any(), f"tile {index} has no label"
        assert (strip[:, :] == 255).any()


def test_rgba_input_is_composited_over_white() -> None:
    pixels = np.zeros((20, 30, 3), np.uint8)
    alpha = np.zeros((20, 30), np.uint8)
    alpha[:, 15:] = 255
    sheet = make_sheet(pixels, alpha, [load_kernel("box")], size=30)
    original = sheet[GAP : GAP + 20, GAP : GAP + 30]
    assert (original[:, :14] == 255).all()  # transparent: white
    assert (original[:, 16:] == 0).all()  # opaque black stays black


def test_sheet_to_stdout(photo: Path, convcli_exe: list[str]) -> None:
    result = run(convcli_exe, "gallery", str(photo), "-k", "box,sobel", "--size", "50", "-o", "-")
    assert result.returncode == 0, result.stderr
    with Image.open(io.BytesIO(result.stdout)) as image:
        assert image.format == "PNG"
        assert image.size == (GAP + 2 * (50 + GAP), GAP + 2 * (33 + LABEL_HEIGHT + GAP))  # 300x200 to 50x33


def test_sheet_format_follows_the_suffix(tmp_path: Path, photo: Path, convcli_exe: list[str]) -> None:
    out = tmp_path / "sheet.jpg"
    result = run(convcli_exe, "gallery", str(photo), "-k", "box", "--size", "50", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == "JPEG"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["-k", "nosuchkernel"], "unknown kernel 'nosuchkernel'"),
        (["-k", "box", "--border", "bogus"], "border"),
        (["-k", "box,,sobel"], "empty name"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    tmp_path: Path, photo: Path, convcli_exe: list[str], args: list[str], fragment: str
) -> None:
    out = tmp_path / "sheet.png"
    result = run(convcli_exe, "gallery", str(photo), *args, "-o", str(out))
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcli: error:") and fragment in lines[0], lines
    assert not out.exists()


def test_missing_input_exits_1(tmp_path: Path, convcli_exe: list[str]) -> None:
    result = run(convcli_exe, "gallery", str(tmp_path / "missing.png"), "-o", str(tmp_path / "s.png"))
    assert result.returncode == 1
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_kernel_list_splitting() -> None:
    assert split_kernel_specs("a,b:k=v,c") == ["a", "b:k=v", "c"]
    assert split_kernel_specs("gaussian:sigma=2,radius=4,sobel") == ["gaussian:sigma=2,radius=4", "sobel"]
    assert split_kernel_specs("motion:length=5,angle=45,dog:sigma1=1") == ["motion:length=5,angle=45", "dog:sigma1=1"]
    assert split_kernel_specs("[1, 0, -1],box") == ["[1, 0, -1]", "box"]
    kernels = gallery_kernels(split_kernel_specs("gaussian:sigma=2,radius=4,box"))
    assert [k.name for k in kernels] == ["gaussian:sigma=2,radius=4", "box"]


def test_default_selection_skips_random_and_mixing_kernels_unless_named() -> None:
    names = {kernel.name for kernel in gallery_kernels()}
    assert {"sobel", "gaussian", "kirsch", "identity"} <= names
    assert not names & {"random", "rgb-to-ycbcr", "rgb-luma-edges"}
    assert [k.name for k in gallery_kernels(["random", "rgb-to-ycbcr"])] == ["random", "rgb-to-ycbcr"]
    assert is_edge_detector(load_kernel("sobel-x")) and is_edge_detector(load_kernel("kirsch"))
    assert not is_edge_detector(load_kernel("gaussian")) and not is_edge_detector(load_kernel("sharpen"))


def test_named_mixing_kernel_on_colour_input(tmp_path: Path, photo: Path) -> None:
    result = gallery_file(photo, tmp_path / "s.png", gallery_kernels(["rgb-to-ycbcr", "random"]), size=40)
    assert result.tiles == 3


def test_make_pictures_script_writes_the_readme_gallery(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_pictures", ROOT / "docs" / "make_pictures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_pictures"] = module
    try:
        spec.loader.exec_module(module)
        written = module.main(tmp_path)
    finally:
        del sys.modules["make_pictures"]
    assert [path.name for path in written] == list(module.PICTURES)
    count = len(gallery_kernels()) + 1
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    with Image.open(tmp_path / "gallery.png") as image:
        assert image.format == "PNG"
        assert image.size == (GAP + columns * (160 + GAP), GAP + rows * (160 + LABEL_HEIGHT + GAP))
        sheet = np.asarray(image)
    expected = reference_thumbnail(SAMPLES / "camera.png", 160, "L")
    assert np.abs(tile_of(sheet, 0, (160, 160), columns).astype(int) - expected.astype(int)).max() <= 1
    # The committed picture is the script's output (up to font rendering and rounding of other
    # Pillow and FreeType releases).
    with Image.open(ROOT / "docs" / "gallery.png") as committed:
        shown = np.asarray(committed)
    assert shown.shape == sheet.shape
    assert np.abs(shown.astype(int) - sheet.astype(int)).mean() < 2


def test_job_options_reach_the_sheet(tmp_path: Path, photo: Path) -> None:
    gray = gallery_file(photo, tmp_path / "g.png", [load_kernel("box")], size=40, job=JobOptions.from_values(gray=True))
    assert len(gray.shape) == 2


def test_sheet_never_replaces_its_input(tmp_path: Path, photo: Path, convcli_exe: list[str]) -> None:
    before = photo.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    for target in (photo, link):
        result = run(convcli_exe, "gallery", str(photo), "-k", "box", "-o", str(target))
        assert result.returncode == 2
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and "is the input" in lines[0], lines
    assert photo.read_bytes() == before


def test_format_option_names_the_sheet_format(tmp_path: Path, photo: Path, convcli_exe: list[str]) -> None:
    out = tmp_path / "sheet"
    result = run(convcli_exe, "gallery", str(photo), "-k", "box", "--size", "40", "--format", "webp", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == "WEBP"


def test_sheet_from_standard_input(photo: Path, convcli_exe: list[str]) -> None:
    result = subprocess.run(
        [*convcli_exe, "gallery", "-", "-k", "box", "--size", "40", "-o", "-"],
        input=photo.read_bytes(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with Image.open(io.BytesIO(result.stdout)) as image:
        sheet = np.asarray(image)
    expected = reference_thumbnail(photo, 40)
    assert np.abs(tile_of(sheet, 0, (40, 27), 2).astype(int) - expected.astype(int)).max() <= 1


def test_oversized_sheets_are_refused_before_filtering() -> None:
    from convcli.errors import ParameterError

    pixels = np.zeros((4096, 4096), np.uint8)
    # 12 tiles of 4096x4096 make a sheet of more than 178,956,970 pixels.
    with pytest.raises(ParameterError, match=r"sheet of \d+x\d+ pixels"):
        make_sheet(pixels, None, [load_kernel("box")] * 11, size=4096)
    with pytest.raises(ParameterError, match="at most 1024 tiles"):
        make_sheet(np.zeros((2, 2), np.uint8), None, [load_kernel("box")] * 1024, size=2)
