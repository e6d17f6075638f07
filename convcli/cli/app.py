"""The Typer application: ``convcli apply``, ``convcli batch`` and ``convcli kernels ...``.

One module per command parses options and calls :mod:`convcli.pipeline` or :mod:`convcli.batch`;
heavy modules (numpy, Pillow) are imported inside the commands so that ``--help`` and shell
completion stay fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from convcli import __version__
from convcli.cli.apply_cmd import apply
from convcli.cli.batch_cmd import batch
from convcli.cli.gallery_cmd import gallery
from convcli.cli.kernels_cmd import kernels_app
from convcli.cli.params import Command, DebugOpt, show_help_without_command

app = typer.Typer(
    name="convcli",
    help=(
        "Filter images with convolution kernels: edges (sobel, scharr, prewitt, roberts, laplacian, log), "
        "blurs (gaussian, box), sharpen, and your own kernel files.\n\n"
        "Example: [bold]convcli apply photo.jpg -k sobel[/bold] writes photo-sobel.jpg."
    ),
    # Without a command, the callback prints the help and exits 0, as git, cargo and pip do.
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("apply", cls=Command)(apply)
app.command("batch", cls=Command)(batch)
app.command("gallery", cls=Command)(gallery)
app.add_typer(kernels_app, name="kernels")


def _version(ctx: typer.Context, value: bool) -> None:
    # Shell completion parses the command line without running it: print nothing then.
    if value and not ctx.resilient_parsing:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    debug: DebugOpt = False,
) -> None:
    """convcli: image convolution from the command line."""
    show_help_without_command(ctx)
