"""Images larger than the memory budget: read in parts, filtered band by band, written in parts.

The reference is the in-memory path (``filter_file`` with a budget it fits in), read back by
tifffile; the wrap border is also checked against scipy.ndimage.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from PIL import Image

from convcli.errors import ConvcliError, ImageError, LimitError, ParameterError
from convcli.io.tiled import NotChunkedError, open_chunked_source, open_chunked_target
from convcli.kernels import load_kernel
from convcli.options import JobOptions
from convcli.pipeline import filter_file
from convcli.tiles import band_height, filter_tiled

from conftest import main_in_process

zarr = pytest.importorskip("zarr")
# Pillow finds the TIFFs tifffile writes here to carry a short EXIF block; the in-memory reader drops it.
pytestmark = pytest.mark.filterwarnings("ignore:.*its EXIF is corrupt")

BORDERS = ("reflect", "symmetric", "edge", "wrap", "zero", "constant")
# (kernels, options): stride, dilation, padding, chains, kernel sets, output modes and depths.
JOBS: list[tuple[list[str], dict[str, Any]]] = [
    (["gaussian:sigma=2"], {}),
    (["box", "sobel"], {"stride": 2}),
    (["kirsch"], {"dilation": 3, "padding": "valid"}),
    (["sharpen", "box:size=5", "sobel-x"], {"stride": (2, 1), "mode": "abs", "dilation": (1, 2)}),
    (["laplacian"], {"depth": 16, "padding": "full", "border_value": 77}),
    (["emboss", "box"], {"mode": "normalize", "stride": 3}),
    (["box"], {"depth": "float", "linear": True, "padding": (3, 0, 1, 2)}),
]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An 8-bit gray tiled BigTIFF and a 16-bit RGB striped TIFF, seeded noise with a gradient."""
    folder = tmp_path_factory.mktemp("tiled")
    rng = np.random.default_rng(1213)
    gray = (rng.integers(0, 200, (157, 203)) + np.arange(203) // 4).astype(np.uint8)
    colour = rng.integers(0, 65536, (131, 97, 3)).astype(np.uint16)
    paths = {"gray": folder / "gray.tif", "colour": folder / "colour.tif"}
    tifffile.imwrite(paths["gray"], gray, tile=(32, 48), bigtiff=True)
    tifffile.imwrite(paths["colour"], colour, rowsperstrip=7, photometric="rgb", compression="zlib")
    return paths


def in_memory(source: Path, out: Path, kernels: list[str], job: JobOptions) -> np.ndarray:
    filter_file(source, out, [load_kernel(k) for k in kernels], job.replace(max_memory=2**40))
    return np.asarray(tifffile.imread(out))


def tiled(source: Path, out: Path, kernels: list[str], job: JobOptions, rows: int | None = None) -> np.ndarray:
    filter_tiled(source, out, [load_kernel(k) for k in kernels], job, rows_per_band=rows)
    return np.asarray(tifffile.imread(out))


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("kernels, options", JOBS, ids=[" ".join(k) for k, _ in JOBS])
def test_tiles_equal_the_in_memory_path(
    sources: dict[str, Path], tmp_path: Path, border: str, kernels: list[str], options: dict[str, Any]
) -> None:
    job = JobOptions.from_values(border=border, **options)
    for name, rows in (("gray", 5), ("colour", 11)):
        expected = in_memory(sources[name], tmp_path / "mem.tif", kernels, job)
        got = tiled(sources[name], tmp_path / "tiles.tif", kernels, job, rows)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        np.testing.assert_array_equal(got, expected, err_msg=f"{name} {border} {kernels} {options}")


@pytest.mark.parametrize("rows", [1, 3, 1000])
def test_wrap_reaches_across_the_image_as_scipy_does(tmp_path: Path, rows: int) -> None:
    """The top band needs the image's last rows and the bottom band its first, through a chain."""
    from scipy import ndimage

    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (23, 17)).astype(np.uint8)
    image[-2:] = 255  # the rows the top band wraps round to
    source = tmp_path / "in.tif"
    tifffile.imwrite(source, image, tile=(16, 16))
    job = JobOptions.from_values(border="wrap", depth="float")
    got = tiled(source, tmp_path / "out.tif", ["box", "box:size=5"], job, rows)
    first = ndimage.correlate(image.astype(np.float64), np.full((3, 3), 1 / 9), mode="grid-wrap")
    expected = ndimage.correlate(first, np.full((5, 5), 1 / 25), mode="grid-wrap")
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_fft_engine_agrees_within_rounding(sources: dict[str, Path], tmp_path: Path) -> None:
    job = JobOptions.from_values(method="fft", border="wrap", depth="float")
    expected = in_memory(sources["gray"], tmp_path / "mem.tif", ["gaussian:sigma=3"], job)
    got = tiled(sources["gray"], tmp_path / "tiles.tif", ["gaussian:sigma=3"], job, 13)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


def test_gray_and_16_bit_colour(sources: dict[str, Path], tmp_path: Path) -> None:
    for options in ({"gray": True}, {"gray": True, "depth": 16}, {"linear": True, "depth": 16}):
        job = JobOptions.from_values(**options)
        expected = in_memory(sources["colour"], tmp_path / "mem.tif", ["gaussian"], job)
        np.testing.assert_array_equal(tiled(sources["colour"], tmp_path / "t.tif", ["gaussian"], job, 4), expected)


def test_8_bit_rgb_gray_is_pillows_luma(tmp_path: Path) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (40, 30, 3)).astype(np.uint8)
    source = tmp_path / "rgb.tif"
    tifffile.imwrite(source, rgb, tile=(16, 16), photometric="rgb")
    job = JobOptions.from_values(gray=True)
    expected = in_memory(source, tmp_path / "mem.tif", ["sharpen"], job)
    np.testing.assert_array_equal(tiled(source, tmp_path / "t.tif", ["sharpen"], job, 3), expected)


def test_png_and_zarr_targets_and_a_zarr_source(sources: dict[str, Path], tmp_path: Path) -> None:
    job = JobOptions.from_values(border="symmetric")
    expected = in_memory(sources["colour"], tmp_path / "mem.tif", ["sobel"], job)
    filter_tiled(sources["colour"], tmp_path / "out.png", [load_kernel("sobel")], job, rows_per_band=6)
    with Image.open(tmp_path / "out.png") as png:
        np.testing.assert_array_equal(np.asarray(png), expected)
    filter_tiled(sources["colour"], tmp_path / "out.zarr", [load_kernel("sobel")], job, rows_per_band=6)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "out.zarr", mode="r")[:], expected)
    # The Zarr written is a source in turn: filtered again into a Zarr array over the old one.
    filter_tiled(tmp_path / "out.zarr", tmp_path / "again.zarr", [load_kernel("box")], job, rows_per_band=9)
    filter_tiled(tmp_path / "out.zarr", tmp_path / "again.zarr", [load_kernel("box")], job, rows_per_band=9)
    tifffile.imwrite(tmp_path / "mid.tif", expected, photometric="rgb")
    again = in_memory(tmp_path / "mid.tif", tmp_path / "mem2.tif", ["box"], job)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "again.zarr", mode="r")[:], again)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_chunked_io_round_trips(tmp_path: Path) -> None:
    image = np.random.default_rng(5).integers(0, 65536, (300, 270, 3)).astype(np.uint16)
    for name in ("a.tif", "a.zarr"):
        with open_chunked_target(tmp_path / name, image.shape, image.dtype) as target:
            for start in range(0, 300, 70):
                target.write_rows(start, image[start : start + 70])
            target.commit()
        with open_chunked_source(tmp_path / name) as source:
            assert source.shape == image.shape and source.dtype == np.uint16
            np.testing.assert_array_equal(source.read_rows(33, 299), image[33:299])
            np.testing.assert_array_equal(source.zarr_array()[5:9], image[5:9])
    with tifffile.TiffFile(tmp_path / "a.tif") as written:
        assert written.is_bigtiff and written.pages.first.is_tiled
    # Uncompressed strips are read in place: big-endian 16-bit, and one strip for the whole image.
    for name, strip in (("be.tif", 7), ("one.tif", 300)):
        tifffile.imwrite(tmp_path / name, image, byteorder=">", rowsperstrip=strip, photometric="rgb")
        with open_chunked_source(tmp_path / name) as source:
            np.testing.assert_array_equal(source.read_rows(5, 290), image[5:290])
    with pytest.raises(ValueError, match="in order"):
        open_chunked_target(tmp_path / "b.png", image.shape, image.dtype).write_rows(5, image[5:9])


def test_interrupted_run_leaves_nothing(sources: dict[str, Path], tmp_path: Path) -> None:
    calls: list[int] = []

    def stop(done: int, total: int) -> None:
        calls.append(done)
        raise KeyboardInterrupt

    for name in ("out.tif", "out.png", "out.zarr"):
        calls.clear()

        with pytest.raises(KeyboardInterrupt):
            filter_tiled(sources["gray"], tmp_path / name, [load_kernel("box")], rows_per_band=10, progress=stop)
        assert calls == [10]
    assert list(tmp_path.iterdir()) == []


def test_progress_follows_the_bands(sources: dict[str, Path], tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    filter_tiled(
        sources["gray"],
        tmp_path / "o.tif",
        [load_kernel("box")],
        rows_per_band=50,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(50, 157), (100, 157), (150, 157), (157, 157)]


def test_band_height_follows_the_budget(sources: dict[str, Path]) -> None:
    from convcli.tiles import _chain

    with open_chunked_source(sources["gray"]) as source:
        steps = _chain(source, [load_kernel("gaussian")], JobOptions())
        heights = [band_height(steps, budget, 1) for budget in (2**16, 2**20, 2**22)]
    assert heights[0] < heights[1] < heights[2] <= 157


def test_sources_that_cannot_be_read_in_parts(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "alpha.tif", np.zeros((8, 8, 4), np.uint8), photometric="rgb", extrasamples=[2])
    Image.new("L", (8, 8)).save(tmp_path / "x.jpg")
    for name, match in (("alpha.tif", "extra samples"), ("x.jpg", "only TIFF")):
        with pytest.raises(NotChunkedError, match=match):
            open_chunked_source(tmp_path / name)
    with pytest.raises(ImageError, match="Zarr"):
        open_chunked_source(tmp_path / "missing.zarr")
    with pytest.raises(ParameterError, match=r"write \.tif, \.png or \.zarr"):
        filter_tiled(tmp_path / "alpha.tif", tmp_path / "o.jpg", [load_kernel("box")])


# --- the command line ---------------------------------------------------------------------------


def test_apply_tiles_a_tiff_over_the_budget(
    sources: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(sources["gray"]), "-k", "box", "-k", "sobel", "--border", "wrap", "--stride", "2"]
    code, _, err = main_in_process(capsys, "apply", *args, "-o", str(tmp_path / "mem.tif"))
    assert code == 0, err
    code, _, err = main_in_process(capsys, "apply", *args, "-o", str(tmp_path / "t.tif"), "--max-memory", "64K")
    assert code == 0, err
    assert "filtering in tiles" not in err  # stderr is no terminal: no progress bar
    with tifffile.TiffFile(tmp_path / "t.tif") as written:
        assert written.is_bigtiff and written.pages.first.is_tiled  # the tiled path wrote it
        np.testing.assert_array_equal(written.asarray(), tifffile.imread(tmp_path / "mem.tif"))
    # Every page is filtered in memory only, where it is refused when it does not fit.
    code, _, err = main_in_process(
        capsys, "apply", *args, "-o", str(tmp_path / "a.tif"), "--max-memory", "64K", "--all-frames"
    )
    assert code == 1 and "of working memory" in err and "write .tif, .png or .zarr" in err


def test_apply_reads_and_writes_zarr(
    sources: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = main_in_process(
        capsys, "apply", str(sources["gray"]), "-k", "emboss", "-o", str(tmp_path / "a.zarr")
    )
    assert code == 0, err
    code, _, err = main_in_process(
        capsys, "apply", str(tmp_path / "a.zarr"), "-k", "box", "-o", str(tmp_path / "b.tif")
    )
    assert code == 0 and "wrote" in err
    code, _, err = main_in_process(
        capsys, "apply", str(tmp_path / "a.zarr"), "-k", "box", "-o", str(tmp_path / "b.jpg")
    )
    assert code == 2 and err.count("\n") == 1 and "write .tif, .png or .zarr" in err
    code, _, err = main_in_process(
        capsys, "apply", str(tmp_path / "a.zarr"), "-k", "box", "-o", str(tmp_path / "a.zarr")
    )
    assert code == 2 and "would overwrite the input" in err


def test_too_large_jpeg_is_refused_with_a_way_to_convert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Image.new("RGB", (300, 200)).save(tmp_path / "big.jpg")
    code, _, err = main_in_process(
        capsys, "apply", str(tmp_path / "big.jpg"), "-k", "box", "-o", str(tmp_path / "o.tif"), "--max-memory", "64K"
    )
    assert code == 1 and err.count("\n") == 1 and "vips tiffsave" in err and "--tile" in err
    assert list(tmp_path.iterdir()) == [tmp_path / "big.jpg"]


def test_peak_memory_follows_the_budget(tmp_path: Path) -> None:
    """A 6000x6000 gray tiled TIFF filtered with --max-memory 64M peaks below twice the budget (the
    in-memory path takes about 190 MiB), as the kernel counts it in a subprocess."""
    source = tmp_path / "big.tif"
    rng = np.random.default_rng(9)
    image = np.repeat(rng.integers(0, 256, (6000, 1), dtype=np.uint8), 6000, axis=1)
    tifffile.imwrite(source, image, tile=(256, 256), bigtiff=True)
    del image
    # VmHWM is this process's own peak: ru_maxrss would carry the forking parent's over exec.
    script = textwrap.dedent(
        f"""
        import sys
        from convcli.cli import main
        code = main(["apply", {str(source)!r}, "-k", "gaussian:sigma=3", "-o", {str(tmp_path / "o.tif")!r},
                     "--max-memory", sys.argv[1], "--quiet"])
        status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
        print(code, int(status) * 1024)
        """
    )
    result = subprocess.run([sys.executable, "-c", script, "64M"], capture_output=True, text=True, check=True)
    code, peak = map(int, result.stdout.split())
    assert code == 0
    assert peak < 128 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    with tifffile.TiffFile(tmp_path / "o.tif") as written:
        assert written.pages.first.is_tiled and written.pages.first.shape == (6000, 6000)


def test_errors_are_convcli_errors() -> None:
    assert issubclass(NotChunkedError, ConvcliError) and issubclass(LimitError, ImageError)


def test_progress_bar_on_a_terminal_only_without_quiet(sources: dict[str, Path], tmp_path: Path) -> None:
    import os
    import pty

    master, slave = pty.openpty()
    seen = []
    for extra in ([], ["--quiet"]):
        command = [sys.executable, "-m", "convcli", "apply", str(sources["gray"]), "-k", "box"]
        command += ["-o", str(tmp_path / "o.tif"), "--max-memory", "64K", *extra]
        env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
        result = subprocess.run(command, stderr=slave, stdout=subprocess.DEVNULL, env=env, timeout=60, check=False)
        assert result.returncode == 0
        os.set_blocking(master, False)
        data = b""
        try:
            while chunk := os.read(master, 1 << 16):
                data += chunk
        except BlockingIOError:
            pass
        seen.append(data)
    os.close(master)
    os.close(slave)
    assert b"filtering in tiles" in seen[0] and b"157/157 rows" in seen[0]
    assert seen[1] == b""


@pytest.mark.parametrize("kernels", [["scharr-x"], ["sobel-5x5"], ["box:size=15"], ["scharr"], ["box", "scharr-x"]])
def test_integer_kernels_in_tiles_give_the_exact_integer_engines_values(
    sources: dict[str, Path], tmp_path: Path, kernels: list[str]
) -> None:
    """In memory, 8-bit samples go through the exact integer engine; the float engines' rounding
    would show in float and 16-bit output, so the bands take the same engine."""
    for options in ({"depth": "float"}, {"depth": 16, "stride": 2}):
        job = JobOptions.from_values(border="wrap", **options)
        expected = in_memory(sources["gray"], tmp_path / "mem.tif", kernels, job)
        np.testing.assert_array_equal(tiled(sources["gray"], tmp_path / "t.tif", kernels, job, 5), expected)
