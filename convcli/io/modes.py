"""Pillow's image modes turned into pixel arrays on the 0..255 scale, with alpha beside them.

8-bit samples stay uint8 (no float copy until the filter needs one, band by band); deeper ones
become float32, which keeps all 16 bits. Every kernel then means the same thing for every input.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from convcli.errors import ImageError

GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "La", "RGBa"})
# Modes Pillow converts to RGB but not straight to L ("conversion from LAB to RGB not supported"):
# their luma is taken from the RGB conversion, as for every other colour mode.
_RGB_FIRST = frozenset({"LAB", "HSV"})

Pixels = NDArray[np.uint8] | NDArray[np.float32]


class ImageWarning(UserWarning):
    """Something about an image the user should know (alpha dropped, frames ignored)."""


def has_alpha(image: Image.Image) -> bool:
    """Whether the image has an alpha channel or a transparent palette index."""
    return image.mode in _ALPHA_MODES or "transparency" in image.info


def to_array(image: Image.Image, name: str) -> tuple[Pixels, NDArray[np.uint8] | None, int]:
    """Convert any Pillow mode to pixels on 0..255, an optional uint8 alpha and the bit depth.

    8-bit modes stay uint8. 16-bit modes are read on 0..65535, 32-bit integers (``I``) on the
    same 16-bit scale (values outside it are clipped, with a warning) and floats (``F``) on 0..1;
    each is scaled to 0..255 in float32, which keeps all 16 bits.

    >>> pixels, alpha, bits = to_array(Image.new("I;16", (2, 1), 65535), "x")
    >>> pixels.tolist(), alpha, bits
    ([[255.0, 255.0]], None, 16)
    """
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        values = np.asarray(image).astype(np.float32)
        return values * np.float32(255.0 / 65535.0), None, 16
    if mode == "I":
        integers = np.asarray(image, dtype=np.int64)
        low, high = int(integers.min(initial=0)), int(integers.max(initial=0))
        if low < 0 or high > 65535:
            warnings.warn(
                f"{name}: 32-bit integer samples span {low}..{high}; convcli reads them on the 16-bit "
                "scale 0..65535 and clips the rest",
                ImageWarning,
                stacklevel=3,
            )
        return (np.clip(integers, 0, 65535).astype(np.float32) * np.float32(255.0 / 65535.0)), None, 16
    if mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if not np.all(np.isfinite(values)):
            raise ImageError(f"{name}: float image holds NaN or infinite values")
        return values * np.float32(255.0), None, 16
    if mode == "1":
        image = image.convert("L")
    elif mode == "P":
        transparent = "transparency" in image.info or (image.palette is not None and image.palette.mode == "RGBA")
        image = image.convert("RGBA" if transparent else "RGB")
    elif mode in ("PA", "RGBa"):
        image = image.convert("RGBA")
    elif mode == "La":
        image = image.convert("LA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        # CMYK, YCbCr, LAB, HSV, RGBX...: Pillow's conversion (no colour management)
        image = image.convert("RGB")
    mode = image.mode
    array = np.asarray(image)
    if mode in ("L", "RGB"):
        return array, None, 8
    colour = array[..., 0] if mode == "LA" else array[..., :3]
    return np.ascontiguousarray(colour), np.ascontiguousarray(array[..., -1]), 8


def convert_frame(image: Image.Image, name: str, gray: bool) -> tuple[Pixels, NDArray[np.uint8] | None, int]:
    """:func:`to_array`, with colour turned to luminance (ITU-R 601-2) first when ``gray``."""
    if gray and image.mode not in GRAY_MODES:
        if image.mode in _RGB_FIRST:
            image = image.convert("RGB")
        image = image.convert("LA" if has_alpha(image) else "L")
    pixels, alpha, bits = to_array(image, name)
    if gray and pixels.ndim == 3:
        pixels = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return pixels, alpha, bits
