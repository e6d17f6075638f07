"""Reading and writing images: modes, alpha, EXIF orientation, formats, atomic writes."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from convcli.errors import ImageError, OutputError, ParameterError
from convcli.io import decode_bytes, read_image, resolve_format, write_image

from conftest import SAMPLES


def _save(tmp_path: Path, image: Image.Image, name: str, **kwargs: Any) -> Path:
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def test_gray_stays_gray_and_rgb_stays_rgb() -> None:
    gray = read_image(SAMPLES / "camera.png")
    assert gray.pixels.shape == (512, 512) and gray.mode == "L" and gray.alpha is None
    colour = read_image(SAMPLES / "astronaut.png")
    assert colour.pixels.shape == (512, 512, 3) and colour.mode == "RGB"
    assert colour.pixels.dtype == np.uint8  # 8-bit samples stay 8-bit until the filter needs floats
    np.testing.assert_array_equal(colour.pixels, np.asarray(Image.open(SAMPLES / "astronaut.png")))


def test_rgba_keeps_alpha_apart(tmp_path: Path, rng: np.random.Generator) -> None:
    array = rng.integers(0, 256, size=(6, 7, 4), dtype=np.uint8)
    picture = read_image(_save(tmp_path, Image.fromarray(array, "RGBA"), "a.png"))
    np.testing.assert_array_equal(picture.pixels, array[..., :3])
    np.testing.assert_array_equal(picture.alpha, array[..., 3])


def test_la_keeps_alpha_apart(tmp_path: Path, rng: np.random.Generator) -> None:
    array = rng.integers(0, 256, size=(5, 4, 2), dtype=np.uint8)
    picture = read_image(_save(tmp_path, Image.fromarray(array, "LA"), "la.png"))
    assert picture.pixels.shape == (5, 4)
    np.testing.assert_array_equal(picture.pixels, array[..., 0])
    np.testing.assert_array_equal(picture.alpha, array[..., 1])


def test_palette_becomes_rgb(tmp_path: Path) -> None:
    image = Image.open(SAMPLES / "chelsea.png").convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    picture = read_image(_save(tmp_path, image, "p.png"))
    assert picture.mode == "RGB" and picture.alpha is None
    np.testing.assert_array_equal(picture.pixels, np.asarray(image.convert("RGB"), dtype=np.float32))


def test_cmyk_becomes_rgb(tmp_path: Path) -> None:
    image = Image.open(SAMPLES / "chelsea.png").convert("CMYK")
    picture = read_image(_save(tmp_path, image, "c.tif"))
    assert picture.mode == "RGB"
    np.testing.assert_array_equal(picture.pixels, np.asarray(image.convert("RGB"), dtype=np.float32))


def test_gray_option_uses_luminance(tmp_path: Path) -> None:
    picture = read_image(SAMPLES / "astronaut.png", gray=True)
    assert picture.pixels.shape == (512, 512)
    want = np.asarray(Image.open(SAMPLES / "astronaut.png").convert("L"), dtype=np.float32)
    assert np.abs(picture.pixels - want).max() <= 1.0  # Pillow rounds to integers


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    array = np.zeros((4, 6, 3), dtype=np.uint8)
    array[0, 0] = 255  # a white pixel at the top-left of the stored image
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = _save(tmp_path, Image.fromarray(array), "r.png", exif=exif)
    picture = read_image(path)
    assert picture.pixels.shape == (6, 4, 3)  # upright: the stored 4x6 becomes 6 rows x 4 columns
    assert picture.pixels[0, 3, 0] == 255  # top-left moved to the top-right


def test_sixteen_bit_scaled_to_8_bit_range(tmp_path: Path) -> None:
    array = np.array([[0, 257, 65535]], dtype=np.uint16)
    path = _save(tmp_path, Image.fromarray(array), "g16.png")
    np.testing.assert_allclose(read_image(path).pixels, [[0.0, 1.0, 255.0]], atol=1e-4)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file|not an image"),
        (b"hello, I am text", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "corrupt|truncated|not an image"),
    ],
)
def test_bad_files_raise_image_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="is a directory"):
        read_image(tmp_path)


def test_formats_outside_the_allow_list_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.pcx"
    Image.new("RGB", (4, 4)).save(path, format="PCX")
    with pytest.raises(ImageError, match="not in a format convcli reads"):
        read_image(path)


@pytest.mark.parametrize(
    "name, fmt",
    [("a.png", "PNG"), ("a.JPG", "JPEG"), ("a.jpeg", "JPEG"), ("a.tif", "TIFF"), ("a.webp", "WEBP"), ("a.bmp", "BMP")],
)
def test_format_from_suffix(name: str, fmt: str) -> None:
    assert resolve_format(name, None) == fmt


def test_format_errors() -> None:
    assert resolve_format("-", None) == "PNG"
    assert resolve_format("a.dat", "jpg") == "JPEG"
    with pytest.raises(ParameterError, match="change the suffix or --format"):
        resolve_format("a.png", "jpg")
    with pytest.raises(ParameterError, match=r"cannot tell the output format from suffix '\.xyz'"):
        resolve_format("a.xyz", None)
    with pytest.raises(ParameterError, match="--format"):
        resolve_format("a.png", "heic")


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".webp", ".ppm"])
def test_lossless_round_trip(tmp_path: Path, suffix: str, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    path = tmp_path / f"out{suffix}"
    if suffix == ".webp":
        write_image(pixels, None, path, quality=100)
        assert np.asarray(Image.open(path)).shape == (9, 11, 3)
        return
    write_image(pixels, None, path)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), pixels)


def test_alpha_written_back(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, size=(4, 5), dtype=np.uint8)
    write_image(pixels, alpha, tmp_path / "o.png")
    saved = np.asarray(Image.open(tmp_path / "o.png"))
    assert saved.shape == (4, 5, 4)
    np.testing.assert_array_equal(saved[..., 3], alpha)


def test_jpeg_drops_alpha_with_a_warning(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4, 3), dtype=np.uint8)
    with pytest.warns(UserWarning, match="alpha channel is dropped"):
        write_image(pixels, np.full((4, 4), 9, dtype=np.uint8), tmp_path / "o.jpg")
    assert Image.open(tmp_path / "o.jpg").mode == "RGB"


def test_fifo_is_written_through_not_replaced(tmp_path: Path) -> None:
    import os
    import stat

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    # The reader is there before the write (a FIFO nobody reads is an error, not a wait); the
    # image is far smaller than the pipe's buffer.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        write_image(np.full((3, 4), 9, dtype=np.uint8), None, fifo)
        received = os.read(reader, 1 << 16)
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the pipe, not a file renamed over it
    assert decode_bytes(received).pixels.tolist() == [[9] * 4] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.png"]


def test_write_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        write_image(np.zeros((3, 3), dtype=np.uint8), None, tmp_path / "nope" / "o.png")


def test_png_default_is_fast_compression(tmp_path: Path) -> None:
    pixels = np.asarray(Image.open(SAMPLES / "camera.png"))
    write_image(pixels, None, tmp_path / "fast.png")
    write_image(pixels, None, tmp_path / "small.png", compress_level=9)
    assert (tmp_path / "fast.png").stat().st_size > (tmp_path / "small.png").stat().st_size
    for name in ("fast.png", "small.png"):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / name)), pixels)


def test_output_file_mode_follows_umask(tmp_path: Path) -> None:
    write_image(np.zeros((2, 2), dtype=np.uint8), None, tmp_path / "m.png")
    mode = (tmp_path / "m.png").stat().st_mode & 0o777
    assert mode != 0o600  # not the private mode of a temporary file
    assert io.BytesIO((tmp_path / "m.png").read_bytes()).read(8) == b"\x89PNG\r\n\x1a\n"


def test_temp_file_pattern_matches_the_names_write_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from convcli.io import temp_file_pattern

    made: list[str] = []
    real_open = os.open

    def recording_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_EXCL:  # the temporary file, created so that it can be no existing file
            made.append(Path(path).name)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    for _ in range(20):
        write_image(np.zeros((2, 2), dtype=np.uint8), None, tmp_path / "out.png")
    assert len(made) == 20
    assert all(temp_file_pattern(["out.png"]).fullmatch(name) for name in made)
    assert not any(temp_file_pattern(["other.png"]).fullmatch(name) for name in made)
