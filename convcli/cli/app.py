"""The Typer application: ``convcli apply``, ``convcli batch`` and ``convcli kernels ...``.

One module per command parses options and calls :mod:`convcli.pipeline` or :mod:`convcli.batch`;
heavy modules (numpy, Pillow) are imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from convcli import __version__
from convcli.cli.apply_cmd import apply
from convcli.cli.batch_cmd import batch
from convcli.cli.kernels_cmd import kernels_app

app = typer.Typer(
    name="convcli",
    help=(
        "Filter images with convolution kernels: edges (sobel, scharr, prewitt, roberts, laplacian, log), "
        "blurs (gaussian, box), sharpen, and your own kernel files.\n\n"
        "Example: [bold]convcli apply photo.jpg -k sobel[/bold] writes photo-sobel.jpg."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("apply", no_args_is_help=True)(apply)
app.command("batch", no_args_is_help=True)(batch)
app.add_typer(kernels_app, name="kernels")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show a traceback on errors.")] = False,
) -> None:
    """convcli: image convolution from the command line."""
