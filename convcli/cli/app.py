"""The Typer application: ``convcli apply`` and ``convcli kernels ...``.

Commands parse options and call :mod:`convcli.pipeline`; heavy modules (numpy, Pillow) are
imported inside the commands so that ``--help`` stays fast.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated

import typer

from convcli import __version__
from convcli.cli.kernels_cmd import kernels_app
from convcli.cli.options import PADDING_HELP, checked, parse_pair, parse_padding
from convcli.errors import ParameterError

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


class OutputMode(str, Enum):
    """How float responses become 8-bit pixels."""

    clip = "clip"
    abs = "abs"
    normalize = "normalize"


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


def _border(value: str) -> str:
    from convcli.core.border import resolve_border

    return checked(resolve_border, value, "--border")


@app.command(no_args_is_help=True)
def apply(
    input: Annotated[str, typer.Argument(help="Image file to filter, or - to read standard input.", metavar="INPUT")],
    kernel: Annotated[
        list[str],
        typer.Option(
            "--kernel",
            "-k",
            help=(
                "Kernel name (sobel), name with parameters (gaussian:sigma=2) or a .toml file. "
                "Repeat to apply several in sequence (in float, rounded once at the end)."
            ),
            metavar="NAME|FILE",
        ),
    ],
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
    padding: Annotated[str, typer.Option(help=PADDING_HELP, metavar="MODE|N|R,C|T,B,L,R")] = "same",
    border: Annotated[
        str,
        typer.Option(
            help="How pixels beyond the edge are made up: reflect (cb|abc), symmetric (ba|abc), edge (aa|abc), "
            "wrap (bc|abc), zero, constant (--border-value).",
            metavar="MODE",
        ),
    ] = "reflect",
    border_value: Annotated[float, typer.Option(help="Pixel value used by --border constant (0..255 scale).")] = 0.0,
    stride: Annotated[str, typer.Option(help="Step between output pixels: N or R,C.", metavar="N|R,C")] = "1",
    dilation: Annotated[str, typer.Option(help="Spacing between kernel taps: N or R,C.", metavar="N|R,C")] = "1",
    flip: Annotated[
        bool, typer.Option("--flip", help="Flip the kernel: true convolution instead of cross-correlation.")
    ] = False,
    gray: Annotated[bool, typer.Option("--gray", help="Convert colour input to grayscale first.")] = False,
    output_mode: Annotated[
        OutputMode,
        typer.Option(
            "--output-mode",
            "-m",
            help="Mapping to 8 bits, after --scale and --offset: clip (round, clip to 0..255), abs (|x|: both edge "
            "polarities), normalize (stretch min..max to 0..255).",
            case_sensitive=False,
        ),
    ] = OutputMode.clip,
    scale: Annotated[float, typer.Option(help="Multiply the response before mapping.")] = 1.0,
    offset: Annotated[float, typer.Option(help="Add to the response before mapping (128 shows signed responses).")] = 0.0,
    format: Annotated[
        str | None,
        typer.Option(help="Output format (png, jpeg, bmp, tiff, webp, ppm, gif, tga); default from the suffix.",
                     metavar="FMT"),
    ] = None,
    quality: Annotated[
        int | None, typer.Option(help="JPEG/WebP quality, 1..100 (default 92).", min=1, max=100)
    ] = None,
    compress_level: Annotated[
        int | None, typer.Option(help="PNG compression level, 0..9 (default 1: fast).", min=0, max=9)
    ] = None,
    method: Annotated[
        str, typer.Option(help="Convolution engine: auto, or one of the engines the core offers.", metavar="NAME")
    ] = "auto",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")] = False,
) -> None:
    """Filter one image with one or more kernels and write the result.

    [bold]Examples[/bold]

      convcli apply photo.jpg -k sobel                    [dim]# writes photo-sobel.jpg[/dim]

      convcli apply photo.jpg -k gaussian:sigma=3 -o blurred.png

      convcli apply photo.jpg -k sobel-x -m normalize --gray -o gx.png

      cat a.png | convcli apply - -k gaussian -o - | convcli apply - -k sobel -o edges.png
    """
    from convcli.core import METHODS
    from convcli.kernels import load_kernel
    from convcli.pipeline import FilterOptions, OutputOptions, process_file

    if method not in METHODS:
        raise typer.BadParameter(f"must be one of {', '.join(METHODS)}, got {method!r}", param_hint="--method")
    options = FilterOptions(
        padding=parse_padding(padding),
        border=_border(border),
        border_value=border_value,
        stride=parse_pair(stride, "--stride"),
        dilation=parse_pair(dilation, "--dilation"),
        flip=flip,
        method=method,
    )
    out_options = OutputOptions(
        mode=output_mode.value,
        scale=scale,
        offset=offset,
        format=format,
        quality=quality,
        compress_level=compress_level,
    )
    kernels = [load_kernel(spec) for spec in kernel]
    destination = output if output is not None else ("-" if input == "-" else None)
    if destination == "-" and sys.stdout.isatty():
        raise ParameterError("refusing to write image data to a terminal; redirect standard output or use -o FILE")
    result = process_file(input, destination, kernels, options, out_options, gray=gray)
    if not quiet and result.destination != "<stdout>":
        shape = "x".join(str(n) for n in result.output_shape[1::-1])
        sys.stderr.write(f"wrote {result.destination} ({shape}, {result.seconds:.2f} s)\n")

