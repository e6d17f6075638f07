"""Side-by-side pictures: an input and its filtered output in one image (``apply --compare``).

Layout (all sizes in pixels):

- the input at the top left, unscaled;
- :data:`COMPARE_GAP` pixels of background to its right;
- the output's panel, at least as large as the input. An output smaller than the input (``valid``
  padding, a stride) is placed unscaled and centred in a panel the size of the input: its top
  left corner is at ``((H_in - H_out) // 2, (W_in - W_out) // 2)`` within the panel, which for
  ``valid`` padding with an odd kernel is exactly where each output pixel's centre tap lay in the
  input. A larger output (``full`` padding) fills its panel from the top left;
- with labels, a strip :data:`LABEL_HEIGHT` tall below both, the label of each panel at its left
  edge, in Pillow's built-in font (no font file needed).

The background is white (:data:`COMPARE_BACKGROUND`), and opaque where the picture has alpha.
Gray beside colour is shown as colour (the gray value in each channel); with alpha on either side
the picture has alpha, and a side without alpha is opaque.

This module imports NumPy and Pillow only, so Python users can compose pictures themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

__all__ = ["COMPARE_BACKGROUND", "COMPARE_GAP", "LABEL_HEIGHT", "compare_pictures", "compare_shape", "output_offset"]

# Wide enough to see the edge between the two pictures, narrow enough to keep them close.
COMPARE_GAP = 8
COMPARE_BACKGROUND = 255
# Pillow's built-in font is about 11 pixels tall; a few more keep the text off the edges.
LABEL_HEIGHT = 16

Pixels = NDArray[np.uint8]


def output_offset(input_shape: tuple[int, int], output_shape: tuple[int, int]) -> tuple[int, int]:
    """Row and column of the output's top left corner within its panel: centred, never negative.

    >>> output_offset((10, 10), (8, 8)), output_offset((9, 9), (5, 5)), output_offset((4, 4), (6, 6))
    ((1, 1), (2, 2), (0, 0))
    """
    return (max(0, (input_shape[0] - output_shape[0]) // 2), max(0, (input_shape[1] - output_shape[1]) // 2))


def compare_shape(
    input_shape: tuple[int, int], output_shape: tuple[int, int], *, labelled: bool = True
) -> tuple[int, int]:
    """``(height, width)`` of the side-by-side picture, known before any pixel is decoded.

    >>> compare_shape((10, 20), (8, 18))
    (26, 48)
    """
    height = max(input_shape[0], output_shape[0]) + (LABEL_HEIGHT if labelled else 0)
    return height, input_shape[1] + COMPARE_GAP + max(input_shape[1], output_shape[1])


def _as_uint8(pixels: NDArray[np.generic]) -> Pixels:
    """Pixels on the 0..255 scale as uint8 (deeper input is rounded)."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.uint8, copy=False)
    return np.clip(np.rint(pixels.astype(np.float64)), 0, 255).astype(np.uint8)


def _fitted(
    draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int
) -> str:
    """The label cut (with an ellipsis) to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..." if text else ""


def compare_pictures(
    input_pixels: NDArray[np.generic],
    input_alpha: NDArray[np.generic] | None,
    output_pixels: NDArray[np.generic],
    output_alpha: NDArray[np.generic] | None,
    labels: Sequence[str] | None = ("input", "output"),
) -> tuple[Pixels, Pixels | None]:
    """The input and the output side by side, with ``labels`` (input's, output's) below them.

    Pixels are ``(H, W)`` or ``(H, W, 3)`` on the 0..255 scale (8-bit; deeper input is rounded),
    alpha ``(H, W)`` or None. Returns the picture's pixels and alpha (None when neither side has
    any). ``labels=None`` draws no label strip.

    >>> picture, alpha = compare_pictures(np.zeros((4, 4), np.uint8), None, np.ones((2, 2), np.uint8), None, None)
    >>> picture.shape, alpha, int(picture[1, 4 + COMPARE_GAP + 1])
    ((4, 16), None, 1)
    """
    source, result = _as_uint8(input_pixels), _as_uint8(output_pixels)
    in_shape, out_shape = (source.shape[0], source.shape[1]), (result.shape[0], result.shape[1])
    height, width = compare_shape(in_shape, out_shape, labelled=labels is not None)
    colour = source.ndim == 3 or result.ndim == 3
    if colour:
        source, result = (a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=2) for a in (source, result))
    canvas = np.full((height, width, 3) if colour else (height, width), COMPARE_BACKGROUND, np.uint8)
    top, left = output_offset(in_shape, out_shape)
    left += in_shape[1] + COMPARE_GAP
    canvas[: in_shape[0], : in_shape[1]] = source
    canvas[top : top + out_shape[0], left : left + out_shape[1]] = result
    alpha: Pixels | None = None
    if input_alpha is not None or output_alpha is not None:
        alpha = np.full((height, width), 255, np.uint8)
        if input_alpha is not None:
            alpha[: in_shape[0], : in_shape[1]] = _as_uint8(input_alpha)
        if output_alpha is not None:
            alpha[top : top + out_shape[0], left : left + out_shape[1]] = _as_uint8(output_alpha)
    if labels is not None:
        strip_top = height - LABEL_HEIGHT
        strip = Image.fromarray(canvas[strip_top:], "RGB" if colour else "L")
        draw = ImageDraw.Draw(strip)
        font = ImageFont.load_default()
        panels = ((0, in_shape[1]), (in_shape[1] + COMPARE_GAP, width - in_shape[1] - COMPARE_GAP))
        ink = (0, 0, 0) if colour else 0
        for (x, room), text in zip(panels, labels, strict=False):
            draw.text((x + 1, 2), _fitted(draw, text, font, room - 2), fill=ink, font=font)
        canvas[strip_top:] = np.asarray(strip)
    return canvas, alpha
