"""Independent reference implementations the tests compare convcli against.

They share no code with convcli: the border modes are written out as index rules here, and the
sums run in float64.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BORDERS = ("reflect", "symmetric", "edge", "wrap", "zero", "constant")

# scipy.ndimage's names for convcli's border modes ("constant" needs a cval as well).
SCIPY_MODES = {"reflect": "mirror", "symmetric": "reflect", "edge": "nearest", "wrap": "grid-wrap", "zero": "constant"}


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    """A float32 result within 1e-4 of the output scale of a float64 reference (one 8-bit grey
    level is 4e-3 of 255)."""
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * scale)


def source_index(i: np.ndarray, n: int, border: str) -> np.ndarray:
    """Map padded coordinates (may be negative or >= n) to source rows/columns; -1 means "constant"."""
    if border in ("zero", "constant"):
        return np.asarray(np.where((i >= 0) & (i < n), i, -1))
    if border == "edge":
        return np.asarray(np.clip(i, 0, n - 1))
    if border == "wrap":
        return np.asarray(np.mod(i, n))
    if border == "symmetric":  # b a | a b c | c b
        period = 2 * n
        j = np.mod(i, period)
        return np.asarray(np.where(j < n, j, period - 1 - j))
    if n == 1:  # reflect: c b | a b c | b a; one pixel reflects onto itself
        return np.zeros_like(i)
    period = 2 * (n - 1)
    j = np.mod(i, period)
    return np.asarray(np.where(j < n, j, period - j))


def pad_reference(image: np.ndarray, pad: tuple[int, int, int, int], border: str, value: float = 0.0) -> np.ndarray:
    """Pad the two leading axes by ``(top, bottom, left, right)`` with :func:`source_index`; float64."""
    image = np.asarray(image, dtype=np.float64)
    h, w = image.shape[:2]
    top, bottom, left, right = pad
    rows = source_index(np.arange(-top, h + bottom), h, border)
    cols = source_index(np.arange(-left, w + right), w, border)
    padded = image[np.ix_(np.maximum(rows, 0), np.maximum(cols, 0))].copy()
    padded[(rows[:, None] < 0) | (cols[None, :] < 0)] = value if border == "constant" else 0.0
    return padded


def correlate_reference(
    image: np.ndarray,
    kernel: np.ndarray,
    pad: tuple[int, int, int, int],
    border: str,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    value: float = 0.0,
) -> np.ndarray:
    """Cross-correlation in float64: every output an explicit window sum, vectorised over pixels."""
    padded = pad_reference(image, pad, border, value)
    kh, kw = kernel.shape
    (dr, dc), (sr, sc) = dilation, stride
    windows = sliding_window_view(padded, (dr * (kh - 1) + 1, dc * (kw - 1) + 1), axis=(0, 1))
    windows = windows[::sr, ::sc, ..., ::dr, ::dc]
    return np.asarray(np.einsum("...ij,ij->...", windows, np.asarray(kernel, dtype=np.float64)))


def naive_correlate(
    image: np.ndarray,
    kernel: np.ndarray,
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    value: float = 0.0,
) -> np.ndarray:
    """The textbook loop, generalised: constant padding, stride, dilation; float64.

    ``out[r, c] = sum(padded[r*sr + i*dr, c*sc + j*dc] * kernel[i, j])``, one pixel at a time.
    """
    padded = pad_reference(image, pad, "constant", value)
    kernel = np.asarray(kernel, dtype=np.float64)
    kh, kw = kernel.shape
    (sr, sc), (dr, dc) = stride, dilation
    out_h = (padded.shape[0] - dr * (kh - 1) - 1) // sr + 1
    out_w = (padded.shape[1] - dc * (kw - 1) - 1) // sc + 1
    out = np.zeros((out_h, out_w, *padded.shape[2:]))
    for r in range(out_h):
        for c in range(out_w):
            window = padded[r * sr : r * sr + dr * (kh - 1) + 1 : dr, c * sc : c * sc + dc * (kw - 1) + 1 : dc]
            if padded.ndim == 3:
                out[r, c] = np.einsum("ijc,ij->c", window, kernel)
            else:
                out[r, c] = np.sum(window * kernel)
    return out
