"""Alpha-weighted filtering: colour premultiplied by alpha, and back.

A blur averages its neighbours. Averaged as they are, the colour hidden under transparent
pixels (often black) bleeds into the visible shape and darkens its edge. Averaged with alpha as
their weight, it cannot: filter ``colour * alpha`` and ``alpha`` with the same kernel, then divide
the one by the other. This module holds the arithmetic, on the 0..255 scale of the pipeline.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcli.errors import ParameterError

# How far the taps' sum may be from 1 and still count as 1: a kernel normalised in floating point
# (a Gaussian divided by its sum) is off by a few units in the last place.
_SUM_TOLERANCE = 1e-6


def stack_alpha(colour: ArrayLike, alpha: ArrayLike, *, premultiplied: bool) -> NDArray[np.float32]:
    """Stack colour and alpha into one float32 ``(H, W, C + 1)`` array, alpha last.

    With ``premultiplied=True`` the colour is multiplied by ``alpha / 255`` first. Both are on the
    0..255 scale; colour is ``(H, W)`` or ``(H, W, C)`` and alpha ``(H, W)``.

    >>> stack_alpha([[200, 10]], [[255, 51]], premultiplied=True).tolist()
    [[[200.0, 255.0], [2.0, 51.0]]]
    """
    pixels = np.asarray(colour, dtype=np.float32)
    weights = np.asarray(alpha, dtype=np.float32)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.ndim != 3 or weights.shape != pixels.shape[:2]:
        raise ParameterError(
            f"`alpha` must be (H, W) beside colour of (H, W) or (H, W, C), got {weights.shape} and {pixels.shape}"
        )
    stacked = np.empty((*pixels.shape[:2], pixels.shape[2] + 1), dtype=np.float32)
    if premultiplied:
        # colour * alpha is an exact integer for 8-bit input, so an opaque pixel comes back exact.
        np.multiply(pixels, weights[..., None], out=stacked[..., :-1])
        np.divide(stacked[..., :-1], np.float32(255.0), out=stacked[..., :-1])
    else:
        stacked[..., :-1] = pixels
    stacked[..., -1] = weights
    return stacked


def split_alpha(
    stacked: NDArray[np.float32], *, premultiplied: bool, gray: bool
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Undo :func:`stack_alpha` on a filtered stack: ``(colour, alpha)``, colour ``(H, W)`` if ``gray``.

    With ``premultiplied=True`` the colour is divided by ``alpha / 255`` where alpha is above 0,
    and is 0 where it is not (no colour is left to recover there). Alpha is returned as filtered,
    unclipped: a sharpening kernel can push it beyond 0..255, and the colour is divided by that
    very value, so the ratio of the two stays the filter's.

    >>> colour, alpha = split_alpha(np.float32([[[2.0, 51.0], [5.0, 0.0]]]), premultiplied=True, gray=True)
    >>> colour.tolist(), alpha.tolist()
    ([[10.0, 0.0]], [[51.0, 0.0]])
    """
    alpha = np.array(stacked[..., -1])
    colour = stacked[..., :-1]
    if premultiplied:
        with np.errstate(all="ignore"):  # infinities from an overflowing filter stay infinite, as elsewhere
            visible = alpha > 0
            ratio = np.divide(colour, alpha[..., None], out=np.zeros_like(colour), where=visible[..., None])
            colour = np.multiply(ratio, np.float32(255.0), out=ratio)
    else:
        colour = np.array(colour)
    return (colour[..., 0] if gray else colour), alpha


def sums_to_one(matrix: ArrayLike) -> bool:
    """Whether a kernel's taps sum to 1, as a weighted mean's do (blurs, sharpening).

    >>> sums_to_one(np.full((3, 3), 1 / 9)), sums_to_one([[-1, 0, 1]])
    (True, False)
    """
    taps = np.asarray(matrix, dtype=np.float64)
    scale = max(1.0, float(np.abs(taps).sum()))
    return bool(abs(float(taps.sum()) - 1.0) <= _SUM_TOLERANCE * scale)
