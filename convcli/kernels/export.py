"""Inspecting and exporting kernels: the separability test and the kernel file writer."""

from __future__ import annotations

import json

import numpy as np
from numpy.typing import NDArray

from convcli.core.separable import kernel_rank
from convcli.kernels.kernel import Kernel
from convcli.text import TERMINAL_CONTROLS, printable


def is_separable(matrix: NDArray[np.float64]) -> tuple[bool, int]:
    """Whether a 2-D kernel is an outer product of a column and a row, and its rank (SVD).

    >>> is_separable(np.outer([1, 2, 1], [-1, 0, 1]))
    (True, 1)
    >>> is_separable(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]))
    (False, 2)
    """
    # The engines' own rank test, so that `kernels show` says what the separable engine will do.
    rank = kernel_rank(np.asarray(matrix, dtype=np.float64))
    return rank <= 1, rank


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string: the same escapes, \uXXXX included. JSON leaves
    # raw what TOML allows but a terminal acts on (C1 controls, direction overrides): escape those too.
    quoted = json.dumps(text, ensure_ascii=False)
    return TERMINAL_CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", quoted)


def _toml_rows(matrix: NDArray[np.float64], indent: str) -> str:
    # repr() writes the shortest text that reads back as the same float64: a bit-identical round trip.
    rows = [f"{indent}    [{', '.join(repr(float(v)) for v in row)}]," for row in matrix]
    return "[\n" + "\n".join(rows) + f"\n{indent}]"


def export_toml(kernel: Kernel) -> str:
    """The kernel as a kernel file, every tap written out, to start a custom kernel from.

    Loading the text gives the same float64 taps bit for bit, so the file filters exactly as the
    kernel does.

    >>> from convcli.kernels import load_kernel
    >>> print(export_toml(load_kernel("sobel-x")))  # doctest: +ELLIPSIS
    # Exported from sobel-x (family sobel-x, size=3); the matrix is written out in full.
    name = "sobel-x"
    ...
    matrix = [
        [-1.0, 0.0, 1.0],
        [-2.0, 0.0, 2.0],
        [-1.0, 0.0, 1.0],
    ]
    <BLANKLINE>
    """
    lines: list[str] = []
    origin = f"family {kernel.family}" if kernel.family else f"source {kernel.source}"
    if kernel.params:
        origin += ", " + ", ".join(f"{k}={v}" for k, v in kernel.params.items() if v is not None)
    comment = f"Exported from {kernel.name} ({origin}); the matrix is written out in full."
    # A name or path may hold a newline or an escape sequence: written as escapes, the comment
    # stays one line (no key can be slipped into the file) and prints safely on a terminal.
    lines.append("# " + printable(comment))
    lines.append(f"name = {_toml_string(kernel.name)}")
    lines.append(f"description = {_toml_string(kernel.description)}")
    if kernel.reference:
        lines.append(f"reference = {_toml_string(kernel.reference)}")
    if kernel.weights is not None:
        blocks = []
        for per_output in kernel.weights:
            inner = ",\n".join(f"        {_toml_rows(m, '        ')}" for m in per_output)
            blocks.append(f"    [\n{inner},\n    ],")
        lines.append("# weights[out][in][row][col], PyTorch's Conv2d layout")
        lines.append("weights = [\n" + "\n".join(blocks) + "\n]")
        if kernel.bias is not None:
            lines.append(f"bias = [{', '.join(repr(float(v)) for v in kernel.bias)}]")
            lines.append(f"bias_units = {_toml_string(kernel.bias_units)}")
    elif len(kernel.matrices) == 1:
        lines.append(f"matrix = {_toml_rows(kernel.matrices[0], '')}")
    else:
        lines.append(f"combine = {_toml_string(kernel.combine)}")
        blocks = [f"    {_toml_rows(m, '    ')}," for m in kernel.matrices]
        lines.append("matrices = [\n" + "\n".join(blocks) + "\n]")
    if kernel.offset:
        lines.append(f"offset = {kernel.offset!r}")
    if kernel.anchor is not None:
        lines.append(f"anchor = [{kernel.anchor[0]}, {kernel.anchor[1]}]")
    return "\n".join(lines) + "\n"
