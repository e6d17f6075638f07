"""Filtering an image larger than the memory budget, band by band, from a file read in parts to a
file written in parts (:mod:`convcli.io.tiled`).

Each output band is computed from just the rows it needs. A step of the chain asks the step
before it for the rows its band's padded rows map to: the border modes are index maps
(:func:`convcli.core.bands.border_index`), so ``wrap`` sends the top band to the image's last
rows and ``reflect`` folds them back, exactly as padding the whole intermediate image would. The
rows are computed recursively, back to the file, and each step keeps the last block it made, so
that the next band (whose halo reaches back into it) computes only its new rows.

Each step runs the very engine plan that the in-memory path runs for the whole image (planned
for the whole image's geometry, run band by band as :func:`~convcli.core.bands.filter_banded`
does), and the output mapping is applied per band, so the result equals the in-memory one pixel
for pixel; with the FFT engine, whose tiles follow the band's height, it agrees within float32
rounding. A kernel that mixes channels plans per band (within float32 rounding too).
``--output-mode normalize`` needs the range of the whole result: its run takes two passes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from convcli.core import map_to_float32, map_to_uint8, map_to_uint16, resolve_geometry
from convcli.core.bands import border_index, combine_responses
from convcli.core.border import resolve_border
from convcli.core.colour import linear_to_srgb, srgb_to_linear
from convcli.core.convolve import integer_plan, prepare
from convcli.core.engine import EnginePlan
from convcli.core.engines import plan_engine
from convcli.core.geometry import Geometry
from convcli.core.integer import IntegerPlan
from convcli.core.threads import resolve_threads, run_bands
from convcli.core.validate import as_kernel
from convcli.errors import ConvcliError, LimitError, ParameterError
from convcli.io import STDIO, ImageHeader, read_header
from convcli.io.tiled import (
    ChunkedSource,
    NotChunkedError,
    chunked_format,
    is_tiff_file,
    is_zarr_path,
    open_chunked_source,
    open_chunked_target,
)
from convcli.kernels import Kernel
from convcli.memory import estimate_memory, memory_limit
from convcli.options import FilterOptions, JobOptions

if TYPE_CHECKING:
    from convcli.pipeline import FileResult

Progress = Callable[[int, int], None]
Rows = NDArray[Any]  # float32, or a file's bytes, which the step after converts as it copies them

# Part of the budget the bands' working set may take; the rest is the interpreter, the
# libraries, the file's cached tiles and the writer's row of tiles.
_BAND_SHARE = 0.5
_BASE_BYTES = 64 * 1024 * 1024  # what a run holds besides its bands (interpreter, NumPy, tifffile)
# A band of a few hundred rows keeps every thread busy already: taller ones would only hold more memory.
_MAX_BAND_BYTES = 256 * 1024 * 1024
_SIXTEEN_BIT_SCALE = np.float32(255.0 / 65535.0)  # as every 16-bit file is read (convcli.io.modes)
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601-2, as convcli.io.deep weighs 16-bit colour


class _RowMaker:
    """Rows of one image of the chain (the file's, or a step's output), computed on demand; the
    last block made is kept, so that overlapping requests compute only their new rows."""

    height: int
    width: int
    channels: tuple[int, ...]  # () for gray, (C,) for colour
    dtype: np.dtype[Any] = np.dtype(np.float32)  # of the rows made

    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.kept: Rows | None = None
        self.kept_start = 0

    def rows(self, start: int, stop: int) -> Rows:
        """Rows ``start..stop-1`` (may be a view of the kept block: read, do not write)."""
        kept, first = self.kept, self.kept_start
        if kept is not None and first <= start and stop <= first + kept.shape[0]:
            return kept[start - first : stop - first]
        if kept is not None and first <= start < first + kept.shape[0]:
            block = np.concatenate([kept[start - first :], self._make(first + kept.shape[0], stop)])
        else:
            block = self._make(start, stop)
        if self.keep:
            self.kept, self.kept_start = block, start
        return block

    def _make(self, start: int, stop: int) -> Rows:
        raise NotImplementedError


class _FileRows(_RowMaker):
    """The file's rows on the 0..255 scale in float32, as the in-memory reader decodes them:
    16-bit samples scaled, colour turned gray as Pillow does with ``gray``, decoded from the
    sRGB curve with ``linear``."""

    def __init__(self, source: ChunkedSource, *, gray: bool, linear: bool) -> None:
        super().__init__()
        self.source, self.gray, self.linear = source, gray, linear
        self.height, self.width = source.shape[0], source.shape[1]
        colour = len(source.shape) == 3
        self.channels = (3,) if colour and not gray else ()
        if source.dtype == np.uint8 and not linear:
            self.dtype = np.dtype(np.uint8)  # the rows stay bytes (see _make)

    def _make(self, start: int, stop: int) -> Rows:
        raw = self.source.read_rows(start, stop)
        values: Rows
        if raw.dtype == np.uint16:
            # As convcli.io.deep reads 16-bit colour (gray: weighted first, then scaled) and
            # convcli.io.modes 16-bit gray.
            weighted = raw.astype(np.float32)
            if self.gray and raw.ndim == 3:
                weighted = weighted @ _LUMA
            values = weighted * _SIXTEEN_BIT_SCALE
        elif raw.dtype == np.uint8:
            if self.gray and raw.ndim == 3:  # Pillow's convert("L"), as the in-memory reader does
                from PIL import Image

                raw = np.asarray(Image.fromarray(np.ascontiguousarray(raw), "RGB").convert("L"))
            if self.linear:
                return srgb_to_linear(raw)  # a table for 8-bit samples, as the in-memory path looks them up
            # Kept as bytes: the step converts them to float32 as it copies them into its band.
            return raw
        else:  # float32 samples of a Zarr array, already on 0..255
            values = raw.astype(np.float32)
            if self.gray and raw.ndim == 3:
                values = values @ _LUMA
        return srgb_to_linear(values) if self.linear else values


class _StepRows(_RowMaker):
    """The output rows of one kernel step, computed from the rows of the image before it."""

    def __init__(self, before: _RowMaker, kernel: Kernel, options: FilterOptions, threads: int, *, keep: bool) -> None:
        from convcli.pipeline import anchored  # the pipeline's own rule for anchors and padding

        super().__init__(keep=keep)
        self.before, self.kernel, self.options, self.threads = before, kernel, options, threads
        padding, _ = anchored(kernel, options)
        self.geometry: Geometry = resolve_geometry(
            (before.height, before.width), kernel.shape, padding, options.stride, options.dilation
        )
        self.height, self.width = self.geometry.out_shape
        top, bottom, left, right = self.geometry.pad
        border = resolve_border(options.border)
        self.row_index, self.row_inside = border_index(before.height, top, bottom, border)
        self.col_index, self.col_inside = border_index(before.width, left, right, border)
        self.fill = np.float32(0.0 if border == "zero" else options.border_value)
        self.plans: list[EnginePlan] = []
        self.weights: list[NDArray[np.float32]] = []
        self.integer: IntegerPlan | None = None
        # The last step maps its rows to the file's samples on its threads (set by the caller).
        self.transform: Callable[[Rows], NDArray[Any]] | None = None
        self.out_dtype: type = np.float32
        if kernel.weights is None:
            self.channels = before.channels
            count = int(np.prod(before.channels, dtype=np.int64))
            weights = [as_kernel(m) for m in kernel.matrices]
            if options.flip:
                weights = [np.ascontiguousarray(w[::-1, ::-1]) for w in weights]
            # Planned once for the whole image, as the in-memory path plans it, then run band by band.
            self.plans = [plan_engine(w, self.geometry, options.method, count) for w in weights]
            self.weights = weights
            if before.dtype == np.uint8:
                # The in-memory path filters 8-bit samples with the exact integer engine where it
                # suits the kernel: so do the bands, from rows padded in bytes.
                kwargs = {**options.convolve_kwargs(), "padding": padding}
                shape = (before.height, before.width, *before.channels)
                dummy = np.broadcast_to(np.zeros((), np.uint8), shape)  # prepare needs no pixels
                request = prepare(dummy, list(kernel.matrices), kwargs)  # type: ignore[arg-type]
                self.integer = integer_plan(request, kernel.combine)
        else:
            assert kernel.channels is not None
            produced = kernel.channels[1]
            self.channels = () if produced == 1 else (produced,)

    def _inputs(self, p0: int, p1: int) -> tuple[Rows, NDArray[np.intp] | None]:
        """The rows of the image before this step that padded rows ``p0..p1-1`` map to, and the
        position of each padded row in them (None when they are those rows in order)."""
        index = self.row_index[p0:p1]
        before = self.before
        if index[-1] - index[0] == len(index) - 1 and bool(np.all(np.diff(index) == 1)):
            return before.rows(int(index[0]), int(index[-1]) + 1), None
        # A band at the top or bottom: its border rows map elsewhere in the image.
        wanted = np.unique(index)
        breaks = np.flatnonzero(np.diff(wanted) > 1) + 1
        runs = [(int(run[0]), int(run[-1]) + 1) for run in np.split(wanted, breaks)]
        # The longest run last: it is the one the step before keeps for the next band.
        runs.sort(key=lambda run: run[1] - run[0])
        blocks = {run: before.rows(*run) for run in runs}
        return np.concatenate([blocks[run] for run in sorted(runs)]), np.searchsorted(wanted, index)

    def _pad(
        self, source: Rows, positions: NDArray[np.intp] | None, p0: int, q0: int, q1: int, dtype: type = np.float32
    ) -> Rows:
        """Padded rows ``q0..q1-1`` in ``dtype``, border columns included, from :meth:`_inputs`
        (made for padded rows from ``p0`` on)."""
        before = self.before
        _, _, left, right = self.geometry.pad
        band: NDArray[Any] = np.empty((q1 - q0, left + before.width + right, *before.channels), dtype=dtype)
        rows = source[q0 - p0 : q1 - p0] if positions is None else source[positions[q0 - p0 : q1 - p0]]
        band[:, left : left + before.width] = rows  # one pass: copy and convert to float32
        if left:
            band[:, :left] = band[:, left + self.col_index[:left]]
        if right:
            band[:, left + before.width :] = band[:, left + self.col_index[left + before.width :]]
        if self.row_inside is not None and self.col_inside is not None:  # zero or constant
            band[~self.row_inside[q0:q1]] = self.fill
            band[:, ~self.col_inside] = self.fill
        return band

    def _make(self, start: int, stop: int) -> Rows:
        geometry = self.geometry
        stride, extent = geometry.stride[0], geometry.dilated_kernel_shape[0]
        p0 = start * stride
        source, positions = self._inputs(p0, (stop - 1) * stride + extent)
        count = stop - start
        out: NDArray[Any] = np.empty((count, self.width, *self.channels), dtype=self.out_dtype)

        def run(r0: int, r1: int) -> None:
            # Output rows r0..r1-1 of the band, on one thread: padded, filtered, combined, mapped.
            last_row = p0 + (r1 - 1) * stride + extent
            if self.integer is not None:  # rows padded in bytes; the engine pads nothing more
                band = self._pad(source, positions, p0, p0 + r0 * stride, last_row, np.uint8)
                result = np.empty((r1 - r0, self.width, *self.channels), np.float32)
                self.integer.run_padded(band, replace(geometry, out_shape=(r1 - r0, geometry.out_shape[1])), result)
            elif self.plans:
                band = self._pad(source, positions, p0, p0 + r0 * stride, last_row)
                shape = replace(geometry, out_shape=(r1 - r0, geometry.out_shape[1]))
                responses = (plan.run(band, shape, threads=1) for plan in self.plans)
                result = combine_responses(responses, self.kernel.combine, overwrite=True)
            else:
                result = self._mix(self._pad(source, positions, p0, p0 + r0 * stride, last_row))
            if self.kernel.offset:
                result += np.float32(self.kernel.offset)
            out[r0:r1] = self.transform(result) if self.transform is not None else result

        with np.errstate(all="ignore"):  # beyond float32 is infinity, clipped by the output mapping
            if self.plans:
                # Bands of one step are independent: threads take runs of rows, as filter_banded's do.
                taps = sum(int(np.count_nonzero(plan_weights)) for plan_weights in self.weights)
                run_bands(run, count, self.threads, float(out.size) * max(1, taps))
            else:
                run(0, count)
        return out

    def _mix(self, band: Rows) -> Rows:
        """A channel-mixing step on one band: its rows are padded already, its columns by the step."""
        from convcli.pipeline import apply_kernel

        _, _, left, right = self.geometry.pad
        inner = np.ascontiguousarray(band[:, left : band.shape[1] - right])
        plain = dataclasses.replace(self.kernel, offset=0.0, anchor=None)
        options = dataclasses.replace(self.options, padding=(0, 0, left, right), flip=self.options.flip)
        return apply_kernel(inner, plain, options)


def _chain(source: ChunkedSource, kernels: Sequence[Kernel], job: JobOptions) -> list[_StepRows]:
    options = job.filter
    threads = resolve_threads(options.threads)
    if options.linear:  # the border value is a pixel value, decoded like the pixels
        border_value = float(srgb_to_linear(np.float32(options.border_value)))
        options = dataclasses.replace(options, linear=False, border_value=border_value)
    maker: _RowMaker = _FileRows(source, gray=job.input.gray, linear=job.filter.linear)
    steps = []
    for number, kernel in enumerate(kernels):
        step = _StepRows(maker, kernel, options, threads, keep=number < len(kernels) - 1)
        steps.append(step)
        maker = step
    return steps


def band_height(steps: Sequence[_StepRows], budget: int, out_itemsize: int) -> int:
    """Output rows per band so that the bands' working set stays within their share of ``budget``.

    Per output row, each step holds the rows of the image before it that the row needs (kept,
    and padded into its band), and its responses; the mapped row and its file samples come last.
    """
    per_row = 0.0
    fixed = 0.0
    needed = 1.0  # rows of a step's output per final output row
    for step in reversed(steps):
        before = step.before
        samples = max(1, int(np.prod(before.channels, dtype=np.int64)))
        padded_width = before.width + step.geometry.pad[2] + step.geometry.pad[3]
        out_row = step.width * max(1, int(np.prod(step.channels, dtype=np.int64))) * 4
        rows_before = needed * step.geometry.stride[0]
        per_row += rows_before * 4 * samples * (before.width + padded_width) + needed * out_row * (len(step.plans) + 2)
        fixed += step.geometry.dilated_kernel_shape[0] * 4 * samples * (before.width + padded_width)
        needed = rows_before
    source = steps[0].before
    if isinstance(source, _FileRows):  # the rows of tiles the reader keeps decoded
        file = source.source
        samples = file.shape[2] if len(file.shape) == 3 else 1
        fixed += 2 * file.chunks[0] * source.width * samples * file.dtype.itemsize
    last = steps[-1]
    per_row += last.width * max(1, int(np.prod(last.channels, dtype=np.int64))) * (4 + out_itemsize)
    share = max(budget * _BAND_SHARE - _BASE_BYTES, budget / 4) - fixed
    share = min(share, _MAX_BAND_BYTES)
    return int(max(1, min(last.height, share // max(1.0, per_row))))


class _Mapping:
    """The output mapping of the in-memory path, applied to one band at a time."""

    def __init__(self, job: JobOptions, depth: int | str, source: str) -> None:
        self.output = job.output
        self.depth = depth
        self.linear = job.filter.linear
        self.source = source
        self.known: tuple[float, float] | None = None  # the range of the non-NaN responses
        self.finite: tuple[float, float] | None = None  # the range of the finite ones

    @property
    def dtype(self) -> type:
        return {16: np.uint16, "float": np.float32}.get(self.depth, np.uint8)

    def affine(self, values: Rows) -> Rows:
        """``values * scale + offset`` in float32, as the mapping computes it before its mode."""
        output = self.output
        y = values
        if output.scale != 1.0:
            y = np.multiply(y, np.float32(output.scale), dtype=np.float32)
        if output.offset != 0.0:
            y = np.add(y, np.float32(output.offset), dtype=np.float32)
        return y

    def measure(self, values: Rows) -> None:
        """First pass of ``normalize``: the range of the responses, and of the finite ones."""
        if self.linear:
            values = linear_to_srgb(values)
        with np.errstate(all="ignore"):
            y = self.affine(values)
        known = y[~np.isnan(y)]
        if known.size:
            self.known = _widen(self.known, float(known.min()), float(known.max()))
            finite = known[np.isfinite(known)]
            if finite.size:
                self.finite = _widen(self.finite, float(finite.min()), float(finite.max()))

    def __call__(self, values: Rows) -> NDArray[Any]:
        if self.linear:
            values = linear_to_srgb(values, overwrite=True)
        output = self.output
        if output.mode != "normalize":
            if self.depth == "float":
                return map_to_float32(values, output.mode, scale=output.scale, offset=output.offset)
            if self.depth == 16:
                return map_to_uint16(values, output.mode, scale=output.scale, offset=output.offset)
            return map_to_uint8(values, output.mode, scale=output.scale, offset=output.offset, overwrite=True)
        return self._stretch(values)

    def _stretch(self, values: Rows) -> NDArray[Any]:
        """``normalize`` by the range of the whole image (measured by the first pass), in the order
        of operations of :mod:`convcli.core.mapping`; mirrored here because that module stretches
        an array by its own range and offers no way to give it another."""
        low, high, clip = 0.0, 0.0, False
        if self.known is not None and all(np.isfinite(self.known)):
            low, high = self.known
        elif self.finite is not None:  # infinities land on the ends of the finite range
            (low, high), clip = self.finite, True
        with np.errstate(all="ignore"):
            y = self.affine(values)
            if y is values:
                y = y.copy()
            if clip:
                np.clip(y, np.float32(low), np.float32(high), out=y)
            if high > low:
                np.subtract(y, np.float32(low), out=y)
                np.multiply(y, np.float32(255.0 / (high - low)), out=y)
            if self.depth == "float":
                return y
            np.fmax(y, np.float32(0.0), out=y)
            if self.depth == 16:
                np.multiply(y, np.float32(257.0), out=y)
                np.rint(y, out=y)
                np.minimum(y, np.float32(65535.0), out=y)
                return y.astype(np.uint16)
            np.rint(y, out=y)
            np.minimum(y, np.float32(255.0), out=y)
            return y.astype(np.uint8)


def _widen(span: tuple[float, float] | None, low: float, high: float) -> tuple[float, float]:
    return (low, high) if span is None else (min(span[0], low), max(span[1], high))


def filter_tiled(
    source: str | Path,
    destination: str | Path,
    kernels: Sequence[Kernel],
    job: JobOptions | None = None,
    *,
    exclusive: bool = False,
    rows_per_band: int | None = None,
    progress: Progress | None = None,
) -> FileResult:
    """Filter ``source`` (TIFF, BigTIFF or ``.zarr``) into ``destination`` (``.tif``, ``.png`` or
    ``.zarr``) band by band, within ``job.limits.max_memory`` (default: the memory available).

    The result equals :func:`convcli.pipeline.filter_file`'s pixels. ``rows_per_band`` overrides
    the band height chosen from the budget; ``progress(rows_done, rows)`` is called after each band.

    Raises
    ------
    NotChunkedError
        The source cannot be read in parts.
    ParameterError
        A target format that is not written in parts, or options the tiled path cannot honour.
    """
    from convcli.pipeline import FileResult, check_job

    job = job or JobOptions()
    start_time = time.perf_counter()
    fmt = chunked_format(destination, job.output.format)
    if fmt is None:
        raise ParameterError(f"{destination}: not written in parts; write .tif, .png or .zarr")
    depth = "float" if fmt == "ZARR" and job.output.depth == "float" else job.output.depth
    check_job(list(kernels), job, [] if fmt == "ZARR" else [fmt])
    with open_chunked_source(source) as chunked:
        height, width = chunked.shape[:2]
        limit = job.limits.max_pixels
        if limit is not None and height * width > limit:
            raise LimitError(
                f"{source}: refused: {width}x{height} is {width * height:,} pixels, more than the limit of "
                f"{limit:,} (--max-pixels); nothing was decoded"
            )
        steps = _chain(chunked, kernels, job)
        last = steps[-1]
        if len(last.channels) and last.channels[0] not in (1, 3) and fmt != "ZARR":
            raise ParameterError(
                f"{source}: the kernels leave {last.channels[0]} channels; an image file holds 1 (gray) or 3 (RGB), "
                "a .zarr array any number"
            )
        mapping = _Mapping(job, depth, str(source))
        itemsize = np.dtype(mapping.dtype).itemsize
        budget, _ = memory_limit(job)
        rows = rows_per_band or band_height(steps, budget if budget is not None else 2**31, itemsize)
        out_shape = (last.height, last.width, *last.channels)
        starts = list(range(0, last.height, rows))
        if job.output.mode == "normalize":
            for first in starts:
                mapping.measure(last.rows(first, min(last.height, first + rows)))
            for step in steps:  # the second pass starts from the top again
                step.kept = None
        # The mapping runs on the last step's threads, each on the rows it has just computed.
        last.transform, last.out_dtype = mapping, mapping.dtype
        with open_chunked_target(
            destination,
            out_shape,
            mapping.dtype,
            fmt=fmt,
            overwrite=not exclusive,
            compress_level=job.output.compress_level,
        ) as target:
            for first in starts:
                stop = min(last.height, first + rows)
                target.write_rows(first, last.rows(first, stop))
                if progress is not None:
                    progress(stop, last.height)
            target.commit()
    written = Path(destination)
    files = written.rglob("*") if written.is_dir() else [written]
    size = sum(path.stat().st_size for path in files if path.is_file())
    seconds = time.perf_counter() - start_time
    shape = tuple(chunked.shape)
    return FileResult(str(source), str(destination), shape, out_shape, size, seconds, {"tiled": seconds})


def tiled_destination(
    source: str | Path, destination: str | Path | None, kernels: Sequence[Kernel], job: JobOptions
) -> str | Path | None:
    """Where a job goes through the tiled path, or None when it stays in memory.

    A ``.zarr`` input or output is always tiled. A TIFF written to ``.tif``, ``.png`` or
    ``.zarr`` is tiled when its estimated working memory exceeds the limit (``--max-memory``,
    else the memory available) and the file can be read in parts; anything else stays on the
    in-memory path, which refuses what does not fit.
    """
    from convcli.pipeline import output_path

    if STDIO in (str(source), str(destination)):
        if is_zarr_path(source) or (destination is not None and is_zarr_path(destination)):
            raise ParameterError("a .zarr array is read and written in place, not through standard input or output")
        return None
    target = destination if destination is not None and is_zarr_path(destination) else None
    if target is None:
        target = output_path(source, destination, kernels, job.output.format)
    forced = is_zarr_path(source) or is_zarr_path(target)
    fmt = chunked_format(target, job.output.format)
    if forced:
        if fmt is None:
            raise ParameterError(f"{target}: a .zarr input is written in parts; write .tif, .png or .zarr")
        return _not_the_input(source, target)
    if fmt is None or job.input.all_frames or not is_tiff_file(source):
        return None  # every page of a TIFF is filtered in memory: the tiled path reads the first
    limit, _ = memory_limit(job)
    if limit is None:
        return None
    try:  # Pillow's header first: most TIFFs fit, and tifffile takes a while to import
        if estimate_memory(read_header(source), kernels, job) <= limit:
            return None
    except ConvcliError:
        pass  # a BigTIFF Pillow cannot open: tifffile tells below
    try:
        with open_chunked_source(source, warn=False) as chunked:  # the run itself warns
            header = _header(chunked)
    except NotChunkedError:
        return None
    if estimate_memory(header, kernels, job) <= limit:
        return None
    return _not_the_input(source, target)


def _not_the_input(source: str | Path, target: str | Path) -> str | Path:
    """``target``, unless it is the input itself (which is never overwritten in parts)."""
    from convcli.pipeline import same_file

    if same_file(Path(source), Path(target)):
        raise ParameterError(f"{target}: the output would overwrite the input; choose another -o")
    return target


def _header(source: ChunkedSource) -> ImageHeader:
    """The header the in-memory path would see, for its memory estimate."""
    colour = len(source.shape) == 3
    sixteen = source.dtype == np.uint16
    mode = "RGB" if colour else ("I;16" if sixteen else "L")
    height, width = source.shape[:2]
    return ImageHeader(source.path, "TIFF", mode, width, height, 1, 16 if sixteen and colour else 8)
