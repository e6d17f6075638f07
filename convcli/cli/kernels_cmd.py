"""``convcli kernels list`` and ``convcli kernels show``."""

from __future__ import annotations

from typing import Annotated

import typer

kernels_app = typer.Typer(
    help="List and inspect the kernels convcli knows.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


def _format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


@kernels_app.command("list")
def list_kernels(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")] = False,
) -> None:
    """List every kernel: built-ins, and those in CONVCLI_KERNEL_PATH."""
    import json

    from rich.console import Console
    from rich.table import Table

    from convcli.kernels import iter_kernels

    kernels = list(iter_kernels())
    if as_json:
        rows = [
            {
                "name": k.name,
                "size": list(k.shape),
                "kind": k.kind,
                "combine": k.combine,
                "description": k.description,
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
        table.add_row(k.name, f"{k.shape[0]}x{k.shape[1]}", k.kind if k.kind != "set" else f"set ({k.combine})",
                      k.description)
    Console().print(table)


@kernels_app.command("show", no_args_is_help=True)
def show_kernel(
    name: Annotated[str, typer.Argument(help="Kernel name, NAME:key=value,... or a .toml file.", metavar="NAME")],
) -> None:
    """Print a kernel's matrices, sum, parameters and source."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from convcli.kernels import load_kernel

    kernel = load_kernel(name)
    console = Console()
    console.print(f"[bold cyan]{kernel.name}[/bold cyan]: {kernel.description}")
    details = [f"size {kernel.shape[0]}x{kernel.shape[1]}", f"kind {kernel.kind}"]
    if kernel.combine != "single":
        details.append(f"combined by {kernel.combine}")
    if kernel.params:
        details.append("params " + ", ".join(f"{k}={v}" for k, v in kernel.params.items() if v is not None))
    details.append(f"source {kernel.source}")
    console.print("  " + "; ".join(details))
    if kernel.reference:
        console.print(f"  reference: {kernel.reference}")
    for index, matrix in enumerate(kernel.matrices):
        peak = float(np.abs(matrix).max()) or 1.0
        table = Table(show_header=False, box=None, pad_edge=False)
        for _ in range(matrix.shape[1]):
            table.add_column(justify="right")
        for row in matrix:
            cells = []
            for value in row:
                strength = abs(float(value)) / peak
                colour = "red" if value < 0 else "green" if value > 0 else "dim"
                style = f"bold {colour}" if strength > 0.5 else colour
                cells.append(f"[{style}]{_format_number(float(value))}[/{style}]")
            table.add_row(*cells)
        title = f"matrix {index + 1} of {len(kernel.matrices)}" if len(kernel.matrices) > 1 else "matrix"
        console.print(f"\n  {title} (sum {_format_number(float(matrix.sum()))})")
        console.print(table)
