"""The direct engine: the kernel's taps applied over cache-sized strips of output rows.

Three strategies compute the same sum; :func:`plan_direct` picks the cheapest:

``taps`` (shift-and-add)
    For every non-zero tap ``(i, j)`` the (strided, dilated) view of the padded image that the
    tap sees is scaled and added to an accumulator. Zero taps are skipped and taps of equal
    magnitude are summed before one scaling (:class:`TapPlan`), so sparse and symmetric
    kernels (Sobel, box, Laplacian) are cheap.
``blas`` (row-stack matrix products)
    A ``(rows, kh, width)`` view of the padded strip, with overlapping rows, is multiplied by
    the transposed kernel in one ``numpy.matmul`` per strip: BLAS computes, for every kernel
    column ``j``, the vertical sum ``sum_i k[i, j] * x[r + i, :]`` with fused multiply-adds.
    The ``kw`` results are then added at their column shifts. Dense kernels cost about one
    pass per tap instead of two.
``fused`` (one multiply-add per tap)
    A ``(kh, kw, rows, width)`` view of every shifted view of the strip, nothing copied, is
    contracted with the kernel by ``numpy.einsum``, whose inner loop multiplies and adds in
    one pass over the accumulator. For dense kernels without zero taps.

The loops run over taps, strips and column chunks, never over pixels. The tap-summing machinery
is shared with the separable engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from convcli.core.engine import Engine, Float32Array, as_hwc, channel_count
from convcli.core.geometry import Geometry
from convcli.core.threads import check_abandoned, run_bands

# Bytes of accumulator + scratch per strip. Every tap makes one or two passes over the strip,
# so it should stay in cache together with the padded rows it reads; much smaller strips lose
# to the per-call overhead of one ufunc call per tap and strip. The size was chosen with the
# 3x3 one-thread runs of benchmarks/bench_core.py.
STRIP_BYTES = 2 * 1024 * 1024

# Bytes of the products of one output row in one column chunk (live kernel columns x chunk
# span x channels, float32): the products of a chunk are added at their shifts while they are
# still in L2. BLAS itself runs on the band's own thread whatever the product's size
# (threads.one_blas_thread): the chunks are for the cache, not for BLAS's threads.
BLAS_CHUNK_BYTES = 1024 * 1024
# Fewest output pixels per chunk. Narrower chunks pay BLAS's per-call cost on too little work,
# and a chunk narrower than the kernel's reach spends more of its products on the overlap with
# the next chunk than on its own outputs; so a chunk is also at least the kernel's reach wide.
MIN_CHUNK = 64

# Cost of the blas strategy in passes per output sample: a fraction of a pass per tap for the
# products (BLAS fuses the multiply-adds and reads each row from cache) plus two per kernel
# column for the shifted adds. Fitted to the forced-direct timings of benchmarks/bench_core.py
# (--engines), 3x3 to 31x31 kernels at 1080p.
BLAS_PASSES_PER_TAP = 0.3
BLAS_PASSES_PER_COLUMN = 2.0

# Cost of one fused multiply-add per tap (``numpy.einsum`` over a strided stack of the shifted
# views, the ``fused`` strategy): NumPy's ufuncs have no fused multiply-add, so a lone tap of
# shift-and-add costs a multiply and an add, while einsum's inner loop does both in one pass.
# Fitted to the forced timings of benchmarks/bench_core.py (--engines).
FUSED_PASSES_BASE = 1.0
FUSED_PASSES_PER_TAP = 0.9


@dataclass(frozen=True)
class TapGroup:
    """Taps sharing one weight magnitude: summed (or subtracted) first, scaled once."""

    magnitude: np.float32
    taps: tuple[tuple[int, int], ...]  # (tap index, sign)


@dataclass(frozen=True)
class TapPlan:
    """How to form ``sum(w[t] * view(t))`` with as few passes over memory as possible.

    NumPy has no fused multiply-add, so a lone tap costs two passes (scale into scratch, add).
    Taps of equal magnitude (symmetric kernels: Gaussian, box, Sobel, Laplacian) are first added
    or subtracted together and scaled once, and taps of magnitude 1 are never scaled at all.
    """

    groups: tuple[TapGroup, ...]

    @property
    def passes(self) -> int:
        """Full passes over a strip that :meth:`apply` makes (the cost-model unit)."""
        total = 0
        filled = False
        for group in self.groups:
            # n-1 adds and one scaling, plus the add into the accumulator unless built there.
            n = len(group.taps)
            if group.magnitude == 1:
                total += n - 1 if not filled and n > 1 else n
            else:
                total += n if not filled else n + 1
            filled = True
        return max(total, 1)

    def apply(
        self,
        acc: Float32Array,
        view: Callable[[int], Float32Array],
        scratch: Float32Array,
        *,
        accumulate: bool = False,
    ) -> None:
        """Write (or with ``accumulate`` add) ``sum(w[t] * view(t))`` into ``acc``."""
        filled = accumulate
        for group in self.groups:
            check_abandoned()  # a strip of a large kernel is many passes: seconds on a big image
            if group.magnitude == 1:
                remaining = list(group.taps)
                if not filled:
                    self._start_unit(acc, view, remaining)
                    filled = True
                for tap, sign in remaining:
                    (np.add if sign > 0 else np.subtract)(acc, view(tap), out=acc)
                continue
            # The first group is built in the accumulator itself, which saves one pass.
            target = scratch if filled else acc
            (first, first_sign), *rest = group.taps
            if not rest:
                np.multiply(view(first), group.magnitude * first_sign, out=target)
            else:
                ufunc = np.add if rest[0][1] == first_sign else np.subtract
                ufunc(view(first), view(rest[0][0]), out=target)
                for tap, sign in rest[1:]:
                    ufunc = np.add if sign == first_sign else np.subtract
                    ufunc(target, view(tap), out=target)
                np.multiply(target, group.magnitude * first_sign, out=target)
            if filled:
                np.add(acc, target, out=acc)
            filled = True
        if not filled:
            acc.fill(0)

    @staticmethod
    def _start_unit(
        acc: Float32Array, view: Callable[[int], Float32Array], remaining: list[tuple[int, int]]
    ) -> None:
        """Initialise ``acc`` from the first one or two unit taps (popped from ``remaining``)."""
        first, first_sign = remaining.pop(0)
        if not remaining:
            if first_sign > 0:
                np.copyto(acc, view(first))
            else:
                np.negative(view(first), out=acc)
            return
        second, second_sign = remaining.pop(0)
        if first_sign < second_sign:  # put the positive tap first: -a + b == b - a
            first, second = second, first
            first_sign, second_sign = second_sign, first_sign
        (np.add if second_sign == first_sign else np.subtract)(view(first), view(second), out=acc)
        if first_sign < 0:  # both negative
            np.negative(acc, out=acc)


def make_plan(weights: Sequence[float] | NDArray[np.floating]) -> TapPlan:
    """Group the non-zero ``weights`` (indexed 0..n-1) by float32 magnitude."""
    values = np.asarray(weights, dtype=np.float32).ravel()
    groups: dict[float, list[tuple[int, int]]] = {}
    for index in np.flatnonzero(values):
        value = values[index]
        groups.setdefault(float(abs(value)), []).append((int(index), 1 if value > 0 else -1))
    # A scaled group built directly in the accumulator saves its final add; a magnitude-1 group
    # has no such add to save, so scaled groups go first.
    ordered = sorted(groups.items(), key=lambda item: (item[0] == 1.0, -len(item[1])))
    return TapPlan(tuple(TapGroup(np.float32(mag), tuple(taps)) for mag, taps in ordered))


def strip_rows(row_elements: int, buffers: int = 2) -> int:
    """Rows per strip so that ``buffers`` float32 rows of ``row_elements`` fit STRIP_BYTES."""
    return max(1, STRIP_BYTES // max(1, row_elements * 4 * buffers))


def column_view(rows: Float32Array, start: int, count: int, step: int) -> Float32Array:
    """Columns ``start, start+step, ...`` (``count`` of them) of an (R, W, C) array.

    With ``step == 1`` the view is returned as (R, count*C): interleaved channels become one
    long contiguous row, which NumPy's inner loops vectorise far better than a C=3 inner axis.
    """
    if step == 1:
        channels = rows.shape[2]
        flat = rows.reshape(rows.shape[0], -1)
        return flat[:, start * channels : (start + count) * channels]
    return rows[:, start : start + (count - 1) * step + 1 : step]


def row_stack(
    source: Float32Array, first_row: int, rows: int, row_step: int, taps: int, tap_step: int,
    first_col: int, cols: int,
) -> Float32Array:
    """Read-only ``(rows, taps, cols * C)`` view: ``[r, i]`` is padded row ``first_row + r*row_step
    + i*tap_step`` from column ``first_col``. Rows overlap in memory; nothing is copied."""
    flat = source.reshape(source.shape[0], -1)
    channels = source.shape[2]
    base = flat[first_row:, first_col * channels :]
    row_bytes = flat.strides[0]
    return as_strided(
        base, shape=(rows, taps, cols * channels), strides=(row_step * row_bytes, tap_step * row_bytes, 4),
        writeable=False,
    )


def blas_chunk(columns: int, channels: int, reach: int, col_stride: int, out_w: int) -> int:
    """Output pixels per column chunk of the blas strategy (see :data:`BLAS_CHUNK_BYTES`).

    >>> blas_chunk(9, 3, 8, 1, 1920), blas_chunk(255, 3, 254, 1, 1920)  # whole rows; the reach
    (1920, 254)
    """
    span = BLAS_CHUNK_BYTES // (4 * columns * max(1, channels))  # input pixels the budget allows
    fitting = (span - reach - 1) // col_stride + 1
    return max(1, min(out_w, max(MIN_CHUNK, -(-reach // col_stride), fitting)))


class StripRows:
    """The padded rows a strip of output rows reads, as float32.

    For a float32 image, the image itself (nothing copied); for an integer image, those rows
    converted into one buffer reused for every strip, so the conversion happens in cache, strip
    by strip, instead of as a full-size float32 copy of the image.
    """

    def __init__(self, image: NDArray[Any], max_rows: int, row_stride: int, kernel_rows: int, dilation: int) -> None:
        self.image, self.row_stride = image, row_stride
        self.reach = (kernel_rows - 1) * dilation + 1  # input rows one output row reads
        self.buffer: Float32Array | None = None
        if image.dtype != np.float32:
            shape = ((max_rows - 1) * row_stride + self.reach, *image.shape[1:])
            self.buffer = np.empty(shape, dtype=np.float32)

    def read(self, first: int, rows: int) -> tuple[Float32Array, int]:
        """``(array, top)``: input row ``first * row_stride + i`` of the image is ``array[top + i]``."""
        top = first * self.row_stride
        if self.buffer is None:
            return self.image, top
        count = (rows - 1) * self.row_stride + self.reach
        strip = self.buffer[:count]
        np.copyto(strip, self.image[top : top + count])
        return strip, 0


def hwc_view(array: NDArray[Any]) -> NDArray[Any]:
    """A C-contiguous ``(H, W, C)`` view (or copy) of an ``(H, W, ...)`` array, in its own dtype.

    The engines that convert an integer image strip by strip (or tile by tile) take it so.
    """
    array = np.ascontiguousarray(array)
    return array.reshape(array.shape[0], array.shape[1], channel_count(array.shape))


def _live_columns(kernel: NDArray[np.floating]) -> list[int]:
    """Indices of kernel columns with at least one non-zero tap."""
    return [int(j) for j in np.flatnonzero(np.any(kernel != 0, axis=0))]


def blas_passes(kernel_rows: int, columns: int, geometry: Geometry) -> float:
    """Modelled cost of the blas strategy in passes per output sample, for ``columns`` live columns."""
    # The products run over every column the strip spans, so column stride wastes them.
    return BLAS_PASSES_PER_TAP * kernel_rows * columns * geometry.stride[1] + BLAS_PASSES_PER_COLUMN * columns + 2


@dataclass(frozen=True)
class DirectPlan:
    """The direct engine's plan: the strategy :func:`plan_direct` rated cheaper, and its taps."""

    kernel: Float32Array
    strategy: str  # "taps", "blas" or "fused"
    cost: float
    taps: TapPlan
    columns: tuple[int, ...]  # kernel columns with a non-zero tap, for the blas strategy

    def run(self, padded: Float32Array, geometry: Geometry, *, threads: int = 1) -> Float32Array:
        """Cross-correlate, band by band over row strips (see :meth:`.EnginePlan.run`).

        ``padded`` may also be an integer image (8 or 16 bits): each strip's rows are then
        converted to float32 on the way in, while in cache, instead of the whole image before.
        """
        source = as_hwc(padded) if padded.dtype.kind == "f" else hwc_view(padded)
        out_h, out_w = geometry.out_shape
        channels = source.shape[2]
        out = np.empty((out_h, out_w, channels), dtype=np.float32)
        if not self.columns:  # an all-zero kernel
            out.fill(0)
            return out.reshape(geometry.out_shape + padded.shape[2:])
        band = {"blas": self._blas_band, "fused": self._fused_band}.get(self.strategy, self._taps_band)
        worker = partial(band, source, out, geometry)
        run_bands(worker, out_h, threads, float(out_h * out_w * channels * self.cost))
        return out.reshape(geometry.out_shape + padded.shape[2:])

    def _taps_band(self, image: NDArray[Any], out: Float32Array, geometry: Geometry, o0: int, o1: int) -> None:
        """Shift-and-add for output rows ``o0:o1``."""
        out_w, channels = geometry.out_shape[1], image.shape[2]
        (sr, sc), (dr, dc) = geometry.stride, geometry.dilation
        kw = self.kernel.shape[1]
        step = strip_rows(out_w * channels, buffers=2 if image.dtype == np.float32 else 3)
        scratch_buf = np.empty((min(step, o1 - o0), out_w, channels), dtype=np.float32)
        rows = StripRows(image, min(step, o1 - o0), sr, self.kernel.shape[0], dr)
        for r0 in range(o0, o1, step):
            check_abandoned()
            n = min(o1, r0 + step) - r0
            source, top = rows.read(r0, n)
            # Accumulator and scratch have the same layout as the tap views (flat rows at column
            # stride 1), so every ufunc call sees matching, coalescable operands.
            acc: Float32Array = out[r0 : r0 + n]
            scratch: Float32Array = scratch_buf[:n]
            if sc == 1:
                acc, scratch = column_view(acc, 0, out_w, 1), column_view(scratch, 0, out_w, 1)

            def view(tap: int, source: Float32Array = source, top: int = top, n: int = n) -> Float32Array:
                i, j = divmod(tap, kw)
                first = top + i * dr
                return column_view(source[first : first + (n - 1) * sr + 1 : sr], j * dc, out_w, sc)

            self.taps.apply(acc, view, scratch)

    def _fused_band(self, image: NDArray[Any], out: Float32Array, geometry: Geometry, o0: int, o1: int) -> None:
        """One fused multiply-add per tap (einsum over every shifted view) for output rows ``o0:o1``."""
        out_w, channels = geometry.out_shape[1], image.shape[2]
        (sr, sc), (dr, dc) = geometry.stride, geometry.dilation
        kh, kw = self.kernel.shape
        step = strip_rows(out_w * channels, buffers=1 if image.dtype == np.float32 else 2)
        rows = StripRows(image, min(step, o1 - o0), sr, kh, dr)
        row_bytes, pixel_bytes = image.shape[1] * channels * 4, channels * 4
        for r0 in range(o0, o1, step):
            check_abandoned()
            n = min(o1, r0 + step) - r0
            source, top = rows.read(r0, n)
            base = source.reshape(source.shape[0], -1)[top:]
            acc: Float32Array = out[r0 : r0 + n]
            if sc == 1:  # flat rows vectorise better than a C=3 inner axis
                acc = acc.reshape(n, out_w * channels)
                shape: tuple[int, ...] = (kh, kw, n, out_w * channels)
                strides: tuple[int, ...] = (dr * row_bytes, dc * pixel_bytes, sr * row_bytes, 4)
            else:
                shape = (kh, kw, n, out_w, channels)
                strides = (dr * row_bytes, dc * pixel_bytes, sr * row_bytes, sc * pixel_bytes, 4)
            views = as_strided(base, shape=shape, strides=strides, writeable=False)
            np.einsum("ij,ij...->...", self.kernel, views, out=acc)

    def _blas_band(self, image: NDArray[Any], out: Float32Array, geometry: Geometry, o0: int, o1: int) -> None:
        """Row-stack matrix products for output rows ``o0:o1``."""
        out_w, channels = geometry.out_shape[1], image.shape[2]
        (sr, sc), (dr, dc) = geometry.stride, geometry.dilation
        columns, kh = self.columns, self.kernel.shape[0]
        weights = np.ascontiguousarray(self.kernel[:, columns].T)  # (live columns, kh)
        reach = columns[-1] * dc  # extra input pixels a chunk reads beyond its outputs
        chunk = blas_chunk(len(columns), channels, reach, sc, out_w)
        span = (chunk - 1) * sc + reach + 1
        # Rows per strip: the products buffer of one strip stays in L2.
        rows = max(1, min(o1 - o0, STRIP_BYTES // (len(columns) * span * channels * 4)))
        products_buf = np.empty(rows * len(columns) * span * channels, dtype=np.float32)
        strip = StripRows(image, rows, sr, kh, dr)
        for r0 in range(o0, o1, rows):
            check_abandoned()
            n = min(o1, r0 + rows) - r0
            source, top = strip.read(r0, n)
            for c0 in range(0, out_w, chunk):
                check_abandoned()  # a large kernel's strip is one row of many large products
                m = min(out_w, c0 + chunk) - c0
                width = (m - 1) * sc + reach + 1
                stack = row_stack(source, top, n, sr, kh, dr, c0 * sc, width)
                products = products_buf[: n * len(columns) * width * channels].reshape(n, len(columns), width, channels)
                np.matmul(weights, stack, out=products.reshape(n, len(columns), width * channels))
                acc = out[r0 : r0 + n, c0 : c0 + m]
                if sc == 1:  # flat rows vectorise better than a C=3 inner axis
                    acc = acc.reshape(n, m * channels)
                shifted = [
                    products[:, q, j * dc : j * dc + (m - 1) * sc + 1 : sc].reshape(acc.shape)
                    for q, j in enumerate(columns)
                ]
                # The first two shifted products are added straight into the output: no copy pass.
                if len(shifted) == 1:
                    np.copyto(acc, shifted[0])
                else:
                    np.add(shifted[0], shifted[1], out=acc)
                    for extra in shifted[2:]:
                        np.add(acc, extra, out=acc)


def plan_direct(kernel: NDArray[np.floating], geometry: Geometry, channels: int = 1) -> DirectPlan:
    """Plan the direct engine: shift-and-add or row-stack products, whichever is cheaper.

    The cost does not depend on ``channels`` (every channel costs the same per sample).

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((100, 100), (3, 3), "same", 1, 1)
    >>> plan = plan_direct(np.ones((3, 3), np.float32) / 9, g)
    >>> plan.strategy, plan.cost  # a box: 8 adds and one scaling
    ('taps', 9.0)
    """
    weights = np.asarray(kernel, dtype=np.float32)
    taps = make_plan(weights)
    columns = tuple(_live_columns(weights))
    costs = {"taps": float(taps.passes), "blas": blas_passes(weights.shape[0], len(columns), geometry)}
    # Fused multiply-adds multiply every tap, zeros too: 0 * inf is NaN where the other
    # strategies keep an infinite pixel's neighbours finite (and a zero tap is wasted work).
    if np.all(weights != 0):
        costs["fused"] = FUSED_PASSES_BASE + FUSED_PASSES_PER_TAP * weights.size
    strategy = min(costs, key=lambda name: costs[name])  # ties go to the first: taps
    return DirectPlan(weights, strategy, costs[strategy], taps, columns)


def direct_strategy(kernel: NDArray[np.floating], geometry: Geometry) -> tuple[str, float]:
    """``("taps" | "blas" | "fused", passes per output sample)``, whichever is cheapest."""
    plan = plan_direct(kernel, geometry)
    return plan.strategy, plan.cost


def correlate_direct(
    padded: Float32Array, kernel: Float32Array, geometry: Geometry, *, threads: int = 1
) -> Float32Array:
    """Cross-correlate an already padded image tap by tap over row strips.

    Uses shift-and-add or row-stack matrix products, whichever :func:`plan_direct` rates
    cheaper; both compute the same sums. ``kernel`` is 2-D float32 (already flipped if
    convolution was asked for); the other arguments and the result are those of
    :meth:`.EnginePlan.run`.

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((1, 4), (1, 2), "valid", 1, 1)
    >>> correlate_direct(np.array([[1, 2, 3, 4]], np.float32), np.array([[1, 10]], np.float32), g)
    array([[21., 32., 43.]], dtype=float32)
    """
    return plan_direct(kernel, geometry, channel_count(padded.shape)).run(padded, geometry, threads=threads)


DIRECT_ENGINE = Engine("direct", plan_direct, "shift-and-add or row-stack products of the taps; small kernels")
