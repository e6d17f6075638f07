"""A kernel's taps drawn as a heat map: one square cell per tap, on a scale symmetric around 0.

Colours
    A tap ``v`` of a kernel whose largest tap in absolute value is ``peak`` (over every matrix
    of the kernel, so the matrices of a set share one scale) gets ``t = |v| / peak`` and the
    colour ``white + t * (end - white)``, linear in sRGB, where ``end`` is
    :data:`POSITIVE_RGB` (red, ``(178, 24, 43)``) for a positive tap and :data:`NEGATIVE_RGB`
    (blue, ``(33, 102, 172)``) for a negative one: the ends of ColorBrewer's RdBu scale, which
    stays readable for the common colour-vision deficiencies. A zero tap is white.

Geometry (:class:`HeatmapLayout`, in pixels)
    Panels (one per matrix; ``out x in`` of them for a channel-mixing kernel, output rows and
    input columns; a set on one row, wrapped after :data:`SET_COLUMNS`) start at ``MARGIN``
    and are ``GAP`` apart. Tap ``(i, j)`` of panel ``(r, c)`` is the square of side ``cell``
    at ``x = MARGIN + c * (kw * cell + GAP) + j * cell``,
    ``y = MARGIN + r * (kh * cell + label + GAP) + i * cell``, where ``label`` is
    ``LABEL_HEIGHT`` under each panel when there are several, else 0. Cells of ``MIN_FRAMED``
    pixels or more are framed by a 1-pixel grey line and carry their value when it fits. The
    legend, under the panels at ``legend_top``, is a horizontal colour bar from ``-peak``
    through 0 to ``peak`` with those values under it, then the kernel's name and size.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont, features

from convcli.errors import ParameterError
from convcli.kernels import Kernel
from convcli.text import printable

WHITE = (255, 255, 255)
POSITIVE_RGB = (178, 24, 43)
NEGATIVE_RGB = (33, 102, 172)
GRID_RGB = (150, 150, 150)
INK_DARK = (20, 20, 20)
INK_LIGHT = (255, 255, 255)
BACKGROUND = (255, 255, 255)

MARGIN = 12
GAP = 16
LABEL_HEIGHT = 16
BAR_HEIGHT = 14
TEXT_LINE = 16
LEGEND_FONT = 11
MIN_FRAMED = 6
# The default cell fills about this width, capped so that a 3x3 kernel is not a poster.
TARGET_WIDTH = 640
TARGET_HEIGHT = 720
MAX_DEFAULT_CELL = 96
MIN_WIDTH = 320
MAX_CELL = 512
SET_COLUMNS = 8
# Larger pictures are refused: a heat map is for looking at, not for filling a disk.
MAX_PICTURE_PIXELS = 64 * 1024 * 1024

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def tap_colour(value: float, peak: float) -> tuple[int, int, int]:
    """The sRGB colour of a tap on the scale ``-peak..peak``: blue, white at 0, red.

    >>> tap_colour(1.0, 2.0), tap_colour(-2.0, 2.0), tap_colour(0.0, 2.0)
    ((216, 140, 149), (33, 102, 172), (255, 255, 255))
    """
    if not peak or not math.isfinite(value) or value == 0:
        return WHITE
    t = min(abs(value) / peak, 1.0)
    end = POSITIVE_RGB if value > 0 else NEGATIVE_RGB
    r, g, b = (round(w + t * (e - w)) for w, e in zip(WHITE, end, strict=True))
    return (r, g, b)


def text_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Dark ink on a light cell, white ink on a dark one (by relative luminance).

    >>> text_colour((255, 255, 255)), text_colour(NEGATIVE_RGB)
    ((20, 20, 20), (255, 255, 255))
    """

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # Contrast with white ink beats contrast with near-black ink below about 0.18.
    return INK_LIGHT if luminance < 0.18 else INK_DARK


def format_tap(value: float, digits: int = 3) -> str:
    """A tap as written in its cell: integers exactly, else ``digits`` significant digits.

    >>> format_tap(-2.0), format_tap(0.039788), format_tap(0.0), format_tap(-3.1e-05, 1)
    ('-2', '0.0398', '0', '-3e-05')
    """
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.{digits}g}"


def _panels(kernel: Kernel) -> tuple[list[tuple[str, NDArray[np.float64]]], int, int]:
    """Every matrix drawn, with its label, and the panel grid's rows and columns."""
    if kernel.weights is not None:
        out, inp = kernel.weights.shape[:2]
        labelled = [(f"out {o + 1}, in {i + 1}", kernel.weights[o, i]) for o in range(out) for i in range(inp)]
        return labelled, out, inp
    count = len(kernel.matrices)
    if count == 1:
        return [("", kernel.matrices[0])], 1, 1
    columns = min(count, SET_COLUMNS)
    return [(f"{i + 1} of {count}", m) for i, m in enumerate(kernel.matrices)], -(-count // columns), columns


@dataclasses.dataclass(frozen=True)
class HeatmapLayout:
    """Where everything is drawn; see the module's documentation."""

    kh: int
    kw: int
    rows: int
    columns: int
    cell: int
    label: int
    width: int
    height: int
    legend_top: int

    def cell_box(self, panel: int, i: int, j: int) -> tuple[int, int, int, int]:
        """``(left, top, right, bottom)`` of tap ``(i, j)`` of the ``panel``-th matrix (right/bottom excluded)."""
        r, c = divmod(panel, self.columns)
        x = MARGIN + c * (self.kw * self.cell + GAP) + j * self.cell
        y = MARGIN + r * (self.kh * self.cell + self.label + GAP) + i * self.cell
        return x, y, x + self.cell, y + self.cell

    @property
    def panels_bottom(self) -> int:
        """The first row under the panels and their labels."""
        return MARGIN + self.rows * (self.kh * self.cell + self.label) + (self.rows - 1) * GAP


def heatmap_layout(kernel: Kernel, cell: int | None = None) -> HeatmapLayout:
    """The picture's geometry; ``cell`` is the side of one tap's square, by default about
    :data:`TARGET_WIDTH` pixels of matrices in all.

    >>> from convcli.kernels import load_kernel
    >>> layout = heatmap_layout(load_kernel("sobel-x"))
    >>> layout.cell, layout.cell_box(0, 1, 2)
    (96, (204, 108, 300, 204))
    """
    kh, kw = kernel.shape
    labelled, rows, columns = _panels(kernel)
    if cell is None:
        across = (TARGET_WIDTH - (columns - 1) * GAP) // (columns * kw)
        down = (TARGET_HEIGHT - (rows - 1) * GAP) // (rows * kh)
        cell = max(1, min(MAX_DEFAULT_CELL, across, down))
    elif not 1 <= cell <= MAX_CELL:
        raise ParameterError(f"`--cell` must be 1 to {MAX_CELL} pixels, got {cell}")
    label = LABEL_HEIGHT if len(labelled) > 1 else 0
    # Wide enough for the caption too: a long kernel name widens the picture rather than being cut.
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    caption = _text_size(measure, _caption(kernel), _font(LEGEND_FONT))[0]
    width = max(MIN_WIDTH, 2 * MARGIN + columns * kw * cell + (columns - 1) * GAP, 2 * MARGIN + caption)
    panels_bottom = MARGIN + rows * (kh * cell + label) + (rows - 1) * GAP
    legend_top = panels_bottom + GAP
    height = legend_top + BAR_HEIGHT + 2 * TEXT_LINE + MARGIN
    if width * height > MAX_PICTURE_PIXELS:
        raise ParameterError(
            f"`--cell {cell}` makes a {width}x{height} picture, more than {MAX_PICTURE_PIXELS:,} pixels; "
            "give a smaller --cell"
        )
    return HeatmapLayout(kh, kw, rows, columns, cell, label, width, height, legend_top)


def _caption(kernel: Kernel) -> str:
    """The legend's last line: the kernel's name, size, and what its matrices are."""
    kh, kw = kernel.shape
    if kernel.channels is not None:
        what = f"mixing {kernel.channels[0]} in -> {kernel.channels[1]} out"
    elif len(kernel.matrices) > 1:
        what = f"{len(kernel.matrices)} matrices, {kernel.combine}"
    else:
        what = ""
    return printable(f"{kernel.name}  {kh}x{kw}" + (f", {what}" if what else "") + "   blue < 0 < red")


def _font(size: int) -> Font:
    """Pillow's built-in font: scalable where Pillow has FreeType, else its fixed bitmap."""
    if features.check("freetype2"):
        return ImageFont.load_default(size)
    return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: Font) -> tuple[int, int]:
    """The width and height of ``text`` drawn in ``font``."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return int(right - left), int(bottom - top)


def _centred(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    text: str,
    font: Font,
    fill: tuple[int, int, int],
) -> None:
    x0, y0, x1, y1 = box
    draw.text(((x0 + x1) / 2, (y0 + y1) / 2), text, font=font, fill=fill, anchor="mm")


def render_heatmap(kernel: Kernel, cell: int | None = None) -> NDArray[np.uint8]:
    """The heat map of ``kernel`` as ``(height, width, 3)`` uint8 sRGB pixels.

    >>> from convcli.kernels import load_kernel
    >>> render_heatmap(load_kernel("kirsch"), cell=10).shape
    (132, 376, 3)
    """
    layout = heatmap_layout(kernel, cell)
    labelled, _, _ = _panels(kernel)
    peak = max(float(np.abs(m).max()) if m.size else 0.0 for _, m in labelled)
    image = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    cell_font = _font(max(10, min(28, layout.cell // 4)))
    small = _font(LEGEND_FONT)
    framed = layout.cell >= MIN_FRAMED
    for index, (title, matrix) in enumerate(labelled):
        for (i, j), value in np.ndenumerate(matrix):
            x0, y0, x1, y1 = layout.cell_box(index, i, j)
            colour = tap_colour(float(value), peak)
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=colour, outline=GRID_RGB if framed else None)
            if framed:
                # Fewer digits rather than none when the value is too wide for its cell.
                for digits in (3, 2, 1):
                    text = format_tap(float(value), digits)
                    tw, th = _text_size(draw, text, cell_font)
                    if tw <= layout.cell - 6 and th <= layout.cell - 6:
                        _centred(draw, (x0, y0, x1, y1), text, cell_font, text_colour(colour))
                        break
        if title:
            left, _, _, _ = layout.cell_box(index, 0, 0)
            _, _, right, bottom = layout.cell_box(index, layout.kh - 1, layout.kw - 1)
            if _text_size(draw, title, small)[0] <= right - left + GAP:
                _centred(draw, (left, bottom, right, bottom + layout.label), title, small, INK_DARK)
    _draw_legend(draw, kernel, layout, peak, small)
    return np.asarray(image, dtype=np.uint8).copy()


def _draw_legend(
    draw: ImageDraw.ImageDraw,
    kernel: Kernel,
    layout: HeatmapLayout,
    peak: float,
    font: Font,
) -> None:
    """The colour bar from ``-peak`` to ``peak``, its values, and the kernel's name and size."""
    left, right = MARGIN, layout.width - MARGIN
    top = layout.legend_top
    span = right - left
    for x in range(span):
        value = (2 * x / max(span - 1, 1) - 1) * peak
        draw.line((left + x, top, left + x, top + BAR_HEIGHT - 1), fill=tap_colour(value, peak))
    draw.rectangle((left, top, right - 1, top + BAR_HEIGHT - 1), outline=GRID_RGB)
    values_y = top + BAR_HEIGHT + 2
    low, high = format_tap(-peak), format_tap(peak)
    draw.text((left, values_y), low, font=font, fill=INK_DARK)
    draw.text(((left + right) / 2, values_y), "0", font=font, fill=INK_DARK, anchor="ma")
    draw.text((right, values_y), high, font=font, fill=INK_DARK, anchor="ra")
    caption = _caption(kernel)
    draw.text((left, values_y + TEXT_LINE), caption, font=font, fill=INK_DARK)
