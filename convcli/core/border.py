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

from typing import Literal

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
