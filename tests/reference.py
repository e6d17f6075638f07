"""Independent reference implementations the tests compare convcli against."""

from __future__ import annotations

import numpy as np


def naive_correlate(
    image: np.ndarray,
    kernel: np.ndarray,
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    value: float = 0.0,
) -> np.ndarray:
    """The textbook loop, generalised: zero/constant padding, stride, dilation; float64.

    ``out[r, c] = sum(padded[r*sr + i*dr, c*sc + j*dc] * kernel[i, j])``.
    """
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    top, bottom, left, right = pad
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (image.ndim - 2)
    padded = np.pad(image, widths, mode="constant", constant_values=value)
    kh, kw = kernel.shape
    (sr, sc), (dr, dc) = stride, dilation
    out_h = (padded.shape[0] - dr * (kh - 1) - 1) // sr + 1
    out_w = (padded.shape[1] - dc * (kw - 1) - 1) // sc + 1
    out = np.zeros((out_h, out_w, *image.shape[2:]))
    for r in range(out_h):
        for c in range(out_w):
            window = padded[r * sr : r * sr + dr * (kh - 1) + 1 : dr, c * sc : c * sc + dc * (kw - 1) + 1 : dc]
            if image.ndim == 3:
                out[r, c] = np.einsum("ijc,ij->c", window, kernel)
            else:
                out[r, c] = np.sum(window * kernel)
    return out
