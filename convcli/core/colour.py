"""The sRGB transfer curve (IEC 61966-2-1), for filtering in linear light.

Pixel values in files are sRGB-coded: equal steps of code are roughly equal steps of perceived
brightness, not of light. Averaging codes therefore darkens: black and white average to code 128,
though half of white's light is code 188. Decoding to linear light before a filter and encoding
after it makes a blur mix light as a lens does.

Both curves work on the 0..255 scale of the rest of the core and return float32. They are
extended to negative values by odd symmetry (``f(-x) = -f(x)``), as CSS Color 4 extends them,
so that a signed response (an edge detector's falling edge) keeps its sign and its size matches
the rising edge's. Values above 255 follow the same formulas.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

# IEC 61966-2-1: the linear segment ends at code 0.04045, which is light 0.0031308.
_CODE_KNEE = 0.04045
_LIGHT_KNEE = 0.0031308
_SLOPE = 12.92
_GAMMA = 2.4
_A = 0.055


def _decode64(codes: NDArray[np.float64]) -> NDArray[np.float64]:
    c = np.abs(codes) / 255.0
    light = np.where(c <= _CODE_KNEE, c / _SLOPE, ((c + _A) / (1 + _A)) ** _GAMMA)
    return np.copysign(light * 255.0, codes)


# Every 8-bit code decoded once, in float64 then rounded to float32: 8-bit input is a lookup.
_DECODED_BYTES: NDArray[np.float32] = _decode64(np.arange(256, dtype=np.float64)).astype(np.float32)


def srgb_to_linear(values: ArrayLike) -> NDArray[np.float32]:
    """Decode sRGB-coded values on 0..255 to linear light on 0..255, as float32.

    uint8 input is looked up in a table computed in float64; other input is computed in float32.

    >>> srgb_to_linear(np.array([0, 128, 188, 255], np.uint8)).round().tolist()
    [0.0, 55.0, 128.0, 255.0]
    """
    array = np.asarray(values)
    if array.dtype == np.uint8:
        looked_up: NDArray[np.float32] = _DECODED_BYTES[array]
        return looked_up
    with np.errstate(all="ignore"):  # infinity stays infinity, NaN stays NaN
        codes = np.asarray(array, dtype=np.float32)
        c = np.abs(codes) * np.float32(1 / 255)
        curve = np.power((c + np.float32(_A)) * np.float32(1 / (1 + _A)), np.float32(_GAMMA))
        light = np.where(c <= np.float32(_CODE_KNEE), c * np.float32(1 / _SLOPE), curve)
        light *= np.float32(255.0)
        signed: NDArray[np.float32] = np.copysign(light, codes, dtype=np.float32)
        return signed


def linear_to_srgb(values: ArrayLike, *, overwrite: bool = False) -> NDArray[np.float32]:
    """Encode linear light on 0..255 as sRGB-coded values on 0..255, as float32; not rounded.

    ``overwrite=True`` lets a float32 ``values`` hold the result (saving a copy).

    >>> linear_to_srgb(np.array([0.0, 55.04, 127.5, 255.0, -127.5])).round(1).tolist()
    [0.0, 128.0, 187.5, 255.0, -187.5]
    """
    array = np.asarray(values)
    writable = overwrite and array.dtype == np.float32 and array.flags.writeable
    with np.errstate(all="ignore"):  # as in srgb_to_linear
        light = array if writable else np.array(array, dtype=np.float32)
        negative = np.signbit(light)
        np.abs(light, out=light)
        light *= np.float32(1 / 255)
        low = light <= np.float32(_LIGHT_KNEE)
        linear_part = light[low] * np.float32(_SLOPE)
        np.power(light, np.float32(1 / _GAMMA), out=light)
        light *= np.float32(1 + _A)
        light -= np.float32(_A)
        light[low] = linear_part
        light *= np.float32(255.0)
        np.negative(light, out=light, where=negative)
        return light
