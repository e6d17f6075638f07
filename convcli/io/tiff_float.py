"""Floating-point TIFFs that Pillow cannot open: 64-bit and 16-bit samples, and big-endian
compressed 32-bit ones.

Pillow reads one-channel 32-bit float TIFFs (mode ``F``) but does not recognise 64-bit or 16-bit
floats at all, so a valid file would be reported as corrupt. Such a file (one sample per pixel,
in strips, uncompressed or deflated, without a predictor) is decoded here, checked for its size
before anything is allocated, and handed on as a little-endian 32-bit float TIFF, which is then
read exactly as float32 TIFFs are: on 0..1, scaled to 0..255. float32 keeps more precision than
the filters use, and every float64 value inside float32's range survives.

This module imports numpy, Pillow and the standard library only.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO

import numpy as np
from PIL import Image

from convcli.errors import ImageError

_TAGS = {256: "width", 257: "height", 258: "bits", 259: "compression", 273: "offsets", 277: "samples",
         278: "rows_per_strip", 279: "byte_counts", 284: "planar", 317: "predictor", 322: "tile_width",
         339: "sample_format"}  # fmt: skip
_TYPE_SIZES = {1: 1, 3: 2, 4: 4}  # BYTE, SHORT, LONG: the types these tags use
_IEEE_FLOAT = 3
_DEFLATE = (8, 32946)  # Adobe deflate, and the older PKZIP code for the same thing
_MAX_ENTRIES = 4096  # a hostile count stops here


def _read_at(handle: BinaryIO, offset: int, size: int) -> bytes:
    handle.seek(offset)
    data = handle.read(size)
    if len(data) < size:
        raise ValueError(f"the file ends inside its directory (offset {offset})")
    return data


def _fields(handle: BinaryIO, order: str) -> dict[str, list[int]]:
    """The first IFD's fields this module needs, each a list of integers."""
    (ifd,) = struct.unpack(order + "I", _read_at(handle, 4, 4))
    (count,) = struct.unpack(order + "H", _read_at(handle, ifd, 2))
    if count > _MAX_ENTRIES:
        raise ValueError(f"the first directory claims {count} entries")
    entries = _read_at(handle, ifd + 2, 12 * count)
    fields: dict[str, list[int]] = {}
    for index in range(count):
        tag, kind, n, raw = struct.unpack_from(order + "HHI4s", entries, 12 * index)
        name = _TAGS.get(tag)
        size = _TYPE_SIZES.get(kind)
        if name is None or size is None:
            continue
        if n > 1 << 24:
            raise ValueError(f"tag {tag} claims {n} values")
        code = {1: "B", 2: "H", 4: "I"}[size]
        if n * size <= 4:
            fields[name] = list(struct.unpack_from(f"{order}{n}{code}", raw))
        else:
            (offset,) = struct.unpack(order + "I", raw)
            fields[name] = list(struct.unpack(f"{order}{n}{code}", _read_at(handle, offset, n * size)))
    return fields


def _first(fields: dict[str, list[int]], name: str, default: int | None = None) -> int:
    values = fields.get(name)
    if values:
        return values[0]
    if default is None:
        raise ValueError(f"the {name.replace('_', ' ')} tag is missing")
    return default


def float_tiff_for_pillow(
    handle: BinaryIO, name: str, check_size: Callable[[tuple[int, int]], None], *, header_only: bool = False
) -> BinaryIO:
    """``handle`` itself, or for a float TIFF Pillow cannot open, the same image as a 32-bit one.

    ``check_size((width, height))`` runs on the header's size before any pixel memory is
    allocated, and raises to refuse the image. With ``header_only``, nothing is decoded: the
    result has the header of the image and no pixels. Returns with ``handle`` at its start
    otherwise.

    Raises
    ------
    ImageError
        For a float TIFF that is truncated, corrupt, or laid out in a way not read here (tiles,
        several samples per pixel, a predictor, other compression), saying which.
    """
    start = handle.read(8)
    handle.seek(0)
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(start[:4])
    if order is None:
        return handle
    try:
        fields = _fields(handle, order)
        sample_format, bits = _first(fields, "sample_format", 1), _first(fields, "bits", 1)
        samples, compression = _first(fields, "samples", 1), _first(fields, "compression", 1)
        width, height = _first(fields, "width"), _first(fields, "height")
    except (struct.error, ValueError, KeyError, OSError):
        handle.seek(0)
        return handle  # not for this module to judge: Pillow reports what it makes of the file
    handle.seek(0)
    if sample_format != _IEEE_FLOAT:
        if bits == 64 and samples == 1:  # Pillow knows no 64-bit integer mode
            raise ImageError(f"{name}: 64-bit integer TIFF samples are not read by convcli (up to 32 bits are)")
        if bits == 16 and samples == 2:  # Pillow has no 16-bit gray+alpha mode, and cannot open the file
            raise ImageError(
                f"{name}: 16-bit gray+alpha TIFF is not read by convcli "
                "(16-bit gray+alpha PNG, and 16-bit RGBA TIFF, are)"
            )
        return handle
    if samples != 1:  # Pillow has no colour float mode
        raise ImageError(
            f"{name}: floating-point TIFF with {samples} samples per pixel is not read by convcli "
            "(one sample, grayscale, is)"
        )
    if bits == 32 and (order == "<" or compression == 1):
        return handle  # Pillow reads these itself
    if bits not in (16, 32, 64):
        raise ImageError(f"{name}: {bits}-bit floating-point TIFF samples are not read by convcli (16, 32 or 64 are)")
    layout = _unsupported_layout(fields, compression)
    if layout:
        raise ImageError(f"{name}: {bits}-bit floating-point TIFF with {layout} is not read by convcli")
    if width <= 0 or height <= 0:
        raise ImageError(f"{name}: the header declares an empty image ({width}x{height})")
    check_size((width, height))
    if header_only:
        return io.BytesIO(_float32_header(width, height))
    single = np.empty((height, width), dtype=np.float32)
    dtype = np.dtype(f"{order}f{bits // 8}")
    row = 0
    for strip in _strips(handle, fields, width, height, bits // 8, compression, name):
        rows = len(strip) // (width * dtype.itemsize)
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32's range: inf, refused later
            single[row : row + rows] = np.frombuffer(strip, dtype=dtype).reshape(rows, width)
        row += rows
    buffer = io.BytesIO()  # in memory, for Pillow to open: no file is written
    Image.fromarray(single, "F").save(buffer, "TIFF")
    buffer.seek(0)
    return buffer


def _float32_header(width: int, height: int) -> bytes:
    """A little-endian float32 TIFF header declaring ``width`` x ``height`` pixels, without them:
    enough for Pillow to open, never to load."""
    entries = [(256, 4, width), (257, 4, height), (258, 3, 32), (259, 3, 1), (262, 3, 1), (273, 4, 0), (277, 3, 1),
               (278, 4, height), (279, 4, width * height * 4), (339, 3, _IEEE_FLOAT)]  # fmt: skip
    out = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    for tag, kind, value in entries:
        out += struct.pack("<HHII", tag, kind, 1, value) if kind == 4 else struct.pack("<HHIHH", tag, kind, 1, value, 0)
    return out + struct.pack("<I", 0)


def _unsupported_layout(fields: dict[str, list[int]], compression: int) -> str:
    if "tile_width" in fields:
        return "tiles (strips are read)"
    if _first(fields, "predictor", 1) != 1:
        return "a predictor"
    if compression != 1 and compression not in _DEFLATE:
        return f"compression {compression} (none or deflate are read)"
    return ""


def _strips(
    handle: BinaryIO, fields: dict[str, list[int]], width: int, height: int, sample: int, compression: int, name: str
) -> Iterator[bytes]:
    """The pixel bytes of each strip in turn, decompressed, never more than the image holds."""
    offsets, counts = fields.get("offsets", []), fields.get("byte_counts", [])
    rows = max(1, min(height, _first(fields, "rows_per_strip", height)))
    row_bytes = width * sample
    expected_strips = -(-height // rows)
    if len(offsets) < expected_strips or len(counts) < len(offsets[:expected_strips]):
        raise ImageError(f"{name}: corrupt TIFF file: {len(offsets)} strips for {height} rows of {rows}")
    for index in range(expected_strips):
        wanted = min(rows, height - index * rows) * row_bytes
        offset, count = offsets[index], counts[index]
        handle.seek(offset)
        raw = handle.read(count if compression in _DEFLATE else min(count, wanted))
        if compression in _DEFLATE:
            try:
                decompressor = zlib.decompressobj()
                strip = decompressor.decompress(raw, wanted)
            except zlib.error as exc:
                raise ImageError(f"{name}: corrupt TIFF file: strip {index}: {exc}") from exc
        else:
            strip = raw[:wanted]
        if len(strip) < wanted:
            raise ImageError(f"{name}: truncated TIFF file: strip {index} holds {len(strip)} of {wanted} bytes")
        yield strip
