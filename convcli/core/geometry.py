"""Padding, stride and dilation: parsing, validation and the output-size formula.

Every geometric argument of :func:`convcli.core.convolve` is checked here, before any pixel is
touched, and every message names the parameter at fault.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import TypeGuard

import numpy as np
from numpy.typing import NDArray

from convcli.errors import ParameterError

PaddingSpec = str | int | Sequence[int]
PairSpec = int | Sequence[int]

PADDING_WORDS = ("same", "valid", "full")


@dataclass(frozen=True)
class Geometry:
    """The resolved geometry of one convolution.

    ``pad`` is ``(top, bottom, left, right)``. ``padding="same"`` with stride > 1 pads as for
    stride 1 and keeps every stride-th output, so the output is ``ceil(H / stride)`` tall, which
    is also what the output-size formula gives for that padding.
    """

    pad: tuple[int, int, int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    kernel_shape: tuple[int, int]
    out_shape: tuple[int, int]

    @property
    def dilated_kernel_shape(self) -> tuple[int, int]:
        """Extent of the kernel footprint once dilation spreads its taps."""
        (kh, kw), (dh, dw) = self.kernel_shape, self.dilation
        return (dh * (kh - 1) + 1, dw * (kw - 1) + 1)


def _is_int(value: object) -> TypeGuard[Integral]:
    """An integer of any integer type, but not a bool."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def resolve_pair(value: PairSpec, name: str) -> tuple[int, int]:
    """Turn an ``int`` or ``(row, col)`` pair into a pair of ints >= 1.

    >>> resolve_pair(2, "stride")
    (2, 2)
    >>> resolve_pair((1, 3), "dilation")
    (1, 3)
    """
    if _is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 and all(
        _is_int(v) for v in value
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ParameterError(f"`{name}` must be an integer or a (row, col) pair of integers, got {value!r}")
    if min(pair) < 1:
        raise ParameterError(f"`{name}` must be >= 1, got {value!r}")
    return pair


def _same_pad(extent: int) -> tuple[int, int]:
    # PyTorch's rule for padding="same": the odd pixel of an even footprint goes bottom/right.
    total = extent - 1
    return total // 2, total - total // 2


def resolve_padding(
    padding: PaddingSpec, kernel_shape: tuple[int, int], dilation: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Resolve a padding spec to ``(top, bottom, left, right)`` pixel counts.

    ``padding`` is ``"same"``, ``"valid"``, ``"full"``, one int for all sides, a pair
    ``(rows, cols)`` or a quad ``(top, bottom, left, right)``.

    >>> resolve_padding("same", (3, 3), (1, 1))
    (1, 1, 1, 1)
    >>> resolve_padding("same", (2, 2), (1, 1))  # the extra row/column goes bottom/right
    (0, 1, 0, 1)
    >>> resolve_padding("full", (3, 5), (1, 1))
    (2, 2, 4, 4)
    """
    eh = dilation[0] * (kernel_shape[0] - 1) + 1
    ew = dilation[1] * (kernel_shape[1] - 1) + 1
    if isinstance(padding, str):
        word = padding.strip().lower()
        if word == "same":
            return (*_same_pad(eh), *_same_pad(ew))
        if word == "valid":
            return (0, 0, 0, 0)
        if word == "full":
            return (eh - 1, eh - 1, ew - 1, ew - 1)
        raise ParameterError(
            f"`padding` must be one of same, valid, full, an integer or a list of integers, got {padding!r}"
        )
    if _is_int(padding):
        quad = (int(padding),) * 4
    elif isinstance(padding, Sequence) and all(_is_int(v) for v in padding) and len(padding) in (2, 4):
        values = [int(v) for v in padding]
        if len(values) == 2:
            quad = (values[0], values[0], values[1], values[1])
        else:
            quad = (values[0], values[1], values[2], values[3])
    else:
        raise ParameterError(
            "`padding` must be same, valid, full, N, (rows, cols) or (top, bottom, left, right), "
            f"got {padding!r}"
        )
    if min(quad) < 0:
        raise ParameterError(f"`padding` must not be negative, got {padding!r}")
    return quad


def output_size(size: int, pad_before: int, pad_after: int, k: int, stride: int, dilation: int) -> int:
    """PyTorch's output-size formula along one axis.

    ``floor((size + pad_before + pad_after - dilation * (k - 1) - 1) / stride) + 1``

    >>> output_size(5, 0, 0, 3, 1, 1)
    3
    >>> output_size(7, 1, 1, 3, 2, 1)
    4
    """
    return (size + pad_before + pad_after - dilation * (k - 1) - 1) // stride + 1


def resolve_geometry(
    image_shape: tuple[int, int],
    kernel_shape: tuple[int, int],
    padding: PaddingSpec,
    stride: PairSpec,
    dilation: PairSpec,
) -> Geometry:
    """Validate the geometry and compute the output shape; raise :class:`ParameterError`."""
    strides = resolve_pair(stride, "stride")
    dilations = resolve_pair(dilation, "dilation")
    pad = resolve_padding(padding, kernel_shape, dilations)
    height, width = image_shape
    padded = (height + pad[0] + pad[1], width + pad[2] + pad[3])
    extent = (dilations[0] * (kernel_shape[0] - 1) + 1, dilations[1] * (kernel_shape[1] - 1) + 1)
    if extent[0] > padded[0] or extent[1] > padded[1]:
        dilated = "" if dilations == (1, 1) else f" (dilated to {extent[0]}x{extent[1]})"
        raise ParameterError(
            f"kernel {kernel_shape[0]}x{kernel_shape[1]}{dilated} is larger than the padded image "
            f"{padded[0]}x{padded[1]} (rows x cols); use more padding or a smaller kernel"
        )
    out = (
        output_size(height, pad[0], pad[1], kernel_shape[0], strides[0], dilations[0]),
        output_size(width, pad[2], pad[3], kernel_shape[1], strides[1], dilations[1]),
    )
    return Geometry(pad=pad, stride=strides, dilation=dilations, kernel_shape=kernel_shape, out_shape=out)


def centre_indices(geometry: Geometry, image_shape: tuple[int, int]) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """For each output row and column, the input row/column under the kernel's centre tap.

    Used to carry per-pixel data that is not filtered (an alpha channel) through the same
    padding, stride and dilation; positions in the padding are clamped to the nearest edge.

    >>> g = resolve_geometry((5, 5), (3, 3), "valid", 2, 1)
    >>> [a.tolist() for a in centre_indices(g, (5, 5))]
    [[1, 3], [1, 3]]
    """
    result = []
    for axis in (0, 1):
        extent = geometry.dilation[axis] * (geometry.kernel_shape[axis] - 1)
        first = extent // 2 - geometry.pad[2 * axis]
        positions = np.arange(geometry.out_shape[axis]) * geometry.stride[axis] + first
        result.append(np.clip(positions, 0, image_shape[axis] - 1))
    return result[0], result[1]
