"""Encoding filtered pixels and writing them to a file (atomically) or to standard output.

A single 8-bit PNG at a fast level goes to convcli's own multi-threaded writer
(:mod:`convcli.io.png`); everything else, animations and multi-page TIFF included, to Pillow.
"""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from convcli.errors import OutputError
from convcli.io.atomic import write_bytes_atomic
from convcli.io.formats import (
    NO_ALPHA_FORMATS,
    STDIO,
    check_encoder_settings,
    check_format_available,
    check_output_capability,
    resolve_format,
    size_problem,
)
from convcli.io.modes import ImageWarning
from convcli.io.native import run_interruptibly
from convcli.io.png import encode_png
from convcli.io.stdio import write_stdout
from convcli.options import DEFAULT_AVIF_QUALITY, DEFAULT_JPEG_QUALITY, DEFAULT_PNG_COMPRESS_LEVEL

# Levels up to this use convcli's multi-threaded PNG writer (Up filter); higher levels use
# Pillow's encoder, whose adaptive row filters give the smallest files.
PARALLEL_PNG_MAX_LEVEL = 3

OutputPixels = NDArray[np.uint8] | NDArray[np.uint16]
Frame = tuple[OutputPixels, NDArray[np.uint8] | None]


def to_pillow(pixels: OutputPixels, alpha: NDArray[np.uint8] | None) -> Image.Image:
    """Build a Pillow image from uint8 (or 16-bit gray) pixels and an optional alpha plane."""
    if pixels.dtype == np.uint16:
        if pixels.ndim != 2:
            raise OutputError("16-bit output is written for grayscale images only; use --gray or --depth 8")
        return Image.fromarray(np.ascontiguousarray(pixels))  # mode I;16
    if alpha is not None:
        stacked = np.dstack([pixels, alpha]) if pixels.ndim == 2 else np.dstack([pixels, alpha[..., None]])
        return Image.fromarray(stacked, "LA" if pixels.ndim == 2 else "RGBA")
    return Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")


def _prepare(pixels: OutputPixels, alpha: NDArray[np.uint8] | None, fmt: str) -> Image.Image:
    if alpha is not None and fmt in NO_ALPHA_FORMATS:
        warnings.warn(f"{fmt} cannot store transparency; the alpha channel is dropped", ImageWarning, stacklevel=4)
        alpha = None
    if alpha is not None and pixels.dtype == np.uint16:
        warnings.warn("16-bit output cannot carry an alpha channel; it is dropped", ImageWarning, stacklevel=4)
        alpha = None
    image = to_pillow(pixels, alpha)
    if fmt == "GIF" and image.mode == "RGB":
        image = image.quantize(256)
    elif fmt == "BMP" and image.mode == "LA":  # BMP has no gray+alpha layout; RGBA keeps the alpha
        image = image.convert("RGBA")
    return image


def encode_frames(
    frames: list[Frame],
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
    ``threads`` threads (:func:`convcli.io.png.encode_png`); everything else to Pillow.
    """
    if not frames:
        raise OutputError("nothing to encode: no frames")
    check_encoder_settings(quality, compress_level)
    check_format_available(fmt)
    if len(frames) > 1:
        check_output_capability(fmt, frames=True)
    if frames[0][0].dtype == np.uint16:
        check_output_capability(fmt, depth=16)
    pixels, alpha = frames[0]
    height, width = pixels.shape[:2]
    channels = (1 if pixels.ndim == 2 else pixels.shape[2]) + (alpha is not None)
    problem = size_problem(fmt, width, height, channels * pixels.dtype.itemsize, len(frames))
    if problem:
        raise OutputError(problem)
    level = DEFAULT_PNG_COMPRESS_LEVEL if compress_level is None else compress_level
    if fmt == "PNG" and len(frames) == 1 and frames[0][0].dtype == np.uint8 and level <= PARALLEL_PNG_MAX_LEVEL:
        pixels, alpha = frames[0]
        channels = pixels if alpha is None else np.dstack([pixels, alpha])
        return encode_png(channels.astype(np.uint8, copy=False), level=level, threads=threads)
    images = [_prepare(pixels, alpha, fmt) for pixels, alpha in frames]
    options: dict[str, object] = {}
    if fmt == "PNG":
        options["compress_level"] = level
    elif fmt in ("JPEG", "WEBP"):
        options["quality"] = DEFAULT_JPEG_QUALITY if quality is None else quality
    elif fmt == "AVIF":
        options["quality"] = DEFAULT_AVIF_QUALITY if quality is None else quality
        if images[0].mode in ("RGB", "RGBA"):
            # Full-resolution chroma, as libavif's own avifenc writes by default: Pillow's 4:2:0
            # would halve the colour detail of every edge a filter draws. (Gray is written 4:0:0.)
            options["subsampling"] = "4:4:4"
        if threads is not None:
            options["max_threads"] = threads
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
        _save(images[0], buffer, fmt, options)
    except (OSError, ValueError, KeyError, TypeError, OverflowError, struct.error) as exc:
        # Pillow's encoders report limits and bad settings with any of these.
        raise OutputError(f"cannot encode {fmt}: {exc}") from exc
    return buffer.getvalue()


def _save(image: Image.Image, buffer: io.BytesIO, fmt: str, options: dict[str, Any]) -> None:
    """``image.save``; an AVIF encode, one long call into libavif, runs where signals still reach
    the caller (:func:`~convcli.io.native.run_interruptibly`)."""
    if fmt == "AVIF":
        run_interruptibly(lambda: image.save(buffer, format=fmt, **options), "convcli-avif-encode")
    else:
        image.save(buffer, format=fmt, **options)


def write_frames(
    frames: list[Frame],
    destination: str | Path,
    *,
    fmt: str | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
    durations: list[float | None] | None = None,
    threads: int | None = None,
    exclusive: bool = False,
) -> int:
    """Encode frames (see :func:`encode_frames`) and write them to a path (atomically) or ``-``;
    return the byte count. ``exclusive=True`` never replaces a file: see
    :func:`~convcli.io.atomic.write_bytes_atomic`."""
    chosen = resolve_format(destination, fmt)
    data = encode_frames(
        frames, chosen, quality=quality, compress_level=compress_level, durations=durations, threads=threads
    )
    if str(destination) == STDIO:
        write_stdout(data)
    else:
        write_bytes_atomic(data, Path(destination), exclusive=exclusive)
    return len(data)


def write_image(
    pixels: OutputPixels,
    alpha: NDArray[np.uint8] | None,
    destination: str | Path,
    *,
    fmt: str | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
) -> int:
    """Encode and write an image to a path (atomically) or ``-`` (stdout); return the byte count."""
    return write_frames([(pixels, alpha)], destination, fmt=fmt, quality=quality, compress_level=compress_level)
