"""Encoding filtered pixels and writing them to a file (atomically) or to standard output.

A single PNG at a fast level, and every single 16-bit PNG, goes to convcli's own multi-threaded
writer (:mod:`convcli.io.png`); 16-bit and float TIFF to tifffile (Pillow writes neither 16-bit
colour nor float colour); float32 arrays to NumPy's ``.npy`` format; everything else, animations
and 8-bit multi-page TIFF included, to Pillow.
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
from convcli.io.metadata import NO_METADATA, Metadata, for_compressed_tiff, pillow_save_options, png_chunks
from convcli.io.modes import ImageWarning
from convcli.io.native import run_interruptibly
from convcli.io.png import encode_png
from convcli.io.stdio import write_stdout
from convcli.options import DEFAULT_AVIF_QUALITY, DEFAULT_JPEG_QUALITY, DEFAULT_PNG_COMPRESS_LEVEL

# Levels up to this use convcli's multi-threaded PNG writer (Up filter); higher levels use
# Pillow's encoder, whose adaptive row filters give the smallest files.
PARALLEL_PNG_MAX_LEVEL = 3

OutputPixels = NDArray[np.uint8] | NDArray[np.uint16] | NDArray[np.float32]
# Pixels and their alpha plane, of the same dtype: uint8, uint16 (16-bit output) or float32 (the
# raw response, with alpha on the same 0..255 scale).
Frame = tuple[OutputPixels, OutputPixels | None]


def _depth(pixels: OutputPixels) -> int | str:
    """The ``--depth`` that pixels of this dtype stand for: 8, 16 or ``float``."""
    if pixels.dtype == np.uint16:
        return 16
    return "float" if pixels.dtype == np.float32 else 8


def _channels(pixels: OutputPixels, alpha: OutputPixels | None) -> NDArray[np.generic]:
    """Pixels with their alpha as one more channel: ``(H, W)``, or ``(H, W, C)``."""
    return pixels if alpha is None else np.dstack([pixels, alpha.astype(pixels.dtype, copy=False)])


def encode_npy(pixels: OutputPixels, alpha: OutputPixels | None = None) -> bytes:
    """The float32 array ``(H, W)`` or ``(H, W, C)`` (alpha as the last channel) as ``.npy`` bytes.

    >>> np.load(io.BytesIO(encode_npy(np.ones((2, 3), np.float32)))).shape
    (2, 3)
    """
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(_channels(pixels, alpha), dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def encode_tiff(frames: list[Frame], *, compress: bool = False, metadata: Metadata = NO_METADATA) -> bytes:
    """16-bit or float32 frames as a (multi-page) TIFF, written by tifffile.

    Gray is ``minisblack``, colour ``rgb``; alpha is an unassociated extra sample. ``compress``
    writes deflate-compressed strips. The first page carries the profile (tag 34675), the XMP
    packet (tag 700) and the resolution of ``metadata``; EXIF is not written by this writer.
    """
    import tifffile  # imported on first use: it takes a noticeable part of a second

    buffer = io.BytesIO()
    try:
        with tifffile.TiffWriter(buffer) as writer:
            for page, (pixels, alpha) in enumerate(frames):
                carried = _tifffile_metadata(metadata) if page == 0 else {}
                if pixels.ndim == 3 and pixels.shape[2] != 3:
                    raise OutputError(
                        f"TIFF holds gray or RGB, not {pixels.shape[2]} channels; write .npy for any number"
                    )
                writer.write(
                    _channels(pixels, alpha),
                    photometric="rgb" if pixels.ndim == 3 else "minisblack",
                    planarconfig="contig",
                    extrasamples=["unassalpha"] if alpha is not None else None,
                    compression="zlib" if compress else None,
                    metadata=None,  # no JSON shape description: a plain TIFF
                    **carried,
                )
    except (OSError, ValueError, TypeError, struct.error) as exc:
        raise OutputError(f"cannot encode TIFF: {exc}") from exc
    return buffer.getvalue()


def _tifffile_metadata(metadata: Metadata) -> dict[str, Any]:
    """tifffile's keywords for the profile, XMP packet and resolution of ``metadata``."""
    carried: dict[str, Any] = {}
    if metadata.icc:
        carried["iccprofile"] = metadata.icc
    if metadata.xmp:
        carried["extratags"] = [(700, "B", len(metadata.xmp), metadata.xmp, True)]
    if metadata.dpi:
        carried.update(resolution=metadata.dpi, resolutionunit="INCH")
    return carried


def to_pillow(pixels: OutputPixels, alpha: OutputPixels | None) -> Image.Image:
    """Build a Pillow image from uint8 (or 16-bit gray) pixels and an optional alpha plane."""
    if pixels.dtype != np.uint8:
        if pixels.ndim != 2 or pixels.dtype != np.uint16:
            kind = "16-bit colour" if pixels.dtype == np.uint16 else "float samples"
            raise OutputError(f"Pillow writes no {kind}; write TIFF")
        return Image.fromarray(np.ascontiguousarray(pixels))  # mode I;16
    if alpha is not None:
        stacked = np.dstack([pixels, alpha]) if pixels.ndim == 2 else np.dstack([pixels, alpha[..., None]])
        return Image.fromarray(stacked, "LA" if pixels.ndim == 2 else "RGBA")
    return Image.fromarray(pixels, "L" if pixels.ndim == 2 else "RGB")


def _prepare(pixels: OutputPixels, alpha: OutputPixels | None, fmt: str) -> Image.Image:
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
    metadata: Metadata = NO_METADATA,
) -> bytes:
    """Encode one frame, or several as an animation (GIF, PNG, WebP) or multi-page TIFF.

    Each frame is ``(pixels, alpha)``: uint8; uint16 for PNG and TIFF; float32 for TIFF and NPY.
    A single PNG at a fast level (0..3), or 16-bit, goes to convcli's own writer, which
    compresses on ``threads`` threads (:func:`convcli.io.png.encode_png`); 16-bit and float TIFF
    to tifffile; everything else to Pillow. ``metadata`` (profile, EXIF, XMP, dpi) is written as
    far as ``fmt`` and the writer hold it, once for the whole file.
    """
    if not frames:
        raise OutputError("nothing to encode: no frames")
    check_encoder_settings(quality, compress_level)
    check_format_available(fmt)
    if len(frames) > 1:
        check_output_capability(fmt, frames=True)
    depth = _depth(frames[0][0])
    if depth != 8:
        check_output_capability(fmt, depth=depth)
    pixels, alpha = frames[0]
    if fmt == "NPY":
        return encode_npy(pixels, alpha)
    height, width = pixels.shape[:2]
    channels = (1 if pixels.ndim == 2 else pixels.shape[2]) + (alpha is not None)
    problem = size_problem(fmt, width, height, channels * pixels.dtype.itemsize, len(frames))
    if problem:
        raise OutputError(problem)
    level = DEFAULT_PNG_COMPRESS_LEVEL if compress_level is None else compress_level
    metadata = metadata.for_output(colour=pixels.ndim == 3)
    if fmt == "TIFF" and depth != 8:
        return encode_tiff(frames, compress=bool(compress_level), metadata=metadata)
    # Pillow writes no 16-bit colour or alpha: a single 16-bit PNG goes to convcli's writer at any level.
    if fmt == "PNG" and len(frames) == 1 and (depth == 16 or level <= PARALLEL_PNG_MAX_LEVEL):
        stacked = _channels(pixels, alpha)
        chunks = png_chunks(metadata)
        if depth == 16:
            return encode_png(stacked.astype(np.uint16, copy=False), level=level, threads=threads, chunks=chunks)
        return encode_png(stacked.astype(np.uint8, copy=False), level=level, threads=threads, chunks=chunks)
    if depth == 16 and pixels.ndim == 3:
        raise OutputError("16-bit colour animations are not written; write TIFF (multi-page) or use --depth 8")
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
    carried = pillow_save_options(metadata, fmt)
    if fmt == "TIFF" and "compression" in options:
        carried = for_compressed_tiff(carried)
    if len(images) > 1:
        options.update(save_all=True, append_images=images[1:])
        if fmt != "TIFF":
            options["loop"] = 0
            known = [d for d in (durations or []) if d]
            if known:
                options["duration"] = [int(d or known[0]) for d in durations or []]
    try:
        return _save(images[0], fmt, {**options, **carried})
    except OutputError as exc:
        if not carried:
            raise
        # Metadata Pillow could not write (a tag of a type it cannot encode) costs the metadata,
        # not the file; a failure that remains without it is the file's own.
        data = _save(images[0], fmt, options)
        warnings.warn(f"the metadata could not be written ({exc}); written without it", ImageWarning, stacklevel=2)
        return data


def _save(image: Image.Image, fmt: str, options: dict[str, object]) -> bytes:
    buffer = io.BytesIO()
    try:
        _pillow_save(image, buffer, fmt, options)
    except (OSError, ValueError, KeyError, TypeError, OverflowError, RuntimeError, struct.error) as exc:
        # Pillow's encoders report limits and bad settings with any of these (libtiff a tag it
        # refuses with RuntimeError).
        raise OutputError(f"cannot encode {fmt}: {exc}") from exc
    return buffer.getvalue()


def _pillow_save(image: Image.Image, buffer: io.BytesIO, fmt: str, options: dict[str, Any]) -> None:
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
    metadata: Metadata = NO_METADATA,
) -> int:
    """Encode frames (see :func:`encode_frames`) and write them to a path (atomically) or ``-``;
    return the byte count. ``exclusive=True`` never replaces a file: see
    :func:`~convcli.io.atomic.write_bytes_atomic`."""
    chosen = resolve_format(destination, fmt)
    data = encode_frames(
        frames, chosen, quality=quality, compress_level=compress_level, durations=durations, threads=threads,
        metadata=metadata,
    )
    if str(destination) == STDIO:
        write_stdout(data)
    else:
        write_bytes_atomic(data, Path(destination), exclusive=exclusive)
    return len(data)


def write_image(
    pixels: OutputPixels,
    alpha: OutputPixels | None,
    destination: str | Path,
    *,
    fmt: str | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
    metadata: Metadata = NO_METADATA,
) -> int:
    """Encode and write an image to a path (atomically) or ``-`` (stdout); return the byte count.
    ``metadata`` (a :class:`~convcli.io.metadata.Metadata`, such as a read
    :class:`~convcli.io.read.Picture`'s) is written as far as the format holds it."""
    return write_frames(
        [(pixels, alpha)], destination, fmt=fmt, quality=quality, compress_level=compress_level, metadata=metadata
    )
