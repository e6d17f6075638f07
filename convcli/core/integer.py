"""Exact integer arithmetic for integer kernels on 8- and 16-bit images.

Most everyday kernels have integer taps once their own scale is set aside: Sobel, Scharr,
Prewitt, the Laplacians, emboss, sharpen, the compass sets (Kirsch, Robinson), Roberts, and a box
whose taps are all ``1/n``. On a uint8 or uint16 image their responses are integers, which this
engine computes in int16 where the worst case fits (8-bit samples and small kernels) and in int32
otherwise. It works over cache-sized strips of rows that are padded in the image's own samples
(:meth:`~convcli.core.border.BorderMaps.gather`, converted straight to the accumulator's type), and
uses a kernel's exact integer factors where it has them (Sobel is ``[1, 2, 1]^T [-1, 0, 1]``): half
of float32's memory traffic in int16, and no float32 copy of the image.

The results are the float engines' own, bit for bit. float32 holds every integer below ``2**24``
exactly, so the float direct engine computes these very sums without rounding while every partial
sum stays below ``2**24``; this engine is only used where the worst case (the sum of the taps'
magnitudes times the largest sample) does. A kernel with a scale gives the exact integer sum times
the scale, rounded once to float32: a power of two scales exactly, and a kernel whose taps share one
magnitude (a box) is exactly what the direct engine computes by summing equal taps before scaling
them once. A kernel set combines per pixel: ``max`` and ``sum`` in integers, ``magnitude`` in
float32 from the exact integer responses, as :func:`~convcli.core.bands.combine_responses` does.

``method="auto"`` uses this engine for a uint8 or uint16 image when the kernel qualifies and the
cost model rates it cheaper than the float engines (it is for every 3x3 kernel; a large dense
integer kernel is cheaper through the FFT). It is not a ``method`` of its own: it takes the image
in its own samples where the registered engines take a padded float32 image, and naming it would
only ever give what ``auto`` gives, or the ``direct`` engine's results where it does not apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.core.border import BorderMaps, resolve_border
from convcli.core.geometry import Geometry
from convcli.core.threads import check_abandoned, run_bands

IntArray = NDArray[np.signedinteger[Any]]
Float32Array = NDArray[np.float32]

# Every integer of smaller magnitude is exact in float32: below it, the float engines' sums of
# integer products are exact too, so both engines give the same numbers.
EXACT_LIMIT = 2**24
INT16_MAX = int(np.iinfo(np.int16).max)
SAMPLE_TYPES: tuple[type, ...] = (np.uint8, np.uint16)

# Bytes of padded rows per strip. Every tap makes a pass over the strip's buffers (padded rows,
# vertical pass, response), which should stay in cache while the taps run; much shorter strips lose
# to the per-call overhead of NumPy's ufuncs. Chosen by timing 1080p RGB images at one thread with
# strips of 8 to 256 rows: about 64 rows of an RGB 1080p image in int16 did best.
STRIP_BYTES = 768 * 1024

# The cost model's unit is one pass over a float32 sample in cache. An int16 pass moves half the
# bytes and NumPy's integer loops vectorise twice as wide, so it costs about half; int32 passes cost
# less than float32's in practice, since the strips stay in cache. Converting a strip's response to
# float32 costs half a pass (the output itself is written by the float engines too). Fitted to
# one-thread timings of both paths on 1080p RGB uint8 and uint16 images, 3x3 and 5x5 kernels.
PASS_COST = {np.dtype(np.int16): 0.5, np.dtype(np.int32): 0.75}
CONVERSION_COST = 0.5

# The work figure given to run_bands, in the cost model's unit, is the plan's cost times this.
# threads.MIN_WORK_PER_THREAD is counted in the same unit for every engine, so the factor is 1: a
# 1080p RGB Sobel runs on two threads, a 512x512 RGB one on one. It stays a named constant because
# this engine's bands are strip buffers that stay in cache, where a float engine's bands convert
# the image through memory; a finer fit, on a quiet machine, may move it.
THREAD_WORK_FACTOR = 1.0


@dataclass(frozen=True)
class IntegerKernel:
    """A kernel as integer ``taps`` times a float32 ``scale`` (1 for integer kernels).

    ``factors`` are integer ``(column, row)`` vectors whose outer product is ``taps``, for a kernel
    that is one (Sobel, Scharr, Prewitt, a box), else None.
    """

    taps: NDArray[np.int64]
    scale: np.float32
    factors: tuple[NDArray[np.int64], NDArray[np.int64]] | None

    @property
    def weight(self) -> int:
        """The sum of the taps' magnitudes: a response is at most this times the largest sample."""
        return int(np.abs(self.taps).sum())


def integer_kernel(kernel: NDArray[np.floating]) -> IntegerKernel | None:
    """``kernel`` as integer taps times a scale, or None if it has no such form whose float32
    products the direct engine forms exactly (see the module's notes).

    The scale is 1 for integer taps, the common magnitude of taps that share one (a box), or else
    the power of two that makes every tap an integer.

    >>> k = integer_kernel(np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32))
    >>> k.scale, [f.tolist() for f in k.factors]
    (np.float32(1.0), [[1, 2, 1], [-1, 0, 1]])
    >>> float(integer_kernel(np.full((3, 3), 1 / 9, np.float32)).scale) == float(np.float32(1 / 9))
    True
    >>> integer_kernel(np.array([[0.1, 0.2]], np.float32)) is None
    True
    """
    weights = np.asarray(kernel, dtype=np.float32)
    nonzero = np.abs(weights[weights != 0]).astype(np.float64)
    if nonzero.size == 0:
        taps = np.zeros(weights.shape, np.int64)
        return IntegerKernel(taps, np.float32(1.0), None)
    if np.all(nonzero == np.rint(nonzero)):
        scale = np.float32(1.0)
    elif np.all(nonzero == nonzero[0]):
        scale = np.float32(nonzero[0])
    else:
        # The largest power of two dividing every tap: float32 taps are integers times 2**(e - 24).
        mantissas, exponents = np.frexp(nonzero)
        integers = (mantissas * 2.0**24).astype(np.int64)
        trailing = np.array([(int(m) & -int(m)).bit_length() - 1 for m in integers])
        scale = np.float32(2.0 ** int(np.min(exponents - 24 + trailing)))
        if not np.isfinite(scale) or scale == 0:
            return None
    ratios = weights.astype(np.float64) / np.float64(scale)
    taps = np.rint(ratios)
    if not np.array_equal(taps, ratios) or np.abs(taps).max() >= EXACT_LIMIT:
        return None
    integer_taps = taps.astype(np.int64)
    return IntegerKernel(integer_taps, scale, _factors(integer_taps))


def _factors(taps: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]] | None:
    """Integer ``(column, row)`` with ``outer(column, row) == taps``, or None."""
    live_rows = np.flatnonzero(np.any(taps != 0, axis=1))
    if live_rows.size == 0:
        return None
    base = taps[live_rows[0]]
    row = base // math.gcd(*(int(v) for v in base))
    j = int(np.flatnonzero(row)[0])
    if np.any(taps[:, j] % row[j]):
        return None
    column = taps[:, j] // row[j]
    if not np.array_equal(np.outer(column, row), taps):
        return None
    if not np.any(row > 0) or not np.any(column > 0):  # a factor of negative taps costs a negation
        return -column, -row
    return column, row


@dataclass(frozen=True)
class IntegerTaps:
    """Integer taps grouped by magnitude: each group is summed (or subtracted) first and
    multiplied once, as the direct engine's :class:`~convcli.core.direct.TapPlan` does in float32."""

    groups: tuple[tuple[int, tuple[tuple[int, int], ...]], ...]  # (magnitude, ((tap index, sign), ...))

    @classmethod
    def of(cls, weights: NDArray[np.int64]) -> IntegerTaps:
        """Group the non-zero ``weights`` (indexed 0..n-1 in flat order) by magnitude."""
        values = weights.ravel()
        groups: dict[int, list[tuple[int, int]]] = {}
        for index in np.flatnonzero(values):
            value = int(values[index])
            groups.setdefault(abs(value), []).append((int(index), 1 if value > 0 else -1))
        # A scaled group built in the accumulator saves its add; unit groups have none to save.
        ordered = sorted(groups.items(), key=lambda item: (item[0] == 1, -len(item[1])))
        return cls(tuple((magnitude, tuple(taps)) for magnitude, taps in ordered))

    @property
    def passes(self) -> int:
        """Full passes over a strip that :meth:`apply` makes."""
        total, filled = 0, False
        for magnitude, taps in self.groups:
            n = len(taps)
            if magnitude == 1:
                negated = not filled and all(sign < 0 for _, sign in taps)  # built, then negated
                total += (n - 1 if not filled and n > 1 else n) + negated
            else:
                total += n if not filled else n + 1
            filled = True
        return max(total, 1)

    def apply(self, acc: IntArray, view: Callable[[int], IntArray], scratch: IntArray) -> None:
        """Write ``sum(w[t] * view(t))`` into ``acc``; ``scratch`` has ``acc``'s shape."""
        filled = False
        for magnitude, taps in self.groups:
            if magnitude == 1 and filled:
                for tap, sign in taps:
                    (np.add if sign > 0 else np.subtract)(acc, view(tap), out=acc)
                continue
            target = scratch if filled else acc
            # The group's sum, built in ``target`` with the sign of its first tap factored out.
            (first, first_sign), *rest = sorted(taps, key=lambda tap: -tap[1])  # a positive tap first
            factor = magnitude * first_sign
            if not rest:
                if factor == 1:
                    np.copyto(target, view(first))
                else:
                    np.multiply(view(first), factor, out=target)
            else:
                (np.add if rest[0][1] == first_sign else np.subtract)(view(first), view(rest[0][0]), out=target)
                for tap, sign in rest[1:]:
                    (np.add if sign == first_sign else np.subtract)(target, view(tap), out=target)
                if factor != 1:
                    np.multiply(target, factor, out=target)
            if filled:
                np.add(acc, scratch, out=acc)
            filled = True
        if not filled:
            acc.fill(0)


@dataclass(frozen=True)
class Pass1D:
    """A 1-D integer pass as ``ones`` sums of neighbours (``1 + z`` factors) and then ``rest``.

    The binomial smoothing of Sobel filters, ``[1, 2, 1] = [1, 1] * [1, 1]``, then costs two
    additions instead of a multiply and two additions (the last sum is ``rest``).
    """

    ones: int
    rest: IntegerTaps

    @property
    def passes(self) -> int:
        """Full passes over a strip."""
        return self.ones + self.rest.passes

    @classmethod
    def of(cls, factor: NDArray[np.int64]) -> Pass1D:
        """The cheapest split of ``factor`` into ``1 + z`` factors and a rest (fewest sums on a tie)."""
        best = cls(0, IntegerTaps.of(factor))
        rest, ones = [int(v) for v in factor], 0
        # A rest of [1] would leave nothing to do but copy: the last sum of neighbours is the rest.
        while len(rest) > 2 and (quotient := _without_one_plus_z(rest)) is not None:
            rest, ones = quotient, ones + 1
            candidate = cls(ones, IntegerTaps.of(np.array(rest, np.int64)))
            if candidate.passes < best.passes:
                best = candidate
        return best


def _without_one_plus_z(coefficients: list[int]) -> list[int] | None:
    """``coefficients`` (of ``z**0, z**1, ...``) divided by ``1 + z``, or None if it does not divide.

    >>> _without_one_plus_z([1, 2, 1]), _without_one_plus_z([-1, 0, 1]), _without_one_plus_z([1, 0, 1])
    ([1, 1], [-1, 1], None)
    """
    quotient, carry = [], 0
    for value in coefficients[:-1]:
        carry = value - carry
        quotient.append(carry)
    return quotient if coefficients[-1] == carry else None


@dataclass(frozen=True)
class IntegerResponse:
    """How one matrix of a kernel is computed: as two 1-D passes or as 2-D taps."""

    kernel: IntegerKernel
    column: Pass1D | None  # separable: the vertical pass
    row: Pass1D | None  # separable: the horizontal pass
    taps: IntegerTaps  # the 2-D taps, for a kernel that is not separable or cheaper so
    passes: float

    @classmethod
    def of(cls, kernel: IntegerKernel) -> IntegerResponse:
        """The cheaper of the separable and the 2-D form of ``kernel``."""
        taps = IntegerTaps.of(kernel.taps)
        if kernel.factors is not None:
            column, row = (Pass1D.of(f) for f in kernel.factors)
            passes = column.passes + row.passes
            # The vertical pass runs over the padded width, about the output's at stride 1.
            if passes < taps.passes:
                return cls(kernel, column, row, taps, float(passes))
        return cls(kernel, None, None, taps, float(taps.passes))


@dataclass(frozen=True)
class IntegerPlan:
    """The integer engine's plan for a kernel (or a set of same-shaped ones) and an image."""

    responses: tuple[IntegerResponse, ...]
    combine: str
    dtype: np.dtype[Any]  # the accumulator: int16 or int32
    cost: float  # in the cost model's unit (passes over a float32 sample) per output sample

    @property
    def integer_combine(self) -> bool:
        """Whether ``max`` or ``sum`` combines the responses in integers (scale 1 throughout)."""
        return self.combine in ("max", "sum") and all(r.kernel.scale == 1 for r in self.responses)

    def run(
        self,
        pixels: NDArray[Any],
        geometry: Geometry,
        maps: BorderMaps,
        out: NDArray[Any],
        *,
        transform: Callable[[Float32Array], NDArray[Any]] | None = None,
        threads: int = 1,
        strip_rows: int | None = None,
    ) -> None:
        """Filter ``pixels`` (``(H, W)`` or ``(H, W, C)``, uint8 or uint16) into ``out``.

        ``out`` is ``geometry.out_shape + pixels.shape[2:]``: float32 responses, or ``transform``
        of them (float32 strips mapped pixel by pixel) in ``out``'s dtype. ``maps`` pads the
        image as ``geometry.pad`` says. Strips of ``strip_rows`` output rows (default: about
        :data:`STRIP_BYTES` of buffers) run on up to ``threads`` threads.
        """
        height, width = pixels.shape[:2]
        channels = int(np.prod(pixels.shape[2:], dtype=np.int64))
        out_h, out_w = geometry.out_shape
        if out.size == 0:
            return
        source = np.ascontiguousarray(pixels).reshape(height, width, channels)
        target = out.reshape(out_h, out_w, channels)
        step = strip_rows or self.strip_rows(geometry, width, channels)

        def band(o0: int, o1: int) -> None:
            _Strips(self, source, geometry, maps, target, transform, min(step, o1 - o0)).run(o0, o1)

        run_bands(band, out_h, threads, self.work(out_h * out_w * channels), align=step)

    def run_padded(self, padded: NDArray[Any], geometry: Geometry, out: Float32Array) -> None:
        """:meth:`run` on one thread over rows padded already, in the image's own samples: a band of
        an image filtered in pieces. ``geometry`` is the band's (its ``pad`` is taken as done)."""
        unpadded = replace(geometry, pad=(0, 0, 0, 0))
        self.run(padded, unpadded, BorderMaps.of(padded.shape[:2], (0, 0, 0, 0), "zero"), out)

    def work(self, samples: int) -> float:
        """The work figure of ``samples`` output samples for :func:`~convcli.core.threads.run_bands`."""
        return float(samples) * self.cost * THREAD_WORK_FACTOR

    def strip_rows(self, geometry: Geometry, width: int, channels: int) -> int:
        """Output rows per strip so that the strip's padded rows fill about :data:`STRIP_BYTES`."""
        padded = (width + geometry.pad[2] + geometry.pad[3]) * channels * self.dtype.itemsize
        return int(max(8, min(geometry.out_shape[0], STRIP_BYTES // max(1, padded * geometry.stride[0]))))


def plan_integer(
    kernels: Sequence[NDArray[np.floating]],
    sample_type: np.dtype[Any],
    border: str,
    border_value: float,
    combine: str = "single",
) -> IntegerPlan | None:
    """The integer engine's plan for ``kernels`` (combined by ``combine``) on an image of
    ``sample_type``, or None where its results could differ from the float engines'.

    >>> sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    >>> plan = plan_integer([sobel, sobel.T], np.dtype(np.uint8), "reflect", 0.0, "magnitude")
    >>> plan.dtype, plan.cost
    (dtype('int16'), 4.5)
    >>> plan_integer([sobel], np.dtype(np.float32), "reflect", 0.0) is None
    True
    """
    if sample_type.type not in SAMPLE_TYPES:
        return None
    largest = int(np.iinfo(sample_type).max)
    if resolve_border(border) == "constant":
        # The border is padded in the accumulator's integers: it must be one of them.
        if border_value != round(border_value) or abs(border_value) > largest:
            return None
    found = [integer_kernel(k) for k in kernels]
    if not found or any(k is None for k in found):
        return None
    integer_kernels = [k for k in found if k is not None]
    weights = [k.weight for k in integer_kernels]
    total = sum(weights) if combine == "sum" else max(weights)
    bound = total * largest
    if bound >= EXACT_LIMIT:
        return None
    dtype = np.dtype(np.int16 if max(bound, largest) <= INT16_MAX else np.int32)
    responses = tuple(IntegerResponse.of(k) for k in integer_kernels)
    integer_passes = 1.0 + sum(r.passes for r in responses)  # the gather, then every response
    if len(responses) > 1 and combine in ("max", "sum"):
        integer_passes += len(responses) - 1
    # Every response the float combination needs is converted to float32; else only the result.
    floats = len(responses) if combine == "magnitude" or any(k.scale != 1 for k in integer_kernels) else 1
    cost = PASS_COST[dtype] * integer_passes + CONVERSION_COST * floats
    return IntegerPlan(responses, combine, dtype, cost)


class _Strips:
    """One band's buffers, reused strip after strip, and the arithmetic of a strip."""

    def __init__(
        self,
        plan: IntegerPlan,
        source: NDArray[Any],
        geometry: Geometry,
        maps: BorderMaps,
        out: NDArray[Any],
        transform: Callable[[Float32Array], NDArray[Any]] | None,
        rows: int,
    ) -> None:
        self.plan, self.source, self.geometry, self.maps, self.out, self.transform = (
            plan,
            source,
            geometry,
            maps,
            out,
            transform,
        )
        self.rows = rows
        channels = source.shape[2]
        out_w = geometry.out_shape[1]
        padded_w = source.shape[1] + geometry.pad[2] + geometry.pad[3]
        dtype = plan.dtype
        self.padded = np.empty(
            ((rows - 1) * geometry.stride[0] + geometry.dilated_kernel_shape[0], padded_w, channels), dtype
        )
        separable = any(r.column is not None for r in plan.responses)
        self.vertical = np.empty((rows, padded_w, channels), dtype) if separable else None
        # Two buffers for chains of sums of neighbours (see Pass1D), each as large as the padded rows.
        chains = [c for r in plan.responses for c in (r.column, r.row) if c is not None]
        sums = self.padded.size if any(c.ones for c in chains) else 0
        self.sums = (np.empty(sums, dtype), np.empty(sums, dtype))
        several = len(plan.responses) > 1
        self.first = np.empty((rows, out_w, channels), dtype)
        self.other = np.empty((rows, out_w, channels), dtype) if several else None
        self.scratch = np.empty(max(rows * out_w, rows * padded_w if separable else 0) * channels, dtype)
        # Responses go straight into float32 output; a transform needs them in a strip of their own.
        self.direct = transform is None and out.dtype == np.float32
        self.floats = None if self.direct else np.empty((rows, out_w, channels), np.float32)
        self.spare = np.empty((rows, out_w, channels), np.float32) if several and not plan.integer_combine else None

    def run(self, o0: int, o1: int) -> None:
        """Filter output rows ``o0:o1``, strip by strip."""
        (sr, _), extent = self.geometry.stride, self.geometry.dilated_kernel_shape[0]
        for r0 in range(o0, o1, self.rows):
            check_abandoned()  # Ctrl-C ends the other threads' bands within a strip
            n = min(o1, r0 + self.rows) - r0
            p0 = r0 * sr
            padded = self.maps.gather(self.source, p0, (r0 + n - 1) * sr + extent, self.padded[: (n - 1) * sr + extent])
            self.strip(padded, n, self.out[r0 : r0 + n])

    def strip(self, padded: IntArray, n: int, out: NDArray[Any]) -> None:
        """Filter one strip of ``n`` output rows from its ``padded`` rows into ``out``."""
        plan = self.plan
        first = self.first[:n]
        self.response(plan.responses[0], padded, first)
        result = out if self.floats is None else self.floats[:n]
        if len(plan.responses) == 1 or plan.integer_combine:
            if len(plan.responses) > 1:
                assert self.other is not None
                other = self.other[:n]
                combine = np.maximum if plan.combine == "max" else np.add
                for response in plan.responses[1:]:
                    self.response(response, padded, other)
                    combine(first, other, out=first)
            self.to_float(first, plan.responses[0].kernel.scale, result)
        else:
            assert self.other is not None and self.spare is not None
            other, spare = self.other[:n], self.spare[:n]
            # bands.combine_responses's arithmetic, in its order, on the exact responses.
            self.to_float(first, plan.responses[0].kernel.scale, result)
            if plan.combine == "magnitude":
                np.multiply(result, result, out=result)
            for response in plan.responses[1:]:
                self.response(response, padded, other)
                self.to_float(other, response.kernel.scale, spare)
                if plan.combine == "magnitude":
                    np.add(result, np.multiply(spare, spare, out=spare), out=result)
                else:
                    (np.maximum if plan.combine == "max" else np.add)(result, spare, out=result)
            if plan.combine == "magnitude":
                np.sqrt(result, out=result)
        if self.transform is not None:
            out[...] = self.transform(result)
        elif result is not out:
            out[...] = result

    @staticmethod
    def to_float(values: IntArray, scale: np.float32, out: Float32Array) -> Float32Array:
        """``values * scale`` in float32 (exact integers, then one rounding of the product)."""
        np.copyto(out, values)
        if scale != 1:  # a second pass, over the strip just written: faster than a mixed-type multiply
            np.multiply(out, scale, out=out)
        return out

    def response(self, response: IntegerResponse, padded: IntArray, out: IntArray) -> None:
        """One matrix's integer response for the strip, written into ``out`` ``(n, Wo, C)``."""
        (sr, sc), (dr, dc) = self.geometry.stride, self.geometry.dilation
        n, out_w = out.shape[:2]
        kw = response.kernel.taps.shape[1]
        rows_span = (n - 1) * sr + 1
        acc = _columns(out, 0, out_w, 1) if sc == 1 else out
        scratch = self.scratch[: acc.size].reshape(acc.shape)
        if response.column is not None and response.row is not None:
            assert self.vertical is not None
            vertical = self.vertical[:n]
            self.down(response.column, padded, vertical.reshape(n, -1))
            self.across(response.row, vertical, acc, out_w)
            return

        def tap(t: int) -> IntArray:
            i, j = divmod(t, kw)
            return _columns(padded[i * dr : i * dr + rows_span : sr], j * dc, out_w, sc)

        response.taps.apply(acc, tap, scratch)

    def down(self, chain: Pass1D, padded: IntArray, out: IntArray) -> None:
        """The vertical pass over every padded column: ``out`` is ``(n, padded width * C)``."""
        sr, dr = self.geometry.stride[0], self.geometry.dilation[0]
        n = out.shape[0]
        span = (n - 1) * sr + 1
        rows = padded.reshape(padded.shape[0], -1)
        for k in range(chain.ones):
            count = rows.shape[0] - dr
            target = self.sums[k % 2][: count * rows.shape[1]].reshape(count, rows.shape[1])
            np.add(rows[:count], rows[dr : dr + count], out=target)
            rows = target
        source = rows
        chain.rest.apply(
            out, lambda i: source[i * dr : i * dr + span : sr], self.scratch[: out.size].reshape(out.shape)
        )

    def across(self, chain: Pass1D, vertical: IntArray, out: IntArray, out_w: int) -> None:
        """The horizontal pass of the vertical pass's ``(n, padded width, C)`` into ``out``."""
        sc, dc = self.geometry.stride[1], self.geometry.dilation[1]
        n, width, channels = vertical.shape
        columns = vertical
        for k in range(chain.ones):
            width -= dc
            target = self.sums[k % 2][: n * width * channels].reshape(n, width, channels)
            np.add(_columns(columns, 0, width, 1), _columns(columns, dc, width, 1), out=_columns(target, 0, width, 1))
            columns = target
        source = columns
        chain.rest.apply(
            out, lambda j: _columns(source, j * dc, out_w, sc), self.scratch[: out.size].reshape(out.shape)
        )


def _columns(rows: NDArray[Any], start: int, count: int, step: int) -> NDArray[Any]:
    """Columns ``start, start + step, ...`` (``count`` of them) of ``(R, W, C)`` rows; at step 1
    as ``(R, count * C)``, since one long row vectorises better than a short channel axis."""
    if step == 1:
        channels = rows.shape[2]
        return rows.reshape(rows.shape[0], -1)[:, start * channels : (start + count) * channels]
    return rows[:, start : start + (count - 1) * step + 1 : step]
