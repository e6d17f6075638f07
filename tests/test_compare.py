"""``apply --compare`` (input and output side by side) and ``apply --preview`` (a terminal picture)."""

from __future__ import annotations

import fcntl
import importlib.util
import io
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from convcli.pictures.compare import COMPARE_BACKGROUND, COMPARE_GAP, LABEL_HEIGHT, compare_pictures, output_offset
from convcli.pictures.preview import UPPER_HALF, preview_wanted, render_preview

from conftest import SAMPLES


def run(
    cmd: list[str], *args: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*cmd, *args], capture_output=True, input=stdin, timeout=120, check=False, env=env)


def load(source: Path | bytes) -> NDArray[np.uint8]:
    return np.asarray(Image.open(io.BytesIO(source) if isinstance(source, bytes) else source))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small colour, gray and RGBA inputs, seeded."""
    folder = tmp_path_factory.mktemp("compare")
    rng = np.random.default_rng(1404)
    files = {
        "rgb": Image.fromarray(rng.integers(0, 256, (21, 30, 3), dtype=np.uint8), "RGB"),
        "gray": Image.fromarray(rng.integers(0, 256, (17, 12), dtype=np.uint8), "L"),
        "rgba": Image.fromarray(rng.integers(0, 256, (15, 19, 4), dtype=np.uint8), "RGBA"),
    }
    paths = {}
    for name, image in files.items():
        paths[name] = folder / f"{name}.png"
        image.save(paths[name])
    return paths


def _plain_and_compare(exe: list[str], source: Path, tmp: Path, *options: str) -> tuple[NDArray[np.uint8], ...]:
    plain, side = tmp / "plain.png", tmp / "side.png"
    for target, extra in ((plain, ()), (side, ("--compare",))):
        result = run(exe, "apply", str(source), "-o", str(target), *options, *extra)
        assert result.returncode == 0, result.stderr
    return load(source), load(plain), load(side)


@pytest.mark.parametrize("kind", ["rgb", "gray", "rgba"])
def test_compare_holds_the_input_and_the_plain_output_exactly(
    convcli_exe: list[str], small: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    source, plain, side = _plain_and_compare(convcli_exe, small[kind], tmp_path, "-k", "sobel", "-m", "abs")
    height, width = source.shape[:2]
    assert side.shape[:2] == (height + LABEL_HEIGHT, 2 * width + COMPARE_GAP)
    if kind == "gray":  # both gray: the picture stays gray
        assert side.ndim == 2
    np.testing.assert_array_equal(side[:height, :width], source)
    np.testing.assert_array_equal(side[:height, width + COMPARE_GAP :], plain)
    # The gap is background only, opaque where the picture has alpha.
    gap = side[:height, width : width + COMPARE_GAP]
    background = [COMPARE_BACKGROUND] * (gap.shape[2] - 1) + [255] if kind == "rgba" else COMPARE_BACKGROUND
    assert COMPARE_GAP <= 16
    assert (gap == np.array(background, np.uint8)).all()
    # Labels are drawn: the strip below is not all background.
    assert (side[height:] != np.array(background, np.uint8)).any()


def test_gray_output_beside_colour_input_is_shown_as_colour(
    convcli_exe: list[str], small: dict[str, Path], tmp_path: Path
) -> None:
    source, plain, side = _plain_and_compare(convcli_exe, small["rgb"], tmp_path, "-k", "rgb-luma-edges")
    assert side.ndim == 3 and plain.ndim == 2
    height, width = plain.shape
    np.testing.assert_array_equal(side[:height, :width], source)
    np.testing.assert_array_equal(side[:height, width + COMPARE_GAP :], np.dstack([plain] * 3))


def test_with_gray_the_input_shown_is_the_gray_one_filtered(
    convcli_exe: list[str], small: dict[str, Path], tmp_path: Path
) -> None:
    _, plain, side = _plain_and_compare(convcli_exe, small["rgb"], tmp_path, "-k", "box", "--gray")
    assert side.ndim == 2
    height, width = plain.shape
    gray = load(run(convcli_exe, "apply", str(small["rgb"]), "-k", "identity", "--gray", "-o", "-").stdout)
    np.testing.assert_array_equal(side[:height, :width], gray)
    np.testing.assert_array_equal(side[:height, width + COMPARE_GAP :], plain)


@pytest.mark.parametrize(
    "options, expected",
    [
        (("--padding", "valid"), (1, 1)),  # 3x3 valid: each output pixel's centre tap is one pixel in
        (("--stride", "2"), (5, 7)),  # 21x30 -> 11x15: centred in the input's panel
        (("--padding", "valid", "--stride", "1,3"), (1, 10)),  # 19x28 -> 19x10
    ],
)
def test_a_smaller_output_is_centred_against_the_input(
    convcli_exe: list[str],
    small: dict[str, Path],
    tmp_path: Path,
    options: tuple[str, ...],
    expected: tuple[int, int],
) -> None:
    source, plain, side = _plain_and_compare(convcli_exe, small["rgb"], tmp_path, "-k", "box", *options)
    height, width = source.shape[:2]
    assert output_offset((height, width), plain.shape[:2]) == expected
    top, left = expected[0], width + COMPARE_GAP + expected[1]
    assert side.shape[:2] == (height + LABEL_HEIGHT, 2 * width + COMPARE_GAP)
    np.testing.assert_array_equal(side[top : top + plain.shape[0], left : left + plain.shape[1]], plain)
    np.testing.assert_array_equal(side[:height, :width], source)
    # Around the output, within the panel, only background.
    panel = side[:height, width + COMPARE_GAP :].copy()
    panel[expected[0] : expected[0] + plain.shape[0], expected[1] : expected[1] + plain.shape[1]] = COMPARE_BACKGROUND
    assert (panel == COMPARE_BACKGROUND).all()


def test_a_larger_output_widens_its_panel() -> None:
    source = np.zeros((4, 5), np.uint8)
    output = np.full((6, 7), 9, np.uint8)
    picture, alpha = compare_pictures(source, None, output, None, None)
    assert alpha is None and picture.shape == (6, 5 + COMPARE_GAP + 7)
    np.testing.assert_array_equal(picture[:, 5 + COMPARE_GAP :], output)
    np.testing.assert_array_equal(picture[:4, :5], source)
    assert (picture[4:, :5] == COMPARE_BACKGROUND).all()


def test_compare_to_standard_output(convcli_exe: list[str], small: dict[str, Path], tmp_path: Path) -> None:
    by_file = tmp_path / "side.png"
    assert run(convcli_exe, "apply", str(small["rgb"]), "-k", "sobel", "--compare", "-o", str(by_file)).returncode == 0
    piped = run(convcli_exe, "apply", "-", "-k", "sobel", "--compare", stdin=small["rgb"].read_bytes())
    assert piped.returncode == 0, piped.stderr
    np.testing.assert_array_equal(load(piped.stdout), load(by_file))


@pytest.mark.parametrize(
    "extra, word",
    [
        (("--depth", "16"), "--depth"),
        (("--depth", "float", "-o", "{tmp}/x.tif"), "--depth"),
        (("-o", "{tmp}/x.npy"), ".npy"),
        (("--all-frames",), "--all-frames"),
        (("--in-place",), "--in-place"),
    ],
)
def test_compare_refusals(
    convcli_exe: list[str], small: dict[str, Path], tmp_path: Path, extra: tuple[str, ...], word: str
) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(small["rgb"].read_bytes())
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [a.format(tmp=tmp_path) for a in extra]
    result = run(convcli_exe, "apply", str(source), "-k", "box", "--compare", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcli: error:") and word in lines[0] and "--compare" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert source.read_bytes() == small["rgb"].read_bytes()


def test_compare_from_python(small: dict[str, Path], tmp_path: Path) -> None:
    from convcli.pipeline import filter_file

    result = filter_file(small["gray"], tmp_path / "side.png", "box", compare=True)
    picture = load(tmp_path / "side.png")
    assert result.output_shape == picture.shape == (17 + LABEL_HEIGHT, 2 * 12 + COMPARE_GAP)


# -- preview -------------------------------------------------------------------------------------


def test_preview_of_a_two_by_two_image() -> None:
    pixels = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]], np.uint8)
    assert render_preview(pixels) == (
        "\x1b[38;2;255;0;0;48;2;0;0;255m\u2580\x1b[38;2;0;255;0;48;2;10;20;30m\u2580\x1b[0m\n"
    )


def test_preview_of_gray_odd_height_and_alpha() -> None:
    gray = np.array([[7], [8], [9]], np.uint8)
    assert render_preview(gray) == ("\x1b[38;2;7;7;7;48;2;8;8;8m\u2580\x1b[0m\n\x1b[38;2;9;9;9;49m\u2580\x1b[0m\n")
    half = render_preview(np.full((2, 1, 3), 200, np.uint8), np.array([[255], [0]], np.uint8))
    assert half == "\x1b[38;2;200;200;200;48;2;0;0;0m\u2580\x1b[0m\n"


@pytest.mark.parametrize(
    "shape, columns, rows, cells",
    [
        ((512, 512, 3), 60, 30, (30, 60)),
        ((100, 400), 60, 30, (8, 60)),
        ((400, 100), 60, 30, (30, 15)),
        ((3, 4), 60, 30, (2, 4)),
    ],
)
def test_preview_fits_the_width_and_height(
    shape: tuple[int, ...], columns: int, rows: int, cells: tuple[int, int]
) -> None:
    text = render_preview(np.zeros(shape, np.uint8), columns=columns, rows=rows)
    lines = text.splitlines()
    assert len(lines) == cells[0]
    assert all(line.count(UPPER_HALF) == cells[1] for line in lines)
    assert all(line.endswith("\x1b[0m") for line in lines)


def test_preview_decision() -> None:
    assert preview_wanted(True, False, {"NO_COLOR": ""})
    assert not preview_wanted(False, False, {})
    assert not preview_wanted(True, True, {})
    assert not preview_wanted(True, False, {"NO_COLOR": "0"})


def _run_in_pty(cmd: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run ``cmd`` with stderr (and stdin) on a pseudo-terminal; return its status and what it drew."""
    leader, follower = pty.openpty()
    # 40 columns by 12 rows: the preview must fit the terminal's width and height.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 12, 40, 0, 0))
    process = subprocess.Popen(cmd, stdin=follower, stdout=subprocess.DEVNULL, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            process.kill()
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closes when the last writer exits
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.wait(timeout=60), b"".join(chunks)


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_preview_in_a_pseudo_terminal(convcli_exe: list[str], small: dict[str, Path], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    cmd = [*convcli_exe, "apply", str(small["rgb"]), "-k", "box", "-o", str(tmp_path / "o.png"), "--preview"]
    status, drawn = _run_in_pty(cmd, env)
    assert status == 0, drawn
    assert b"\x1b[38;2;" in drawn and b"48;2;" in drawn and UPPER_HALF.encode() in drawn
    lines = [line for line in drawn.decode().splitlines() if UPPER_HALF in line]
    # 21x30 pixels in 40 columns and 10 rows (two kept for the prompt): 20 pixels tall fit, so
    # shrunk by 20/21 to 20x29 pixels, 10 rows of 29 cells.
    assert len(lines) == 10 and all(line.count(UPPER_HALF) == 29 for line in lines)
    status, drawn = _run_in_pty(cmd, {**env, "NO_COLOR": "1"})
    assert status == 0 and b"\x1b[" not in drawn and b"wrote" in drawn
    status, drawn = _run_in_pty([*cmd, "--quiet"], env)
    assert status == 0 and drawn == b""


def test_no_preview_through_a_pipe_or_on_standard_output(
    convcli_exe: list[str], small: dict[str, Path], tmp_path: Path
) -> None:
    piped = run(convcli_exe, "apply", str(small["rgb"]), "-k", "box", "-o", str(tmp_path / "o.png"), "--preview")
    assert piped.returncode == 0 and b"\x1b[" not in piped.stderr and b"wrote" in piped.stderr
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    status, drawn = _run_in_pty(
        [
            "/bin/sh",
            "-c",
            " ".join([*convcli_exe, "apply", str(small["rgb"]), "-k", "box", "-o", "-", "--preview"]) + " > /dev/null",
        ],
        env,
    )
    assert status == 0 and b"\x1b[" not in drawn


def test_the_readme_compare_picture_is_what_the_script_makes(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parent.parent / "docs" / "make_pictures.py"
    spec = importlib.util.spec_from_file_location("make_pictures_compare", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    made = load(module.compare_picture(tmp_path))
    np.testing.assert_array_equal(made, load(script.parent / "compare.png"))
    source = load(SAMPLES / "astronaut.png")
    np.testing.assert_array_equal(made[: source.shape[0], : source.shape[1]], source)


def test_a_16_bit_input_is_shown_rounded_to_8_bits(convcli_exe: list[str], tmp_path: Path) -> None:
    values = np.random.default_rng(16).integers(0, 65536, (9, 11), dtype=np.uint16)
    source = tmp_path / "deep.png"
    Image.fromarray(values).save(source)  # mode I;16
    identity = load(run(convcli_exe, "apply", str(source), "-k", "identity", "-o", "-").stdout)
    np.testing.assert_array_equal(identity, np.rint(values / 257.0).astype(np.uint8))
    side = load(run(convcli_exe, "apply", str(source), "-k", "identity", "--compare", "-o", "-").stdout)
    np.testing.assert_array_equal(side[:9, :11], identity)
    np.testing.assert_array_equal(side[:9, 11 + COMPARE_GAP :], identity)
