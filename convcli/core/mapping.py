"""Mapping float filter responses to 8-bit pixels.

``np.uint8(x)`` wraps: -1 becomes 255 and 256 becomes 0, so a dark edge turns white. Every
mode here rounds to nearest (half to even) and clips to 0..255 instead.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from convcli.core.validate import FLOAT32_MAX
from convcli.errors import ParameterError

OUTPUT_MODES: tuple[str, ...] = ("clip", "abs", "normalize")


def map_to_uint8(
    values: NDArray[np.floating],
    mode: str = "clip",
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    overwrite: bool = False,
) -> NDArray[np.uint8]:
    """Map filter responses to uint8: ``y = values * scale + offset``, then ``mode``.

    NaN maps to 0. ``overwrite=True`` lets a float32 ``values`` be used as scratch space (it
    saves a copy when the caller no longer needs the responses).

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
    # Responses beyond float32 are infinity and clip like any large value (NaN maps to 0):
    # NumPy's warnings about them are not the user's business.
    with np.errstate(all="ignore"):
        y = _respond(values, mode, scale, offset, overwrite)
        np.rint(y, out=y)
        np.minimum(y, np.float32(255.0), out=y)
        return y.astype(np.uint8)


def map_to_uint16(
    values: NDArray[np.floating], mode: str = "clip", *, scale: float = 1.0, offset: float = 0.0
) -> NDArray[np.uint16]:
    """Map responses on the 0..255 scale to 16-bit samples (0..65535), as :func:`map_to_uint8`
    does to 8 bits: the same ``scale``, ``offset`` and ``mode``, rounded to 257 times finer steps.

    >>> map_to_uint16(np.array([-1.0, 0.5, 255.0, 300.0])).tolist()
    [0, 128, 65535, 65535]
    """
    with np.errstate(all="ignore"):  # as in map_to_uint8
        y = _respond(values, mode, scale, offset, False)
        np.multiply(y, np.float32(257.0), out=y)
        np.rint(y, out=y)
        np.minimum(y, np.float32(65535.0), out=y)
        return y.astype(np.uint16)


def map_to_float32(
    values: NDArray[np.floating], mode: str = "clip", *, scale: float = 1.0, offset: float = 0.0
) -> NDArray[np.float32]:
    """The response as float32, unrounded and unclipped: ``values * scale + offset``, then ``mode``.

    ``clip`` keeps the values as they are (nothing is clipped: negative responses stay);
    ``abs`` takes ``|y|``; ``normalize`` stretches ``min(y)..max(y)`` linearly onto 0..255.

    >>> map_to_float32(np.array([-3.0, 12.4, 300.0]), offset=1).tolist()
    [-2.0, 13.399999618530273, 301.0]
    >>> map_to_float32(np.array([-1.0, 0.0, 1.0]), "normalize").tolist()
    [0.0, 127.5, 255.0]
    """
    with np.errstate(all="ignore"):  # as in map_to_uint8
        return _affine(values, mode, scale, offset, False)


def _respond(
    values: NDArray[np.floating], mode: str, scale: float, offset: float, overwrite: bool
) -> NDArray[np.float32]:
    """``values * scale + offset`` and the mode, in float32 on 0..255, clipped below at 0 (NaN too)."""
    y = _affine(values, mode, scale, offset, overwrite)
    # fmax turns NaN into 0 and clips below in one pass; the callers round and clip above.
    return np.fmax(y, np.float32(0.0), out=y)


def _affine(
    values: NDArray[np.floating], mode: str, scale: float, offset: float, overwrite: bool
) -> NDArray[np.float32]:
    """``values * scale + offset`` and the mode, in float32, neither rounded nor clipped."""
    if mode not in OUTPUT_MODES:
        raise ParameterError(f"`output_mode` must be one of {', '.join(OUTPUT_MODES)}, got {mode!r}")
    for name, number in (("scale", scale), ("offset", offset)):
        if isinstance(number, (complex, np.complexfloating)) or not abs(float(number)) <= FLOAT32_MAX:
            raise ParameterError(
                f"`{name}` must be a finite number within float32's range (+-{FLOAT32_MAX:.2g}), got {number!r}"
            )
    y = np.asarray(values)
    if np.iscomplexobj(y):
        raise ParameterError("`values` must be real, got complex numbers")
    writable = overwrite and y.dtype == np.float32 and y.flags.writeable
    if scale != 1.0:
        y = np.multiply(y, np.float32(scale), out=y if writable else None, dtype=np.float32)
        writable = True
    if offset != 0.0:
        y = np.add(y, np.float32(offset), out=y if writable else None, dtype=np.float32)
        writable = True
    if not writable:
        y = np.array(y, dtype=np.float32)
    if mode == "abs":
        np.abs(y, out=y)
    elif mode == "normalize" and y.size:
        low, high = float(np.nanmin(y)), float(np.nanmax(y))
        if not (np.isfinite(low) and np.isfinite(high)):
            # Stretch the finite values; infinities land on 0 and 255 (NaN on 0).
            finite = y[np.isfinite(y)]
            low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
            if finite.size:
                np.clip(y, np.float32(low), np.float32(high), out=y)
        if high > low:
            np.subtract(y, np.float32(low), out=y)
            np.multiply(y, np.float32(255.0 / (high - low)), out=y)
    return y
