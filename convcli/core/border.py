"""Border modes: how pixels outside the image are made up when padding.

The vocabulary is numpy.pad's. For an image row ``a b c d`` padded by two pixels on the left:

========== ================= ==============================================================
mode       padded row        equivalents elsewhere
========== ================= ==============================================================
zero       ``0 0 | a b c d`` ``constant`` with value 0; PyTorch ``zeros``; scipy ``constant``
constant   ``v v | a b c d`` OpenCV ``BORDER_CONSTANT``; scipy ``constant`` with ``cval``
edge       ``a a | a b c d`` OpenCV ``BORDER_REPLICATE``; PyTorch ``replicate``; scipy ``nearest``
reflect    ``c b | a b c d`` OpenCV ``BORDER_REFLECT_101`` (its default); PyTorch ``reflect``;
                             scipy ``mirror``
symmetric  ``b a | a b c d`` OpenCV ``BORDER_REFLECT``; scipy ``reflect``
wrap       ``c d | a b c d`` OpenCV ``BORDER_WRAP``; PyTorch ``circular``; scipy ``grid-wrap``
========== ================= ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from convcli.errors import ParameterError

BORDER_MODES: tuple[str, ...] = ("reflect", "symmetric", "edge", "wrap", "zero", "constant")

# Names other libraries use for the same rule; accepted so that users need not translate.
# scipy's own "reflect" is *not* an alias: it means ``symmetric`` here, as in numpy.pad.
BORDER_ALIASES: dict[str, str] = {
    "zeros": "zero",
    "replicate": "edge",
    "nearest": "edge",
    "circular": "wrap",
}

_NUMPY_MODE: dict[str, Literal["reflect", "symmetric", "edge", "wrap", "constant"]] = {
    "reflect": "reflect",
    "symmetric": "symmetric",
    "edge": "edge",
    "wrap": "wrap",
    "zero": "constant",
    "constant": "constant",
}


def resolve_border(border: str) -> str:
    """Return the canonical border-mode name, or raise :class:`ParameterError`.

    >>> resolve_border("replicate")
    'edge'
    """
    if not isinstance(border, str):
        raise ParameterError(f"`border` must be a string, got {border!r}")
    name = border.strip().lower()
    name = BORDER_ALIASES.get(name, name)
    if name not in BORDER_MODES:
        raise ParameterError(f"`border` must be one of {', '.join(BORDER_MODES)}, got {border!r}")
    return name


def pad_image(
    image: NDArray[np.float32],
    pad: tuple[int, int, int, int],
    border: str,
    value: float = 0.0,
) -> NDArray[np.float32]:
    """Pad the two leading axes of ``image`` by ``(top, bottom, left, right)`` pixels.

    Extra trailing axes (colour channels) are not padded. ``value`` is used by ``constant``
    only; ``zero`` always pads with 0.

    >>> pad_image(np.array([[1.0, 2.0, 3.0]], dtype=np.float32), (0, 0, 2, 0), "reflect")
    array([[3., 2., 1., 2., 3.]], dtype=float32)
    """
    mode = resolve_border(border)
    top, bottom, left, right = pad
    if not any(pad):
        return image
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (image.ndim - 2)
    if mode in ("zero", "constant"):
        fill = 0.0 if mode == "zero" else float(value)
        return np.pad(image, widths, mode="constant", constant_values=fill)
    return np.pad(image, widths, mode=_NUMPY_MODE[mode])


def border_index(size: int, before: int, after: int, border: str) -> tuple[NDArray[np.intp], NDArray[np.bool_] | None]:
    """Source index of every position of an axis padded by ``before``/``after`` pixels.

    Returns the indices into ``[0, size)`` and, for ``zero``/``constant``, a mask of the
    positions that lie inside the image (the others take the constant). The maps equal
    numpy.pad's, including pads wider than the image.

    >>> border_index(4, 2, 2, "reflect")[0].tolist()
    [2, 1, 0, 1, 2, 3, 2, 1]
    >>> border_index(4, 2, 2, "symmetric")[0].tolist()
    [1, 0, 0, 1, 2, 3, 3, 2]
    >>> border_index(4, 2, 2, "wrap")[0].tolist()
    [2, 3, 0, 1, 2, 3, 0, 1]
    """
    mode = resolve_border(border)
    positions = np.arange(-before, size + after, dtype=np.intp)
    if mode in ("zero", "constant"):
        inside = (positions >= 0) & (positions < size)
        return np.clip(positions, 0, size - 1), inside
    if mode == "edge" or size == 1:
        return np.clip(positions, 0, size - 1), None
    if mode == "wrap":
        return np.mod(positions, size), None
    if mode == "reflect":
        period = 2 * size - 2
        folded = np.mod(positions, period)
        return np.where(folded >= size, period - folded, folded), None
    period = 2 * size  # symmetric
    folded = np.mod(positions, period)
    return np.where(folded >= size, period - 1 - folded, folded), None


@dataclass(frozen=True)
class BorderMaps:
    """Where every pixel of a padded image comes from, as index maps (:func:`border_index`).

    ``rows`` and ``cols`` index the image; for ``zero``/``constant``, ``row_inside`` and
    ``col_inside`` mark the positions inside it and the others take ``fill``. Gathering padded
    rows through these maps (:meth:`gather`) pads a band of an image without padding the image.
    """

    rows: NDArray[np.intp]
    cols: NDArray[np.intp]
    row_inside: NDArray[np.bool_] | None
    col_inside: NDArray[np.bool_] | None
    left: int
    width: int
    fill: float

    @classmethod
    def of(cls, shape: tuple[int, int], pad: tuple[int, int, int, int], border: str, value: float = 0.0) -> BorderMaps:
        """The maps of an image of ``shape`` (height, width) padded by ``pad`` (top, bottom, left, right)."""
        height, width = shape
        top, bottom, left, right = pad
        rows, row_inside = border_index(height, top, bottom, border)
        cols, col_inside = border_index(width, left, right, border)
        fill = 0.0 if resolve_border(border) == "zero" else float(value)
        return cls(rows, cols, row_inside, col_inside, left, width, fill)

    def gather(self, image: NDArray[Any], p0: int, p1: int, out: NDArray[Any]) -> NDArray[Any]:
        """Write padded rows ``p0:p1`` of ``image`` into ``out``, converted to ``out``'s dtype; return it.

        ``out`` is ``(p1 - p0, padded width, ...)``. An inner band is one slice of the image; border
        columns are copies of the band's own columns; the image is read once and never padded whole.

        >>> maps = BorderMaps.of((2, 3), (1, 1, 2, 0), "reflect")
        >>> maps.gather(np.array([[1, 2, 3], [4, 5, 6]], np.uint8), 0, 4, np.empty((4, 5), np.int16)).tolist()
        [[6, 5, 4, 5, 6], [3, 2, 1, 2, 3], [6, 5, 4, 5, 6], [3, 2, 1, 2, 3]]
        """
        rows = self.rows[p0:p1]
        left, width = self.left, self.width
        if rows[-1] - rows[0] == len(rows) - 1 and (len(rows) == 1 or bool(np.all(np.diff(rows) == 1))):
            source = image[rows[0] : rows[-1] + 1]  # an inner band: a plain slice, no gather
        else:
            source = image[rows]  # a band that reaches the top or bottom border
        out[:, left : left + width] = source  # one pass: copy and convert
        if left:
            out[:, :left] = out[:, left + self.cols[:left]]
        if out.shape[1] > left + width:
            out[:, left + width :] = out[:, left + self.cols[left + width :]]
        if self.row_inside is not None and self.col_inside is not None:  # zero or constant
            out[~self.row_inside[p0:p1]] = self.fill
            out[:, ~self.col_inside] = self.fill
        return out
