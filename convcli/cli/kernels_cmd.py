"""``convcli kernels list``, ``convcli kernels show`` and ``convcli kernels export``."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convcli.cli.completion import complete_kernel
from convcli.cli.params import Command, DebugOpt, show_help_without_command
from convcli.errors import ParameterError
from convcli.text import printable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from rich.console import Console

    from convcli.kernels import Kernel

kernels_app = typer.Typer(
    help="List, inspect and export the kernels convcli knows.",
    invoke_without_command=True,
    rich_markup_mode="rich",
)


@kernels_app.callback()
def kernels_group(ctx: typer.Context, debug: DebugOpt = False) -> None:
    """List, inspect and export the kernels convcli knows."""
    show_help_without_command(ctx)


# Larger matrices are summarised rather than printed: a 255x255 table helps nobody.
MAX_PRINTED_SIDE = 25

NameArg = Annotated[
    str,
    typer.Argument(
        help="Kernel name (sobel), name with parameters (gaussian:sigma=2) or a .toml file.",
        metavar="NAME",
        autocompletion=complete_kernel,
    ),
]


def _format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


def _kind_label(kernel: Kernel) -> str:
    """The kind column: how the kernel is made, with the combine rule or channel counts."""
    label = f"family {kernel.family}" if kernel.family and kernel.family != kernel.name.split(":")[0] else kernel.kind
    if kernel.channels is not None:
        mixing = f"mixing {kernel.channels[0]}->{kernel.channels[1]}"
        label = mixing if label == "mixing" else f"{label} ({mixing})"
    elif kernel.combine != "single":
        label += f" ({len(kernel.matrices)}, {kernel.combine})"
    return label


@kernels_app.command("list", cls=Command)
def list_kernels(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
    debug: DebugOpt = False,
) -> None:
    """List every kernel: built-ins, and those in CONVCLI_KERNEL_PATH.

    A user kernel file that cannot be loaded is reported as a warning and left out.
    """
    import json
    import warnings

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from convcli.kernels import KernelWarning, iter_kernels

    def skip(name: str, error: Exception) -> None:
        warnings.warn(f"kernel {name!r} left out: {error}", KernelWarning, stacklevel=2)

    kernels = list(iter_kernels(on_error=skip))
    if as_json:
        rows = [
            {
                "name": k.name,
                "size": list(k.shape),
                "kind": k.kind,
                "combine": k.combine,
                "family": k.family,
                "params": dict(k.params),
                "channels": list(k.channels) if k.channels else None,
                "description": k.description,
                "reference": k.reference,
                "source": k.source,
            }
            for k in kernels
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="convcli kernels", title_justify="left")
    # Folded, never cut with an ellipsis: a narrow terminal wraps a long word instead of hiding it.
    table.add_column("name", style="bold cyan", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("kind", overflow="fold")
    table.add_column("description", overflow="fold")
    for k in kernels:
        table.add_row(Text(printable(k.name)), f"{k.shape[0]}x{k.shape[1]}", Text(printable(_kind_label(k))),
                      Text(printable(k.description)))
    Console().print(table)


@dataclasses.dataclass(frozen=True)
class TapFormat:
    """How the taps are printed: each divided by ``10**exponent``, with ``decimals`` digits after the point."""

    exponent: int
    decimals: int

    def cell(self, value: float) -> str:
        """One tap as printed; an exact zero is ``0``."""
        if value == 0:
            return "0"
        text = f"{value * 10.0**-self.exponent:.{self.decimals}f}"
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # -0.00: the sign of nothing

    def width(self, values: NDArray[np.float64]) -> int:
        """The widest cell of ``values``."""
        return max(len(self.cell(float(v))) for v in values.ravel())


def _fits(width: int, count: int, available: int) -> bool:
    """Whether ``count`` cells of ``width`` fit a line: two spaces of indent, one between cells."""
    return 2 + count * (width + 1) - 1 <= available


def _trimmed(fmt: TapFormat, values: NDArray[np.float64]) -> TapFormat:
    """Drop trailing decimals that are zero in every tap (0.04, not 0.04000)."""
    import numpy as np

    scaled = values * 10.0**-fmt.exponent
    decimals = fmt.decimals
    while decimals > 0 and np.allclose(np.round(scaled, decimals - 1), scaled, rtol=0, atol=1e-9 * 10.0**-decimals):
        decimals -= 1
    return TapFormat(fmt.exponent, decimals)


def tap_format(values: NDArray[np.float64], columns: int, available: int) -> tuple[TapFormat, int]:
    """The most precise format whose rows fit ``available`` characters, and the columns per block.

    Integers are printed exactly when they fit. Otherwise 4, 3, then 2 significant digits of the
    largest tap: plainly (0.03979) when that fits, else as a multiple of a power of ten noted under
    the table (3.979 with ``values are x 1e-02``). When no format fits even with 2 digits, the
    columns are printed in blocks with 3 digits.

    >>> import numpy as np
    >>> tap_format(np.array([0.03979, 0.0001]), 13, 80)
    (TapFormat(exponent=-2, decimals=3), 13)
    """
    import numpy as np

    peak = float(np.abs(values).max()) if values.size else 0.0
    if peak == 0:
        return TapFormat(0, 0), columns
    top = math.floor(math.log10(peak))
    integers = bool(np.all(values == np.round(values))) and peak < 1e9
    candidates = [TapFormat(0, 0)] if integers else []
    fallback: TapFormat | None = None
    for significant in (4, 3, 2):
        quantum = top - significant + 1
        if integers and quantum <= 0:
            continue  # exact integers are already better
        for exponent in dict.fromkeys((0, top, top - 1, top - 2)):
            if quantum <= exponent:
                candidates.append(_trimmed(TapFormat(exponent, exponent - quantum), values))
                if significant == 3 and fallback is None and exponent != 0:
                    fallback = candidates[-1]
    for fmt in candidates:
        if _fits(fmt.width(values), columns, available):
            return fmt, columns
    fmt = fallback or candidates[0]
    return fmt, max(1, (available + 1 - 2) // (fmt.width(values) + 1))


def _print_matrix(console: Console, matrix: NDArray[np.float64], peak: float, fmt: TapFormat, per_block: int) -> None:
    """The taps on the heat map's colour scale (blue negative, white zero, red positive), in blocks of columns.

    Each cell's background is its heat-map colour; the numbers keep their sign, so the matrix reads
    the same without colour (``NO_COLOR``, or not a terminal: rich then writes no styles).
    """
    import numpy as np
    from rich.text import Text

    from convcli.pictures import tap_colour, text_colour

    width = fmt.width(matrix)
    columns = matrix.shape[1]
    for first in range(0, columns, per_block):
        last = min(first + per_block, columns)
        if per_block < columns:
            console.print(f"  columns {first + 1}-{last} of {columns}", highlight=False)
        for row in matrix[:, first:last]:
            line = Text("  ")
            for index, value in enumerate(row):
                background = tap_colour(float(value), peak)
                ink = text_colour(background)
                if index:
                    line.append(" ")
                style = "rgb({},{},{}) on rgb({},{},{})".format(*ink, *background)
                line.append(fmt.cell(float(value)).rjust(width), style=style)
            console.print(line, no_wrap=True, crop=False)
    if fmt.exponent:
        shown = fmt.cell(float(matrix.flat[int(np.argmax(np.abs(matrix)))]))
        console.print(f"  values are x 1e{fmt.exponent:+03d} ({shown} is {float(shown) * 10.0**fmt.exponent:.6g})",
                      highlight=False)


@kernels_app.command("show", cls=Command)
def show_kernel(
    name: NameArg,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Draw the matrices as a heat map into this picture (format from the suffix; - for PNG on "
            "standard output) instead of printing them.",
            metavar="FILE",
        ),
    ] = None,
    cell: Annotated[
        int | None,
        typer.Option("--cell", help="With --plot: the side of one tap's square, in pixels.", metavar="N"),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Print a kernel's matrices on a colour scale, their sums, separability and normalisation.

    [bold]Examples[/bold]

      convcli kernels show sobel

      convcli kernels show kirsch --plot kirsch.png   [dim]# a heat map: blue < 0 < red[/dim]

      convcli kernels show gaussian:sigma=2        [dim]# shows the radius it derives: 6[/dim]
    """
    import numpy as np
    from rich.console import Console
    from rich.markup import escape

    from convcli.kernels import is_separable, load_kernel

    def text(value: object) -> str:
        """A kernel's own text, escaped for the terminal and for rich markup."""
        return escape(printable(value))

    kernel = load_kernel(name)
    if plot is not None:
        from convcli.io import write_image
        from convcli.pictures import render_heatmap

        # No suffix (a plain name, /dev/null, a FIFO) means PNG: this command has no --format.
        write_image(render_heatmap(kernel, cell), None, plot, fmt="PNG" if not plot.suffix else None)
        return
    if cell is not None:
        raise ParameterError("`--cell` goes with `--plot`")
    console = Console()
    if console.no_color:
        # NO_COLOR: no styles at all, not even bold, so that nothing but text reaches the terminal.
        console = Console(color_system=None)
    console.print(f"[bold cyan]{text(kernel.name)}[/bold cyan]: {text(kernel.description)}")
    details = [f"size {kernel.shape[0]}x{kernel.shape[1]}", f"kind {_kind_label(kernel)}"]
    if kernel.params:
        details.append("params " + ", ".join(f"{k}={v}" for k, v in kernel.params.items() if v is not None))
    details.append(f"source {kernel.source}")
    console.print("  " + text("; ".join(details)))
    console.print(f"  normalisation: {text(kernel.normalization)}")
    if kernel.offset:
        console.print(f"  offset: {_format_number(kernel.offset)} added to the response")
    if kernel.anchor is not None:
        console.print(f"  anchor: row {kernel.anchor[0]}, column {kernel.anchor[1]}")
    if kernel.reference:
        console.print(f"  reference: {text(kernel.reference)}")

    if kernel.weights is not None:
        labelled = [
            (f"output {o + 1}, input {i + 1}", kernel.weights[o, i])
            for o in range(kernel.weights.shape[0])
            for i in range(kernel.weights.shape[1])
        ]
        if kernel.bias is not None:
            pixels = kernel.bias_pixels
            assert pixels is not None
            values = ", ".join(_format_number(float(v)) for v in kernel.bias)
            scaled = ", ".join(_format_number(float(v)) for v in pixels)
            units = f" (0..1 units as ToTensor; {scaled} on the 0..255 scale)" if kernel.bias_units == "unit" else ""
            console.print(f"  bias: {values}{units}")
    else:
        count = len(kernel.matrices)
        labelled = [(f"matrix {i + 1} of {count}" if count > 1 else "matrix", m) for i, m in enumerate(kernel.matrices)]
    peak = max(float(np.abs(m).max()) for _, m in labelled) or 1.0
    printed = max(kernel.shape) <= MAX_PRINTED_SIDE
    if not printed:
        console.print(
            f"\n  the matrices are {kernel.shape[0]}x{kernel.shape[1]}, too large to print; this writes every tap:"
        )
        console.print(f"    convcli kernels export {text(name)}", no_wrap=True, crop=False, highlight=False)
    # One format for every matrix of the kernel, so that the matrices of a set read alike.
    taps = np.concatenate([m.ravel() for _, m in labelled])
    fmt, per_block = tap_format(taps, kernel.shape[1], console.width)
    for title, matrix in labelled:
        separable, rank = is_separable(matrix)
        verdict = "separable (rank 1)" if separable else f"not separable (rank {rank})"
        console.print(f"\n  {title}: sum {_format_number(float(matrix.sum()))}, {verdict}")
        if printed:
            _print_matrix(console, matrix, peak, fmt, per_block)
    if printed:
        console.print("\n  [dim]colour: blue negative, white zero, red positive; stronger is larger[/dim]")


@kernels_app.command("export", cls=Command)
def export_kernel(
    name: NameArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the kernel file here instead of standard output.", metavar="FILE"),
    ] = None,
    debug: DebugOpt = False,
) -> None:
    """Write a kernel as a TOML kernel file, every tap written out: a start for your own kernel.

    Applying the exported file gives exactly the output of the name it came from.

    [bold]Examples[/bold]

      convcli kernels export gaussian:sigma=2 -o my-blur.toml

      convcli apply photo.jpg -k my-blur.toml
    """
    import sys

    from convcli.io import write_bytes_atomic
    from convcli.kernels import export_toml, load_kernel

    text = export_toml(load_kernel(name))
    if output is None or str(output) == "-":
        sys.stdout.write(text)
        return
    write_bytes_atomic(text.encode("utf-8"), output)
