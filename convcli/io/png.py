"""PNG: an encoder that compresses on every core, and a checksum walk for the decoder's input.

PNG encoding dominates the time of a filter run on a large photo: Pillow's encoder is single
threaded and spends a good part of its time choosing a row filter. This writer uses the ``Up``
filter for every row (one vectorised subtraction; it compresses photos and filter responses
about as well as adaptive filtering at fast levels) and deflates horizontal bands of rows on
several threads, the way pigz does: every band is a raw deflate stream primed with the last
32 KiB of the band before it and ended with a sync flush, so the concatenation is one valid
zlib stream (RFC 1950/1951) and the output is a standard PNG (8-bit or 16-bit gray, gray+alpha,
RGB or RGBA) that any decoder reads.

Pillow checks the CRCs of a PNG's header chunks only; :func:`check_png_chunks` checks every
chunk, image data included, before Pillow decodes it.

This module imports numpy and the standard library only.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO, cast

import numpy as np
from numpy.typing import NDArray

from convcli.errors import ImageError
from convcli.io.formats import PNG_SIGNATURE

_COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (gray, gray+alpha, RGB, RGBA)
_FILTER_UP = 2
_WINDOW = 32 * 1024  # deflate's history window: what each band may refer back to
_BAND_BYTES = 1024 * 1024  # uncompressed bytes per band: enough work per task, fine-grained enough
_CHUNK_BYTES = 1024 * 1024  # IDAT chunk size; any size up to 2**31 - 1 is valid


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def filtered_rows(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """The PNG scanlines of ``pixels`` with the ``Up`` filter: a filter-type byte, then the
    difference from the row above (modulo 256) for every byte of the row.

    >>> filtered_rows(np.array([[1, 2], [4, 1]], dtype=np.uint8)).tolist()
    [[2, 1, 2], [2, 3, 255]]
    """
    height = pixels.shape[0]
    rows = pixels.reshape(height, -1)
    out = np.empty((height, rows.shape[1] + 1), dtype=np.uint8)
    out[:, 0] = _FILTER_UP
    out[0, 1:] = rows[0]  # the row above the first is taken as zeros
    np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
    return out


def _deflate_band(raw: memoryview, start: int, stop: int, level: int, last: bool) -> bytes:
    primer = raw[max(0, start - _WINDOW) : start]
    if len(primer):
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, bytes(primer))
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -15, 9)
    data = compressor.compress(raw[start:stop])
    return data + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def encode_png(
    pixels: NDArray[np.uint8] | NDArray[np.uint16],
    *,
    level: int = 1,
    threads: int | None = None,
    chunks: Sequence[tuple[bytes, bytes]] = (),
) -> bytes:
    """Encode 8-bit or 16-bit pixels ``(H, W)`` or ``(H, W, C)`` with C in 1..4 as PNG bytes.

    ``level`` is the zlib level (0..9); ``threads`` the number of compressing threads
    (default: one per CPU). The result does not depend on ``threads``. uint16 pixels give a
    16-bit PNG (samples big-endian, as PNG stores them; the Up filter works on bytes, whatever
    the depth). ``chunks`` (type, data) go between the header and the image data, in their
    order: the metadata chunks of :func:`convcli.io.metadata.png_chunks`.

    >>> data = encode_png(np.zeros((2, 3), dtype=np.uint8))
    >>> data[:8] == PNG_SIGNATURE, data[12:16], data[24]
    (True, b'IHDR', 8)
    >>> encode_png(np.zeros((2, 3, 3), dtype=np.uint16))[24]
    16
    """
    bits = 16 if np.asarray(pixels).dtype == np.uint16 else 8
    array = np.ascontiguousarray(pixels, dtype=np.uint16 if bits == 16 else np.uint8)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in _COLOUR_TYPE or 0 in array.shape:
        raise ValueError(f"cannot encode an array of shape {pixels.shape} as PNG")
    if not 0 <= level <= 9:
        raise ValueError(f"zlib level must be 0..9, got {level}")
    height, width, channels = array.shape
    samples = cast(NDArray[np.uint8], array if bits == 8 else array.astype(">u2").view(np.uint8))
    raw = filtered_rows(samples).reshape(-1).data
    row_bytes = width * channels * (bits // 8) + 1
    rows_per_band = max(1, _BAND_BYTES // row_bytes)
    edges = [*range(0, height, rows_per_band), height]
    bands = [(edges[i] * row_bytes, edges[i + 1] * row_bytes) for i in range(len(edges) - 1)]
    workers = max(1, min(len(bands), threads if threads is not None else (os.cpu_count() or 1)))
    jobs = [(raw, start, stop, level, i == len(bands) - 1) for i, (start, stop) in enumerate(bands)]
    if workers == 1:
        parts = [_deflate_band(*job) for job in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convcli-png") as pool:
            parts = list(pool.map(lambda job: _deflate_band(*job), jobs))
    # zlib wrapper: CMF 0x78 (deflate, 32 KiB window), FLG 0x01 (no dictionary, check bits)
    stream = b"\x78\x01" + b"".join(parts) + struct.pack(">I", zlib.adler32(raw))
    header = struct.pack(">IIBBBBB", width, height, bits, _COLOUR_TYPE[channels], 0, 0, 0)
    pieces = [PNG_SIGNATURE, _chunk(b"IHDR", header), *(_chunk(kind, data) for kind, data in chunks)]
    pieces += [_chunk(b"IDAT", stream[i : i + _CHUNK_BYTES]) for i in range(0, len(stream), _CHUNK_BYTES)]
    pieces.append(_chunk(b"IEND", b""))
    return b"".join(pieces)


def check_png_chunks(handle: BinaryIO, name: str) -> None:
    """Walk a PNG's chunks from the start of ``handle`` and verify every CRC, IDAT included.

    Pillow checks the CRCs of header chunks only; a flipped bit in the image data would
    otherwise decode silently into wrong pixels.

    Raises
    ------
    ImageError
        For a truncated file or a bad checksum, naming ``name`` and the chunk.
    """
    handle.seek(len(PNG_SIGNATURE))
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


class PngStream:
    """Write a PNG band by band to ``handle``: the header first, then each band's rows as they
    come, deflated by one stream (the ``Up`` filter of each band's first row refers to the last
    row of the band before), so that only one band is ever in memory.

    >>> import io
    >>> buffer = io.BytesIO()
    >>> stream = PngStream(buffer, width=3, height=2, channels=1, bits=8)
    >>> stream.write(np.zeros((1, 3), np.uint8)); stream.write(np.ones((1, 3), np.uint8)); stream.close()
    >>> buffer.getvalue()[:8] == PNG_SIGNATURE
    True
    """

    def __init__(
        self, handle: BinaryIO, *, width: int, height: int, channels: int, bits: int = 8, level: int = 1,
        chunks: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        if channels not in _COLOUR_TYPE or bits not in (8, 16) or width < 1 or height < 1:
            raise ValueError(f"cannot encode a {width}x{height} image of {channels} channels at {bits} bits as PNG")
        if not 0 <= level <= 9:
            raise ValueError(f"zlib level must be 0..9, got {level}")
        self.handle, self.width, self.height, self.channels, self.bits = handle, width, height, channels, bits
        self.rows = 0
        self.previous: NDArray[np.uint8] | None = None
        self.compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS, 9)
        self.pending = bytearray()
        header = struct.pack(">IIBBBBB", width, height, bits, _COLOUR_TYPE[channels], 0, 0, 0)
        handle.write(PNG_SIGNATURE + _chunk(b"IHDR", header))
        for kind, data in chunks:
            handle.write(_chunk(kind, data))

    def write(self, pixels: NDArray[np.uint8] | NDArray[np.uint16]) -> None:
        """Append rows ``(h, W)`` or ``(h, W, C)`` of the image's dtype."""
        array = np.ascontiguousarray(pixels, dtype=np.uint16 if self.bits == 16 else np.uint8)
        if array.shape[0] == 0:
            return
        if self.rows + array.shape[0] > self.height:
            raise ValueError(f"more rows than the PNG's height {self.height}")
        samples = cast(NDArray[np.uint8], array if self.bits == 8 else array.astype(">u2").view(np.uint8))
        rows = samples.reshape(samples.shape[0], -1)
        if rows.shape[1] != self.width * self.channels * self.bits // 8:
            raise ValueError(f"rows of shape {pixels.shape} do not fit a PNG {self.width} pixels wide")
        lines = filtered_rows(rows)
        if self.previous is not None:
            np.subtract(rows[0], self.previous, out=lines[0, 1:])
        self.previous = rows[-1].copy()
        self.rows += rows.shape[0]
        self.pending += self.compressor.compress(lines.data)
        self._flush_chunks(final=False)

    def _flush_chunks(self, *, final: bool) -> None:
        while len(self.pending) >= _CHUNK_BYTES or (final and self.pending):
            piece = bytes(self.pending[:_CHUNK_BYTES])
            del self.pending[:_CHUNK_BYTES]
            self.handle.write(_chunk(b"IDAT", piece))

    def close(self) -> None:
        """End the image data and write the IEND chunk; every row must have been written."""
        if self.rows != self.height:
            raise ValueError(f"{self.rows} rows written of the PNG's {self.height}")
        self.pending += self.compressor.flush(zlib.Z_FINISH)
        self._flush_chunks(final=True)
        self.handle.write(_chunk(b"IEND", b""))
