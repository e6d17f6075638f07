"""16-bit colour PNG, TIFF and PPM, decoded at full precision where Pillow reduces them to 8 bits.

Pillow reads 16-bit grayscale (``I;16``), but decodes 16-bit RGB, RGBA and gray+alpha samples
to 8 bits by keeping their high byte (PNG, TIFF), or by scaling them, one sample at a time in
Python (binary PPM). Such files still go through Pillow's ``Image.open`` for their header (size,
frames, the limits checked before decoding, as for every file); only their samples are decoded
here instead: PNG by libpng through imagecodecs, TIFF by tifffile (whose LZW and other codecs
are imagecodecs' too), PPM's plain big-endian samples by NumPy. Nothing else is routed here, so
every other file keeps Pillow's decoders.

Samples leave on the 0..255 scale as float32 (65535 becomes 255), as 16-bit gray does in
:mod:`convcli.io.modes`, alpha included, and upright by the file's orientation tag.
"""

from __future__ import annotations

import logging
import re
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np
from numpy.typing import NDArray
from PIL import Image

if TYPE_CHECKING:
    import tifffile

SIXTEEN_BIT_SCALE = np.float32(255.0 / 65535.0)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as Pillow's convert("L")
_PNG_LAYOUTS = {2: "RGB", 6: "RGBA", 4: "LA"}  # IHDR colour type -> layout, at bit depth 16
_TIFF_RGB, _TIFF_UINT = 2, 1  # PhotometricInterpretation RGB, SampleFormat unsigned integer
_ASSOCIATED_ALPHA, _UNASSOCIATED_ALPHA = 1, 2  # ExtraSamples values
_ORIENTATION = 274  # the EXIF and TIFF tag

Plane = NDArray[np.float32]


class _Messages(logging.Handler):
    """Collects what a library logs, instead of letting logging print it on standard error."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # "<tifffile.TiffPage 0 @8> missing data ByteCounts tag": the object's name says nothing to a user.
        self.messages.append(re.sub(r"^(<[^>]*>|[\w.]+:)\s*", "", record.getMessage()))


@contextmanager
def _tifffile_judges() -> Iterator[None]:
    """Turn what tifffile logs about a file into an error: it reports damage (a missing or wrong
    strip count, a bad tag) by logging and decoding what it can, which would be wrong pixels.

    The handler is added to tifffile's logger for the length of the block and removed after it,
    so logging's own last-resort output stays quiet meanwhile and nothing is left changed.
    """
    logger = logging.getLogger("tifffile")
    handler = _Messages()
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    if handler.messages:
        raise ValueError("corrupt TIFF: " + "; ".join(dict.fromkeys(handler.messages)))


def png_layout(head: bytes) -> str | None:
    """The layout (``RGB``, ``RGBA``, ``LA``) of a 16-bit PNG that Pillow would reduce to 8 bits,
    from its IHDR chunk (``head`` is the file's first bytes); None for every other PNG.

    >>> png_layout(b"\\x89PNG\\r\\n\\x1a\\n" + b"\\x00\\x00\\x00\\rIHDR" + bytes(8) + bytes([16, 6]))
    'RGBA'
    """
    if len(head) < 26 or head[12:16] != b"IHDR" or head[24] != 16:
        return None
    return _PNG_LAYOUTS.get(head[25])


_PPM_SPACE = b" \t\n\r\x0b\x0c"
_PPM_HEADER_BYTES = 4096  # a header longer than this (comments) is left to Pillow


def ppm_header(data: bytes) -> tuple[int, int, int, int] | None:
    """Width, height, maximum value and the offset of the samples of a binary colour PPM (P6),
    read as Pillow reads them (tokens between white space, ``#`` comments to the end of the
    line); None for anything else.

    >>> ppm_header(b"P6 # made by hand\\n3 2\\n65535\\n...")
    (3, 2, 65535, 28)
    """
    if data[:2] != b"P6":
        return None
    at, tokens = 2, list[int]()
    while len(tokens) < 3:
        while at < len(data) and (data[at] in _PPM_SPACE or data[at] == ord("#")):
            if data[at] == ord("#"):
                while at < len(data) and data[at] not in b"\r\n":
                    at += 1
            else:
                at += 1
        start = at
        while at < len(data) and data[at] not in _PPM_SPACE and data[at] != ord("#"):
            at += 1
        if not start < at <= start + 10 or at >= len(data) or not data[start:at].isdigit():
            return None
        tokens.append(int(data[start:at]))
    return tokens[0], tokens[1], tokens[2], at + 1  # one white space byte ends the header


def orient(array: NDArray[Any], orientation: int) -> NDArray[Any]:
    """Turn ``(H, W, ...)`` pixels upright by an EXIF/TIFF orientation (1..8), as Pillow's
    ``ImageOps.exif_transpose`` turns an image.

    >>> orient(np.array([[1, 2], [3, 4]]), 6).tolist()
    [[3, 1], [4, 2]]
    """
    if orientation == 2:
        return array[:, ::-1]
    if orientation == 3:
        return array[::-1, ::-1]
    if orientation == 4:
        return array[::-1]
    if orientation == 5:
        return array.swapaxes(0, 1)
    if orientation == 6:
        return np.rot90(array, -1)
    if orientation == 7:
        return array[::-1, ::-1].swapaxes(0, 1)
    if orientation == 8:
        return np.rot90(array, 1)
    return array


def _png_orientation(data: bytes) -> int:
    """The orientation in a PNG's eXIf chunk (wherever it is: Pillow reads one after the image
    data only while decoding), 1 when there is none. The chunks were checked beforehand."""
    at = 8
    while at + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        if kind == b"eXIf":
            exif = Image.Exif()
            exif.load(data[at + 8 : at + 8 + length])
            value = exif.get(_ORIENTATION, 1)
            return value if isinstance(value, int) else 1
        if kind == b"IEND":
            break
        at += 12 + length
    return 1


def to_picture(
    samples: NDArray[np.uint16], layout: str, gray: bool, premultiplied: bool = False, maximum: int = 65535
) -> tuple[Plane, Plane | None]:
    """Colour (``(H, W)`` or ``(H, W, 3)``) and alpha on 0..255 in float32 from 16-bit samples
    whose full scale is ``maximum``."""
    values = np.minimum(samples, np.uint16(maximum)).astype(np.float32)
    if values.ndim == 2:
        values = values[..., None]
    alpha = values[..., -1] if layout in ("RGBA", "LA") else None
    colour = values[..., 0] if layout == "LA" else values[..., :3]
    if premultiplied and alpha is not None:
        # Associated alpha: colour was stored times alpha (as Pillow's RGBa -> RGBA undoes at 8 bits).
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(alpha > 0, np.float32(65535.0) / alpha, np.float32(0.0))
        colour = np.minimum(colour * (factor if colour.ndim == 2 else factor[..., None]), np.float32(65535.0))
    if gray and colour.ndim == 3:
        colour = colour @ _LUMA
    scale = SIXTEEN_BIT_SCALE if maximum == 65535 else np.float32(255.0 / maximum)
    colour = np.ascontiguousarray(colour * scale, dtype=np.float32)
    if alpha is not None:
        alpha = np.ascontiguousarray(alpha * scale, dtype=np.float32)
    return colour, alpha


def _tiff_layout(page: tifffile.TiffPage) -> tuple[str, bool] | None:
    """The layout of a 16-bit RGB(A) TIFF page and whether its alpha is premultiplied; None for
    every page Pillow reads in full."""
    if page.bitspersample != 16 or page.sampleformat != _TIFF_UINT or page.photometric != _TIFF_RGB:
        return None
    if page.samplesperpixel == 3:
        return "RGB", False
    if page.samplesperpixel == 4:
        extra = tuple(int(value) for value in page.extrasamples)
        if extra and extra[0] in (_ASSOCIATED_ALPHA, _UNASSOCIATED_ALPHA):
            return "RGBA", extra[0] == _ASSOCIATED_ALPHA
        return "RGB", False  # an unspecified fourth sample, which Pillow drops too
    return None


@dataclass
class DeepSource:
    """The full-precision decoder of one open file, asked frame by frame."""

    handle: BinaryIO
    format: str
    single: str | None = None  # the layout of a one-frame file (PNG, PPM), from its header
    ppm: tuple[int, int, int, int] | None = None  # a PPM's header: see ppm_header
    _tiff: tifffile.TiffFile | None = field(default=None, repr=False)

    def layout(self, index: int) -> str | None:
        """The layout of frame ``index`` when it is decoded here; None when Pillow decodes it."""
        if self.format in ("PNG", "PPM"):
            return self.single if index == 0 else None
        found = self._tiff_page(index)
        return None if found is None else found[1][0]

    def decode(self, index: int, size: tuple[int, int], gray: bool) -> tuple[Plane, Plane | None]:
        """Colour and alpha of frame ``index`` (whose :meth:`layout` is not None), upright.

        ``size`` is the frame's (width, height) from the header already checked against the limits.
        """
        width, height = size
        maximum = 65535
        if self.format == "PNG":
            assert self.single is not None
            self.handle.seek(0)
            data = self.handle.read()
            import imagecodecs  # imported on first use: tens of milliseconds, for these files only

            samples = np.asarray(imagecodecs.png_decode(data))
            layout, premultiplied, orientation = self.single, False, _png_orientation(data)
        elif self.format == "PPM":
            assert self.ppm is not None
            samples, maximum = self._ppm_samples(width, height), self.ppm[2]
            layout, premultiplied, orientation = "RGB", False, 1
        else:
            found = self._tiff_page(index)
            assert found is not None
            page, (layout, premultiplied) = found
            with _tifffile_judges():
                samples = np.asarray(page.asarray())
            if page.axes.startswith("S"):  # planes stored one after another
                samples = np.moveaxis(samples, 0, -1)
            orientation = int(page.tags.valueof(_ORIENTATION, 1) or 1)
        channels = {"RGB": 3, "RGBA": 4, "LA": 2}[layout]
        if self.format == "TIFF" and orientation in (5, 6, 7, 8):
            width, height = height, width  # Pillow gives a TIFF's size upright, a PNG's as stored
        if samples.ndim == 2:
            samples = samples[..., None]
        # ValueError: the reader adds the file's name and calls it corrupt, as for a decoder's own error.
        if samples.dtype != np.uint16 or samples.shape[:2] != (height, width) or samples.shape[2] < channels:
            wanted = f"{height}x{width}x{channels}"
            raise ValueError(f"decoded {samples.dtype} samples of shape {samples.shape}, not {wanted}")
        colour, alpha = to_picture(samples[..., :channels], layout, gray, premultiplied, maximum)
        colour = np.ascontiguousarray(orient(colour, orientation))
        return colour, None if alpha is None else np.ascontiguousarray(orient(alpha, orientation))

    def _ppm_samples(self, width: int, height: int) -> NDArray[np.uint16]:
        assert self.ppm is not None
        wanted = width * height * 3 * 2
        self.handle.seek(self.ppm[3])
        data = self.handle.read(wanted)
        if len(data) < wanted:
            raise ValueError(f"truncated PPM: {len(data):,} of {wanted:,} bytes of samples")
        return np.frombuffer(data, dtype=">u2").reshape(height, width, 3).astype(np.uint16)

    def _tiff_page(self, index: int) -> tuple[tifffile.TiffPage, tuple[str, bool]] | None:
        import tifffile  # imported on first use, as imagecodecs is

        with _tifffile_judges():
            if self._tiff is None:
                self.handle.seek(0)  # tifffile takes the position it finds as the start of the file
                self._tiff = tifffile.TiffFile(self.handle, name="image.tif")  # a name for an opened descriptor
            if index >= len(self._tiff.pages):
                return None
            page = self._tiff.pages[index]
            if isinstance(page, tifffile.TiffFrame):  # a page sharing the first one's layout: decode it fully
                page = page.aspage()
        layout = _tiff_layout(page)
        return None if layout is None else (page, layout)

    def close(self) -> None:
        """Let go of tifffile's parsed pages; the file handle stays open for its owner."""
        if self._tiff is not None:
            self._tiff.close()


def deep_source(handle: BinaryIO, fmt: str | None, head: bytes, frames: int) -> DeepSource | None:
    """A :class:`DeepSource` for a PNG, TIFF or PPM that may hold 16-bit colour, else None.

    An animated 16-bit PNG (several frames) is left to Pillow, which composes its frames.
    """
    if fmt == "PNG":
        layout = png_layout(head)
        return DeepSource(handle, fmt, single=layout) if layout is not None and frames == 1 else None
    if fmt == "PPM" and head[:2] == b"P6":
        handle.seek(0)
        header = ppm_header(handle.read(_PPM_HEADER_BYTES))
        handle.seek(0)
        if header is not None and header[2] > 255:
            return DeepSource(handle, fmt, single="RGB", ppm=header)
        return None
    if fmt == "TIFF":
        return DeepSource(handle, fmt)
    return None
