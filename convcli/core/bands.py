"""Filtering in horizontal bands, so that memory stays bounded for large images.

Instead of padding the whole image (a full-size float32 copy), each band of output rows is
computed from just the input rows it needs, padded on the fly: the border modes are index
maps (``reflect`` maps row -1 to row 1, ``wrap`` maps it to row H-1, ...), so a band's padded
rows are one fancy-indexing gather from the image, in its own dtype, converted to float32
band by band. A uint8 image therefore never exists as a full float32 copy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any, Unpack

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcli.core.border import BorderMaps, border_index
from convcli.core.convolve import ConvolveOptions, integer_plan, prepare
from convcli.core.engine import channel_count
from convcli.core.engines import plan_engine
from convcli.core.geometry import Geometry
from convcli.core.threads import run_bands
from convcli.errors import ParameterError

__all__ = ["COMBINE_RULES", "band_rows", "border_index", "combine_responses", "filter_banded", "iter_bands"]

COMBINE_RULES: tuple[str, ...] = ("single", "magnitude", "max", "sum")

# Target size of one band's float32 working set (padded input + responses): a few MiB keeps
# the temporaries small next to a 4K image (100 MiB as float32) without per-band overhead
# dominating.
_BAND_BYTES = 16 * 1024 * 1024


def band_rows(geometry: Geometry, width: int, channels: int, matrices: int = 1) -> int:
    """How many output rows one band holds so that its working set is about ``_BAND_BYTES``."""
    kh = geometry.dilated_kernel_shape[0]
    padded_width = width + geometry.pad[2] + geometry.pad[3]
    per_row = 4 * channels * (padded_width * geometry.stride[0] + geometry.out_shape[1] * (matrices + 1))
    rows = max(1, _BAND_BYTES // max(1, per_row) - kh // max(1, geometry.stride[0]))
    return int(min(rows, geometry.out_shape[0]))


# Bands are dealt out to threads in contiguous runs, so their count is rounded up to a multiple of
# this (divisible by 1, 2, 3, 4 and 6 threads): 5 bands on two threads would run 3 against 2.
# The count does not depend on the thread count, so neither do the results.
_BAND_MULTIPLE = 12


def balanced_rows(geometry: Geometry, rows: int) -> int:
    """``rows`` per band, lowered so that the bands come in a multiple of :data:`_BAND_MULTIPLE`,
    unless that would make a band shorter than four times the kernel's reach (its halo of input
    rows would then cost more than the balance gains).

    >>> from convcli.core.geometry import resolve_geometry
    >>> balanced_rows(resolve_geometry((1080, 1920), (3, 3), "same", 1, 1), 240)
    90
    >>> balanced_rows(resolve_geometry((1080, 1920), (61, 61), "same", 1, 1), 240)
    240
    """
    height = geometry.out_shape[0]
    bands = -(-height // max(1, rows))
    balanced = -(-bands // _BAND_MULTIPLE) * _BAND_MULTIPLE
    even = -(-height // balanced)
    reach = geometry.dilated_kernel_shape[0] // geometry.stride[0]
    return even if even >= 4 * reach else rows


def iter_bands(
    image: NDArray[Any],
    geometry: Geometry,
    border: str,
    border_value: float,
    rows_per_band: int,
    *,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[int, int, NDArray[np.float32], Geometry]]:
    """Yield ``(first, stop, padded_band, band_geometry)`` for consecutive bands of output rows
    ``start..stop`` (default: all of them)."""
    maps = BorderMaps.of(image.shape[:2], geometry.pad, border, border_value)
    extent = geometry.dilated_kernel_shape[0]
    stride = geometry.stride[0]
    padded_width = image.shape[1] + geometry.pad[2] + geometry.pad[3]
    end = geometry.out_shape[0] if stop is None else stop
    for first in range(start, end, rows_per_band):
        last = min(end, first + rows_per_band)
        p0 = first * stride
        p1 = (last - 1) * stride + extent
        band = np.empty((p1 - p0, padded_width, *image.shape[2:]), dtype=np.float32)
        maps.gather(image, p0, p1, band)  # one pass: copy and convert to float32
        yield first, last, band, replace(geometry, out_shape=(last - first, geometry.out_shape[1]))


def combine_responses(
    responses: Iterable[NDArray[np.float32]], combine: str, *, overwrite: bool = False
) -> NDArray[np.float32]:
    """Combine the responses of a kernel set per pixel: ``magnitude``, ``max`` or ``sum``.

    ``responses`` is consumed one at a time, so a generator keeps at most two full responses in
    memory. ``overwrite=True`` lets the responses serve as scratch space (no temporaries).

    >>> combine_responses([np.float32([3.0]), np.float32([4.0])], "magnitude").tolist()
    [5.0]
    """
    with np.errstate(all="ignore"):  # squares beyond float32 are infinity, clipped by the mapping
        return _combine(iter(responses), combine, overwrite)


def _combine(iterator: Iterator[NDArray[np.float32]], combine: str, overwrite: bool) -> NDArray[np.float32]:
    first = next(iterator)
    if combine == "single":
        return first
    if combine == "magnitude":
        result = np.multiply(first, first, out=first if overwrite else None)
        for response in iterator:
            np.add(result, np.multiply(response, response, out=response if overwrite else None), out=result)
        return np.sqrt(result, out=result)
    result = first if overwrite else first.copy()
    operation = np.maximum if combine == "max" else np.add
    for response in iterator:
        operation(result, response, out=result)
    return result


def filter_banded(
    image: ArrayLike,
    matrices: Sequence[ArrayLike],
    *,
    combine: str = "single",
    transform: Callable[[NDArray[np.float32]], NDArray[Any]] | None = None,
    out_dtype: type | np.dtype = np.float32,
    rows_per_band: int | None = None,
    **options: Unpack[ConvolveOptions],
) -> NDArray[Any]:
    """Filter with one or more same-shaped kernels, combine their responses, band by band.

    Equal to ``combine(convolve(image, k, **options) for k in matrices)`` followed by
    ``transform``, where ``options`` are the keyword arguments of
    :func:`~convcli.core.convolve.convolve` (``padding``, ``border``, ... ``threads``), but
    the image is never copied whole: ``image`` may stay uint8 and only bands are float32.
    ``transform`` maps a float32 band to ``out_dtype`` (e.g. rounding and clipping to uint8);
    it must work pixel by pixel, since it sees one band at a time. ``threads`` threads (default:
    one per CPU; small images use one) each take a contiguous run of bands. A uint8 or uint16
    image and integer kernels go to the exact integer engine (:mod:`convcli.core.integer`) under
    ``method="auto"``, strip by strip (``rows_per_band`` rows each, if given), with the same results.

    >>> img = np.tile(np.array([0, 0, 9, 9], dtype=np.uint8), (3, 1))
    >>> filter_banded(img, [[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]])[1].tolist()
    [0.0, 36.0, 36.0, 0.0]
    """
    if combine not in COMBINE_RULES:
        raise ParameterError(f"`combine` must be one of {', '.join(COMBINE_RULES)}, got {combine!r}")
    request = prepare(image, matrices, options)
    pixels, kernels, geometry = request.pixels, request.kernels, request.geometry
    channels = channel_count(pixels.shape)
    rows = rows_per_band or balanced_rows(geometry, band_rows(geometry, pixels.shape[1], channels, len(kernels)))
    out = np.empty((*geometry.out_shape, *pixels.shape[2:]), dtype=out_dtype)
    integer = integer_plan(request, combine)
    if integer is not None:  # exact integers over strips of the image's own samples
        maps = BorderMaps.of(pixels.shape[:2], geometry.pad, request.border, request.border_value)
        integer.run(pixels, geometry, maps, out, transform=transform, threads=request.threads, strip_rows=rows_per_band)
        return out
    # Each kernel is planned once, for the whole image, and its plan runs band by band: a band
    # is the same convolution over fewer output rows (EnginePlan.run). Planning per band would
    # redo the SVD or tap grouping for every band and could pick another engine for the short
    # last band, so bands of one image could differ in rounding.
    plans = [plan_engine(k, geometry, request.method, channels) for k in kernels]
    starts = list(range(0, geometry.out_shape[0], rows))

    stopping = threading.Event()

    def run(b0: int, b1: int) -> None:
        # Bands are independent: each thread pads, filters, combines and maps its own bands.
        first_row = starts[b0]
        stop_row = starts[b1] if b1 < len(starts) else geometry.out_shape[0]
        try:
            for first, stop, band, band_geometry in iter_bands(
                pixels, geometry, request.border, request.border_value, rows, start=first_row, stop=stop_row
            ):
                if stopping.is_set():
                    return
                responses = [plan.run(band, band_geometry, threads=1) for plan in plans]
                combined = combine_responses(responses, combine, overwrite=True)
                out[first:stop] = transform(combined) if transform is not None else combined
        except BaseException:
            # Ctrl-C (raised in the calling thread) or an error: the other threads stop at their
            # next band instead of finishing the image while the caller waits for them.
            stopping.set()
            raise

    taps = sum(int(np.count_nonzero(k)) for k in kernels)
    work = float(out.size) * max(1, taps)
    run_bands(run, len(starts), request.threads, work)
    return out
