"""Metadata around the pixels: the ICC profile, EXIF, XMP and resolution, from input to output.

:func:`read_metadata` takes them from a Pillow image as it is decoded, cleaned for the filtered
picture: the EXIF orientation is set to 1 (the pixels are turned upright when read; XMP's
``tiff:Orientation`` too), the thumbnail directory (IFD1) is dropped since it would show the
unfiltered picture, and only EXIF's descriptive tags are kept (the layout tags of a TIFF input
describe the input's pixels, not the output's). :func:`pillow_save_options` gives the keyword
arguments of ``Image.save`` for each format, dropping what a format cannot hold;
:func:`png_chunks` gives the chunks of convcli's own PNG writer.

Damaged or oversized metadata never fails a file: it is dropped with an :class:`ImageWarning`.
"""

from __future__ import annotations

import dataclasses
import math
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image, ImageOps, PngImagePlugin

from convcli.io.modes import ImageWarning

# The most bytes kept of any one piece (a profile, EXIF or XMP), whatever the input holds: a
# JPEG holds at most 255 markers of 65,519 profile bytes (16.7 MB), and larger pieces are not
# metadata anyone means to carry.
MAX_METADATA_BYTES = 16 * 1024 * 1024
# JPEG: EXIF fits in one APP1 marker (65,533 bytes with the Exif header), XMP in one APP1 marker
# with its 29-byte namespace, a profile in at most 255 APP2 markers of 65,519 bytes.
_JPEG_MARKER_BYTES = 65533
JPEG_MAX_EXIF = _JPEG_MARKER_BYTES
JPEG_MAX_XMP = _JPEG_MARKER_BYTES - 29
JPEG_MAX_ICC = 255 * (_JPEG_MARKER_BYTES - 14)
_EXIF_HEADER = b"Exif\x00\x00"

# The EXIF tags Pillow can hand to libtiff (compressed TIFF): plain values, no sub-directories.
_LIBTIFF_EXIF_TAGS = frozenset(
    {
        ExifTags.Base.ImageDescription,
        ExifTags.Base.Make,
        ExifTags.Base.Model,
        ExifTags.Base.Orientation,
        ExifTags.Base.Software,
        ExifTags.Base.DateTime,
        ExifTags.Base.Artist,
        ExifTags.Base.HostComputer,
        ExifTags.Base.Copyright,
    }
)
# EXIF tags of the main directory (IFD0) that describe the picture rather than how the file
# stores its pixels: these go to the output, with the Exif and GPS directories under them.
KEPT_EXIF_TAGS = _LIBTIFF_EXIF_TAGS | {
    ExifTags.Base.Rating,
    ExifTags.Base.RatingPercent,
    ExifTags.Base.XPTitle,
    ExifTags.Base.XPComment,
    ExifTags.Base.XPAuthor,
    ExifTags.Base.XPKeywords,
    ExifTags.Base.XPSubject,
    ExifTags.IFD.Exif,
    ExifTags.IFD.GPSInfo,
}
_XMP_ORIENTATION = (
    re.compile(rb'(tiff:Orientation=["\'])[0-9](["\'])'),
    re.compile(rb"(<tiff:Orientation>)[0-9](</tiff:Orientation>)"),
)
_PNG_MAX_PPM = 2**31 - 1  # PNG's four-byte fields hold at most 2**31 - 1
_METRES_PER_INCH = 0.0254


@dataclass(frozen=True)
class Metadata:
    """What goes from an input file to its output besides the pixels.

    ``icc`` is the ICC profile, ``exif`` EXIF as a TIFF structure after the ``Exif\\0\\0``
    header (orientation 1, no thumbnail), ``xmp`` the XMP packet, ``dpi`` the resolution
    ``(x, y)`` in dots per inch; each ``None`` when the input has none.

    >>> Metadata(dpi=(300.0, 300.0)).scaled((1, 2)).dpi
    (150.0, 300.0)
    """

    icc: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    dpi: tuple[float, float] | None = None

    def scaled(self, stride: tuple[int, int]) -> Metadata:
        """The metadata of a picture sampled every ``stride`` (rows, columns) pixels: the same
        area in fewer pixels, so the dpi divides by the step along each axis."""
        if self.dpi is None or stride == (1, 1):
            return self
        return dataclasses.replace(self, dpi=(self.dpi[0] / stride[1], self.dpi[1] / stride[0]))

    def for_output(self, colour: bool) -> Metadata:
        """The metadata of a gray (``colour=False``) or RGB output: the profile is kept only
        where its colour space is the output's (``GRAY`` or ``RGB``), since a reader applies
        it to the samples as they are (``--gray`` output drops an RGB profile, a CMYK or Lab
        input's profile describes pixels Pillow has already converted).

        >>> Metadata(icc=bytes(16) + b"RGB " + bytes(108)).for_output(colour=False).icc is None
        True
        """
        if self.icc is None or self.icc[16:20] == (b"RGB " if colour else b"GRAY"):
            return self
        return dataclasses.replace(self, icc=None)

    def __bool__(self) -> bool:
        return any(piece is not None for piece in (self.icc, self.exif, self.xmp, self.dpi))


NO_METADATA = Metadata()


def _warn(message: str) -> None:
    warnings.warn(message, ImageWarning, stacklevel=3)


def _capped(piece: bytes | None, what: str, name: str) -> bytes | None:
    if piece is not None and len(piece) > MAX_METADATA_BYTES:
        _warn(f"{name}: its {what} ({len(piece):,} bytes) is larger than {MAX_METADATA_BYTES:,} bytes; dropped")
        return None
    return piece or None


def read_metadata(image: Image.Image, name: str) -> Metadata:
    """The ICC profile, EXIF, XMP and dpi of an open (loaded) Pillow image, cleaned for output.

    Call it before the image is turned upright: the EXIF is read from the file as it is.
    A damaged EXIF is dropped with an :class:`ImageWarning`, never an error.
    """
    info = image.info
    icc = info.get("icc_profile")
    xmp = info.get("xmp")
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "replace")
    return Metadata(
        icc=_capped(icc if isinstance(icc, bytes) else None, "ICC profile", name),
        exif=_capped(_clean_exif(image, name), "EXIF", name),
        xmp=_upright_xmp(_capped(xmp if isinstance(xmp, bytes) else None, "XMP", name)),
        dpi=_dpi(info.get("dpi")) if _states_resolution(image) else None,
    )


def _states_resolution(image: Image.Image) -> bool:
    """Whether the file states a resolution: Pillow reports 1 dpi for a TIFF with no resolution
    tag at all."""
    if image.format != "TIFF":
        return True
    try:
        return ExifTags.Base.XResolution in image.getexif()
    except Exception:  # a directory Pillow cannot parse states nothing usable
        return False


def upright(image: Image.Image) -> Image.Image:
    """The image turned upright by its EXIF orientation (``ImageOps.exif_transpose``), or as
    stored when its EXIF cannot be parsed: a damaged EXIF costs the EXIF (see
    :func:`read_metadata`, which says so), not the file."""
    try:
        turned = ImageOps.exif_transpose(image)
    except Exception:  # Pillow's EXIF parser raises anything (SyntaxError, struct.error) on hostile bytes
        return image
    return image if turned is None else turned


def _dpi(value: Any) -> tuple[float, float] | None:
    """Pillow's ``dpi``, if it is two positive finite numbers; a value within 0.01 of a whole
    number is that number (PNG stores pixels per metre: 300 dpi reads back as 299.9994)."""
    try:
        x, y = (float(v) for v in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not (math.isfinite(x) and math.isfinite(y) and x > 0 and y > 0):
        return None
    x, y = (float(round(v)) if abs(v - round(v)) < 0.01 else v for v in (x, y))
    return x, y


def _upright_xmp(xmp: bytes | None) -> bytes | None:
    if xmp is None:
        return None
    for pattern in _XMP_ORIENTATION:
        xmp = pattern.sub(rb"\g<1>1\g<2>", xmp)
    return xmp


def _clean_exif(image: Image.Image, name: str) -> bytes | None:
    """The image's EXIF with its descriptive tags only, orientation 1 and no IFD1, or None."""
    found = image.info.get("exif")
    raw = found if isinstance(found, bytes) else b""
    has_raw = len(raw.removeprefix(_EXIF_HEADER)) > 0
    if len(raw) > MAX_METADATA_BYTES:  # not parsed at all
        return _capped(raw, "EXIF", name)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if has_raw:  # parsed afresh: Pillow may have parsed it already, and its warnings gone
                source = Image.Exif()
                source.load(raw)
            else:  # a TIFF's own directory, or a PNG's legacy text chunk
                source = image.getexif()
            # Exif.tobytes writes IFD0 with the Exif and GPS directories and never IFD1 (the
            # thumbnail); reloading that copy leaves the image's own Exif (which the upright turn
            # reads afterwards) untouched.
            copy = Image.Exif()
            copy.load(source.tobytes())
        corrupt = [w for w in caught if issubclass(w.category, UserWarning)]
        for tag in [tag for tag in copy if tag not in KEPT_EXIF_TAGS]:
            del copy[tag]
        if ExifTags.Base.Orientation in copy:
            copy[ExifTags.Base.Orientation] = 1
        if corrupt:
            # Pillow recovers what it can and says so; a partial EXIF is not worth carrying.
            _warn(f"{name}: its EXIF is corrupt ({' '.join(str(corrupt[0].message).split())}); dropped")
            return None
        if set(copy) <= {ExifTags.Base.Orientation}:
            # Nothing but an orientation of 1 says nothing; a block with no tag at all is damaged.
            if has_raw and not len(source):
                _warn(f"{name}: its EXIF holds no tag that can be read; dropped")
            return None
        data = copy.tobytes()
        Image.Exif().load(data)  # what is written must read back
    except Exception as exc:  # Pillow's EXIF parser raises anything on hostile bytes
        cause = " ".join(str(exc).split()) or type(exc).__name__
        _warn(f"{name}: its EXIF is corrupt ({cause}); dropped")
        return None
    return data.removeprefix(_EXIF_HEADER)


# -- writing -------------------------------------------------------------------------------------


def pillow_save_options(metadata: Metadata, fmt: str) -> dict[str, Any]:
    """The keyword arguments of Pillow's ``Image.save`` that write ``metadata`` in ``fmt``.

    What ``fmt`` cannot hold is left out: PNG, JPEG, TIFF, WebP and AVIF hold a profile, EXIF and
    XMP; PNG, JPEG, TIFF and BMP the dpi; GIF, PPM and TGA nothing. A piece too large for the
    format (EXIF beyond 64 KiB in JPEG) is dropped with an :class:`ImageWarning`.

    >>> pillow_save_options(Metadata(dpi=(300, 300), icc=b"x"), "BMP")
    {'dpi': (300, 300)}
    """
    if not metadata:
        return {}
    if fmt == "BMP":
        return {"dpi": metadata.dpi} if _dpi_fits(metadata.dpi, fmt) else {}
    if fmt not in ("PNG", "JPEG", "TIFF", "WEBP", "AVIF"):
        return {}
    icc, exif, xmp = metadata.icc, metadata.exif, metadata.xmp
    if fmt == "AVIF" and exif and _tiff_tags(exif, None) is None:
        exif = None  # Pillow's AVIF writer parses it too
    options: dict[str, Any] = {}
    if fmt == "JPEG":
        icc = _fits(icc, JPEG_MAX_ICC, "ICC profile", fmt)
        exif = _fits(exif, JPEG_MAX_EXIF - len(_EXIF_HEADER), "EXIF", fmt)
        xmp = _fits(xmp, JPEG_MAX_XMP, "XMP", fmt)
    elif fmt == "PNG":
        # Pillow reads a PNG's profile only up to PngImagePlugin.MAX_TEXT_CHUNK (1 MiB).
        icc = _fits(icc, PngImagePlugin.MAX_TEXT_CHUNK, "ICC profile", fmt)
    if icc:
        options["icc_profile"] = icc
    if fmt == "TIFF":
        # TIFF holds EXIF and XMP as tags of its own directory; Pillow takes both through `exif`.
        tags = _tiff_tags(exif, xmp)
        if tags is not None:
            options["exif"] = tags
    else:
        if exif:
            # JPEG's APP1 marker starts with the Exif header; the other formats hold the TIFF
            # structure alone (Pillow's animated WebP writer would keep a header it is given).
            options["exif"] = _EXIF_HEADER + exif if fmt == "JPEG" else exif
        if xmp and fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            # XMP's own rule for PNG: an uncompressed iTXt chunk with this keyword.
            info.add_itxt("XML:com.adobe.xmp", xmp, zip=False)
            options["pnginfo"] = info
        elif xmp:
            options["xmp"] = xmp
    if metadata.dpi is not None and fmt in ("PNG", "JPEG", "TIFF") and _dpi_fits(metadata.dpi, fmt):
        options["dpi"] = metadata.dpi
    return options


def for_compressed_tiff(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` for a TIFF written through libtiff (compressed), which takes plain tags only:
    EXIF keeps its main-directory tags, and its Exif and GPS directories are dropped (with a
    warning), since Pillow cannot hand libtiff a sub-directory."""
    tags = options.get("exif")
    if not isinstance(tags, Image.Exif):
        return options
    dropped = [tag for tag in tags if tag not in _LIBTIFF_EXIF_TAGS and tag != 700]
    if any(tag in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo) for tag in dropped):
        _warn(
            "compressed TIFF keeps EXIF's main tags only; its Exif and GPS directories are dropped "
            "(--compress-level 0 keeps them)"
        )
    for tag in dropped:
        del tags[tag]
    return options


def _tiff_tags(exif: bytes | None, xmp: bytes | None) -> Image.Exif | None:
    tags = Image.Exif()
    if exif:
        try:  # read_metadata gives EXIF that parses; a Metadata made by hand may not
            tags.load(_EXIF_HEADER + exif)
        except Exception as exc:
            _warn(f"the EXIF cannot be parsed ({' '.join(str(exc).split()) or type(exc).__name__}); dropped")
            tags = Image.Exif()
    if xmp:
        tags[700] = xmp  # XMP's tag in TIFF (type BYTE)
    return tags if len(tags) else None


def _fits(piece: bytes | None, limit: int, what: str, fmt: str) -> bytes | None:
    if piece is not None and len(piece) > limit:
        _warn(f"the {what} ({len(piece):,} bytes) is too large for {fmt}, which holds {limit:,}; dropped")
        return None
    return piece


def _dpi_fits(dpi: tuple[float, float] | None, fmt: str) -> bool:
    """Whether ``fmt`` can store ``dpi``: JPEG's JFIF holds whole dpi 1..65535, PNG and BMP
    pixels per metre in 31 bits, TIFF a rational of 32-bit integers."""
    if dpi is None:
        return False
    if fmt == "JPEG":
        fits = all(1 <= round(v) <= 65535 for v in dpi)
    elif fmt in ("PNG", "BMP"):
        fits = all(1 <= round(v / _METRES_PER_INCH) <= _PNG_MAX_PPM for v in dpi)
    else:
        fits = all(v < 2**31 for v in dpi)
    if not fits:
        _warn(f"a resolution of {dpi[0]:g}x{dpi[1]:g} dpi cannot be stored in {fmt}; dropped")
    return fits


def png_chunks(metadata: Metadata) -> list[tuple[bytes, bytes]]:
    """The chunks (type, data) that carry ``metadata`` in a PNG, in the order they go before
    the image data: iCCP (which must also precede any PLTE), pHYs, eXIf, then XMP's iTXt.

    >>> [kind for kind, _ in png_chunks(Metadata(icc=b"p", dpi=(300, 300)))]
    [b'iCCP', b'pHYs']
    >>> png_chunks(Metadata(dpi=(300, 300)))[0][1].hex()
    '00002e2300002e2301'
    """
    chunks: list[tuple[bytes, bytes]] = []
    icc = _fits(metadata.icc, PngImagePlugin.MAX_TEXT_CHUNK, "ICC profile", "PNG")
    if icc:
        # Profile name (1-79 Latin-1 bytes), a null, compression method 0 (zlib).
        chunks.append((b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc)))
    if metadata.dpi is not None and _dpi_fits(metadata.dpi, "PNG"):
        x, y = (round(v / _METRES_PER_INCH) for v in metadata.dpi)
        chunks.append((b"pHYs", struct.pack(">IIB", x, y, 1)))  # unit 1: the metre
    if metadata.exif:
        chunks.append((b"eXIf", metadata.exif))
    if metadata.xmp:
        # Keyword, null, compression flag 0 and method 0, empty language and translated keyword.
        chunks.append((b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + metadata.xmp))
    return chunks
