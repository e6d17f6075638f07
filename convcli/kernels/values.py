"""The values of a kernel file, checked: strings, numbers, matrices, channel-mixing weights, bias, anchor.

Every function takes ``where`` (the file, or another label) and raises :class:`KernelError`
naming it and the key at fault.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.errors import KernelError
from convcli.kernels.kernel import FLOAT32_MAX, MAX_CHANNELS, MAX_KERNEL_SIDE


def parse_string(data: Mapping[str, Any], key: str, where: str, required: bool) -> str:
    """The string at ``data[key]``; ``""`` when it is absent and not ``required``.

    >>> parse_string({"name": "edges"}, "name", "example", required=True)
    'edges'
    """
    value = data.get(key)
    if value is None:
        if required:
            raise KernelError(f"{where}: missing required key `{key}`")
        return ""
    if not isinstance(value, str):
        raise KernelError(f"{where}: `{key}` must be a string, got {type(value).__name__}")
    return value


def parse_number(value: Any, where: str, what: str) -> float:
    """``value`` as a finite float that float32 holds; ``what`` names it in the message.

    Booleans are not numbers. The filters compute in float32, so a value beyond its range
    (about 3.4e38) would turn into infinity: it is refused here, as are integers too long for
    a float.

    >>> parse_number(3, "example", "`scale`")
    3.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KernelError(f"{where}: {what} must be a number, got {_short(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if isinstance(value, float) and not math.isfinite(number):
        raise KernelError(f"{where}: {what} must be finite, got {value!r}")
    if not abs(number) <= FLOAT32_MAX:
        raise KernelError(
            f"{where}: {what} is {_short(value)}, beyond float32's range (+-{FLOAT32_MAX:.3g}) in which convcli filters"
        )
    return number


def _short(value: Any) -> str:
    """``repr(value)``, an integer of hundreds of digits shortened to its digit count."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > 128:
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_matrix(value: Any, where: str, key: str = "matrix") -> NDArray[np.float64]:
    """Validate rows of numbers: rectangular, finite, 1x1 up to the size limit.

    >>> parse_matrix([[1, 2], [3, 4.5]], "example").tolist()
    [[1.0, 2.0], [3.0, 4.5]]
    """
    if not isinstance(value, list) or not value:
        raise KernelError(f"{where}: `{key}` must be a non-empty list of rows")
    if len(value) > MAX_KERNEL_SIDE:
        raise KernelError(f"{where}: `{key}` has {len(value)} rows, more than the {MAX_KERNEL_SIDE}-row limit")
    width = None
    rows: list[list[float]] = []
    for r, row in enumerate(value):
        if not isinstance(row, list):
            raise KernelError(f"{where}: `{key}` row {r + 1} must be a list of numbers, got {row!r}")
        if not row:
            raise KernelError(f"{where}: `{key}` row {r + 1} is empty")
        if len(row) > MAX_KERNEL_SIDE:
            raise KernelError(
                f"{where}: `{key}` row {r + 1} has {len(row)} values, more than the {MAX_KERNEL_SIDE} limit"
            )
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise KernelError(f"{where}: `{key}` is ragged: row {r + 1} has {len(row)} values, row 1 has {width}")
        rows.append([parse_number(v, where, f"`{key}` row {r + 1}, column {c + 1}") for c, v in enumerate(row)])
    return np.array(rows, dtype=np.float64)


def parse_weights(value: Any, where: str) -> NDArray[np.float64]:
    """Validate ``weights[out][in][kh][kw]``: every 2-D kernel valid and all of one shape.

    >>> parse_weights([[[[1]], [[2]], [[3]]]], "example").shape
    (1, 3, 1, 1)
    """
    if not isinstance(value, list) or not value or not all(isinstance(v, list) for v in value):
        raise KernelError(f"{where}: `weights` must be a list (one per output channel) of lists of matrices")
    if len(value) > MAX_CHANNELS:
        raise KernelError(f"{where}: `weights` has {len(value)} output channels, more than the {MAX_CHANNELS} limit")
    in_channels = len(value[0])
    if not 1 <= in_channels <= MAX_CHANNELS:
        raise KernelError(f"{where}: `weights[0]` must hold 1 to {MAX_CHANNELS} matrices, one per input channel")
    kernels: list[list[NDArray[np.float64]]] = []
    for o, per_output in enumerate(value):
        if len(per_output) != in_channels:
            raise KernelError(
                f"{where}: `weights[{o}]` has {len(per_output)} matrices, `weights[0]` has {in_channels}; "
                "every output channel needs one matrix per input channel"
            )
        kernels.append([parse_matrix(m, where, f"weights[{o}][{i}]") for i, m in enumerate(per_output)])
    shape = kernels[0][0].shape
    for o, row in enumerate(kernels):
        for i, m in enumerate(row):
            if m.shape != shape:
                raise KernelError(
                    f"{where}: `weights[{o}][{i}]` is {m.shape[0]}x{m.shape[1]}, `weights[0][0]` is "
                    f"{shape[0]}x{shape[1]}; all matrices of a mixing kernel share one size"
                )
    return np.array(kernels, dtype=np.float64)


def parse_bias(data: Mapping[str, Any], out_channels: int, where: str) -> NDArray[np.float64] | None:
    """The ``bias`` of a mixing kernel, one number per output channel, or None when there is none.

    >>> parse_bias({"bias": [0.5, 1]}, 2, "example").tolist()
    [0.5, 1.0]
    """
    if "bias" not in data:
        return None
    value = data["bias"]
    if not isinstance(value, list):
        raise KernelError(f"{where}: `bias` must be a list of numbers, one per output channel")
    if len(value) != out_channels:
        raise KernelError(f"{where}: `bias` has {len(value)} values, but `weights` has {out_channels} output channels")
    return np.array([parse_number(v, where, f"`bias` value {i + 1}") for i, v in enumerate(value)], dtype=np.float64)


def parse_anchor(value: Any, shape: tuple[int, int], where: str) -> tuple[int, int]:
    """The ``anchor`` ``[row, col]``: two integers counted from 0 that fall inside a kernel of ``shape``.

    >>> parse_anchor([0, 2], (3, 3), "example")
    (0, 2)
    """
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise KernelError(f"{where}: `anchor` must be [row, col], two integers counted from 0, got {value!r}")
    row, col = value
    if not (0 <= row < shape[0] and 0 <= col < shape[1]):
        raise KernelError(
            f"{where}: `anchor` {value} is outside the {shape[0]}x{shape[1]} kernel "
            f"(rows 0..{shape[0] - 1}, columns 0..{shape[1] - 1})"
        )
    return (row, col)
