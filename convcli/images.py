"""Reading and writing images with Pillow: modes, alpha, EXIF orientation, formats,
stdin/stdout bytes and atomic writes.

Pixels leave this module on the 0..255 scale, whatever the file's bit depth, so that every
kernel means the same thing for every input: 8-bit samples as uint8 (no float copy until the
filter needs one, band by band), deeper ones as float32. The alpha channel travels beside them.
"""

from __future__ import annotations

import io
import os
import re
import struct
import sys
import tempfile
import warnings
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import (  # the decoders of READ_FORMATS, registered up front: see below
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    PpmImagePlugin,
    TgaImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from convcli.errors import ConvcliError, ImageError, LimitError, OutputError, ParameterError
from convcli.pngwrite import encode_png

STDIO = "-"

# Importing the plugins of the formats convcli reads registers them, so Image.open(formats=...)
# never falls back to Image.init(), which imports every plugin Pillow has (tens of ms, and code
# for formats convcli refuses anyway).
_PLUGINS = (BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, PpmImagePlugin, TgaImagePlugin,
            TiffImagePlugin, WebPImagePlugin)

# Formats convcli decodes. Anything else (EPS, PDF, PSD, ...) is refused before a decoder runs.
# (Multi-picture JPEGs, MPO, are opened by the JPEG decoder.)
READ_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM", "TGA")
# Formats convcli encodes, with the suffixes that select them.
WRITE_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
    "WEBP": (".webp",),
    "PPM": (".ppm", ".pgm", ".pnm"),
    "GIF": (".gif",),
    "TGA": (".tga",),
}
FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "PGM": "PPM", "PNM": "PPM"}
_NO_ALPHA = {"JPEG", "PPM", "GIF"}
# Formats that hold 16-bit samples (grayscale) and several frames, as Pillow writes them.
DEEP_FORMATS: tuple[str, ...] = ("PNG", "TIFF")
MULTI_FRAME_FORMATS: tuple[str, ...] = ("GIF", "PNG", "TIFF", "WEBP")

# Default PNG compression: level 1 is ~3x faster than Pillow's default 6 for a few % more bytes.
# Levels up to PARALLEL_PNG_MAX_LEVEL use convcli's multi-threaded writer (Up filter); higher
# levels use Pillow's encoder, whose adaptive row filters give the smallest files.
DEFAULT_PNG_COMPRESS_LEVEL = 1
DEFAULT_JPEG_QUALITY = 92
PARALLEL_PNG_MAX_LEVEL = 3

# Largest image convcli decodes unless told otherwise: Pillow's own hard limit (twice its
# MAX_IMAGE_PIXELS warning threshold), about 13,000 x 13,000 pixels. The check runs on the
# header, before any pixel memory is allocated.
DEFAULT_MAX_PIXELS = 178_956_970

# Leading bytes of formats convcli refuses, so that the message can name what the file is
# without handing it to the matching decoder.
_REFUSED_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "PSD"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"icns", "ICNS"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
)
# Leading bytes of the formats convcli reads: a file that starts like one of these but that
# Pillow cannot identify has a corrupt header, not an unknown format.
_READ_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageWarning(UserWarning):
    """Something about an image the user should know (alpha dropped, frames ignored)."""


@dataclass
class Picture:
    """A decoded image (or one frame of an animation).

    ``pixels`` is ``(H, W)`` for gray or ``(H, W, 3)`` for colour, on the 0..255 scale: uint8
    for 8-bit files, float32 for deeper ones;
    ``alpha`` is uint8 ``(H, W)`` or ``None``; ``format`` is the file's format (``PNG``...).
    ``bits`` is the precision of the file's samples: 8, or 16 for 16-bit and 32-bit integer and
    float images (whose extra precision survives in the float32 pixels). ``duration`` is the
    frame's display time in milliseconds, for animations.
    """

    pixels: NDArray[np.uint8] | NDArray[np.float32]
    alpha: NDArray[np.uint8] | None
    format: str | None
    source: str
    bits: int = 8
    duration: float | None = None

    @property
    def mode(self) -> str:
        """Pillow mode of the colour part: ``L`` or ``RGB``."""
        return "L" if self.pixels.ndim == 2 else "RGB"


@dataclass(frozen=True)
class ImageHeader:
    """What the file's header says, known before any pixel is decoded."""

    source: str
    format: str | None
    mode: str
    width: int
    height: int
    frames: int

    @property
    def pixels(self) -> int:
        """Pixels per frame."""
        return self.width * self.height

    @property
    def channels(self) -> int:
        """Colour channels once decoded: 1 for grayscale modes, else 3."""
        return 1 if self.mode in _GRAY_MODES else 3


_GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


def describe(source: str | Path) -> str:
    """How a source is named in messages."""
    return "<stdin>" if str(source) == STDIO else str(source)


def _open_bytes(source: str | Path) -> BinaryIO:
    if str(source) == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise ImageError("<stdin>: no data on standard input")
        return io.BytesIO(data)
    path = Path(source)
    try:
        if path.is_dir():
            raise ImageError(f"{path}: is a directory, not an image")
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file") from exc
    except PermissionError as exc:
        raise ImageError(f"{path}: permission denied") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    return handle


def _signature(head: bytes, table: tuple[tuple[bytes, str], ...]) -> str | None:
    stripped = head.lstrip()
    for magic, name in table:
        if head.startswith(magic) or (magic[:1] == b"<" and stripped.startswith(magic)):
            return name
    return None


def _check_png_chunks(handle: BinaryIO, name: str) -> None:
    """Walk a PNG's chunks and verify every CRC, IDAT included.

    Pillow checks the CRCs of header chunks only; a flipped bit in the image data would
    otherwise decode silently into wrong pixels.
    """
    handle.seek(len(_PNG_SIGNATURE))
    while True:
        head = handle.read(8)
        if len(head) < 8:
            raise ImageError(f"{name}: truncated PNG: the file ends before the IEND chunk")
        length, kind = struct.unpack(">I4s", head)
        crc = zlib.crc32(kind)
        remaining = length
        while remaining:
            block = handle.read(min(remaining, 1 << 20))
            if not block:
                raise ImageError(f"{name}: truncated PNG: chunk {kind.decode('latin-1')!r} ends early")
            crc = zlib.crc32(block, crc)
            remaining -= len(block)
        stored = handle.read(4)
        if len(stored) < 4:
            raise ImageError(f"{name}: truncated PNG: chunk {kind.decode('latin-1')!r} has no checksum")
        if struct.unpack(">I", stored)[0] != crc & 0xFFFFFFFF:
            label = kind.decode("latin-1")
            raise ImageError(f"{name}: corrupt PNG: bad CRC checksum in the {label!r} chunk")
        if kind == b"IEND":
            return


def _check_size(size: tuple[int, int], name: str, max_pixels: int | None) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the header declares an empty image ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise LimitError(
            f"{name}: refused: {width}x{height} is {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} (--max-pixels); nothing was decoded"
        )


def _to_array(
    image: Image.Image, name: str
) -> tuple[NDArray[np.uint8] | NDArray[np.float32], NDArray[np.uint8] | None, int]:
    """Convert any Pillow mode to pixels on 0..255, an optional uint8 alpha and the bit depth.

    8-bit modes stay uint8. 16-bit modes are read on 0..65535, 32-bit integers (``I``) on the same 16-bit scale (values
    outside it are clipped, with a warning) and floats (``F``) on 0..1; each is scaled to 0..255
    in float32, which keeps all 16 bits.
    """
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float32)
        return values * np.float32(255.0 / 65535.0), None, 16
    if mode == "I":
        values = np.asarray(image, dtype=np.int64)
        low, high = int(values.min(initial=0)), int(values.max(initial=0))
        if low < 0 or high > 65535:
            warnings.warn(
                f"{name}: 32-bit integer samples span {low}..{high}; convcli reads them on the 16-bit "
                "scale 0..65535 and clips the rest",
                ImageWarning,
                stacklevel=3,
            )
        return (np.clip(values, 0, 65535).astype(np.float32) * np.float32(255.0 / 65535.0)), None, 16
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if not np.all(np.isfinite(values)):
            raise ImageError(f"{name}: float image holds NaN or infinite values")
        return values * np.float32(255.0), None, 16
    if mode == "1":
        image = image.convert("L")
    elif mode == "P":
        has_alpha = "transparency" in image.info or image.palette is not None and image.palette.mode == "RGBA"
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("PA", "RGBa"):
        image = image.convert("RGBA")
    elif mode == "La":
        image = image.convert("LA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        # CMYK, YCbCr, LAB, HSV, RGBX...: Pillow's conversion (no colour management)
        image = image.convert("RGB")
    mode = image.mode
    array = np.asarray(image)
    if mode in ("L", "RGB"):
        return array, None, 8
    colour = array[..., 0] if mode == "LA" else array[..., :3]
    return np.ascontiguousarray(colour), np.ascontiguousarray(array[..., -1]), 8


def _convert_frame(
    image: Image.Image, name: str, gray: bool
) -> tuple[NDArray[np.uint8] | NDArray[np.float32], NDArray[np.uint8] | None, int]:
    if gray and image.mode not in _GRAY_MODES:
        image = image.convert("LA" if _has_alpha(image) else "L")
    pixels, alpha, bits = _to_array(image, name)
    if gray and pixels.ndim == 3:
        pixels = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return pixels, alpha, bits


def _unify(frames: list[Picture]) -> list[Picture]:
    """Give every frame the same layout: colour if any frame is, alpha if any frame has it.

    GIF decoders return the first frame as a palette image and later ones as RGB(A).
    """
    colour = any(f.pixels.ndim == 3 for f in frames)
    with_alpha = any(f.alpha is not None for f in frames)
    for frame in frames:
        if colour and frame.pixels.ndim == 2:
            frame.pixels = np.repeat(frame.pixels[..., None], 3, axis=2)
        if with_alpha and frame.alpha is None:
            frame.alpha = np.full(frame.pixels.shape[:2], 255, dtype=np.uint8)
    return frames


def read_header(source: str | Path) -> ImageHeader:
    """Read only the header of an image: format, mode, size and frame count.

    Decodes no pixels, so it is safe on a decompression bomb.
    """
    return _read(source, gray=False, max_pixels=None, all_frames=False, header_only=True)[0]  # type: ignore[return-value]


def read_image(
    source: str | Path,
    *,
    gray: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    before_decode: Callable[[ImageHeader], None] | None = None,
) -> Picture:
    """Decode an image file (or ``-`` for standard input) into a :class:`Picture`.

    The EXIF orientation is applied, so the pixels are upright. ``gray`` converts colour to
    luminance (ITU-R 601-2, as Pillow's ``convert("L")``) before filtering. Only the first
    frame of an animation or multi-page file is read, with an :class:`ImageWarning`.

    Parameters
    ----------
    source
        A path, or ``-`` for standard input.
    gray
        Convert colour to luminance.
    max_pixels
        Refuse (:class:`~convcli.errors.LimitError`) an image whose header declares more pixels
        than this, before decoding anything; ``None`` for no limit.
    before_decode
        Called with the :class:`ImageHeader` after the size check and before decoding, so that a
        caller can refuse work it cannot afford (by raising a :class:`ConvcliError`).

    Raises
    ------
    ImageError
        For every file that cannot be read, naming the file and the cause.
    """
    return _read(source, gray=gray, max_pixels=max_pixels, all_frames=False, before_decode=before_decode)[0]  # type: ignore[return-value]


def read_frames(
    source: str | Path,
    *,
    gray: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    before_decode: Callable[[ImageHeader], None] | None = None,
) -> list[Picture]:
    """Decode every frame of an animation or multi-page file (one for a still image).

    ``max_pixels`` applies to each frame; the other arguments are those of :func:`read_image`.
    All frames share a layout (gray or colour, with or without alpha).
    """
    return _read(source, gray=gray, max_pixels=max_pixels, all_frames=True, before_decode=before_decode)  # type: ignore[return-value]


def decode_bytes(data: bytes, name: str = "<bytes>", **options: Any) -> Picture:
    """Decode an image held in memory; ``options`` are those of :func:`read_image`.

    >>> buffer = io.BytesIO(); Image.new("L", (3, 2), 7).save(buffer, "PNG")
    >>> decode_bytes(buffer.getvalue()).pixels.shape
    (2, 3)
    """
    options.setdefault("gray", False)
    return _read(io.BytesIO(data), name=name, all_frames=False, **options)[0]  # type: ignore[return-value]


def _read(
    source: str | Path | BinaryIO,
    *,
    gray: bool,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    all_frames: bool,
    before_decode: Callable[[ImageHeader], None] | None = None,
    header_only: bool = False,
    name: str | None = None,
) -> list[Picture] | list[ImageHeader]:
    if isinstance(source, (str, Path)):
        name = describe(source)
        handle = _open_bytes(source)
    else:
        name, handle = name or "<bytes>", source
    try:
        return _decode(handle, name, gray, max_pixels, all_frames, before_decode, header_only)
    finally:
        handle.close()


def _decode(
    handle: BinaryIO,
    name: str,
    gray: bool,
    max_pixels: int | None,
    all_frames: bool,
    before_decode: Callable[[ImageHeader], None] | None,
    header_only: bool,
) -> list[Picture] | list[ImageHeader]:
    try:
        head = handle.read(64)
        handle.seek(0)
    except OSError as exc:
        raise ImageError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    if not head:
        raise ImageError(f"{name}: empty file (0 bytes), not an image")
    refused = _signature(head, _REFUSED_SIGNATURES)
    if refused:
        raise ImageError(f"{name}: {refused} files are not read by convcli (it reads {', '.join(READ_FORMATS)})")
    expected = _signature(head, _READ_SIGNATURES)
    if expected == "PNG" and not header_only:
        _check_png_chunks(handle, name)
        handle.seek(0)
    _allow_pillow_size(max_pixels)
    try:
        with warnings.catch_warnings():
            # convcli applies its own limit (max_pixels) to every frame; Pillow's warning is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow warns about oddities of damaged files ("Corrupt EXIF data", "Truncated File
            # Read") before it fails or recovers; the one error line, or the image, says enough.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            return _decode_pillow(handle, name, gray, max_pixels, all_frames, before_decode, header_only, expected)
    except ConvcliError:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow's own check (kept as a second line, at or above convcli's limit) fired first.
        found = re.search(r"\((\d+) pixels\)", str(exc))
        declared = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
        limit = f"{max_pixels:,}" if max_pixels is not None else f"Pillow's {2 * (Image.MAX_IMAGE_PIXELS or 0):,}"
        raise LimitError(
            f"{name}: refused: the image declares {declared}, more than the limit of {limit} (--max-pixels); "
            "nothing was decoded"
        ) from exc
    except UnidentifiedImageError as exc:
        if expected:
            raise ImageError(f"{name}: corrupt {expected} file: its header cannot be read") from exc
        raise ImageError(
            f"{name}: not an image, or not in a format convcli reads ({', '.join(READ_FORMATS)})"
        ) from exc
    except MemoryError as exc:
        raise ImageError(f"{name}: not enough memory to decode this image") from exc
    except RecursionError as exc:
        raise ImageError(f"{name}: corrupt image: structures nested too deeply") from exc
    except Exception as exc:
        # Decoders fed hostile bytes raise OSError, SyntaxError, ValueError, EOFError, struct.error,
        # IndexError, ZeroDivisionError, ...: all mean the same thing to the user.
        cause = " ".join(str(exc).split()) or type(exc).__name__
        kind = "truncated" if "truncated" in cause.lower() or isinstance(exc, EOFError) else "corrupt"
        raise ImageError(f"{name}: {kind} or unreadable image: {cause}") from exc


def _allow_pillow_size(max_pixels: int | None) -> None:
    # Pillow refuses images above twice Image.MAX_IMAGE_PIXELS in Image.open and when seeking
    # GIF frames or TIFF tiles. convcli's own check is the one that counts, so Pillow's global
    # is only ever raised (never lowered) to let a larger --max-pixels through.
    current = Image.MAX_IMAGE_PIXELS
    if current is not None and (max_pixels is None or max_pixels >= 2 * current):
        Image.MAX_IMAGE_PIXELS = None if max_pixels is None else max_pixels // 2 + 1


def _decode_pillow(
    handle: BinaryIO,
    name: str,
    gray: bool,
    max_pixels: int | None,
    all_frames: bool,
    before_decode: Callable[[ImageHeader], None] | None,
    header_only: bool,
    expected: str | None,
) -> list[Picture] | list[ImageHeader]:
    image = Image.open(handle, formats=READ_FORMATS)
    # The bomb check: the header's size, before load() allocates anything.
    _check_size(image.size, name, max_pixels)
    fmt = image.format
    count = int(getattr(image, "n_frames", 1) or 1)
    header = ImageHeader(name, fmt, image.mode, image.size[0], image.size[1], count)
    if header_only:
        return [header]
    if before_decode is not None:
        before_decode(header if all_frames else ImageHeader(name, fmt, image.mode, *image.size, 1))
    if count > 1 and not all_frames:
        warnings.warn(
            f"{name}: has {count} frames; only the first is filtered (--all-frames filters every one)",
            ImageWarning,
            stacklevel=5,
        )
    pictures: list[Picture] = []
    for index in range(count if all_frames else 1):
        if index:
            image.seek(index)
            _check_size(image.size, f"{name} (frame {index + 1})", max_pixels)
        image.load()
        duration = image.info.get("duration")
        frame = ImageOps.exif_transpose(image)  # upright pixels, for every frame alike
        pixels, alpha, bits = _convert_frame(frame, name, gray)
        pictures.append(
            Picture(pixels, alpha, fmt, name, bits, float(duration) if isinstance(duration, (int, float)) else None)
        )
    if all_frames and len({p.pixels.shape[:2] for p in pictures}) > 1:
        raise ImageError(f"{name}: its frames differ in size; convcli filters frames of one size only")
    return _unify(pictures) if all_frames else pictures


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info


# -- writing -----------------------------------------------------------------------------------


def resolve_format(destination: str | Path, explicit: str | None) -> str:
    """The output format: ``explicit`` if given, else from the suffix; PNG for stdout."""
    if explicit:
        name = explicit.strip().upper().lstrip(".")
        name = FORMAT_ALIASES.get(name, name)
        if name not in WRITE_FORMATS:
            raise ParameterError(f"`--format` must be one of {', '.join(f.lower() for f in WRITE_FORMATS)}, got {explicit!r}")
        return name
    if str(destination) == STDIO:
        return "PNG"
    suffix = Path(destination).suffix.lower()
    for fmt, suffixes in WRITE_FORMATS.items():
        if suffix in suffixes:
            return fmt
    shown = f"suffix {suffix!r}" if suffix else "no suffix"
    raise ParameterError(f"{destination}: cannot tell the output format from {shown}; add a suffix or use --format")


def check_output_capability(fmt: str, *, depth: int = 8, frames: bool = False) -> None:
    """Refuse, before any work, an output the format cannot hold.

    >>> check_output_capability("JPEG", depth=16)
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: `--depth 16` needs PNG or TIFF output; JPEG holds 8 bits per sample
    """
    if depth not in (8, 16):
        raise ParameterError(f"`--depth` must be 8 or 16, got {depth!r}")
    if depth == 16 and fmt not in DEEP_FORMATS:
        raise ParameterError(f"`--depth 16` needs PNG or TIFF output; {fmt} holds 8 bits per sample")
    if frames and fmt not in MULTI_FRAME_FORMATS:
        raise ParameterError(
            f"`--all-frames` needs an output format that holds several frames "
            f"({', '.join(f.lower() for f in MULTI_FRAME_FORMATS)}); {fmt} holds one"
        )


def default_suffix(fmt: str) -> str:
    """The usual suffix of a format."""
    return WRITE_FORMATS[fmt][0]


def to_pillow(pixels: NDArray[np.uint8] | NDArray[np.uint16], alpha: NDArray[np.uint8] | None) -> Image.Image:
    """Build a Pillow image from uint8 (or 16-bit gray) pixels and an optional alpha plane."""
    if pixels.dtype == np.uint16:
        if pixels.ndim != 2:
            raise OutputError("16-bit output is written for grayscale images only; use --gray or --depth 8")
        return Image.fromarray(np.ascontiguousarray(pixels))  # mode I;16
    if alpha is not None:
        stacked = np.dstack([pixels, alpha]) if pixels.ndim == 2 else np.dstack([pixels, alpha[..., None]])
        return Image.fromarray(stacked, "LA" if pixels.ndim == 2 else "RGBA")
    return Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")


def _prepare(
    pixels: NDArray[np.uint8] | NDArray[np.uint16], alpha: NDArray[np.uint8] | None, fmt: str
) -> Image.Image:
    if alpha is not None and fmt in _NO_ALPHA:
        warnings.warn(f"{fmt} cannot store transparency; the alpha channel is dropped", ImageWarning, stacklevel=4)
        alpha = None
    if alpha is not None and pixels.dtype == np.uint16:
        warnings.warn("16-bit output cannot carry an alpha channel; it is dropped", ImageWarning, stacklevel=4)
        alpha = None
    image = to_pillow(pixels, alpha)
    if fmt == "GIF" and image.mode == "RGB":
        image = image.quantize(256)
    return image


def encode_frames(
    frames: list[tuple[NDArray[np.uint8] | NDArray[np.uint16], NDArray[np.uint8] | None]],
    fmt: str,
    *,
    quality: int | None = None,
    compress_level: int | None = None,
    durations: list[float | None] | None = None,
    threads: int | None = None,
) -> bytes:
    """Encode one frame, or several as an animation (GIF, PNG, WebP) or multi-page TIFF.

    Each frame is ``(pixels, alpha)``: uint8, or uint16 grayscale for PNG and TIFF. A single
    8-bit PNG at a fast level (0..3) goes to convcli's own writer, which compresses on
    ``threads`` threads (:mod:`convcli.pngwrite`); everything else to Pillow.
    """
    if not frames:
        raise OutputError("nothing to encode: no frames")
    if len(frames) > 1:
        check_output_capability(fmt, frames=True)
    if frames[0][0].dtype == np.uint16:
        check_output_capability(fmt, depth=16)
    level = DEFAULT_PNG_COMPRESS_LEVEL if compress_level is None else compress_level
    if fmt == "PNG" and len(frames) == 1 and frames[0][0].dtype == np.uint8 and level <= PARALLEL_PNG_MAX_LEVEL:
        pixels, alpha = frames[0]
        if alpha is not None:
            pixels = np.dstack([pixels, alpha])
        return encode_png(pixels, level=level, threads=threads)
    images = [_prepare(pixels, alpha, fmt) for pixels, alpha in frames]
    options: dict[str, object] = {}
    if fmt == "PNG":
        options["compress_level"] = DEFAULT_PNG_COMPRESS_LEVEL if compress_level is None else compress_level
    elif fmt in ("JPEG", "WEBP"):
        options["quality"] = DEFAULT_JPEG_QUALITY if quality is None else quality
    elif fmt == "TIFF" and compress_level:
        options["compression"] = "tiff_adobe_deflate"
    if len(images) > 1:
        options.update(save_all=True, append_images=images[1:])
        if fmt != "TIFF":
            options["loop"] = 0
            known = [d for d in (durations or []) if d]
            if known:
                options["duration"] = [int(d or known[0]) for d in durations or []]
    buffer = io.BytesIO()
    try:
        images[0].save(buffer, format=fmt, **options)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise OutputError(f"cannot encode {fmt}: {exc}") from exc
    return buffer.getvalue()


_TEMP_SUFFIX = ".tmp"


def temp_file_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """The names :func:`write_bytes_atomic` gives the temporary files of outputs called ``names``:
    ``.NAME.XXXXXXXX.tmp``, eight characters from :func:`tempfile.mkstemp`'s alphabet.

    >>> bool(temp_file_pattern(["a.png"]).fullmatch(".a.png.k2_9xq0z.tmp"))
    True
    """
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"\.(?:{alternatives})\.[a-z0-9_]{{8}}{re.escape(_TEMP_SUFFIX)}")


def write_bytes_atomic(data: bytes, destination: Path) -> None:
    """Write ``data`` to a temporary file beside ``destination`` and rename it into place.

    A crash, a full disk or an interruption leaves either the old file or the complete new one,
    never a truncated image under the final name; the temporary file is removed on failure.
    """
    directory = destination.parent
    if destination.is_dir():
        raise OutputError(f"{destination}: is a directory")
    if not directory.is_dir():
        raise OutputError(f"{destination}: the folder {directory} does not exist")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=_TEMP_SUFFIX, dir=directory)
    except PermissionError as exc:
        raise OutputError(f"{destination}: permission denied (cannot create files in {directory})") from exc
    except OSError as exc:
        raise OutputError(f"{destination}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, destination)
    except BaseException as exc:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"{destination}: cannot write: {exc.strerror or exc}") from exc
        raise


def write_stdout(data: bytes) -> None:
    """Write all of ``data`` to standard output.

    ``BufferedWriter.write`` returns a short count instead of raising when the reader closes
    the pipe part-way, which would lose the rest silently; writing to the descriptor until
    every byte is out raises :class:`BrokenPipeError` instead.
    """
    stream = sys.stdout.buffer
    stream.flush()
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        fd = None
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if fd is not None else stream.write(view)
        if not written:
            raise BrokenPipeError("standard output accepted no more data")
        view = view[written:]
    if fd is None:
        stream.flush()


def write_frames(
    frames: list[tuple[NDArray[np.uint8] | NDArray[np.uint16], NDArray[np.uint8] | None]],
    destination: str | Path,
    *,
    fmt: str | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
    durations: list[float | None] | None = None,
    threads: int | None = None,
) -> int:
    """Encode frames (see :func:`encode_frames`) and write them to a path (atomically) or ``-``; return the byte count."""
    chosen = resolve_format(destination, fmt)
    data = encode_frames(
        frames, chosen, quality=quality, compress_level=compress_level, durations=durations, threads=threads
    )
    if str(destination) == STDIO:
        write_stdout(data)
    else:
        path = Path(destination)
        if path.exists() and not path.is_file() and not path.is_dir():
            _write_special(data, path)  # a device or FIFO cannot be replaced by a rename
        else:
            write_bytes_atomic(data, path)
    return len(data)


def write_image(
    pixels: NDArray[np.uint8] | NDArray[np.uint16],
    alpha: NDArray[np.uint8] | None,
    destination: str | Path,
    *,
    fmt: str | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
) -> int:
    """Encode and write an image to a path (atomically) or ``-`` (stdout); return the byte count."""
    return write_frames([(pixels, alpha)], destination, fmt=fmt, quality=quality, compress_level=compress_level)


def _write_special(data: bytes, path: Path) -> None:
    try:
        with path.open("wb") as handle:
            handle.write(data)
            handle.flush()
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
