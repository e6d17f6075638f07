"""Images read and written in parts: TIFF and BigTIFF (tiled or striped) and Zarr sources;
tiled BigTIFF, Zarr and streamed PNG targets.

An image larger than the memory budget is filtered band by band (:mod:`convcli.tiles`): its
rows are read from a :class:`ChunkedSource` as they are needed and the result is written to a
:class:`ChunkedTarget` as it is made, so that neither image is ever whole in memory.

TIFF is read through tifffile's own segment reading: each strip or tile the rows touch is read
and decoded, and the last rows of tiles decoded stay cached for the next band (whose halo
reaches back into them). Zarr needs the optional ``zarr`` package (``pip install 'convcli[dask]'``),
imported only when a ``.zarr`` path is used.

Every target is written to a temporary file or folder beside the destination and renamed into
place by :meth:`ChunkedTarget.commit` (:class:`convcli.io.atomic.AtomicOutput`); an error or an
interruption removes the temporary.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from convcli.errors import ImageError, OutputError, ParameterError
from convcli.io.atomic import AtomicOutput
from convcli.io.formats import suffix_format
from convcli.io.modes import ImageWarning

if TYPE_CHECKING:
    import zarr

ZARR_SUFFIX = ".zarr"
CHUNKED_FORMATS = ("TIFF", "PNG", "ZARR")
TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic TIFF and BigTIFF
DASK_HINT = "pip install 'convcli[dask]'"
TILE = 256  # rows and columns of the tiles of a written TIFF, and of a Zarr chunk
_SAMPLE_TYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
_CACHED_SEGMENT_ROWS = 2  # decoded rows of tiles kept: a band's halo reaches into the last one
_MINISBLACK, _RGB, _CONTIG = 1, 2, 1
_ORIENTATION = 274


class NotChunkedError(ImageError):
    """An image that cannot be read (or written) in parts; the message says why."""


def _import_zarr() -> Any:
    try:
        import zarr
    except ImportError as exc:
        raise ParameterError(f"Zarr arrays need the zarr package: {DASK_HINT}") from exc
    return zarr


def is_zarr_path(path: str | Path) -> bool:
    """Whether ``path`` names a Zarr array (its name ends in ``.zarr``).

    >>> is_zarr_path("scan.zarr/"), is_zarr_path("scan.tif")
    (True, False)
    """
    return str(path).rstrip("/\\").lower().endswith(ZARR_SUFFIX)


def is_tiff_file(path: str | Path) -> bool:
    """Whether ``path`` is a regular file that starts like a TIFF or BigTIFF (a FIFO is not
    opened: reading it would block, and take the bytes its real reader needs)."""
    if not Path(path).is_file():
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(4) in TIFF_SIGNATURES
    except OSError:
        return False


class ChunkedSource:
    """An image that can be read in parts: ``read_rows(start, stop)`` gives rows, all columns.

    ``shape`` is ``(H, W)`` or ``(H, W, 3)``; ``dtype`` uint8 or uint16 (float32 for a Zarr
    array of floats); ``chunks`` the natural ``(rows, cols)`` of one tile, strip or chunk.
    ``read_rows`` is for one thread at a time (it shares the file position and a cache of decoded
    tiles); readers on several threads or processes use :meth:`zarr_array`.
    """

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    chunks: tuple[int, int]

    def read_rows(self, start: int, stop: int) -> NDArray[Any]:
        """Rows ``start..stop-1`` of the image, every column, in the file's dtype."""
        raise NotImplementedError

    def zarr_array(self) -> zarr.Array[Any]:
        """The image as a read-only Zarr array, for ``dask.array.from_zarr`` (needs zarr)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the file."""

    def __enter__(self) -> ChunkedSource:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _check_rows(self, start: int, stop: int) -> None:
        if not 0 <= start < stop <= self.shape[0]:
            raise ValueError(f"rows {start}..{stop} are outside the image's {self.shape[0]} rows")


class TiffSource(ChunkedSource):
    """A TIFF or BigTIFF page (the first), tiled or striped, read by tifffile one segment row at a time."""

    def __init__(self, path: str | Path, *, warn: bool = True) -> None:
        import tifffile

        self.path = str(path)
        try:
            self.file = tifffile.TiffFile(self.path)
        except (OSError, ValueError, tifffile.TiffFileError) as exc:
            raise ImageError(f"{self.path}: cannot read TIFF: {exc}") from exc
        try:
            self._describe(self.file.pages.first)
            pages = len(self.file.pages)
        except BaseException:
            self.file.close()
            raise
        if pages > 1 and warn:  # as the in-memory reader says it
            warnings.warn(f"{self.path}: has {pages} frames; only the first is filtered", ImageWarning, stacklevel=3)
        self.cache: OrderedDict[int, NDArray[Any]] = OrderedDict()
        self.zarr_store: Any = None

    def _describe(self, page: Any) -> None:
        """Take the page's layout, refusing what the in-memory reader would read differently."""
        why = None
        samples = int(page.samplesperpixel)
        orientation = page.tags.get(_ORIENTATION)
        if page.dtype not in _SAMPLE_TYPES or page.bitspersample not in (8, 16):
            why = f"{page.bitspersample}-bit {page.dtype} samples (8- and 16-bit integers are read in parts)"
        elif page.extrasamples or samples not in (1, 3):
            why = "extra samples (alpha)" if page.extrasamples else f"{samples} samples a pixel"
        elif (samples, int(page.photometric)) not in ((1, _MINISBLACK), (3, _RGB)):
            why = "a photometric interpretation other than gray (min-is-black) or RGB"
        elif samples > 1 and int(page.planarconfig) != _CONTIG:
            why = "separate colour planes"
        elif orientation is not None and orientation.value != 1:
            why = "an orientation tag that turns the image"
        elif page.imagedepth != 1:
            why = "a volume (image depth above 1)"
        if why is not None:
            raise NotChunkedError(f"{self.path}: not read in parts: the TIFF has {why}")
        height, width = int(page.imagelength), int(page.imagewidth)
        self.page = page
        self.shape = (height, width) if samples == 1 else (height, width, samples)
        self.dtype = np.dtype(page.dtype)
        if page.is_tiled:
            self.chunks = (int(page.tilelength), int(page.tilewidth))
        else:
            self.chunks = (min(height, int(page.rowsperstrip) or height), width)
        # Uncompressed strips are read row by row where they are: one large strip (common in
        # files written without tiles) is then never decoded whole.
        self.plain_strips = (
            not page.is_tiled and int(page.compression) == 1 and int(page.predictor) == 1 and int(page.fillorder) == 1
        )
        self.row_bytes = width * samples * self.dtype.itemsize
        self.file_dtype = self.dtype.newbyteorder(self.file.byteorder)
        self.across = -(-width // self.chunks[1])
        down = -(-height // self.chunks[0])
        if len(page.dataoffsets) != down * self.across:
            raise NotChunkedError(f"{self.path}: not read in parts: unexpected layout of strips or tiles")

    def _segment_row(self, index: int) -> NDArray[Any]:
        """Decoded rows of tiles (or one strip) number ``index``, all columns; cached."""
        if index in self.cache:
            self.cache.move_to_end(index)
            return self.cache[index]
        page = self.page
        rows, cols = self.chunks
        top = index * rows
        height = min(rows, self.shape[0] - top)
        block = np.zeros((height, *self.shape[1:]), dtype=self.dtype)
        first = index * self.across
        indices = list(range(first, first + self.across))
        offsets = [page.dataoffsets[i] for i in indices]
        counts = [page.databytecounts[i] for i in indices]
        decode = page.decode
        try:
            for data, i in self.file.filehandle.read_segments(offsets, counts, indices=indices):
                segment, (_, _, _, left, _), _ = decode(data, i, jpegtables=page.jpegtables)
                if segment is None:  # a sparse file's missing tile: zeros, as tifffile reads it
                    continue
                width = min(cols, self.shape[1] - left)
                piece = segment[0, :height, :width]
                block[:, left : left + width] = piece if len(self.shape) == 3 else piece[..., 0]
        except (OSError, ValueError, RuntimeError, NotImplementedError) as exc:
            raise ImageError(f"{self.path}: cannot decode the TIFF's rows {top}..{top + height}: {exc}") from exc
        self.cache[index] = block
        while len(self.cache) > _CACHED_SEGMENT_ROWS:
            self.cache.popitem(last=False)
        return block

    def _plain_rows(self, start: int, stop: int) -> NDArray[Any]:
        """Rows of uncompressed strips, read where they lie in the file."""
        rows = self.chunks[0]
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        handle = self.file.filehandle
        row = start
        try:
            while row < stop:
                strip, within = divmod(row, rows)
                count = min(stop, (strip + 1) * rows) - row
                handle.seek(int(self.page.dataoffsets[strip]) + within * self.row_bytes)
                data = handle.read(count * self.row_bytes)
                if len(data) != count * self.row_bytes:
                    raise ValueError(f"the file ends inside strip {strip}")
                block = np.frombuffer(data, dtype=self.file_dtype).reshape((count, *self.shape[1:]))
                out[row - start : row - start + count] = block
                row += count
        except (OSError, ValueError) as exc:
            raise ImageError(f"{self.path}: cannot read the TIFF's rows {start}..{stop}: {exc}") from exc
        return out

    def read_rows(self, start: int, stop: int) -> NDArray[Any]:
        self._check_rows(start, stop)
        if self.plain_strips:
            return self._plain_rows(start, stop)
        rows = self.chunks[0]
        first, last = start // rows, (stop - 1) // rows
        if first == last:
            top = first * rows
            return self._segment_row(first)[start - top : stop - top].copy()
        out = np.empty((stop - start, *self.shape[1:]), dtype=self.dtype)
        for index in range(first, last + 1):
            top = index * rows
            block = self._segment_row(index)
            lo, hi = max(start, top), min(stop, top + block.shape[0])
            out[lo - start : hi - start] = block[lo - top : hi - top]
        return out

    def zarr_array(self) -> zarr.Array[Any]:
        import tifffile

        zarr_module = _import_zarr()
        if self.zarr_store is None:
            self.zarr_store = tifffile.imread(self.path, aszarr=True, key=0)
        array: zarr.Array[Any] = zarr_module.open_array(self.zarr_store, mode="r")
        return array

    def close(self) -> None:
        if self.zarr_store is not None:
            self.zarr_store.close()
            self.zarr_store = None
        self.cache.clear()
        self.file.close()


class ZarrSource(ChunkedSource):
    """A Zarr array ``(H, W)`` or ``(H, W, 3)`` of uint8, uint16 or float32 samples.

    uint16 samples are on 0..65535, as a 16-bit file's; float32 ones on 0..255, as ``--depth
    float`` writes them.
    """

    def __init__(self, path: str | Path) -> None:
        zarr_module = _import_zarr()
        self.path = str(path)
        try:
            self.array = zarr_module.open_array(self.path, mode="r")
        except Exception as exc:  # zarr raises many kinds for a folder that is no array
            raise ImageError(f"{self.path}: cannot open as a Zarr array: {exc}") from exc
        shape = tuple(int(n) for n in self.array.shape)
        dtype = np.dtype(self.array.dtype)
        if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)) or 0 in shape:
            raise ImageError(f"{self.path}: a Zarr image is (rows, cols) or (rows, cols, 3), not {shape}")
        if dtype not in (*_SAMPLE_TYPES, np.dtype(np.float32)):
            raise ImageError(f"{self.path}: Zarr samples must be uint8, uint16 or float32, not {dtype}")
        self.squeeze = len(shape) == 3 and shape[2] == 1
        self.shape = shape[:2] if self.squeeze else shape
        self.dtype = dtype
        chunks = tuple(int(n) for n in self.array.chunks)
        self.chunks = (chunks[0], chunks[1])

    def read_rows(self, start: int, stop: int) -> NDArray[Any]:
        self._check_rows(start, stop)
        try:
            rows = np.asarray(self.array[start:stop])
        except Exception as exc:  # a missing or corrupt chunk, whatever the codec raises
            raise ImageError(f"{self.path}: cannot read rows {start}..{stop}: {exc}") from exc
        return rows[..., 0] if self.squeeze else rows

    def zarr_array(self) -> zarr.Array[Any]:
        array: zarr.Array[Any] = self.array
        return array


def open_chunked_source(path: str | Path, *, warn: bool = True) -> ChunkedSource:
    """Open an image to be read in parts: a TIFF or BigTIFF (tiled or striped) or a ``.zarr`` array.

    Only a TIFF's first page is read; ``warn`` says so with an :class:`ImageWarning` when it has more.

    Raises
    ------
    NotChunkedError
        A file that is not TIFF, or a TIFF whose layout the in-memory reader would read
        differently (alpha, orientation, separate planes, other sample types).
    ImageError
        The file cannot be read.
    """
    if is_zarr_path(path):
        return ZarrSource(path)
    if not Path(path).is_file():
        raise ImageError(f"{path}: no such file")
    if not is_tiff_file(path):
        raise NotChunkedError(f"{path}: not read in parts: only TIFF, BigTIFF and Zarr are")
    return TiffSource(path, warn=warn)


class ChunkedTarget:
    """An image file written in parts, in order, atomically: ``write_rows`` for consecutive rows,
    then ``commit`` to rename it into place, or ``discard`` (also on an exception in a ``with``)."""

    path: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: DTypeLike) -> None:
        self.path = str(path)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self.next_row = 0

    def write_rows(self, start: int, rows: NDArray[Any]) -> None:
        """Write ``rows`` as rows ``start..start+len(rows)-1``; ``start`` continues the last call."""
        if start != self.next_row:
            raise ValueError(f"rows must come in order: expected row {self.next_row}, got {start}")
        if rows.shape[1:] != self.shape[1:] or start + rows.shape[0] > self.shape[0]:
            raise ValueError(f"rows of shape {rows.shape} do not fit an image of shape {self.shape} at row {start}")
        self._write(np.asarray(rows, dtype=self.dtype))
        self.next_row += rows.shape[0]

    def _write(self, rows: NDArray[Any]) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        """Finish the file and rename it into place; every row must have been written."""
        raise NotImplementedError

    def discard(self) -> None:
        """Remove the temporary file; the destination is untouched."""
        raise NotImplementedError

    def _check_complete(self) -> None:
        if self.next_row != self.shape[0]:
            raise ValueError(f"{self.next_row} rows written of the image's {self.shape[0]}")

    def __enter__(self) -> ChunkedTarget:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.discard()


class _RowBuffer:
    """Collects rows into blocks of ``rows`` (the last one shorter), as tiles and chunks want them."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype[Any], rows: int) -> None:
        self.block = np.empty((min(rows, shape[0]), *shape[1:]), dtype=dtype)
        self.filled = 0
        self.top = 0
        self.height = shape[0]

    def add(self, rows: NDArray[Any]) -> Iterator[tuple[int, NDArray[Any]]]:
        """Take ``rows``; yield every block completed, as ``(first_row, block)``."""
        done = 0
        while done < rows.shape[0]:
            wanted = min(self.block.shape[0], self.height - self.top) - self.filled
            take = min(wanted, rows.shape[0] - done)
            self.block[self.filled : self.filled + take] = rows[done : done + take]
            self.filled += take
            done += take
            if self.filled == min(self.block.shape[0], self.height - self.top):
                yield self.top, self.block[: self.filled]
                self.top += self.filled
                self.filled = 0


class TiffTarget(ChunkedTarget):
    """A tiled BigTIFF written by tifffile from an iterator of tiles, on a thread of its own that
    takes one row of tiles at a time: ``write_rows`` hands over rows as they come."""

    def __init__(
        self,
        path: str | Path,
        shape: tuple[int, ...],
        dtype: DTypeLike,
        *,
        exclusive: bool = False,
        compress_level: int | None = None,
    ) -> None:
        super().__init__(path, shape, dtype)
        if len(self.shape) == 3 and self.shape[2] != 3:
            raise OutputError(f"{self.path}: TIFF holds gray or RGB, not {self.shape[2]} channels")
        self.output = AtomicOutput(path, exclusive=exclusive)
        self.buffer = _RowBuffer(self.shape, self.dtype, TILE)
        self.blocks: queue.Queue[NDArray[Any] | None] = queue.Queue(maxsize=1)
        self.failure: BaseException | None = None
        self.stopping = threading.Event()
        self.compress_level = compress_level
        self.thread = threading.Thread(target=self._run, name="convcli-tiff", daemon=True)
        self.thread.start()

    def _tiles(self) -> Iterator[NDArray[Any]]:
        samples = self.shape[2:]
        while True:
            block = self.blocks.get()
            if block is None or self.stopping.is_set():
                return
            for left in range(0, self.shape[1], TILE):
                piece = block[:, left : left + TILE]
                if piece.shape[:2] == (TILE, TILE):
                    yield piece
                else:  # edge tiles are whole tiles in the file, padded with zeros
                    tile = np.zeros((TILE, TILE, *samples), dtype=self.dtype)
                    tile[: piece.shape[0], : piece.shape[1]] = piece
                    yield tile

    def _run(self) -> None:
        import tifffile

        try:
            level = self.compress_level
            # tifffile wants a named file: it writes the temporary by its name (the same inode as
            # the helper's handle, which flushes it to disk on commit).
            tifffile.imwrite(
                str(self.output.temp),
                data=self._tiles(),
                shape=self.shape,
                dtype=self.dtype,
                tile=(TILE, TILE),
                bigtiff=True,
                photometric="rgb" if len(self.shape) == 3 else "minisblack",
                planarconfig="contig",
                compression="zlib" if level else None,
                compressionargs={"level": level} if level else None,
                metadata=None,
            )
        except BaseException as exc:  # handed to the caller's thread, which reports it
            self.failure = exc
            self.stopping.set()

    def _hand_over(self, block: NDArray[Any] | None) -> None:
        while True:
            if self.failure is not None:
                raise OutputError(f"{self.path}: cannot write TIFF: {self.failure}") from self.failure
            try:
                self.blocks.put(block, timeout=0.1)
                return
            except queue.Full:
                continue

    def _write(self, rows: NDArray[Any]) -> None:
        for _, block in self.buffer.add(rows):
            self._hand_over(block.copy())

    def commit(self) -> None:
        try:
            self._check_complete()
            self._hand_over(None)
            self.thread.join()
            if self.failure is not None:
                raise OutputError(f"{self.path}: cannot write TIFF: {self.failure}") from self.failure
            self.output.commit()
        finally:
            self.discard()

    def discard(self) -> None:
        if self.thread.is_alive():
            self.stopping.set()
            while self.thread.is_alive():
                try:  # wake the writer, which stops at its next block
                    self.blocks.put_nowait(None)
                except queue.Full:
                    pass
                self.thread.join(timeout=0.1)
        self.output.discard()


class ZarrTarget(ChunkedTarget):
    """A Zarr array in a folder, chunked in ``TILE`` x ``TILE`` tiles, written a row of chunks at a time."""

    def __init__(self, path: str | Path, shape: tuple[int, ...], dtype: DTypeLike, *, exclusive: bool = False) -> None:
        super().__init__(path, shape, dtype)
        zarr_module = _import_zarr()
        self.output = AtomicOutput(path, folder=True, exclusive=exclusive)
        try:
            chunks = (TILE, TILE, *self.shape[2:])
            self.array = zarr_module.create_array(
                store=str(self.output.temp), shape=self.shape, chunks=chunks, dtype=self.dtype, overwrite=True
            )
        except BaseException:
            self.output.discard()
            raise
        self.buffer = _RowBuffer(self.shape, self.dtype, TILE)

    def _write(self, rows: NDArray[Any]) -> None:
        for top, block in self.buffer.add(rows):
            try:
                self.array[top : top + block.shape[0]] = block
            except OSError as exc:
                raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc

    def commit(self) -> None:
        try:
            self._check_complete()
            self.output.commit()
        finally:
            self.discard()

    def discard(self) -> None:
        self.output.discard()


class PngTarget(ChunkedTarget):
    """A PNG streamed band by band (:class:`convcli.io.png.PngStream`)."""

    def __init__(
        self,
        path: str | Path,
        shape: tuple[int, ...],
        dtype: DTypeLike,
        *,
        exclusive: bool = False,
        compress_level: int | None = None,
    ) -> None:
        from convcli.io.png import PngStream
        from convcli.options import DEFAULT_PNG_COMPRESS_LEVEL

        super().__init__(path, shape, dtype)
        if self.dtype not in _SAMPLE_TYPES:
            raise OutputError(f"{self.path}: PNG holds 8- or 16-bit samples, not {self.dtype}")
        self.output = AtomicOutput(path, exclusive=exclusive)
        assert self.output.handle is not None
        level = DEFAULT_PNG_COMPRESS_LEVEL if compress_level is None else compress_level
        try:
            self.stream = PngStream(
                self.output.handle,
                width=self.shape[1],
                height=self.shape[0],
                channels=1 if len(self.shape) == 2 else self.shape[2],
                bits=8 * self.dtype.itemsize,
                level=level,
            )
        except BaseException:
            self.output.discard()
            raise

    def _write(self, rows: NDArray[Any]) -> None:
        try:
            self.stream.write(rows)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc

    def commit(self) -> None:
        try:
            self._check_complete()
            self.stream.close()
            self.output.commit()
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write: {exc.strerror or exc}") from exc
        finally:
            self.discard()

    def discard(self) -> None:
        self.output.discard()


def chunked_format(path: str | Path, fmt: str | None = None) -> str | None:
    """The format a target at ``path`` is written in parts as (``TIFF``, ``PNG``, ``ZARR``), or
    None for a format that is written whole.

    >>> chunked_format("out.tif"), chunked_format("out.zarr"), chunked_format("out.jpg"), chunked_format("x", "png")
    ('TIFF', 'ZARR', None, 'PNG')
    """
    if fmt is not None:
        name = fmt.strip().upper().lstrip(".")
        name = {"TIF": "TIFF"}.get(name, name)
    elif is_zarr_path(path):
        name = "ZARR"
    else:
        name = suffix_format(path) or ""
    return name if name in CHUNKED_FORMATS else None


def open_chunked_target(
    path: str | Path,
    shape: tuple[int, ...],
    dtype: DTypeLike,
    *,
    fmt: str | None = None,
    overwrite: bool = True,
    compress_level: int | None = None,
) -> ChunkedTarget:
    """Start writing an image of ``shape`` and ``dtype`` in parts: tiled BigTIFF (``.tif``,
    ``.tiff``), Zarr (``.zarr``) or PNG, by ``fmt`` or else the name's suffix.

    ``overwrite=False`` claims the name instead of replacing it (the commit fails if it exists).
    ``compress_level`` is zlib's level for PNG (default: convcli's) and TIFF (default: none).

    Raises
    ------
    ParameterError
        A format that is not written in parts.
    OutputError
        The file cannot be created.
    """
    chosen = chunked_format(path, fmt)
    exclusive = not overwrite
    if chosen == "TIFF":
        return TiffTarget(path, shape, dtype, exclusive=exclusive, compress_level=compress_level)
    if chosen == "ZARR":
        return ZarrTarget(path, shape, dtype, exclusive=exclusive)
    if chosen == "PNG":
        return PngTarget(path, shape, dtype, exclusive=exclusive, compress_level=compress_level)
    raise ParameterError(f"{path}: not written in parts; write .tif, .png or .zarr")


__all__ = [
    "CHUNKED_FORMATS",
    "ChunkedSource",
    "ChunkedTarget",
    "NotChunkedError",
    "chunked_format",
    "is_zarr_path",
    "open_chunked_source",
    "open_chunked_target",
]
