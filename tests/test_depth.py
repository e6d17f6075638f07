"""16-bit colour in and out, and float results (--depth float, .npy), read back by other libraries.

PNG written by convcli is read back by OpenCV, and PNG read by convcli is written by OpenCV;
TIFF is checked with tifffile against files it wrote or reads; .npy with np.load. Every value is
compared with a float64 reference (scipy.ndimage.correlate).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from numpy.typing import NDArray
from PIL import Image
from scipy import ndimage

from convcli.errors import ImageError, LimitError, ParameterError
from convcli.io import read_image
from convcli.io.read import read_frames
from convcli.kernels import load_kernel
from convcli.options import OUTPUT_DEPTHS, FilterOptions, OutputOptions
from convcli.pipeline import process_file

from conftest import main_in_process

SCALE = 255.0 / 65535.0


cli = main_in_process


def one_line(code: int, err: str, want: int) -> str:
    assert code == want, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcli: error: "), err
    return lines[0]


@pytest.fixture
def rgb16() -> NDArray[np.uint16]:
    """A 16-bit colour image whose values differ below the 8-bit step (gradients plus noise)."""
    rng = np.random.default_rng(1611)
    rows, cols = np.mgrid[0:24, 0:32]
    planes = [rows * 2700 + cols * 13, cols * 2000 + 7, (rows * cols * 97) % 65536]
    base = np.stack(planes, axis=-1).astype(np.int64) + rng.integers(0, 200, (24, 32, 3))
    clipped: NDArray[np.uint16] = np.clip(base, 0, 65535).astype(np.uint16)
    return clipped


@pytest.fixture
def alpha16() -> NDArray[np.uint16]:
    cols = np.arange(32)[None, :].repeat(24, axis=0)
    return (cols * 2113 + 5).astype(np.uint16)


def write_png_cv2(path: Path, array: NDArray[np.uint16]) -> Path:
    """A 16-bit PNG written by OpenCV (which stores BGR(A))."""
    if array.ndim == 3:
        order = [2, 1, 0, 3][: array.shape[2]]
        array = array[..., order]
    assert cv2.imwrite(str(path), np.ascontiguousarray(array))
    return path


def read_png_cv2(path: Path) -> NDArray[np.generic]:
    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert array is not None
    if array.ndim == 3:
        order = [2, 1, 0, 3][: array.shape[2]]
        array = array[..., order]
    return np.asarray(array)


def reference(array: NDArray[np.generic], kernel: str) -> NDArray[np.float64]:
    """Cross-correlation in float64 with reflect borders (numpy's, scipy's "mirror"), per channel."""
    weights = np.asarray(load_kernel(kernel).matrices[0], dtype=np.float64)
    values = np.asarray(array, dtype=np.float64)
    if values.ndim == 2:
        return np.asarray(ndimage.correlate(values, weights, mode="mirror"), dtype=np.float64)
    return np.stack([ndimage.correlate(values[..., c], weights, mode="mirror") for c in range(values.shape[2])], -1)


# -- reading 16-bit colour at full precision ---------------------------------------------------------


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_16_bit_rgb_is_read_at_full_precision(suffix: str, rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    path = tmp_path / f"in.{suffix}"
    if suffix == "png":
        write_png_cv2(path, rgb16)
    else:
        tifffile.imwrite(path, rgb16, photometric="rgb")
    picture = read_image(path)
    assert picture.bits == 16 and picture.alpha is None
    np.testing.assert_allclose(picture.pixels, rgb16 * SCALE, atol=1e-3)


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_16_bit_rgba_keeps_a_16_bit_alpha(
    suffix: str, rgb16: NDArray[np.uint16], alpha16: NDArray[np.uint16], tmp_path: Path
) -> None:
    rgba = np.dstack([rgb16, alpha16])
    path = tmp_path / f"in.{suffix}"
    if suffix == "png":
        write_png_cv2(path, rgba)
    else:
        tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=["unassalpha"])
    picture = read_image(path)
    assert picture.alpha is not None
    np.testing.assert_allclose(picture.pixels, rgb16 * SCALE, atol=1e-3)
    np.testing.assert_allclose(picture.alpha, alpha16 * SCALE, atol=1e-3)


def test_16_bit_gray_alpha_png_is_gray_with_alpha(rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    import imagecodecs

    gray_alpha = np.dstack([rgb16[..., 0], rgb16[..., 1]])
    path = tmp_path / "la16.png"
    path.write_bytes(imagecodecs.png_encode(gray_alpha))  # OpenCV writes no gray+alpha PNG
    picture = read_image(path)
    assert picture.pixels.ndim == 2 and picture.alpha is not None
    np.testing.assert_allclose(picture.pixels, rgb16[..., 0] * SCALE, atol=1e-3)
    np.testing.assert_allclose(picture.alpha, rgb16[..., 1] * SCALE, atol=1e-3)


def test_16_bit_colour_gray_is_luma_of_full_precision(rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    path = write_png_cv2(tmp_path / "in.png", rgb16)
    picture = read_image(path, gray=True)
    luma = rgb16.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) * SCALE
    np.testing.assert_allclose(picture.pixels, luma, atol=1e-3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_16_bit_tiff_is_turned_upright_as_pillow_turns_8_bit(orientation: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(orientation)
    eight = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    path8, path16 = tmp_path / "e.tif", tmp_path / "s.tif"
    tags = [(274, "H", 1, orientation, True)]
    tifffile.imwrite(path8, eight, photometric="rgb", extratags=tags)
    tifffile.imwrite(path16, eight.astype(np.uint16) * 257, photometric="rgb", extratags=tags)
    upright8 = read_image(path8).pixels
    upright16 = read_image(path16).pixels
    np.testing.assert_allclose(upright16, upright8, atol=1e-3)


def test_multi_page_16_bit_tiff_reads_every_page(rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as writer:
        for k in range(3):
            writer.write(rgb16 // (k + 1), photometric="rgb")
    frames = read_frames(path)
    assert len(frames) == 3
    for k, frame in enumerate(frames):
        np.testing.assert_allclose(frame.pixels, (rgb16 // (k + 1)) * SCALE, atol=1e-3)


# -- 16-bit colour output --------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_depth_16_colour_matches_float64_reference(suffix: str, rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    source = write_png_cv2(tmp_path / "in.png", rgb16)
    out = tmp_path / f"out.{suffix}"
    process_file(source, out, "gaussian", output=OutputOptions(depth=16))
    written = read_png_cv2(out) if suffix == "png" else tifffile.imread(out)
    assert written.dtype == np.uint16 and written.shape == rgb16.shape
    expected = reference(rgb16, "gaussian")
    assert np.abs(written.astype(np.float64) - expected).max() <= 1


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_depth_16_rgba_writes_16_bit_alpha(
    suffix: str, rgb16: NDArray[np.uint16], alpha16: NDArray[np.uint16], tmp_path: Path
) -> None:
    source = tmp_path / "in.tif"
    tifffile.imwrite(source, np.dstack([rgb16, alpha16]), photometric="rgb", extrasamples=["unassalpha"])
    out = tmp_path / f"out.{suffix}"
    process_file(source, out, "identity", output=OutputOptions(depth=16))
    written = read_png_cv2(out) if suffix == "png" else tifffile.imread(out)
    assert written.dtype == np.uint16 and written.shape == (24, 32, 4)
    assert np.abs(written[..., :3].astype(np.int64) - rgb16).max() <= 1
    assert np.abs(written[..., 3].astype(np.int64) - alpha16).max() <= 1


def test_depth_16_from_8_bit_colour_input(tmp_path: Path) -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    source = tmp_path / "in.png"
    Image.fromarray(rgb).save(source)
    out = tmp_path / "out.png"
    process_file(source, out, "identity", output=OutputOptions(depth=16))
    np.testing.assert_array_equal(read_png_cv2(out), rgb.astype(np.uint16) * 257)


def test_8_bit_output_from_16_bit_input_is_rounded(tmp_path: Path) -> None:
    # 0x00C0 is 0.75 of an 8-bit step (rounds to 1), 0x10FF is 16.93 (rounds to 17): truncating
    # to the high byte, as Pillow does, gives 0 and 16.
    values = np.array([[[0x00C0, 0x10FF, 0x7FFF], [0xFFFF, 0x0080, 0x8040]]], dtype=np.uint16)
    source = write_png_cv2(tmp_path / "in.png", values)
    out = tmp_path / "out.png"
    process_file(source, out, "identity")
    written = read_png_cv2(out)
    assert written.dtype == np.uint8
    np.testing.assert_array_equal(written, np.rint(values / 257.0).astype(np.uint8))
    assert written[0, 0, 0] == 1 and written[0, 0, 1] == 17


# -- float results ---------------------------------------------------------------------------------


def test_depth_float_tiff_is_the_raw_signed_response(tmp_path: Path) -> None:
    gray = np.random.default_rng(5).integers(0, 256, (20, 30), dtype=np.uint8)
    source = tmp_path / "in.png"
    Image.fromarray(gray).save(source)
    out = tmp_path / "gx.tif"
    process_file(source, out, "sobel-x", output=OutputOptions(depth="float", scale=0.5, offset=-3))
    written = tifffile.imread(out)
    assert written.dtype == np.float32 and written.shape == gray.shape
    expected = reference(gray, "sobel-x") * 0.5 - 3
    assert written.min() < -100  # negative values survive
    np.testing.assert_allclose(written, expected, atol=1e-3)


def test_depth_float_colour_tiff_and_npy_agree(rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    source = write_png_cv2(tmp_path / "in.png", rgb16)
    tif, npy = tmp_path / "lap.tif", tmp_path / "lap.npy"
    process_file(source, tif, "laplacian", output=OutputOptions(depth="float"))
    process_file(source, npy, "laplacian")
    from_tiff, from_npy = tifffile.imread(tif), np.load(npy)
    assert from_npy.dtype == np.float32 and from_npy.shape == (24, 32, 3)
    np.testing.assert_array_equal(from_tiff, from_npy)
    expected = reference(rgb16 * SCALE, "laplacian")  # 16-bit input is on the same 0..255 scale
    np.testing.assert_allclose(from_npy, expected, atol=1e-3)


def test_npy_gray_is_two_dimensional_and_alpha_is_a_channel(tmp_path: Path) -> None:
    la = np.random.default_rng(6).integers(0, 256, (8, 9, 2), dtype=np.uint8)
    source = tmp_path / "in.png"
    Image.fromarray(la, "LA").save(source)
    # Alpha carried (not premultiplied, which box would get by default), to compare with the plain reference.
    process_file(source, tmp_path / "g.npy", "box", FilterOptions(alpha="carry"), gray=True)
    with_alpha = np.load(tmp_path / "g.npy")
    assert with_alpha.shape == (8, 9, 2)
    np.testing.assert_allclose(with_alpha[..., 0], reference(la[..., 0], "box"), atol=1e-3)
    np.testing.assert_array_equal(with_alpha[..., 1], la[..., 1].astype(np.float32))
    Image.fromarray(la[..., 0]).save(tmp_path / "plain.png")
    process_file(tmp_path / "plain.png", tmp_path / "p.npy", "box")
    assert np.load(tmp_path / "p.npy").shape == (8, 9)


def test_float_output_modes_apply_to_float_values(tmp_path: Path) -> None:
    gray = np.random.default_rng(8).integers(0, 256, (10, 12), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "in.png")
    raw = reference(gray, "sobel-x")
    process_file(tmp_path / "in.png", tmp_path / "a.npy", "sobel-x", output=OutputOptions(mode="abs"))
    np.testing.assert_allclose(np.load(tmp_path / "a.npy"), np.abs(raw), atol=1e-3)
    process_file(tmp_path / "in.png", tmp_path / "n.npy", "sobel-x", output=OutputOptions(mode="normalize"))
    stretched = (raw - raw.min()) * 255.0 / (raw.max() - raw.min())
    np.testing.assert_allclose(np.load(tmp_path / "n.npy"), stretched, atol=1e-3)


# -- the command line, batch, standard streams -------------------------------------------------------


def test_depth_option_takes_8_16_float() -> None:
    assert OUTPUT_DEPTHS == (8, 16, "float")


def test_cli_depth_float_and_npy(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    gray = np.random.default_rng(9).integers(0, 256, (6, 7), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "in.png")
    code, _, err = cli(capsys, "apply", str(tmp_path / "in.png"), "-k", "sobel-y", "--depth", "float",
                       "-o", str(tmp_path / "o.tif"))
    assert code == 0, err
    np.testing.assert_allclose(tifffile.imread(tmp_path / "o.tif"), reference(gray, "sobel-y"), atol=1e-3)
    code, _, err = cli(capsys, "apply", str(tmp_path / "in.png"), "-k", "sobel-y", "--format", "npy",
                       "-o", str(tmp_path / "o"))
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "o"), reference(gray, "sobel-y"), atol=1e-3)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--depth", "float", "-o", "{d}/o.png"], "`--depth float` needs TIFF or NPY output"),
        (["--depth", "float", "-o", "{d}/o.jpg"], "`--depth float` needs TIFF or NPY output"),
        (["--depth", "16", "-o", "{d}/o.npy"], "NPY"),
        (["--depth", "16", "-o", "{d}/o.webp"], "`--depth 16` needs PNG or TIFF output"),
        (["--depth", "12", "-o", "{d}/o.png"], "8, 16 or float"),
    ],
)
def test_bad_combinations_are_refused_before_decoding(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)  # would fail if it were decoded
    code, _, err = cli(capsys, "apply", str(broken), "-k", "box", *[a.format(d=tmp_path) for a in args])
    assert words in one_line(code, err, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.png"]


def test_npy_is_written_but_never_read(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 3), np.float32))
    with pytest.raises(ImageError):
        read_image(tmp_path / "x.npy")
    with pytest.raises(ImageError, match="not an image, or not in a format convcli reads"):
        process_file(tmp_path / "x.npy", tmp_path / "y.png", "box")


def test_batch_with_depth_16_and_float(
    rgb16: NDArray[np.uint16], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    write_png_cv2(src / "a.png", rgb16)
    tifffile.imwrite(src / "b.tif", rgb16[::-1], photometric="rgb")
    code, _, err = cli(capsys, "batch", str(src), "-k", "box", "--depth", "16", "-o", str(tmp_path / "d16"), "-j", "1")
    assert code == 0, err
    assert np.abs(read_png_cv2(tmp_path / "d16" / "a-box.png").astype(np.float64) - reference(rgb16, "box")).max() <= 1
    assert np.abs(tifffile.imread(tmp_path / "d16" / "b-box.tif") - reference(rgb16[::-1], "box")).max() <= 1
    code, _, err = cli(capsys, "batch", str(src), "-k", "box", "--depth", "float", "--format", "tiff",
                       "-o", str(tmp_path / "f"), "-j", "1")
    assert code == 0, err
    np.testing.assert_allclose(tifffile.imread(tmp_path / "f" / "a-box.tif"), reference(rgb16 * SCALE, "box"),
                               atol=1e-3)
    code, _, err = cli(capsys, "batch", str(src), "-k", "box", "--format", "npy", "-o", str(tmp_path / "n"), "-j", "1")
    assert code == 0, err
    assert np.load(tmp_path / "n" / "b-box.npy").shape == (24, 32, 3)
    # PNG inputs keep PNG names: --depth float is refused for them before anything is read
    code, _, err = cli(capsys, "batch", str(src), "-k", "box", "--depth", "float", "--name", "{stem}.{ext}",
                       "-o", str(tmp_path / "bad"), "-j", "1")
    assert "`--depth float` needs TIFF or NPY output" in one_line(code, err, 2)
    assert not (tmp_path / "bad").exists()


def test_stdin_to_stdout_with_16_bit_png(rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    source = write_png_cv2(tmp_path / "in.png", rgb16)
    env = {k: v for k, v in os.environ.items() if k != "CONVCLI_DEBUG"}
    result = subprocess.run(
        [sys.executable, "-m", "convcli", "apply", "-", "-k", "identity", "--depth", "16", "-o", "-"],
        input=source.read_bytes(), capture_output=True, timeout=60, check=False, env=env,
    )
    assert result.returncode == 0, result.stderr
    decoded = cv2.imdecode(np.frombuffer(result.stdout, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None
    decoded = decoded[..., ::-1]
    np.testing.assert_array_equal(decoded, rgb16)


# -- hostile 16-bit files --------------------------------------------------------------------------


def test_truncated_16_bit_png_is_one_error(rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    data = write_png_cv2(tmp_path / "in.png", rgb16).read_bytes()
    for cut in (30, 60, len(data) // 2, len(data) - 13):
        (tmp_path / "cut.png").write_bytes(data[:cut])
        with pytest.raises(ImageError, match=r"cut\.png: (truncated|corrupt)"):
            read_image(tmp_path / "cut.png")


def test_16_bit_png_with_short_image_data_is_one_error(tmp_path: Path) -> None:
    import struct
    import zlib

    # Valid chunks and checksums, but the pixel data stops after one of four rows.
    row = b"\x00" + b"\x12\x34" * 3 * 4
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row)) + chunk(b"IEND", b""))
    (tmp_path / "short.png").write_bytes(data)
    with pytest.raises(ImageError, match=r"short\.png: "):
        read_image(tmp_path / "short.png")


def test_corrupt_16_bit_tiff_is_one_error(rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rgb16, photometric="rgb", compression="zlib")
    data = buffer.getvalue()
    for cut in (len(data) // 3, len(data) - 40):
        (tmp_path / "cut.tif").write_bytes(data[:cut])
        with pytest.raises(ImageError, match=r"cut\.tif: "):
            read_image(tmp_path / "cut.tif")


def test_16_bit_tiff_with_absurd_dimensions_hits_the_pixel_limit(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((2, 2, 3), np.uint16), photometric="rgb")
    data = bytearray(buffer.getvalue())
    # Rewrite ImageWidth and ImageLength (tags 256, 257) to 60000 x 60000.
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        offsets = [tif.pages[0].tags[tag].valueoffset for tag in (256, 257)]  # type: ignore[union-attr]
        kinds = [tif.pages[0].tags[tag].dtype for tag in (256, 257)]  # type: ignore[union-attr]
    for offset, kind in zip(offsets, kinds, strict=True):
        size = 2 if kind == 3 else 4
        data[offset : offset + size] = (60000).to_bytes(size, "little")
    (tmp_path / "bomb.tif").write_bytes(bytes(data))
    with pytest.raises(LimitError, match=r"3,600,000,000 pixels, more than the limit"):
        read_image(tmp_path / "bomb.tif")
    with pytest.raises(LimitError, match=r"more than the limit of 1,000"):
        read_image(write_png_cv2(tmp_path / "big.png", np.zeros((40, 40, 3), np.uint16)), max_pixels=1000)


# -- 16-bit colour PPM, which Pillow reduces to 8 bits as well ------------------------------------


@pytest.mark.parametrize("maxval", [65535, 1023])
def test_16_bit_ppm_is_read_at_full_precision(maxval: int, rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    samples = (rgb16.astype(np.int64) * maxval // 65535).astype(np.uint16)
    path = tmp_path / "in.ppm"
    path.write_bytes(f"P6\n# a comment\n32 24\n{maxval}\n".encode() + samples.astype(">u2").tobytes())
    picture = read_image(path)
    assert picture.bits == 16
    np.testing.assert_allclose(picture.pixels, samples * (255.0 / maxval), atol=1e-3)
    # cross-check the layout with OpenCV, which reads 16-bit PPM too
    assert np.array_equal(read_png_cv2(path), samples)


def test_truncated_16_bit_ppm_is_one_error(rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    path = tmp_path / "cut.ppm"
    path.write_bytes(b"P6 32 24 65535\n" + rgb16.astype(">u2").tobytes()[:1000])
    with pytest.raises(ImageError, match=r"cut\.ppm: truncated"):
        read_image(path)


def test_header_tells_the_layout_and_depth_of_16_bit_colour(tmp_path: Path) -> None:
    import imagecodecs

    from convcli.io import read_header

    (tmp_path / "la.png").write_bytes(imagecodecs.png_encode(np.zeros((3, 4, 2), np.uint16)))
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((3, 4, 3), np.uint16), photometric="rgb")
    la, rgb = read_header(tmp_path / "la.png"), read_header(tmp_path / "rgb.tif")
    assert (la.mode, la.channels, la.bits) == ("LA", 1, 16)
    assert (rgb.mode, rgb.channels, rgb.bits) == ("RGB", 3, 16)


def test_all_frames_16_bit_and_float_multi_page_tiff(rgb16: NDArray[np.uint16], tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as writer:
        for k in range(2):
            writer.write(rgb16 // (k + 1), photometric="rgb")
    process_file(path, tmp_path / "o16.tif", "box", output=OutputOptions(depth=16), all_frames=True)
    process_file(path, tmp_path / "of.tif", "box", output=OutputOptions(depth="float"), all_frames=True)
    with tifffile.TiffFile(tmp_path / "o16.tif") as sixteen, tifffile.TiffFile(tmp_path / "of.tif") as floats:
        assert len(sixteen.pages) == len(floats.pages) == 2
        for k in range(2):
            expected = reference(rgb16 // (k + 1), "box")
            assert np.abs(sixteen.pages[k].asarray() - expected).max() <= 1
            np.testing.assert_allclose(floats.pages[k].asarray(), expected * SCALE, atol=1e-3)
    with pytest.raises(ParameterError, match="16-bit colour animations are not written"):
        process_file(path, tmp_path / "o.png", "box", output=OutputOptions(depth=16), all_frames=True)
    assert not (tmp_path / "o.png").exists()


def test_memory_estimate_covers_float_output_of_16_bit_colour(tmp_path: Path) -> None:
    import json

    from test_hardening_inputs import _MEASURE

    path = tmp_path / "rgba16.png"
    write_png_cv2(path, np.random.default_rng(4).integers(0, 65536, (900, 900, 4), dtype=np.uint16))
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(tmp_path / "o.tif"), '{"depth": "float"}', "gaussian"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    figures = json.loads(result.stdout)
    assert figures["measured"] <= figures["estimate"], figures


def test_16_bit_tiff_that_tifffile_calls_damaged_is_one_error(
    rgb16: NDArray[np.uint16], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rgb16, photometric="rgb", rowsperstrip=4)
    data = bytearray(buffer.getvalue())
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        entry = tif.pages[0].tags[279].offset  # type: ignore[union-attr]  # StripByteCounts
    data[entry + 4 : entry + 8] = (1).to_bytes(4, "little")  # one count for six strips
    (tmp_path / "bad.tif").write_bytes(bytes(data))
    code, _, err = cli(capsys, "apply", str(tmp_path / "bad.tif"), "-k", "box", "-o", str(tmp_path / "o.tif"))
    line = one_line(code, err, 1)
    assert "bad.tif: corrupt or unreadable image: corrupt TIFF: incorrect StripByteCounts count" in line
    assert not (tmp_path / "o.tif").exists()


def test_16_bit_tiff_with_associated_alpha_is_unpremultiplied(
    rgb16: NDArray[np.uint16], alpha16: NDArray[np.uint16], tmp_path: Path
) -> None:
    alpha = np.maximum(alpha16, 1000).astype(np.float64)  # no pixel fully transparent
    premultiplied = np.rint(rgb16 * alpha[..., None] / 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "pre.tif", np.dstack([premultiplied, alpha.astype(np.uint16)]), photometric="rgb",
                     extrasamples=["assocalpha"])
    picture = read_image(tmp_path / "pre.tif")
    assert picture.alpha is not None
    expected = premultiplied * 65535.0 / alpha[..., None] * SCALE  # exact inverse of the stored values
    np.testing.assert_allclose(picture.pixels, expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(picture.alpha, alpha * SCALE, atol=1e-3)


def test_16_bit_gray_alpha_tiff_is_refused_by_name(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # What convcli writes with --depth 16 for gray with alpha, and Pillow cannot open: named, not "corrupt".
    la = np.random.default_rng(7).integers(0, 256, (6, 5, 2), dtype=np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    process_file(tmp_path / "la.png", tmp_path / "la16.tif", "identity", output=OutputOptions(depth=16))
    with tifffile.TiffFile(tmp_path / "la16.tif") as tif:
        np.testing.assert_array_equal(tif.asarray(), la.astype(np.uint16) * 257)
    code, _, err = cli(capsys, "apply", str(tmp_path / "la16.tif"), "-k", "box", "-o", str(tmp_path / "o.png"))
    assert "la16.tif: 16-bit gray+alpha TIFF is not read by convcli" in one_line(code, err, 1)
