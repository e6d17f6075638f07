"""Mapping float filter responses to 8-bit pixels.

``np.uint8(x)`` wraps: -1 becomes 255 and 256 becomes 0, so a dark edge turns white. Every
mode here rounds to nearest (half to even) and clips to 0..255 instead.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from convcli.errors import ParameterError

OUTPUT_MODES: tuple[str, ...] = ("clip", "abs", "normalize")


def map_to_uint8(
    values: NDArray[np.floating],
    mode: str = "clip",
    *,
    scale: float = 1.0,
    offset: float = 0.0,
) -> NDArray[np.uint8]:
    """Map filter responses to uint8: ``y = values * scale + offset``, then ``mode``.

    ``clip``
        round ``y`` to nearest and clip to 0..255.
    ``abs``
        ``|y|``, rounded and clipped: shows both edge polarities.
    ``normalize``
        stretch ``min(y)..max(y)`` linearly onto 0..255 (over all channels together, so colour
        balance is kept). A flat ``y`` has nothing to stretch and is clipped instead.

    >>> map_to_uint8(np.array([-3.0, 12.4, 300.0]))
    array([  0,  12, 255], dtype=uint8)
    >>> map_to_uint8(np.array([-3.0, 12.4]), "abs")
    array([ 3, 12], dtype=uint8)
    >>> map_to_uint8(np.array([-1.0, 0.0, 1.0]), "normalize")
    array([  0, 128, 255], dtype=uint8)
    """
    if mode not in OUTPUT_MODES:
        raise ParameterError(f"`output_mode` must be one of {', '.join(OUTPUT_MODES)}, got {mode!r}")
    for name, number in (("scale", scale), ("offset", offset)):
        if not np.isfinite(number):
            raise ParameterError(f"`{name}` must be a finite number, got {number!r}")
    y = np.asarray(values, dtype=np.float32)
    if scale != 1.0 or offset != 0.0:
        y = y * np.float32(scale) + np.float32(offset)
    else:
        y = y.copy()
    if mode == "abs":
        np.abs(y, out=y)
    elif mode == "normalize" and y.size:
        low, high = float(np.nanmin(y)), float(np.nanmax(y))
        if high > low:
            y = (y - np.float32(low)) * np.float32(255.0 / (high - low))
    np.nan_to_num(y, copy=False, nan=0.0)
    np.rint(y, out=y)
    np.clip(y, 0, 255, out=y)
    return y.astype(np.uint8)
