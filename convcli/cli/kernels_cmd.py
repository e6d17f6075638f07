"""``convcli kernels list``, ``convcli kernels show`` and ``convcli kernels export``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from convcli.kernels import Kernel

kernels_app = typer.Typer(
    help="List, inspect and export the kernels convcli knows.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

# Larger matrices are summarised rather than printed: a 255x255 table helps nobody.
MAX_PRINTED_SIDE = 25

NameArg = Annotated[
    str, typer.Argument(help="Kernel name, NAME:key=value,... or a .toml file.", metavar="NAME[:PARAMS]")
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


@kernels_app.command("list")
def list_kernels(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
) -> None:
    """List every kernel: built-ins, and those in CONVCLI_KERNEL_PATH.

    A user kernel file that cannot be loaded is reported as a warning and left out.
    """
    import json
    import warnings

    from rich.console import Console
    from rich.table import Table

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
    table.add_column("name", style="bold cyan", no_wrap=True)
    table.add_column("size", justify="right")
    table.add_column("kind")
    table.add_column("description")
    for k in kernels:
        table.add_row(k.name, f"{k.shape[0]}x{k.shape[1]}", _kind_label(k), k.description)
    Console().print(table)


def _matrix_table(matrix: NDArray[np.float64], peak: float) -> object:
    """A rich table of the taps on a colour scale: red negative, green positive, brighter = larger."""
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    for _ in range(matrix.shape[1]):
        table.add_column(justify="right")
    for row in matrix:
        cells = []
        for value in row:
            strength = abs(float(value)) / peak if peak else 0.0
            level = int(90 + 165 * strength)
            if value > 0:
                style = f"rgb(40,{level},40)"
            elif value < 0:
                style = f"rgb({level},40,40)"
            else:
                style = "dim"
            if strength > 0.5:
                style = f"bold {style}"
            cells.append(f"[{style}]{_format_number(float(value))}[/]")
        table.add_row(*cells)
    return table


@kernels_app.command("show", no_args_is_help=True)
def show_kernel(name: NameArg) -> None:
    """Print a kernel's matrices on a colour scale, their sums, separability and normalisation.

    [bold]Examples[/bold]

      convcli kernels show sobel

      convcli kernels show gaussian:sigma=2        [dim]# shows the radius it derives: 6[/dim]
    """
    import numpy as np
    from rich.console import Console
    from rich.markup import escape

    from convcli.kernels import is_separable, load_kernel

    kernel = load_kernel(name)
    console = Console()
    console.print(f"[bold cyan]{escape(kernel.name)}[/bold cyan]: {escape(kernel.description)}")
    details = [f"size {kernel.shape[0]}x{kernel.shape[1]}", f"kind {_kind_label(kernel)}"]
    if kernel.params:
        details.append("params " + ", ".join(f"{k}={v}" for k, v in kernel.params.items() if v is not None))
    details.append(f"source {kernel.source}")
    console.print("  " + escape("; ".join(details)))
    console.print(f"  normalisation: {escape(kernel.normalization)}")
    if kernel.offset:
        console.print(f"  offset: {_format_number(kernel.offset)} added to the response")
    if kernel.anchor is not None:
        console.print(f"  anchor: row {kernel.anchor[0]}, column {kernel.anchor[1]}")
    if kernel.reference:
        console.print(f"  reference: {escape(kernel.reference)}")

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
    if max(kernel.shape) > MAX_PRINTED_SIDE:
        console.print(
            f"\n  the matrices are {kernel.shape[0]}x{kernel.shape[1]}, too large to print; "
            f"`convcli kernels export {escape(name)}` writes every tap"
        )
    for title, matrix in labelled:
        separable, rank = is_separable(matrix)
        verdict = "separable (rank 1)" if separable else f"not separable (rank {rank})"
        console.print(f"\n  {title}: sum {_format_number(float(matrix.sum()))}, {verdict}")
        if max(kernel.shape) <= MAX_PRINTED_SIDE:
            console.print(_matrix_table(matrix, peak))
    if max(kernel.shape) <= MAX_PRINTED_SIDE:
        console.print("\n  [dim]colour: red negative, green positive; brighter is larger[/dim]")


@kernels_app.command("export", no_args_is_help=True)
def export_kernel(
    name: NameArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the kernel file here instead of standard output.", metavar="FILE"),
    ] = None,
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
