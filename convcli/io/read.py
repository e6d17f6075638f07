"""Reading images: what the header says, then the pixels, with every failure one clear error.

A file is recognised by its first bytes before any decoder sees it; refused formats never reach
one, and a PNG has every chunk checksum verified. The header's size is checked against
``max_pixels`` before anything is allocated, and a caller's ``before_decode`` hook may refuse the
work (for memory) at the same point. Pixels leave on the 0..255 scale (:mod:`convcli.io.modes`),
upright by their EXIF orientation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import io
import re
import struct
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
from PIL import (  # the decoders of READ_FORMATS, registered up front: see below
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    JpegImagePlugin,
    PngImagePlugin,
    PpmImagePlugin,
    TgaImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)

from convcli.errors import ConvcliError, ImageError, LimitError
from convcli.io.deep import DeepSource, deep_source
from convcli.io.formats import READ_FORMATS, STDIO, avif_problem, refused_format, sniff_format
from convcli.io.metadata import NO_METADATA, Metadata, read_metadata, upright
from convcli.io.modes import GRAY_MODES, ImageWarning, Pixels, convert_frame
from convcli.io.native import native_messages, run_interruptibly
from convcli.io.png import check_png_chunks
from convcli.io.stdio import describe, open_source, read_upto, stdin_limit_error
from convcli.io.tiff_float import float_tiff_for_pillow
from convcli.options import DEFAULT_MAX_PIXELS

# Importing the plugins of the formats convcli reads registers them, so Image.open(formats=...)
# never falls back to Image.init(), which imports every plugin Pillow has (tens of ms, and code
# for formats convcli refuses anyway).
_PLUGINS = (BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, PpmImagePlugin, TgaImagePlugin,
            TiffImagePlugin, WebPImagePlugin)
try:  # Pillow 11.2.1 and later; the plugin imports whether or not Pillow was built with libavif
    _AVIF_PLUGIN: Any = importlib.import_module("PIL.AvifImagePlugin")
except ImportError:
    _AVIF_PLUGIN = None


def _pillow_formats() -> tuple[str, ...]:
    """The allow-list handed to Pillow: READ_FORMATS, less AVIF where this Pillow cannot decode it
    (a Pillow that lacks the plugin would fail on the unknown name, not skip it)."""
    return READ_FORMATS if avif_problem() is None else tuple(f for f in READ_FORMATS if f != "AVIF")


HeaderCheck = Callable[["ImageHeader"], None]


@dataclass(frozen=True)
class _Request:
    """What a caller asked of one read."""

    gray: bool = False
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    all_frames: bool = False
    before_decode: HeaderCheck | None = None
    header_only: bool = False


@dataclass
class Picture:
    """A decoded image (or one frame of an animation).

    ``pixels`` is ``(H, W)`` for gray or ``(H, W, 3)`` for colour, on the 0..255 scale: uint8
    for 8-bit files, float32 for deeper ones;
    ``alpha`` is ``(H, W)`` on the same scale (uint8, or float32 for 16-bit colour files) or
    ``None``; ``format`` is the file's format (``PNG``...).
    ``bits`` is the precision of the file's samples: 8, or 16 for 16-bit and 32-bit integer and
    float images (whose extra precision survives in the float32 pixels). ``duration`` is the
    frame's display time in milliseconds, for animations. ``metadata`` is what the file says
    around the pixels (:mod:`convcli.io.metadata`), read with the first frame.
    """

    pixels: Pixels
    alpha: Pixels | None
    format: str | None
    source: str
    bits: int = 8
    duration: float | None = None
    metadata: Metadata = NO_METADATA

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
    bits: int = 8  # 16 for the 16-bit colour files decoded at full precision (convcli.io.deep)

    @property
    def pixels(self) -> int:
        """Pixels per frame."""
        return self.width * self.height

    @property
    def channels(self) -> int:
        """Colour channels once decoded: 1 for grayscale modes, else 3."""
        return 1 if self.mode in GRAY_MODES else 3


def read_header(source: str | Path) -> ImageHeader:
    """Read only the header of an image: format, mode, size and frame count.

    Decodes no pixels, so it is safe on a decompression bomb.
    """
    headers = _read(source, _Request(max_pixels=None, header_only=True))
    assert isinstance(headers[0], ImageHeader)
    return headers[0]


def read_image(
    source: str | Path,
    *,
    gray: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    before_decode: HeaderCheck | None = None,
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
    return _pictures(_read(source, _Request(gray, max_pixels, False, before_decode)))[0]


def read_frames(
    source: str | Path,
    *,
    gray: bool = False,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    before_decode: HeaderCheck | None = None,
) -> list[Picture]:
    """Decode every frame of an animation or multi-page file (one for a still image).

    ``max_pixels`` applies to each frame; the other arguments are those of :func:`read_image`.
    All frames share a layout (gray or colour, with or without alpha).
    """
    return _pictures(_read(source, _Request(gray, max_pixels, True, before_decode)))


def decode_bytes(data: bytes, name: str = "<bytes>", **options: Any) -> Picture:
    """Decode an image held in memory; ``options`` are those of :func:`read_image`.

    >>> buffer = io.BytesIO(); Image.new("L", (3, 2), 7).save(buffer, "PNG")
    >>> decode_bytes(buffer.getvalue()).pixels.shape
    (2, 3)
    """
    return _pictures(_read(io.BytesIO(data), _Request(**options), name=name))[0]


def _pictures(decoded: list[Picture] | list[ImageHeader]) -> list[Picture]:
    return [p for p in decoded if isinstance(p, Picture)]


def _read(
    source: str | Path | BinaryIO, request: _Request, name: str | None = None
) -> list[Picture] | list[ImageHeader]:
    if isinstance(source, (str, Path)):
        name = describe(source)
        handle = _read_stdin(request) if str(source) == STDIO else open_source(source)
    else:
        name, handle = name or "<bytes>", source
    try:
        return _decode(handle, name, request)
    finally:
        handle.close()


# Most frames convcli reads from one file. Each frame is a full filtering pass, and Pillow's
# TIFF writer takes time quadratic in the page count (20,000 one-pixel pages: minutes).
MAX_FRAMES = 1000
# Standard input is held in memory (decoders seek), so it is read with a bound: 8 bytes a pixel
# of --max-pixels (an uncompressed 16-bit RGBA frame) plus room for metadata.
STDIN_BYTES_PER_PIXEL = 8
STDIN_EXTRA_BYTES = 16 * 1024 * 1024
# The first read of standard input, then each read four times larger: the header of every
# format convcli reads is normally in the first few KiB, so the limits are checked early.
_STDIN_FIRST_READ = 64 * 1024
# Past this much data the header is no longer looked for early (the whole read will tell).
_STDIN_PROBE_BYTES = 64 * 1024 * 1024


def stdin_limit(max_pixels: int | None) -> int | None:
    """The most bytes read from standard input for one image: 8 bytes a pixel of ``max_pixels``
    plus 16 MiB; None (no bound) when there is no pixel limit.

    >>> stdin_limit(1000)
    16785216
    """
    return None if max_pixels is None else STDIN_BYTES_PER_PIXEL * max_pixels + STDIN_EXTRA_BYTES


def _read_stdin(request: _Request) -> BinaryIO:
    """Standard input in memory, with every check made as early as the bytes allow.

    The first bytes must look like a format convcli reads; once the header can be read, its size
    is checked against ``max_pixels`` and handed to ``before_decode`` (the memory limit); and no
    more than :func:`stdin_limit` bytes are read. A hostile stream is refused without being read.
    """
    stream = sys.stdin.buffer
    limit = stdin_limit(request.max_pixels)
    data = read_upto(stream, 64)
    _check_signature(data, "<stdin>", stream=True)
    target = _STDIN_FIRST_READ
    checked = False
    while True:
        want = target if limit is None else min(target, limit + 1)
        chunk = read_upto(stream, want - len(data))
        data += chunk
        if limit is not None and len(data) > limit:
            raise stdin_limit_error(limit)
        if not checked and len(data) <= _STDIN_PROBE_BYTES:
            checked = _check_early(data, request)
        if len(data) < want:
            break  # the end of the stream
        target *= 4
    return io.BytesIO(data)


def _check_early(data: bytes, request: _Request) -> bool:
    """Check the header in the first ``data`` of a stream; False while it cannot be read yet."""
    header = _declared_header(data)
    if header is None:
        try:
            with _pillow_limit(None), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image = Image.open(io.BytesIO(data), formats=_pillow_formats())
                header = ImageHeader("<stdin>", image.format, image.mode, image.size[0], image.size[1], 1)
        except Exception:
            return False  # not all there yet, or damaged: decoding the whole stream will tell
        if min(header.width, header.height) <= 0:
            return False
    _check_size((header.width, header.height), header.source, request.max_pixels)
    if request.before_decode is not None and not request.header_only:
        request.before_decode(header)
    return True


def _declared_header(data: bytes) -> ImageHeader | None:
    """The size a PNG, GIF, BMP or JPEG stream declares, read from its first bytes alone.

    Pillow's ``Image.open`` wants every chunk or marker up to the pixel data; these fields come
    first, so a stream declaring a bomb is refused even when what follows is endless garbage.
    The mode is what decoding gives (``L`` or ``RGB``) for the memory estimate, or ``L`` where
    the first bytes do not tell (GIF and BMP palettes): this early check may only under-count,
    and the exact one follows when the whole stream is read.
    """
    fmt = sniff_format(data)
    size: tuple[int, int, str] | None = None
    if fmt == "PNG" and len(data) >= 26 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        size = (width, height, "L" if data[25] in (0, 4) else "RGB")
    elif fmt == "GIF" and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        size = (width, height, "L")
    elif fmt == "BMP" and len(data) >= 26 and struct.unpack("<I", data[14:18])[0] >= 40:
        width, height = struct.unpack("<ii", data[18:26])
        size = (abs(width), abs(height), "L")
    elif fmt == "JPEG":
        size = _jpeg_frame(data)
    if size is None or min(size[:2]) <= 0:
        return None  # an empty size is for the decoder to report
    return ImageHeader("<stdin>", fmt, size[2], size[0], size[1], 1)


# JPEG start-of-frame markers (C0-CF but DHT C4, JPG C8 and DAC CC), which carry the size.
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_frame(data: bytes) -> tuple[int, int, str] | None:
    """Width, height and mode from a JPEG's start-of-frame marker, if ``data`` reaches it."""
    at = 2
    while at + 9 <= len(data) and data[at] == 0xFF:
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD9:  # markers without a length
            at += 2
            continue
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker in _JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            components = data[at + 9] if at + 9 < len(data) else 3
            return width, height, "L" if components == 1 else "RGB"
        if marker == 0xDA or length < 2:
            return None
        at += 2 + length
    return None


# Leading bytes of the formats convcli reads that READ_SIGNATURES cannot list: WebP is
# RIFF....WEBP, PPM is P and a digit; TGA has no signature and is told by its header fields.
_PPM_KINDS = b"123456fF"
_TGA_IMAGE_TYPES = (1, 2, 3, 9, 10, 11)


def _could_be_image(head: bytes) -> bool:
    """Whether the first bytes of a stream can start an image in a format convcli reads."""
    if sniff_format(head):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    if head[:1] == b"P" and head[1:2] != b"" and head[1:2] in _PPM_KINDS:
        return True
    # TGA: colour-map type 0 or 1, a known image type, and a colour map exactly when the type needs one.
    return (
        len(head) >= 18 and head[1] in (0, 1) and head[2] in _TGA_IMAGE_TYPES and (head[1] == 1) == (head[2] in (1, 9))
    )


def _check_signature(head: bytes, name: str, *, stream: bool = False) -> str | None:
    """Refuse an empty file and the formats convcli does not read, from the first bytes alone.

    A file's other bytes are left to the decoders to judge; a ``stream`` (standard input) must
    also start like a format convcli reads, so that an endless or foreign stream is not read.
    Returns the format the bytes announce, if any.
    """
    if not head:
        empty = "no data on standard input" if stream else "empty file (0 bytes), not an image"
        raise ImageError(f"{name}: {empty}")
    refused = refused_format(head)
    if refused:
        raise ImageError(f"{name}: {refused} files are not read by convcli (it reads {', '.join(READ_FORMATS)})")
    if stream and not _could_be_image(head):
        raise ImageError(
            f"{name}: not an image, or not in a format convcli reads ({', '.join(READ_FORMATS)}); "
            "judged from the first bytes, the rest was not read"
        )
    expected = sniff_format(head)
    if expected == "AVIF":
        problem = avif_problem()
        if problem:
            raise ImageError(f"{name}: an AVIF file, and {problem}")
    return expected


def _decode(handle: BinaryIO, name: str, request: _Request) -> list[Picture] | list[ImageHeader]:
    try:
        head = handle.read(64)
        handle.seek(0)
    except OSError as exc:
        raise ImageError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    expected = _check_signature(head, name)
    if expected == "PNG" and not request.header_only:
        check_png_chunks(handle, name)
        handle.seek(0)
    max_pixels = request.max_pixels
    if expected == "TIFF":  # 64-bit and 16-bit floats, which Pillow cannot open, become 32-bit ones
        check = partial(_check_float_header, name, request)
        converted = float_tiff_for_pillow(handle, name, check, header_only=request.header_only)
        if converted is not handle:  # its header was checked, and before_decode run, before converting
            handle, request = converted, dataclasses.replace(request, before_decode=None)
    try:
        with _pillow_limit(max_pixels), warnings.catch_warnings():
            # convcli applies its own limit (max_pixels) to every frame; Pillow's warning is noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow warns about oddities of damaged files ("Corrupt EXIF data", "Truncated File
            # Read") before it fails or recovers; the one error line, or the image, says enough.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            return _decode_pillow(handle, name, request)
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
        if expected == "AVIF":
            # Pillow keeps libavif's reason to itself here; the plugin's own class gives it.
            cause = _avif_refusal(handle)
            kind = "truncated" if "truncated" in cause.lower() else "corrupt"
            raise ImageError(f"{name}: {kind} AVIF file: {cause or 'its header cannot be read'}") from exc
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


def _avif_refusal(handle: BinaryIO) -> str:
    """libavif's reason for refusing the AVIF in ``handle``, or "" where it gives none."""
    try:
        handle.seek(0)
        _AVIF_PLUGIN.AvifImageFile(handle).close()
    except Exception as exc:  # libavif's reasons arrive as SyntaxError, others as anything
        return " ".join(str(exc).split())
    return ""


def _check_size(size: tuple[int, int], name: str, max_pixels: int | None) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the header declares an empty image ({width}x{height})")
    if max_pixels is not None and width * height > max_pixels:
        raise LimitError(
            f"{name}: refused: {width}x{height} is {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} (--max-pixels); nothing was decoded"
        )


@contextlib.contextmanager
def _pillow_limit(max_pixels: int | None) -> Iterator[None]:
    """Let images up to ``max_pixels`` through Pillow's own bomb check, for the duration only.

    Pillow refuses images above twice ``Image.MAX_IMAGE_PIXELS`` in ``Image.open`` and when
    seeking GIF frames or TIFF tiles. convcli's own check is the one that counts, so Pillow's
    global is raised (never lowered) to let a larger --max-pixels through, and restored
    afterwards: a program using convcli keeps Pillow's protection everywhere else. Pillow offers
    no per-call limit, so this is its public global, set and put back.
    """
    global _pillow_readers, _pillow_saved
    # Reads on several threads overlap: the first saves the value, each raises it as far as it
    # needs, and the last one out puts the saved value back.
    with _pillow_lock:
        if _pillow_readers == 0:
            _pillow_saved = Image.MAX_IMAGE_PIXELS
        _pillow_readers += 1
        current = Image.MAX_IMAGE_PIXELS
        if current is not None and (max_pixels is None or max_pixels >= 2 * current):
            Image.MAX_IMAGE_PIXELS = None if max_pixels is None else max_pixels // 2 + 1
    try:
        yield
    finally:
        with _pillow_lock:
            _pillow_readers -= 1
            if _pillow_readers == 0:
                Image.MAX_IMAGE_PIXELS = _pillow_saved


_pillow_lock = threading.Lock()
_pillow_readers = 0
_pillow_saved: int | None = None


def _count_frames(image: Image.Image, limit: int) -> int:
    """The frames of an image, counted up to ``limit + 1`` at most; no pixel is decoded.

    TIFF pages are counted by seeking, which stops one past the limit (``n_frames`` would walk
    every page first); APNG and WebP declare their count, and GIF's ``n_frames`` skips through
    the frames without decoding them.
    """
    if image.format != "TIFF":
        return min(int(getattr(image, "n_frames", 1) or 1), limit + 1)
    count = 1
    try:
        while count <= limit:
            image.seek(count)
            count += 1
    except EOFError:
        pass
    image.seek(0)
    return count


def _check_float_header(name: str, request: _Request, size: tuple[int, int]) -> None:
    """The checks of a float TIFF's header, run before it is converted for Pillow."""
    _check_size(size, name, request.max_pixels)
    if request.before_decode is not None and not request.header_only:
        request.before_decode(ImageHeader(name, "TIFF", "F", size[0], size[1], 1))



def _deep_layout(deep: DeepSource | None, image: Image.Image, index: int) -> str | None:
    """The layout of frame ``index`` when convcli.io.deep decodes it (16-bit colour), else None."""
    if deep is None:
        return None
    if image.format == "TIFF":
        # Pillow's parsed tags of the current frame say cheaply whether tifffile is needed at all.
        tags = getattr(image, "tag_v2", None)
        bits = tags.get(258) if tags is not None else None
        if not isinstance(bits, tuple) or set(bits) != {16}:  # one value may stand for every sample
            return None
    return deep.layout(index)


def _decode_pillow(handle: BinaryIO, name: str, request: _Request) -> list[Picture] | list[ImageHeader]:
    handle.seek(0)
    head = handle.read(64)
    handle.seek(0)
    image = Image.open(handle, formats=_pillow_formats())
    # The bomb check: the header's size, before load() allocates anything.
    _check_size(image.size, name, request.max_pixels)
    count = _count_frames(image, MAX_FRAMES)
    deep = deep_source(handle, image.format, head, count)
    try:
        if request.header_only:
            return [_first_header(image, deep, name, count)]
        return _decode_frames(image, deep, name, request, count)
    finally:
        if deep is not None:
            deep.close()


def _first_header(image: Image.Image, deep: DeepSource | None, name: str, count: int) -> ImageHeader:
    """The header of the first frame: Pillow's, with the layout and depth of a 16-bit colour file."""
    layout = _deep_layout(deep, image, 0)
    mode, bits = (image.mode, 8) if layout is None else (layout, 16)
    return ImageHeader(name, image.format, mode, image.size[0], image.size[1], count, bits)


def _decode_frames(
    image: Image.Image, deep: DeepSource | None, name: str, request: _Request, count: int
) -> list[Picture]:
    max_pixels, all_frames = request.max_pixels, request.all_frames
    fmt = image.format
    header = _first_header(image, deep, name, count)
    if all_frames and count > MAX_FRAMES:
        raise LimitError(
            f"{name}: refused: more than {MAX_FRAMES:,} frames, the most convcli filters with --all-frames; "
            "nothing was decoded (without --all-frames the first frame is filtered)"
        )
    if request.before_decode is not None:
        request.before_decode(header if all_frames else dataclasses.replace(header, frames=1))
    if count > 1 and not all_frames:
        shown = f"more than {MAX_FRAMES:,}" if count > MAX_FRAMES else f"{count}"
        warnings.warn(
            f"{name}: has {shown} frames; only the first is filtered (--all-frames filters every one)",
            ImageWarning,
            stacklevel=5,
        )
    pictures: list[Picture] = []
    for index in range(count if all_frames else 1):
        if index:
            image.seek(index)
            _check_size(image.size, f"{name} (frame {index + 1})", max_pixels)
        layout = _deep_layout(deep, image, index)
        metadata = read_metadata(image, name) if index == 0 else NO_METADATA
        pixels: Pixels
        alpha: Pixels | None
        if deep is not None and layout is not None:
            pixels, alpha = deep.decode(index, image.size, request.gray)
            duration, bits = None, 16
        else:
            with native_messages(name):  # libtiff's reason for a failure joins the one error line
                if fmt == "AVIF":  # one long call into dav1d for a large frame: keep signals prompt
                    run_interruptibly(image.load, "convcli-avif-decode")
                else:
                    image.load()
            duration = image.info.get("duration")
            frame = upright(image)  # upright pixels, for every frame alike
            pixels, alpha, bits = convert_frame(frame, name, request.gray)
        pictures.append(
            Picture(pixels, alpha, fmt, name, bits, float(duration) if isinstance(duration, (int, float)) else None,
                    metadata)
        )
    if all_frames and len({p.pixels.shape[:2] for p in pictures}) > 1:
        raise ImageError(f"{name}: its frames differ in size; convcli filters frames of one size only")
    return _unify(pictures) if all_frames else pictures


def _unify(frames: list[Picture]) -> list[Picture]:
    """Give every frame the same layout: colour if any frame is, alpha if any frame has it.

    GIF decoders return the first frame as a palette image and later ones as RGB(A).
    """
    colour = any(f.pixels.ndim == 3 for f in frames)
    with_alpha = any(f.alpha is not None for f in frames)
    for frame in frames:
        if colour and frame.pixels.ndim == 2:
            frame.pixels = cast(Pixels, np.repeat(frame.pixels[..., None], 3, axis=2))
        if with_alpha and frame.alpha is None:
            frame.alpha = np.full(frame.pixels.shape[:2], 255, dtype=np.uint8)
    return frames
