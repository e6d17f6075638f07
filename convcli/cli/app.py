"""The Typer application: ``convcli apply`` and ``convcli kernels ...``.

Commands parse options and call :mod:`convcli.pipeline`; heavy modules (numpy, Pillow) are
imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from convcli import __version__
from convcli.cli import error_line
from convcli.cli.batch_cmd import batch
from convcli.cli.common import (
    DEFAULT_MAX_PIXELS,
    AllFramesOpt,
    BorderOpt,
    BorderValueOpt,
    CompressLevelOpt,
    DepthOpt,
    DilationOpt,
    FlipOpt,
    FormatOpt,
    GrayOpt,
    InPlaceOpt,
    KernelOpt,
    MaxMemoryOpt,
    MaxPixelsOpt,
    MethodOpt,
    OffsetOpt,
    OutputMode,
    OutputModeOpt,
    PaddingOpt,
    QualityOpt,
    QuietOpt,
    ScaleOpt,
    StrideOpt,
    ThreadsOpt,
    filter_options,
    limits,
    load_kernels,
    output_options,
)
from convcli.cli.kernels_cmd import kernels_app
from convcli.errors import ExitCode, ParameterError


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
app.add_typer(kernels_app, name="kernels")
app.command("batch", no_args_is_help=True)(batch)


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


@app.command(no_args_is_help=True)
def apply(
    input: Annotated[str, typer.Argument(help="Image file to filter, or - to read standard input.", metavar="INPUT")],
    kernel: KernelOpt,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Output file, or - for standard output. Default: INPUT-KERNEL.EXT beside the input "
            "(standard output when INPUT is -).",
            metavar="PATH",
        ),
    ] = None,
    padding: PaddingOpt = "same",
    border: BorderOpt = "reflect",
    border_value: BorderValueOpt = 0.0,
    stride: StrideOpt = "1",
    dilation: DilationOpt = "1",
    flip: FlipOpt = False,
    gray: GrayOpt = False,
    output_mode: OutputModeOpt = OutputMode.clip,
    scale: ScaleOpt = 1.0,
    offset: OffsetOpt = 0.0,
    format: FormatOpt = None,
    quality: QualityOpt = None,
    compress_level: CompressLevelOpt = None,
    method: MethodOpt = "auto",
    threads: ThreadsOpt = None,
    depth: DepthOpt = 8,
    all_frames: AllFramesOpt = False,
    in_place: InPlaceOpt = False,
    max_pixels: MaxPixelsOpt = DEFAULT_MAX_PIXELS,
    max_memory: MaxMemoryOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Filter one image with one or more kernels and write the result.

    [bold]Examples[/bold]

      convcli apply photo.jpg -k sobel                    [dim]# writes photo-sobel.jpg[/dim]

      convcli apply photo.jpg -k gaussian:sigma=3 -o blurred.png

      convcli apply photo.jpg -k sobel-x -m normalize --gray -o gx.png

      cat a.png | convcli apply - -k gaussian -o - | convcli apply - -k sobel -o edges.png
    """
    from convcli.pipeline import process_file

    options = filter_options(padding, border, border_value, stride, dilation, flip, method, threads)
    out_options = output_options(output_mode, scale, offset, format, quality, compress_level, depth)
    guards = limits(max_pixels, max_memory)
    kernels = load_kernels(kernel)
    destination = output if output is not None else ("-" if input == "-" else None)
    if destination == "-" and sys.stdout.isatty():
        raise ParameterError("refusing to write image data to a terminal; redirect standard output or use -o FILE")
    try:
        result = process_file(
            input,
            destination,
            kernels,
            options,
            out_options,
            gray=gray,
            limits=guards,
            all_frames=all_frames,
            in_place=in_place,
        )
    except KeyboardInterrupt:
        error_line("interrupted; no output was written")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    if not quiet and result.destination != "<stdout>":
        shape = "x".join(str(n) for n in result.output_shape[1::-1])
        sys.stderr.write(f"wrote {result.destination} ({shape}, {result.seconds:.2f} s)\n")

