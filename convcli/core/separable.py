"""The separable engine: a low-rank kernel as a short sum of vertical-then-horizontal 1-D passes.

The singular value decomposition ``K = sum_r s_r u_r v_r^T`` writes any kernel as a sum of
outer products. A ``kh x kw`` kernel of rank ``r`` then costs ``r * (kh + kw)`` taps per pixel
instead of ``kh * kw``: Gaussian, box and Sobel kernels are rank 1, a Laplacian of Gaussian is
rank 2.

Forcing this engine on a kernel that is not low-rank is allowed: it computes the exact sum over
the full rank (every singular value above :data:`RANK_RTOL` of the largest), which is correct
but usually slower than ``direct``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import NDArray

from convcli.core.direct import (
    FUSED_PASSES_BASE,
    FUSED_PASSES_PER_TAP,
    StripRows,
    TapPlan,
    column_view,
    hwc_view,
    make_plan,
    row_stack,
    strip_rows,
)
from convcli.core.engine import Engine, Float32Array, as_hwc, channel_count
from convcli.core.geometry import Geometry
from convcli.core.threads import check_abandoned, one_blas_thread, run_bands

# Singular values below this fraction of the largest are dropped. Float32 kernels carry about
# 1e-7 of relative noise, so a Gaussian built in float32 has s2/s1 ~ 1e-8; dropping terms of
# 1e-5 changes an output by at most 1e-5 of its scale, far below one 8-bit grey level.
RANK_RTOL = 1e-5

# Cost of a vertical pass done as one BLAS matrix-vector product per output row (every padded
# row is read once from cache, multiply-adds fused), in passes: a fixed cost per pass plus a
# small one per tap, fitted to the forced-separable timings of benchmarks/bench_core.py.
# Shift-and-add wins only for short or very symmetric columns.
GEMV_PASSES_BASE = 2.0
GEMV_PASSES_PER_TAP = 0.5

SeparableTerm = tuple[NDArray[np.float32], NDArray[np.float32]]


def _tidy(vector: NDArray[np.float64]) -> NDArray[np.float32]:
    """Zero SVD noise and restore exact (anti)symmetry, so equal taps group in a TapPlan."""
    scale = float(np.max(np.abs(vector)))
    tol = 1e-6 * scale
    vector = np.where(np.abs(vector) <= tol, 0.0, vector)
    mirrored = vector[::-1]
    if np.all(np.abs(vector - mirrored) <= tol):
        vector = (vector + mirrored) / 2
    elif np.all(np.abs(vector + mirrored) <= tol):
        vector = (vector - mirrored) / 2
    return vector.astype(np.float32)


def separable_terms(kernel: NDArray[np.floating], rtol: float = RANK_RTOL) -> list[SeparableTerm]:
    """Split ``kernel`` into ``(column, row)`` vector pairs with ``kernel ~ sum(outer(col, row))``.

    Terms whose singular value is below ``rtol`` times the largest are dropped, so
    ``len(separable_terms(k))`` is the numerical rank. An all-zero kernel has no terms.

    >>> col, row = separable_terms(np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]))[0]
    >>> np.allclose(np.outer(col, row), [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    True
    """
    matrix = np.asarray(kernel, dtype=np.float64)
    with one_blas_thread():  # LAPACK's SVD would otherwise start BLAS threads beyond `threads`
        u, s, vt = np.linalg.svd(matrix)
    if s.size == 0 or s[0] == 0:
        return []
    terms: list[SeparableTerm] = []
    for r in np.flatnonzero(s > rtol * s[0]):
        # Scale the column so its largest tap is exactly 1: a unit tap is never multiplied, and
        # integer kernels come out exact (Sobel x: column [0.5, 1, 0.5], row [-2, 0, 2]).
        column, row = u[:, r], vt[r] * s[r]
        peak = column[np.argmax(np.abs(column))]
        column, row = column / peak, row * peak
        terms.append((_tidy(column), _tidy(row)))
    return terms


def kernel_rank(kernel: NDArray[np.floating], rtol: float = RANK_RTOL) -> int:
    """Numerical rank of ``kernel``: singular values above ``rtol`` times the largest.

    >>> kernel_rank(np.outer([1, 2, 1], [-1, 0, 1]))
    1
    """
    return len(separable_terms(kernel, rtol))


@dataclass(frozen=True)
class TermPlan:
    """How one term ``outer(column, row)`` is applied: a vertical pass, then a horizontal one."""

    column: Float32Array
    column_taps: TapPlan
    row_taps: TapPlan
    vertical_blas: bool  # the vertical pass as one matrix-vector product per output row
    vertical_passes: float  # its modelled cost per sample it writes
    row: Float32Array
    horizontal_fused: bool  # the horizontal pass as one fused multiply-add per tap (einsum)
    horizontal_passes: float  # its modelled cost per output sample


def plan_term(column: Float32Array, row: Float32Array) -> TermPlan:
    """Plan one term: for each pass, products or shift-and-add, whichever is cheaper."""
    column_taps, row_taps = make_plan(column), make_plan(row)
    taps = float(column_taps.passes)
    gemv = GEMV_PASSES_BASE + GEMV_PASSES_PER_TAP * column.size
    # The horizontal pass can be one fused multiply-add per tap (einsum over a stack of the
    # shifted rows; see direct.FUSED_PASSES_PER_TAP). A zero tap would still be multiplied by
    # einsum: 0 * inf is NaN where shift-and-add, which skips zero taps, keeps an infinite
    # pixel's neighbours finite.
    fused = FUSED_PASSES_BASE + FUSED_PASSES_PER_TAP * row.size if np.all(row != 0) else float("inf")
    row_passes = float(row_taps.passes)
    return TermPlan(
        column, column_taps, row_taps, gemv < taps, min(gemv, taps), row, fused < row_passes, min(fused, row_passes)
    )


def separable_passes(terms: Sequence[TermPlan], geometry: Geometry) -> float:
    """Estimated passes over one output-sized array (the cost model's unit)."""
    out_w = geometry.out_shape[1]
    need_w = (out_w - 1) * geometry.stride[1] + (geometry.kernel_shape[1] - 1) * geometry.dilation[1] + 1
    total = 0.0
    for term in terms:
        # The vertical pass runs over every padded column the horizontal pass will read.
        total += term.vertical_passes * need_w / out_w + term.horizontal_passes + 1
    return total


@dataclass(frozen=True)
class SeparablePlan:
    """The separable engine's plan: the kernel's SVD terms, each planned on first use.

    :attr:`cost` is infinite for a kernel that is not low-rank (the sum over its full rank is
    exact but rarely faster than ``direct``), and then the terms are planned only if the plan
    runs.
    """

    kernel_shape: tuple[int, int]
    terms: tuple[SeparableTerm, ...]
    geometry: Geometry

    @cached_property
    def term_plans(self) -> tuple[TermPlan, ...]:
        """:func:`plan_term` of every term."""
        return tuple(plan_term(column, row) for column, row in self.terms)

    @cached_property
    def passes(self) -> float:
        """Modelled passes per output sample, whether or not the kernel is low-rank."""
        return separable_passes(self.term_plans, self.geometry)

    @property
    def cost(self) -> float:
        """:attr:`passes` for a low-rank kernel, else infinite."""
        return self.passes if len(self.terms) < min(self.kernel_shape) else float("inf")

    def run(self, padded: Float32Array, geometry: Geometry, *, threads: int = 1) -> Float32Array:
        """Cross-correlate, band by band over row strips (see :meth:`.EnginePlan.run`).

        ``padded`` may also be an integer image (8 or 16 bits): each strip's rows are then
        converted to float32 on the way in, while in cache, instead of the whole image before.
        """
        source = as_hwc(padded) if padded.dtype.kind == "f" else hwc_view(padded)
        out_h, out_w = geometry.out_shape
        channels = source.shape[2]
        out = np.empty((out_h, out_w, channels), dtype=np.float32)
        if not self.term_plans:
            out.fill(0)
            return out.reshape(geometry.out_shape + padded.shape[2:])
        work = out_h * out_w * channels * self.passes
        run_bands(partial(self._band, source, out, geometry), out_h, threads, work)
        return out.reshape(geometry.out_shape + padded.shape[2:])

    def _band(self, image: NDArray[Any], out: Float32Array, geometry: Geometry, o0: int, o1: int) -> None:
        """Every term's vertical and horizontal pass for output rows ``o0:o1``, strip by strip."""
        out_w, channels = geometry.out_shape[1], image.shape[2]
        (sr, sc), (dr, dc) = geometry.stride, geometry.dilation
        kh, kw = self.kernel_shape
        need_w = (out_w - 1) * sc + (kw - 1) * dc + 1
        convert = image.dtype != np.float32
        step = strip_rows(need_w * channels, buffers=4 if convert else 3)
        rows = min(step, o1 - o0)
        temp_buf = np.empty((rows, need_w, channels), dtype=np.float32)
        scratch_buf = np.empty((rows, need_w, channels), dtype=np.float32)
        strip = StripRows(image, rows, sr, kh, dr)
        for r0 in range(o0, o1, step):
            check_abandoned()
            n = min(o1, r0 + step) - r0
            source, first_row = strip.read(r0, n)
            temp, scratch = temp_buf[:n], scratch_buf[:n]
            temp_flat, scratch_flat = column_view(temp, 0, need_w, 1), column_view(scratch, 0, need_w, 1)
            acc: Float32Array = out[r0 : r0 + n]
            h_scratch: Float32Array = scratch[:, :out_w]
            if sc == 1:
                acc, h_scratch = column_view(acc, 0, out_w, 1), column_view(scratch, 0, out_w, 1)

            def vertical(tap: int, source: Float32Array = source, top: int = first_row, n: int = n) -> Float32Array:
                first = top + tap * dr
                return column_view(source[first : first + (n - 1) * sr + 1 : sr], 0, need_w, 1)

            def horizontal(tap: int, temp: Float32Array = temp) -> Float32Array:
                return column_view(temp, tap * dc, out_w, sc)

            for index, term in enumerate(self.term_plans):
                check_abandoned()  # a kernel that is not low-rank has many terms per strip
                if term.vertical_blas:
                    stack = row_stack(source, first_row, n, sr, kh, dr, 0, need_w)
                    np.matmul(term.column, stack, out=temp_flat)
                else:
                    term.column_taps.apply(temp_flat, vertical, scratch_flat)
                if term.horizontal_fused:
                    # The first term is written straight into the output: no extra pass.
                    target = acc if index == 0 else h_scratch
                    np.einsum("j,j...->...", term.row, shifted_columns(temp, kw, dc, out_w, sc), out=target)
                    if index > 0:
                        np.add(acc, target, out=acc)
                else:
                    term.row_taps.apply(acc, horizontal, h_scratch, accumulate=index > 0)


def shifted_columns(rows: Float32Array, taps: int, tap_step: int, count: int, step: int) -> Float32Array:
    """Read-only ``(taps, R, ...)`` stack of :func:`column_view` ``(rows, j * tap_step, count, step)``
    for every tap ``j``, from a C-contiguous ``(R, W, C)`` array; nothing is copied."""
    rows_bytes, channels = rows.strides[0], rows.shape[2]
    tap_bytes = tap_step * channels * 4
    if step == 1:
        return as_strided(
            rows, shape=(taps, rows.shape[0], count * channels), strides=(tap_bytes, rows_bytes, 4), writeable=False
        )
    return as_strided(
        rows, shape=(taps, rows.shape[0], count, channels), strides=(tap_bytes, rows_bytes, step * channels * 4, 4),
        writeable=False,
    )


def plan_separable(kernel: NDArray[np.floating], geometry: Geometry, channels: int = 1) -> SeparablePlan:
    """Plan the separable engine: the SVD terms of ``kernel``, each planned on first use.

    The cost does not depend on ``channels``.

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((100, 100), (5, 5), "same", 1, 1)
    >>> plan = plan_separable(np.ones((5, 5), np.float32), g)
    >>> len(plan.terms), round(plan.cost, 2)  # a box is rank 1: 4 adds down, 4 across, 1 more
    (1, 9.16)
    """
    weights = np.asarray(kernel, dtype=np.float32)
    return SeparablePlan((weights.shape[0], weights.shape[1]), tuple(separable_terms(weights)), geometry)


def correlate_separable(
    padded: Float32Array, kernel: Float32Array, geometry: Geometry, *, threads: int = 1
) -> Float32Array:
    """Cross-correlate as a sum of vertical-then-horizontal 1-D passes over row strips.

    The vertical pass computes only the rows the row stride keeps, over the columns the
    horizontal pass reads; the horizontal pass then applies the column stride. Both passes of
    a strip run back to back while it is in cache.

    The order is always vertical first: the vertical pass is the one BLAS can do (a
    matrix-vector product over whole padded rows; a horizontal shift of interleaved channels
    is no BLAS layout), and it lets the row stride skip work. A large *column* stride would
    favour horizontal first; that case is left to ``direct``, which the cost model then picks.

    ``kernel`` is 2-D float32; the other arguments and the result are those of
    :meth:`.EnginePlan.run`.

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((3, 3), (3, 3), "valid", 1, 1)
    >>> image = np.arange(9, dtype=np.float32).reshape(3, 3)
    >>> correlate_separable(image, np.ones((3, 3), np.float32), g)
    array([[36.]], dtype=float32)
    """
    return plan_separable(kernel, geometry, channel_count(padded.shape)).run(padded, geometry, threads=threads)


SEPARABLE_ENGINE = Engine(
    "separable", plan_separable, "a sum of vertical and horizontal 1-D passes, one per singular value; low-rank kernels"
)
