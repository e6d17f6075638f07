"""A small picture of an image in the terminal, in truecolor half blocks (``apply --preview``).

Each character cell shows two pixels, one above the other: ``▀`` (upper half block) with the
upper pixel as its foreground colour and the lower one as its background, both as 24-bit ANSI
colours (``ESC[38;2;R;G;B`` and ``ESC[48;2;R;G;B``). Every line ends by resetting the colours.
The image is shrunk (never enlarged) to fit the columns and rows given; transparent pixels are
shown over black.

The module renders text only; the command line decides whether to print it
(:func:`preview_wanted`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import NDArray
from PIL import Image

__all__ = ["PREVIEW_COLUMNS", "PREVIEW_ROWS", "preview_wanted", "render_preview"]

UPPER_HALF = "\u2580"
RESET = "\x1b[0m"
PREVIEW_COLUMNS = 60
PREVIEW_ROWS = 30


def preview_wanted(stderr_is_terminal: bool, to_stdout: bool, environ: Mapping[str, str]) -> bool:
    """Whether to draw a preview: on a terminal, not when the image goes to standard output, and
    not when ``NO_COLOR`` is set to any non-empty value (https://no-color.org).

    >>> preview_wanted(True, False, {}), preview_wanted(True, False, {"NO_COLOR": "1"})
    (True, False)
    """
    return stderr_is_terminal and not to_stdout and not environ.get("NO_COLOR")


def _fit(height: int, width: int, columns: int, rows: int) -> tuple[int, int]:
    """The shrunk ``(height, width)`` in pixels: at most ``columns`` wide, ``2 * rows`` tall."""
    scale = min(1.0, columns / width, 2 * rows / height)
    return max(1, round(height * scale)), max(1, round(width * scale))


def _colour(pixel: NDArray[np.uint8]) -> str:
    return f"{int(pixel[0])};{int(pixel[1])};{int(pixel[2])}"


def render_preview(
    pixels: NDArray[np.generic],
    alpha: NDArray[np.generic] | None = None,
    *,
    columns: int = PREVIEW_COLUMNS,
    rows: int = PREVIEW_ROWS,
) -> str:
    """Lines of half-block characters that draw ``pixels`` (``(H, W)`` or ``(H, W, 3)``, 0..255)
    in at most ``columns`` x ``rows`` character cells. An odd last pixel row is drawn over the
    terminal's own background.

    >>> render_preview(np.array([[255], [0]], np.uint8)) == "\\x1b[38;2;255;255;255;48;2;0;0;0m\\u2580\\x1b[0m\\n"
    True
    """
    rgb = np.clip(np.rint(np.asarray(pixels, np.float64)), 0, 255)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if alpha is not None:  # over black
        rgb = np.rint(rgb * (np.clip(np.asarray(alpha, np.float64), 0, 255)[..., None] / 255))
    image = rgb.astype(np.uint8)
    height, width = _fit(image.shape[0], image.shape[1], max(1, columns), max(1, rows))
    if (height, width) != image.shape[:2]:
        image = np.asarray(Image.fromarray(image, "RGB").resize((width, height), Image.Resampling.BOX))
    lines = []
    for top in range(0, height, 2):
        cells = []
        for x in range(width):
            upper = f"38;2;{_colour(image[top, x])}"
            lower = f"48;2;{_colour(image[top + 1, x])}" if top + 1 < height else "49"
            cells.append(f"\x1b[{upper};{lower}m{UPPER_HALF}")
        lines.append("".join(cells) + RESET + "\n")
    return "".join(lines)
