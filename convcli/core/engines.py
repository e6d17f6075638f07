"""Convolution engines. Each takes an already padded float32 image and computes the
cross-correlation described by a :class:`~convcli.core.geometry.Geometry`.

Every engine has the signature ``engine(padded, kernel, geometry) -> float32 array`` of shape
``geometry.out_shape + padded.shape[2:]``, and all engines agree within float32 rounding.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from convcli.core.geometry import Geometry

Engine = Callable[[NDArray[np.float32], NDArray[np.float32], Geometry], NDArray[np.float32]]

# Bytes of accumulator + scratch per strip: small enough to stay in a 1-2 MiB L2 cache, so the
# repeated multiply-add passes over a strip read from cache rather than main memory.
_STRIP_BYTES = 512 * 1024


def _strip_rows(out_width: int, channels: int) -> int:
    row_bytes = max(1, out_width * channels * 4 * 2)  # accumulator + scratch row
    return max(1, _STRIP_BYTES // row_bytes)


def correlate_direct(
    padded: NDArray[np.float32], kernel: NDArray[np.float32], geometry: Geometry
) -> NDArray[np.float32]:
    """Shift-and-add cross-correlation over row strips.

    For every non-zero tap ``(i, j)`` the strided, dilated view of the padded image that the
    tap sees is multiplied by the tap and added to the accumulator: the loops run over taps
    and strips, never over pixels. Zero taps are skipped.
    """
    out_h, out_w = geometry.out_shape
    (sr, sc), (dr, dc) = geometry.stride, geometry.dilation
    extra = padded.shape[2:]
    channels = int(np.prod(extra)) if extra else 1
    out = np.zeros((out_h, out_w, *extra), dtype=np.float32)
    taps = [(i, j, np.float32(kernel[i, j])) for i, j in zip(*np.nonzero(kernel))]
    if not taps or out_h == 0 or out_w == 0:
        return out
    col_stop = (out_w - 1) * sc + 1
    step = _strip_rows(out_w, channels)
    scratch_full = np.empty((min(step, out_h), out_w, *extra), dtype=np.float32)
    for r0 in range(0, out_h, step):
        r1 = min(out_h, r0 + step)
        acc = out[r0:r1]
        scratch = scratch_full[: r1 - r0]
        first = True
        for i, j, weight in taps:
            row_start = r0 * sr + i * dr
            view = padded[row_start : row_start + (r1 - r0 - 1) * sr + 1 : sr, j * dc : j * dc + col_stop : sc]
            if first:
                np.multiply(view, weight, out=acc)
                first = False
            else:
                np.multiply(view, weight, out=scratch)
                np.add(acc, scratch, out=acc)
    return out


ENGINES: dict[str, Engine] = {"direct": correlate_direct}


def choose_engine(kernel: NDArray[np.float32], geometry: Geometry, method: str = "auto") -> Engine:
    """Pick the engine for ``method``; ``auto`` chooses from the kernel and image size."""
    if method == "auto":
        return correlate_direct
    return ENGINES[method]
