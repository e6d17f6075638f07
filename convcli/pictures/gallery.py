"""Contact sheets: an image and its thumbnails under each kernel, in a labelled grid.

Geometry of a sheet, in pixels (the tests compute positions from these constants):

* every tile is one thumbnail of the input, ``(tw, th)``: the input scaled down with Pillow's
  :meth:`PIL.Image.Image.thumbnail` (bicubic, Pillow's default) so that its long side is at most
  ``size``; an input already smaller than that is shown at its own size;
* under each tile, a label strip of :data:`LABEL_HEIGHT` rows: the kernel's name on the first line
  (followed by ``(abs)`` when the sheet shows it with ``abs`` output by default), its parameters
  on the second;
* tile ``i`` (0 is the original, then the kernels in order) sits in row ``i // columns``, column
  ``i % columns``, at ``x = GAP + column * (tw + GAP)``, ``y = GAP + row * (th + LABEL_HEIGHT + GAP)``;
* the sheet is ``GAP + columns * (tw + GAP)`` wide and ``GAP + rows * (th + LABEL_HEIGHT + GAP)``
  high, on a white background; it is gray when the input (and every tile) is gray, else RGB.

Transparent input is composited over white before filtering, as the sheet shows it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from convcli.errors import ParameterError
from convcli.io import STDIO, check_stdout, read_image, resolve_format, write_image
from convcli.kernels import Kernel, iter_kernels, load_kernel
from convcli.options import DEFAULT_MAX_PIXELS, FilterOptions, JobOptions, OutputOptions
from convcli.pipeline import render, same_file

GAP = 8
LINE_HEIGHT = 13
LABEL_HEIGHT = 2 * LINE_HEIGHT + 2
DEFAULT_SIZE = 256
MAX_SIZE = 4096
# The original and 1,023 kernels: far beyond the catalogue, short of a list that loads for minutes.
MAX_TILES = 1024
BACKGROUND = 255
INK = 0
# Pillow's thumbnail() default; the tests make their reference thumbnail with the same filter.
THUMBNAIL_RESAMPLE = Image.Resampling.BICUBIC
ORIGINAL_LABEL = "original"


@dataclass(frozen=True)
class Layout:
    """Where the tiles of a sheet go (see the module's docstring)."""

    tile: tuple[int, int]
    count: int
    columns: int

    @property
    def rows(self) -> int:
        """Rows of tiles."""
        return -(-self.count // self.columns)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the sheet."""
        tw, th = self.tile
        return GAP + self.columns * (tw + GAP), GAP + self.rows * (th + LABEL_HEIGHT + GAP)

    def origin(self, index: int) -> tuple[int, int]:
        """``(x, y)`` of tile ``index``'s top left corner.

        >>> Layout((10, 5), 3, 2).origin(2)
        (8, 49)
        """
        tw, th = self.tile
        row, column = divmod(index, self.columns)
        return GAP + column * (tw + GAP), GAP + row * (th + LABEL_HEIGHT + GAP)


def default_columns(count: int) -> int:
    """A near-square grid: ``ceil(sqrt(count))`` columns.

    >>> default_columns(36), default_columns(5)
    (6, 3)
    """
    return max(1, math.ceil(math.sqrt(count)))


def split_kernel_specs(text: str) -> list[str]:
    """Split ``--kernels`` text into kernel specs.

    A comma also separates a kernel's parameters, so a comma starts a new kernel unless the
    piece after it, up to the next comma, has an ``=`` before any ``:`` (then it is one more
    ``key=value`` of the kernel before). Commas inside brackets (inline matrices) never split.

    >>> split_kernel_specs("sobel,gaussian:sigma=2,radius=4,box")
    ['sobel', 'gaussian:sigma=2,radius=4', 'box']
    >>> split_kernel_specs("[1, 2; 3, 4], laplacian")
    ['[1, 2; 3, 4]', 'laplacian']
    """
    pieces: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth <= 0:
            pieces.append(current)
            current = ""
        else:
            current += char
    pieces.append(current)
    specs: list[str] = []
    for piece in (p.strip() for p in pieces):
        head = piece.split(":", 1)[0]
        if specs and "=" in head and ":" in specs[-1] and not specs[-1].startswith("["):
            specs[-1] += "," + piece
        elif not piece:
            raise ParameterError(f"`kernels` has an empty name in {text!r}")
        else:
            specs.append(piece)
    return specs


def shown_by_default(kernel: Kernel) -> bool:
    """Whether the default sheet shows ``kernel``: not random, not channel-mixing."""
    return not kernel.is_mixing and kernel.family != "random"


def is_edge_detector(kernel: Kernel) -> bool:
    """A set, or a kernel whose taps sum to 0: its response is signed, shown with ``abs``."""
    if kernel.is_mixing:
        return False
    return len(kernel.matrices) > 1 or all(abs(float(m.sum())) < 1e-9 for m in kernel.matrices)


def gallery_kernels(specs: Sequence[str] | None = None) -> list[Kernel]:
    """The kernels named by ``specs``, or the catalogue's default selection."""
    if specs is None:
        return [kernel for kernel in iter_kernels() if shown_by_default(kernel)]
    if not specs:
        raise ParameterError("`kernels` names no kernel")
    return [load_kernel(spec) for spec in specs]


def _to_uint8(pixels: NDArray[np.generic]) -> NDArray[np.uint8]:
    if pixels.dtype == np.uint8:
        return pixels.astype(np.uint8, copy=False)
    return np.clip(np.rint(pixels.astype(np.float32)), 0, 255).astype(np.uint8)


def thumbnail(pixels: NDArray[np.generic], alpha: NDArray[np.generic] | None, size: int) -> NDArray[np.uint8]:
    """The pixels scaled down to a long side of at most ``size`` (Pillow's ``thumbnail``), any
    transparency composited over white.

    >>> thumbnail(np.zeros((40, 80), np.uint8), None, 20).shape
    (10, 20)
    """
    colour = _to_uint8(pixels)
    if alpha is None:
        image = Image.fromarray(colour)
    else:
        plane = _to_uint8(alpha)
        # Pillow reads (H, W, 4) as RGBA and (H, W, 2) as LA, and resizes them with alpha weighting.
        image = Image.fromarray(np.dstack([colour, plane]))
    image.thumbnail((size, size), resample=THUMBNAIL_RESAMPLE)
    small = np.asarray(image)
    if alpha is None:
        return small.astype(np.uint8, copy=False)
    values = small[..., :-1].astype(np.float32)
    weight = small[..., -1:].astype(np.float32) / 255
    over_white = values * weight + BACKGROUND * (1 - weight)
    result = np.clip(np.rint(over_white), 0, 255).astype(np.uint8)
    return result[..., 0] if colour.ndim == 2 else result


def label_lines(kernel: Kernel, mode: str | None) -> tuple[str, str]:
    """The two label lines of a kernel's tile: name (and ``(abs)`` when abs is the default it
    is shown with), then its parameters."""
    name = kernel.name.split(":", 1)[0]
    if mode is None and is_edge_detector(kernel):
        name += " (abs)"
    params = " ".join(f"{key}={value}" for key, value in kernel.params.items())
    return name, params


def _fit(text: str, font: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> str:
    """``text`` cut (with ``..``) to fit ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "..") > width:
        text = text[:-1]
    return text + ".." if text else ""


def _tile_mode(kernel: Kernel, mode: str | None) -> str:
    if mode is not None:
        return mode
    return "abs" if is_edge_detector(kernel) else "clip"


def make_sheet(
    pixels: NDArray[np.generic],
    alpha: NDArray[np.generic] | None,
    kernels: Sequence[Kernel],
    *,
    size: int = DEFAULT_SIZE,
    columns: int | None = None,
    options: FilterOptions | None = None,
    mode: str | None = None,
    source: str = "image",
) -> NDArray[np.uint8]:
    """A contact sheet of ``pixels`` and each kernel's result on its thumbnail.

    ``mode`` is the output mapping of every tile; None shows edge detectors
    (:func:`is_edge_detector`) with ``abs`` and the rest with ``clip``.

    >>> make_sheet(np.zeros((20, 40), np.uint8), None, [load_kernel("box")], size=16).shape
    (52, 56)
    """
    if not 1 <= size <= MAX_SIZE:
        raise ParameterError(f"`size` must be 1..{MAX_SIZE}, got {size}")
    if columns is not None and columns < 1:
        raise ParameterError(f"`columns` must be at least 1, got {columns}")
    if len(kernels) + 1 > MAX_TILES:
        raise ParameterError(f"`kernels`: a sheet holds at most {MAX_TILES} tiles, got {len(kernels) + 1}")
    options = options or FilterOptions()
    small = thumbnail(pixels, alpha, size)
    count = len(kernels) + 1
    layout = Layout((small.shape[1], small.shape[0]), count, min(columns or default_columns(count), count))
    width, height = layout.size
    if width * height > DEFAULT_MAX_PIXELS:
        # Checked before any kernel runs: the sheet is held whole in memory.
        raise ParameterError(
            f"a sheet of {width}x{height} pixels is more than the limit of {DEFAULT_MAX_PIXELS:,}; "
            "use a smaller --size or fewer kernels"
        )
    tiles: list[NDArray[np.uint8]] = [small]
    labels: list[tuple[str, str]] = [(ORIGINAL_LABEL, "x".join(str(n) for n in pixels.shape[1::-1]))]
    for kernel in kernels:
        output = OutputOptions(mode=_tile_mode(kernel, mode))
        tile = render(small, [kernel], options, output, source=source)
        if tile.shape[:2] != small.shape[:2]:
            raise ParameterError(f"kernel {kernel.name!r} changes the image's size; a sheet needs same-size tiles")
        tiles.append(_to_uint8(tile))
        labels.append(label_lines(kernel, mode))
    colour = any(tile.ndim == 3 for tile in tiles)
    sheet = Image.new("RGB" if colour else "L", layout.size, (BACKGROUND,) * 3 if colour else BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    tw, th = layout.tile
    for index, (tile, lines) in enumerate(zip(tiles, labels, strict=True)):
        shown = np.repeat(tile[..., None], 3, axis=2) if colour and tile.ndim == 2 else tile
        x, y = layout.origin(index)
        sheet.paste(Image.fromarray(shown), (x, y))
        for line_number, text in enumerate(lines):
            draw.text(
                (x, y + th + 1 + line_number * LINE_HEIGHT),
                _fit(text, font, tw),
                fill=(INK,) * 3 if colour else INK,
                font=font,
            )
    return np.asarray(sheet).copy()


@dataclass
class GalleryResult:
    """What :func:`gallery_file` did."""

    destination: str
    shape: tuple[int, ...]
    tiles: int
    seconds: float


def gallery_file(
    source: str | Path,
    destination: str | Path,
    kernels: Sequence[Kernel] | None = None,
    *,
    size: int = DEFAULT_SIZE,
    columns: int | None = None,
    job: JobOptions | None = None,
    mode: str | None = None,
) -> GalleryResult:
    """Read ``source``, make its sheet (:func:`make_sheet`) and write it to ``destination`` (a path,
    atomically, or ``-``), its format from the suffix or ``job.output.format``.

    ``job`` gives the filter options (border...), ``--gray``, the limits and the encoder options;
    ``mode`` overrides the per-kernel default mapping.
    """
    started = time.perf_counter()
    job = job or JobOptions()
    chosen = gallery_kernels() if kernels is None else list(kernels)
    # Checked before decoding, so a wrong name fails fast and nothing is read in vain.
    resolve_format(destination, job.output.format)
    if str(destination) == STDIO:
        check_stdout()
    elif str(source) != STDIO and same_file(Path(source), Path(destination)):
        raise ParameterError(f"{destination}: is the input; the sheet would overwrite it; choose another -o")
    picture = read_image(source, gray=job.input.gray, max_pixels=job.limits.max_pixels)
    sheet = make_sheet(
        picture.pixels,
        picture.alpha,
        chosen,
        size=size,
        columns=columns,
        options=job.filter,
        mode=mode,
        source=picture.source,
    )
    write_image(
        sheet,
        None,
        destination,
        fmt=job.output.format,
        quality=job.output.quality,
        compress_level=job.output.compress_level,
    )
    shown = "<stdout>" if str(destination) == STDIO else str(destination)
    return GalleryResult(shown, sheet.shape, len(chosen) + 1, time.perf_counter() - started)
