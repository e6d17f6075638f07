"""The direct engine: shift-and-add over cache-sized strips of output rows.

For every non-zero tap ``(i, j)`` the (strided, dilated) view of the padded image that the tap
sees is scaled and added to an accumulator. The loops run over taps and strips, never over
pixels. The tap-summing machinery (:class:`TapPlan`) is shared with the separable engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from convcli.core.geometry import Geometry
from convcli.core.threads import run_bands

# Bytes of accumulator + scratch per strip. Every tap makes one or two passes over the strip,
# so it should stay in cache together with the padded rows it reads. Measured on the 3840x2160
# RGB benchmark (3x3, one thread): 256 KiB 167 ms, 512 KiB 89 ms, 1 MiB 87 ms, 2 MiB 80 ms; tiny
# strips lose to per-call overhead, and the 32 MiB L3 still holds a 2 MiB strip's sources.
STRIP_BYTES = 2 * 1024 * 1024

Float32Array = NDArray[np.float32]


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
            n = len(group.taps)
            if group.magnitude == 1:
                total += n
            else:
                total += n + (1 if filled else 0)
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
            if group.magnitude == 1:
                for tap, sign in group.taps:
                    source = view(tap)
                    if not filled:
                        np.copyto(acc, source) if sign > 0 else np.negative(source, out=acc)
                        filled = True
                    elif sign > 0:
                        np.add(acc, source, out=acc)
                    else:
                        np.subtract(acc, source, out=acc)
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


def make_plan(weights: Sequence[float] | NDArray[np.floating]) -> TapPlan:
    """Group the non-zero ``weights`` (indexed 0..n-1) by float32 magnitude."""
    values = np.asarray(weights, dtype=np.float32).ravel()
    groups: dict[float, list[tuple[int, int]]] = {}
    for index in np.flatnonzero(values):
        value = values[index]
        groups.setdefault(float(abs(value)), []).append((int(index), 1 if value > 0 else -1))
    # Larger groups first, so that the cheap "build in the accumulator" step saves the most.
    ordered = sorted(groups.items(), key=lambda item: -len(item[1]))
    return TapPlan(tuple(TapGroup(np.float32(mag), tuple(taps)) for mag, taps in ordered))


def strip_rows(row_elements: int, buffers: int = 2) -> int:
    """Rows per strip so that ``buffers`` float32 rows of ``row_elements`` fit STRIP_BYTES."""
    return max(1, STRIP_BYTES // max(1, row_elements * 4 * buffers))


def as_hwc(array: Float32Array) -> Float32Array:
    """View an (H, W, ...) array as contiguous (H, W, C) with all trailing axes folded into C."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    return array.reshape(array.shape[0], array.shape[1], -1)


def column_view(
    rows: Float32Array, start: int, count: int, step: int
) -> Float32Array:
    """Columns ``start, start+step, ...`` (``count`` of them) of an (R, W, C) array.

    With ``step == 1`` the view is returned as (R, count*C): interleaved channels become one
    long contiguous row, which NumPy's inner loops vectorise far better than a C=3 inner axis.
    """
    if step == 1:
        channels = rows.shape[2]
        flat = rows.reshape(rows.shape[0], -1)
        return flat[:, start * channels : (start + count) * channels]
    return rows[:, start : start + (count - 1) * step + 1 : step]


def correlate_direct(
    padded: Float32Array, kernel: Float32Array, geometry: Geometry, *, threads: int = 1
) -> Float32Array:
    """Cross-correlate an already padded image by shift-and-add over row strips.

    Parameters
    ----------
    padded
        Padded float32 image ``(Hp, Wp)`` or ``(Hp, Wp, C)``.
    kernel
        2-D float32 kernel (already flipped if convolution was asked for).
    geometry
        Stride, dilation and output shape, from :func:`~convcli.core.geometry.resolve_geometry`.
    threads
        Upper bound on worker threads; small images use one.

    Returns
    -------
    float32 array of shape ``geometry.out_shape + padded.shape[2:]``.

    Examples
    --------
    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((1, 4), (1, 2), "valid", 1, 1)
    >>> correlate_direct(np.array([[1, 2, 3, 4]], np.float32), np.array([[1, 10]], np.float32), g)
    array([[21., 32., 43.]], dtype=float32)
    """
    source = as_hwc(padded)
    out_h, out_w = geometry.out_shape
    (sr, sc), (dr, dc) = geometry.stride, geometry.dilation
    kw = kernel.shape[1]
    channels = source.shape[2]
    out = np.empty((out_h, out_w, channels), dtype=np.float32)
    plan = make_plan(kernel)

    def band(o0: int, o1: int) -> None:
        step = strip_rows(out_w * channels)
        scratch_buf = np.empty((min(step, o1 - o0), out_w, channels), dtype=np.float32)
        for r0 in range(o0, o1, step):
            n = min(o1, r0 + step) - r0
            # Accumulator and scratch have the same layout as the tap views (flat rows at
            # column stride 1), so every ufunc call sees matching, coalescable operands.
            acc: Float32Array = out[r0 : r0 + n]
            scratch: Float32Array = scratch_buf[:n]
            if sc == 1:
                acc, scratch = column_view(acc, 0, out_w, 1), column_view(scratch, 0, out_w, 1)

            def view(tap: int, r0: int = r0, n: int = n) -> Float32Array:
                i, j = divmod(tap, kw)
                first = r0 * sr + i * dr
                return column_view(source[first : first + (n - 1) * sr + 1 : sr], j * dc, out_w, sc)

            plan.apply(acc, view, scratch)

    run_bands(band, out_h, threads, float(out_h * out_w * channels * plan.passes))
    return out.reshape(geometry.out_shape + padded.shape[2:])
