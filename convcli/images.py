"""Reading and writing images with Pillow: modes, alpha, EXIF orientation, formats,
stdin/stdout bytes and atomic writes.

Pixels leave this module as float32 on the 0..255 scale, whatever the file's bit depth, so that
every kernel means the same thing for every input; the alpha channel travels beside them.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from convcli.errors import ImageError, OutputError, ParameterError

STDIO = "-"

# Formats convcli decodes. Anything else (EPS, PDF, PSD, ...) is refused before a decoder runs.
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

# Default PNG compression: level 1 is ~3x faster than Pillow's default 6 for a few % more bytes.
DEFAULT_PNG_COMPRESS_LEVEL = 1
DEFAULT_JPEG_QUALITY = 92


class ImageWarning(UserWarning):
    """Something about an image the user should know (alpha dropped, frames ignored)."""


@dataclass
class Picture:
    """A decoded image.

    ``pixels`` is float32 ``(H, W)`` for gray or ``(H, W, 3)`` for colour, on the 0..255 scale;
    ``alpha`` is uint8 ``(H, W)`` or ``None``; ``format`` is the file's format (``PNG``...).
    """

    pixels: NDArray[np.float32]
    alpha: NDArray[np.uint8] | None
    format: str | None
    source: str

    @property
    def mode(self) -> str:
        """Pillow mode of the colour part: ``L`` or ``RGB``."""
        return "L" if self.pixels.ndim == 2 else "RGB"


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
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot open: {exc.strerror or exc}") from None
    return handle


def _to_float(image: Image.Image, name: str) -> tuple[NDArray[np.float32], NDArray[np.uint8] | None]:
    """Convert any Pillow mode to float32 pixels on 0..255 and an optional uint8 alpha."""
    mode = image.mode
    if mode in ("1",):
        image = image.convert("L")
    elif mode == "P":
        has_alpha = "transparency" in image.info or image.palette is not None and image.palette.mode == "RGBA"
        image = image.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif mode == "PA":
        image = image.convert("RGBA")
    elif mode == "La":
        image = image.convert("LA")
    elif mode == "RGBa":
        image = image.convert("RGBA")
    elif mode.startswith("I;16") or mode == "I":
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or values.max(initial=0) > 255 else 255.0
        return (np.clip(values, 0, top) * (255.0 / top)).astype(np.float32), None
    elif mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if not np.all(np.isfinite(values)):
            raise ImageError(f"{name}: float image holds NaN or infinite values")
        return values, None
    mode = image.mode
    if mode in ("L", "RGB"):
        return np.asarray(image, dtype=np.float32), None
    if mode in ("LA", "RGBA"):
        array = np.asarray(image)
        return array[..., :-1].astype(np.float32).squeeze(-1) if mode == "LA" else array[..., :3].astype(
            np.float32
        ), np.ascontiguousarray(array[..., -1])
    raise ImageError(f"{name}: image mode {mode} is not supported")


def read_image(source: str | Path, *, gray: bool = False) -> Picture:
    """Decode an image file (or ``-`` for standard input) into a :class:`Picture`.

    The EXIF orientation is applied, so the pixels are upright. ``gray`` converts colour to
    luminance (ITU-R 601-2, as Pillow's ``convert("L")``) before filtering.
    """
    name = describe(source)
    handle = _open_bytes(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                image = Image.open(handle, formats=READ_FORMATS)
                frames = getattr(image, "n_frames", 1)
                image.load()
                fmt = image.format
                image = ImageOps.exif_transpose(image)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageError(f"{name}: refused: {exc}") from None
            except UnidentifiedImageError:
                raise ImageError(
                    f"{name}: not an image, or not in a format convcli reads ({', '.join(READ_FORMATS)})"
                ) from None
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise ImageError(f"{name}: corrupt or truncated image: {exc}") from None
        if frames > 1:
            warnings.warn(f"{name}: has {frames} frames; only the first is filtered", ImageWarning, stacklevel=2)
        if gray and image.mode not in ("L", "LA", "I", "I;16", "I;16B", "I;16L", "F", "1"):
            image = image.convert("LA" if image.mode in ("RGBA", "PA", "P") and _has_alpha(image) else "L")
        pixels, alpha = _to_float(image, name)
        if gray and pixels.ndim == 3:
            pixels = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    finally:
        handle.close()
    return Picture(pixels=pixels, alpha=alpha, format=fmt, source=name)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


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


def default_suffix(fmt: str) -> str:
    """The usual suffix of a format."""
    return WRITE_FORMATS[fmt][0]


def to_pillow(pixels: NDArray[np.uint8], alpha: NDArray[np.uint8] | None) -> Image.Image:
    """Build a Pillow image from uint8 pixels and an optional alpha plane."""
    if alpha is not None:
        stacked = np.dstack([pixels, alpha]) if pixels.ndim == 2 else np.dstack([pixels, alpha[..., None]])
        return Image.fromarray(stacked, "LA" if pixels.ndim == 2 else "RGBA")
    return Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")


def encode_image(
    pixels: NDArray[np.uint8],
    alpha: NDArray[np.uint8] | None,
    fmt: str,
    *,
    quality: int | None = None,
    compress_level: int | None = None,
) -> bytes:
    """Encode uint8 pixels (and alpha, where the format can hold it) to bytes."""
    if alpha is not None and fmt in _NO_ALPHA:
        warnings.warn(f"{fmt} cannot store transparency; the alpha channel is dropped", ImageWarning, stacklevel=2)
        alpha = None
    image = to_pillow(pixels, alpha)
    options: dict[str, object] = {}
    if fmt == "PNG":
        options["compress_level"] = DEFAULT_PNG_COMPRESS_LEVEL if compress_level is None else compress_level
    elif fmt in ("JPEG", "WEBP"):
        options["quality"] = DEFAULT_JPEG_QUALITY if quality is None else quality
    elif fmt == "TIFF" and compress_level:
        options["compression"] = "tiff_adobe_deflate"
    if fmt == "GIF" and image.mode == "RGB":
        image = image.quantize(256)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise OutputError(f"cannot encode {fmt}: {exc}") from None
    return buffer.getvalue()


def write_bytes_atomic(data: bytes, destination: Path) -> None:
    """Write ``data`` to a temporary file beside ``destination`` and rename it into place.

    A crash or interruption leaves either the old file or the complete new one, never a
    truncated image under the final name; the temporary file is removed on failure.
    """
    directory = destination.parent
    if destination.is_dir():
        raise OutputError(f"{destination}: is a directory")
    if not directory.is_dir():
        raise OutputError(f"{destination}: the folder {directory} does not exist")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=directory)
    except PermissionError:
        raise OutputError(f"{destination}: permission denied (cannot create files in {directory})") from None
    except OSError as exc:
        raise OutputError(f"{destination}: cannot write: {exc.strerror or exc}") from None
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
            raise OutputError(f"{destination}: cannot write: {exc.strerror or exc}") from None
        raise


def write_image(
    pixels: NDArray[np.uint8],
    alpha: NDArray[np.uint8] | None,
    destination: str | Path,
    *,
    fmt: str | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
) -> int:
    """Encode and write an image to a path (atomically) or ``-`` (stdout); return the byte count."""
    chosen = resolve_format(destination, fmt)
    data = encode_image(pixels, alpha, chosen, quality=quality, compress_level=compress_level)
    if str(destination) == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        path = Path(destination)
        if path.exists() and not path.is_file() and not path.is_dir():
            _write_special(data, path)  # a device or FIFO cannot be replaced by a rename
        else:
            write_bytes_atomic(data, path)
    return len(data)


def _write_special(data: bytes, path: Path) -> None:
    try:
        with path.open("wb") as handle:
            handle.write(data)
            handle.flush()
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
