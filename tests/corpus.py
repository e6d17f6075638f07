"""A corpus of bad and unusual image files, generated (never checked in as binaries).

:func:`write_corpus` writes every file into a folder and returns the expected behaviour of
``convcli apply FILE -k box -o OUT.png`` on each, which the tests check and the documentation
tabulates.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    """One corpus file and what convcli does with it.

    ``exit_code`` 0 means it is filtered; otherwise ``message`` is a fragment of the one-line
    error, and no output file may appear.
    """

    name: str
    description: str
    exit_code: int
    message: str = ""


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _gradient(height: int = 24, width: int = 32) -> np.ndarray:
    rows = np.linspace(0, 255, height)[:, None]
    cols = np.linspace(0, 255, width)[None, :]
    return np.stack([rows + 0 * cols, 0 * rows + cols, (rows + cols) / 2], axis=-1).astype(np.uint8)


def small_samples() -> dict[str, bytes]:
    """Small valid files in each format convcli reads: seeds for the fuzzer."""
    rgb = Image.fromarray(_gradient(12, 16))
    frames = [Image.fromarray(np.roll(_gradient(12, 16), k, axis=1)) for k in range(3)]
    return {
        "png": _encode(rgb, "PNG"),
        "jpeg": _encode(rgb, "JPEG", quality=80),
        "gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50),
        "tiff": _encode(rgb, "TIFF"),
        "bmp": _encode(rgb, "BMP"),
    }


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid-looking PNG of a few hundred bytes whose header declares ``width x height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    data = zlib.compress(b"\x00" * (width + 1), 9)  # one row: enough to look plausible
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data) + _png_chunk(b"IEND", b"")


def _flip_idat_crc(png: bytes) -> bytes:
    data = bytearray(png)
    start = data.find(b"IDAT")
    (length,) = struct.unpack(">I", data[start - 4 : start])
    data[start + 4 + length] ^= 0xFF
    return bytes(data)


def _exif_rotated_jpeg() -> bytes:
    # 20 wide x 10 tall as stored, with orientation 6 ("rotate 90 CW to display"): upright it is
    # 10 wide x 20 tall. The left half is white so the rotation is visible in the pixels.
    stored = np.zeros((10, 20), dtype=np.uint8)
    stored[:, :10] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif.tobytes())


def _hostile_tiff(rgb: np.ndarray) -> bytes:
    # SamplesPerPixel (tag 277, SHORT, count 1) = 3 rewritten to 40000
    data = _encode(Image.fromarray(rgb), "TIFF")
    entry = struct.pack("<HHIHH", 277, 3, 1, 3, 0)
    assert entry in data
    return data.replace(entry, struct.pack("<HHIHH", 277, 3, 1, 40000, 0))


def _psd_header() -> bytes:
    # Photoshop: "8BPS", version 1, 6 reserved bytes, 3 channels, 4x4, 8 bits, RGB; empty sections.
    return b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 4, 4, 8, 3) + b"\x00" * 12 + b"\x00\x00" + b"\x80" * 48


CASES: tuple[Case, ...] = (
    Case("empty.png", "zero-byte file", 1, "empty file (0 bytes)"),
    Case("text.png", "a text file named .png", 1, "not an image"),
    Case("truncated.png", "PNG cut in half", 1, "truncated PNG"),
    Case("truncated.jpg", "JPEG cut in half", 1, "truncated"),
    Case("bad-crc.png", "PNG whose IDAT checksum is wrong", 1, "bad CRC checksum in the 'IDAT' chunk"),
    Case("bad-header-crc.png", "PNG whose IHDR checksum is wrong", 1, "bad CRC checksum in the 'IHDR' chunk"),
    Case("bomb.png", "PNG of 155 bytes declaring 50000 x 50000 pixels", 1, "more than the limit of 178,956,970"),
    Case("samples.tif", "TIFF declaring 40000 samples per pixel", 1, "corrupt TIFF file: its header cannot be read"),
    Case("document.pdf", "a PDF", 1, "PDF files are not read by convcli"),
    Case("figure.eps", "an EPS", 1, "PostScript/EPS files are not read by convcli"),
    Case("layers.psd", "a Photoshop PSD", 1, "PSD files are not read by convcli"),
    Case("cmyk.jpg", "CMYK JPEG", 0),
    Case("palette-transparent.png", "palette PNG with a transparent index", 0),
    Case("transparent.gif", "GIF with a transparent index", 0),
    Case("gray-alpha.png", "LA (gray + alpha) PNG", 0),
    Case("bilevel.png", "1-bit PNG", 0),
    Case("gray16.png", "16-bit grayscale PNG (I;16)", 0),
    Case("int32.tif", "32-bit integer TIFF (I)", 0),
    Case("float32.tif", "32-bit float TIFF (F), values 0..1", 0),
    Case("animated.gif", "animated GIF, 3 frames", 0),
    Case("multipage.tif", "multi-page TIFF, 2 pages", 0),
    Case("exif-rotated.jpg", "JPEG with EXIF orientation 6", 0),
)
BAD_CASES = tuple(case for case in CASES if case.exit_code)
GOOD_CASES = tuple(case for case in CASES if not case.exit_code)


def write_corpus(directory: Path) -> dict[str, Path]:
    """Write every corpus file into ``directory``; return name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    rgb = _gradient()
    gray = rgb[..., 0]
    png = _encode(Image.fromarray(rgb), "PNG")
    jpeg = _encode(Image.fromarray(rgb), "JPEG", quality=90)
    palette = Image.fromarray(rgb).quantize(16)
    alpha = np.where(np.arange(32)[None, :] < 16, 0, 255).astype(np.uint8).repeat(24, axis=0)
    ramp16 = (np.arange(24 * 32).reshape(24, 32) * 85).astype(np.uint16)  # 0..65195, steps finer than 8 bits
    frames = [Image.fromarray(np.roll(rgb, 5 * k, axis=1)) for k in range(3)]
    bad_header = bytearray(png)
    bad_header[29] ^= 0xFF  # the IHDR CRC: 8-byte signature + 4 length + 4 type + 13 data
    files: dict[str, bytes] = {
        "empty.png": b"",
        "text.png": b"This is not a picture, just text in a file called .png\n",
        "truncated.png": png[: len(png) // 2],
        "truncated.jpg": jpeg[: len(jpeg) // 2],
        "bad-crc.png": _flip_idat_crc(png),
        "bad-header-crc.png": bytes(bad_header),
        "bomb.png": bomb_png(),
        "samples.tif": _hostile_tiff(rgb),
        "document.pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
        "figure.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n%%EOF\n",
        "layers.psd": _psd_header(),
        "cmyk.jpg": _encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=90),
        "palette-transparent.png": _encode(palette, "PNG", transparency=0),
        "transparent.gif": _encode(palette, "GIF", transparency=0),
        "gray-alpha.png": _encode(Image.fromarray(np.dstack([gray, alpha]), "LA"), "PNG"),
        "bilevel.png": _encode(Image.fromarray(gray > 127), "PNG"),
        "gray16.png": _encode(Image.fromarray(ramp16), "PNG"),
        "int32.tif": _encode(Image.fromarray(ramp16.astype(np.int32)), "TIFF"),
        "float32.tif": _encode(Image.fromarray((gray / 255.0).astype(np.float32)), "TIFF"),
        "animated.gif": _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0),
        "multipage.tif": _encode(frames[0], "TIFF", save_all=True, append_images=frames[1:2]),
        "exif-rotated.jpg": _exif_rotated_jpeg(),
    }
    assert set(files) == {case.name for case in CASES}
    paths = {}
    for name, data in files.items():
        path = directory / name
        path.write_bytes(data)
        paths[name] = path
    return paths


if __name__ == "__main__":  # python tests/corpus.py DIR: write the corpus for a look by hand
    import sys

    for written in write_corpus(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus")).values():
        print(written)
