"""The FFT engine: overlap-save over tiles with ``numpy.fft.rfft2`` in float32.

Each tile of the padded image is transformed, multiplied by the spectrum of the flipped
(and, for dilation, zero-stuffed) kernel, and transformed back; the part of the circular result
that did not wrap around is exactly the cross-correlation there. Tiles keep memory bounded
(at most :data:`MAX_TILE_ELEMENTS` samples per tile and thread) and their sizes are 5-smooth,
where FFTs are fast. Stride is applied by keeping every stride-th result, so the cost does not
fall with stride; the cost model sends strided work to the other engines.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
from numpy.typing import NDArray

from convcli.core.direct import hwc_view
from convcli.core.engine import Engine, Float32Array, as_hwc, channel_count
from convcli.core.geometry import Geometry
from convcli.core.threads import check_abandoned, run_bands

# Samples (rows x cols x channels) of one tile: 1.5 MiB real plus as much spectrum per thread,
# whatever the image size (an RGB tile of 256 x 512). Larger tiles transform fewer overlapping
# samples but ran slower per output sample in benchmarks/bench_core.py (--engines), 15x15 to
# 63x63 kernels at 1080p: a tile, its spectrum and the result no longer stay in cache.
MAX_TILE_ELEMENTS = 393_216
# Smallest tile side considered, unless twice the kernel is more or the whole image is less:
# smaller tiles pay the per-call and per-tile overhead on too few samples.
MIN_TILE = 256

# Cost of an FFT round trip in "passes" (one NumPy ufunc pass over one float32 element in a
# cache-sized strip, the cost model's unit): FFT_PASSES_PER_LOG * log2(n) per sample plus a
# fixed cost per tile and channel (copies, planning, Python). Both are fitted to the forced-FFT
# timings of benchmarks/bench_core.py --engines (15x15 to 31x31 kernels on its 1920x1080 RGB
# image); the per-tile term is why small tiles lose.
FFT_PASSES_PER_LOG = 2.7
FFT_TILE_OVERHEAD_PASSES = 600_000.0


@lru_cache(maxsize=512)
def next_fast_len(n: int) -> int:
    """Smallest 5-smooth integer (only prime factors 2, 3, 5) that is >= ``n``.

    >>> next_fast_len(1021), next_fast_len(3870)
    (1024, 3888)
    """
    if n <= 6:
        return max(1, n)
    best = 2 * n  # a power of two always lies in [n, 2n)
    power5 = 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            # Smallest power of two times power35 that reaches n.
            candidate = power35 << max(0, math.ceil(math.log2(n / power35)))
            while candidate // 2 >= n and candidate % 2 == 0:
                candidate //= 2
            if candidate >= n:
                best = min(best, candidate)
            power35 *= 3
        power5 *= 5
    return best


def _is_tile_friendly(n: int) -> bool:
    """True for 2^a, 3 * 2^a and 5 * 2^a: tile sizes that transform faster than other 5-smooth
    sizes such as 648 or 750."""
    while n % 2 == 0:
        n //= 2
    return n in (1, 3, 5)


def _fast_lengths(low: int, high: int) -> list[int]:
    """Candidate tile sizes from ``low`` up to the first 5-smooth size >= ``high``.

    Sizes below ``high`` are restricted to :func:`_is_tile_friendly` ones; the last (the whole
    image in one tile) is any 5-smooth size.
    """
    sizes = []
    n = next_fast_len(max(1, low))
    while n < high:
        if _is_tile_friendly(n):
            sizes.append(n)
        n = next_fast_len(n + 1)
    sizes.append(n)
    return sizes


@dataclass(frozen=True)
class TilePlan:
    """Tile sizes for overlap-save and the estimated cost per output sample."""

    tile: tuple[int, int]
    out_per_tile: tuple[int, int]
    passes: float


def plan_tiles(geometry: Geometry, channels: int = 1) -> TilePlan:
    """Choose 5-smooth tile sizes minimising the modelled FFT cost of the whole image."""
    out_h, out_w = geometry.out_shape
    (sr, sc) = geometry.stride
    ekh, ekw = geometry.dilated_kernel_shape
    need_h, need_w = (out_h - 1) * sr + ekh, (out_w - 1) * sc + ekw
    budget = max(1, MAX_TILE_ELEMENTS // max(1, channels))
    best: TilePlan | None = None
    # Tiles no larger than the image (rounded up to a fast size) and at least twice the kernel,
    # unless the image itself is smaller. Long thin tiles and tiles under MIN_TILE are slow
    # (per-call overhead, strided column transforms) however the model rates them.
    heights = _fast_lengths(min(need_h, max(2 * ekh, MIN_TILE)), need_h)
    widths = _fast_lengths(min(need_w, max(2 * ekw, MIN_TILE)), need_w)
    for th in heights:
        for tw in widths:
            # The smallest candidate is always allowed, so there is always a plan; it is at
            # most twice the kernel (or 256) per side, so memory stays bounded by the kernel.
            smallest = (th, tw) == (heights[0], widths[0])
            if th * tw > budget and not smallest:
                continue
            # Too long and thin, unless the short side already spans the whole image.
            short_side_is_whole = (th == heights[-1]) if th <= tw else (tw == widths[-1])
            if max(th, tw) > 4 * min(th, tw) and not (short_side_is_whole or smallest):
                continue
            rows_per = (min(th, need_h) - ekh) // sr + 1
            cols_per = (min(tw, need_w) - ekw) // sc + 1
            if rows_per < 1 or cols_per < 1:
                continue
            tiles = math.ceil(out_h / rows_per) * math.ceil(out_w / cols_per)
            samples = th * tw
            cost = tiles * (samples * FFT_PASSES_PER_LOG * math.log2(max(samples, 2)) + FFT_TILE_OVERHEAD_PASSES)
            passes = cost / (out_h * out_w)
            if best is None or passes < best.passes:
                best = TilePlan((th, tw), (rows_per, cols_per), passes)
    assert best is not None  # the smallest candidate always fits its kernel
    return best


def dilated_flipped_kernel(kernel: Float32Array, dilation: tuple[int, int]) -> Float32Array:
    """The kernel with ``dilation - 1`` zeros between taps, flipped for convolution by FFT."""
    kh, kw = kernel.shape
    dr, dc = dilation
    spread = np.zeros((dr * (kh - 1) + 1, dc * (kw - 1) + 1), dtype=np.float32)
    spread[::dr, ::dc] = kernel
    return np.ascontiguousarray(spread[::-1, ::-1])


@dataclass(frozen=True)
class FftPlan:
    """The FFT engine's plan: the tile sizes for the planned geometry and channel count."""

    kernel: Float32Array
    geometry: Geometry
    channels: int
    tiles: TilePlan

    @property
    def cost(self) -> float:
        """Modelled passes per output sample of the planned tiles."""
        return self.tiles.passes

    def run(self, padded: Float32Array, geometry: Geometry, *, threads: int = 1) -> Float32Array:
        """Cross-correlate tile by tile (see :meth:`.EnginePlan.run`).

        ``padded`` may also be an integer image (8 or 16 bits), converted to float32 tile by
        tile. The best tiles depend on the number of output rows, so a band (or an image with another
        channel count) gets tiles of its own: tiles as tall as a whole image would waste work
        on a short band.
        """
        # An integer image is converted tile by tile, as each tile is copied in.
        source = as_hwc(padded) if padded.dtype.kind == "f" else hwc_view(padded)
        channels = source.shape[2]
        out_h, out_w = geometry.out_shape
        if channels == 0:
            return np.empty(geometry.out_shape + padded.shape[2:], dtype=np.float32)
        same = (geometry, channels) == (self.geometry, self.channels)
        tiles = self.tiles if same else plan_tiles(geometry, channels)
        th, tw = tiles.tile
        # NumPy's float32 transforms are several times faster with a scale factor than without
        # one (norm="backward" forward and norm="forward" inverse are the unscaled ones). So both
        # directions run scaled (forward by 1/n, inverse by 1/n) and the kernel spectrum carries
        # the compensating factor n, computed once in float64.
        flipped = dilated_flipped_kernel(self.kernel, geometry.dilation).astype(np.float64)
        spectrum = (np.fft.rfft2(flipped, s=(th, tw)) * (th * tw)).astype(np.complex64)[None]
        out = np.empty((out_h, out_w, channels), dtype=np.float32)
        work = out_h * out_w * channels * tiles.passes
        # Threads share out whole tiles in raster order, not rows: an image only one or three
        # tiles tall still splits evenly, and every tile is the same whatever the thread count,
        # so the result is too.
        count = math.ceil(out_h / tiles.out_per_tile[0]) * math.ceil(out_w / tiles.out_per_tile[1])
        run_bands(partial(_fft_tiles, source, spectrum, geometry, tiles, out), count, threads, work)
        return out.reshape(geometry.out_shape + padded.shape[2:])


def _fft_tiles(
    source: Float32Array, spectrum: NDArray[np.complex64], geometry: Geometry, tiles: TilePlan, out: Float32Array,
    t0: int, t1: int,
) -> None:
    """Overlap-save for tiles ``t0:t1`` of the output, counted in raster order, one after another."""
    out_h, out_w = geometry.out_shape
    channels = source.shape[2]
    (sr, sc) = geometry.stride
    ekh, ekw = geometry.dilated_kernel_shape
    th, tw = tiles.tile
    rows_per, cols_per = tiles.out_per_tile
    tiles_across = math.ceil(out_w / cols_per)
    # Per-thread buffers reused for every tile: fresh multi-MiB arrays per tile would cost
    # page faults comparable to the transforms themselves. Channels first, so each 2-D
    # transform runs over contiguous rows.
    tile = np.zeros((channels, th, tw), dtype=np.float32)
    freq = np.empty((channels, th, tw // 2 + 1), dtype=np.complex64)
    result = np.empty((channels, th, tw), dtype=np.float32)
    for index in range(t0, t1):
        check_abandoned()
        row, col = divmod(index, tiles_across)
        r0, c0 = row * rows_per, col * cols_per
        nr = min(out_h, r0 + rows_per) - r0
        in_r0, in_rows = r0 * sr, (nr - 1) * sr + ekh
        nc = min(out_w, c0 + cols_per) - c0
        in_c0, in_cols = c0 * sc, (nc - 1) * sc + ekw
        if in_rows < th or in_cols < tw:
            tile.fill(0)  # edge tiles: the zero padding is what makes overlap-save exact
        block = source[in_r0 : in_r0 + in_rows, in_c0 : in_c0 + in_cols]
        # One 2-D copy per channel: NumPy copies a plane with a stride-C side much faster
        # than it transposes a whole (H, W, C) block at once.
        for channel in range(channels):
            tile[channel, :in_rows, :in_cols] = block[:, :, channel]
        # NumPy's stubs type ``out=`` as complex128/float64 only; the transforms take and
        # return complex64/float32 buffers all the same (pocketfft computes in float32).
        np.fft.rfft2(tile, out=freq, norm="forward")  # type: ignore[arg-type]
        np.multiply(freq, spectrum, out=freq)
        # NumPy's irfft2 ignores ``out=``: it calls irfftn with out=None, returns a new array
        # and leaves ``out`` unwritten (numpy gh-30909, fixed by numpy PR 30910; NumPy 2.4.6
        # still does). The two 1-D passes by hand write into the reused buffers instead.
        np.fft.ifft(freq, axis=-2, out=freq)  # type: ignore[arg-type]
        np.fft.irfft(freq, n=tw, axis=-1, out=result)  # type: ignore[arg-type]
        # Outputs before index (extent - 1) wrapped around the tile; the rest is exact.
        kept = result[:, ekh - 1 : ekh - 1 + (nr - 1) * sr + 1 : sr, ekw - 1 : ekw - 1 + (nc - 1) * sc + 1 : sc]
        target = out[r0 : r0 + nr, c0 : c0 + nc]
        for channel in range(channels):
            target[:, :, channel] = kept[channel]


def plan_fft(kernel: NDArray[np.floating], geometry: Geometry, channels: int = 1) -> FftPlan:
    """Plan the FFT engine: tile sizes for this geometry and channel count (:func:`plan_tiles`).

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((100, 100), (31, 31), "same", 1, 1)
    >>> plan_fft(np.ones((31, 31), np.float32), g).tiles.tile  # the padded 130x130 in one tile
    (135, 135)
    """
    return FftPlan(np.asarray(kernel, dtype=np.float32), geometry, channels, plan_tiles(geometry, channels))


def correlate_fft(
    padded: Float32Array, kernel: Float32Array, geometry: Geometry, *, threads: int = 1
) -> Float32Array:
    """Cross-correlate by overlap-save FFT over bounded tiles.

    ``kernel`` is 2-D float32; the other arguments are those of :meth:`.EnginePlan.run`. The
    result equals the direct engine's within float32 FFT rounding (about 1e-6 of the output
    scale).

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((1, 4), (1, 2), "valid", 1, 1)
    >>> out = correlate_fft(np.array([[1, 2, 3, 4]], np.float32), np.array([[1, 10]], np.float32), g)
    >>> np.round(out, 3)
    array([[21., 32., 43.]], dtype=float32)
    """
    return plan_fft(kernel, geometry, channel_count(padded.shape)).run(padded, geometry, threads=threads)


FFT_ENGINE = Engine("fft", plan_fft, "overlap-save FFT over bounded tiles; large kernels that are not low-rank")
