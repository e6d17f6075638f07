"""``convcli gallery``: a contact sheet of an image under each kernel."""

from __future__ import annotations

import dataclasses
import sys
from enum import Enum
from typing import Annotated, cast

import typer

from convcli.cli.params import DebugOpt, QuietOpt
from convcli.errors import ParameterError
from convcli.options import OUTPUT_MODE_CHOICES, FilterOptions, InputOptions, OutputOptions, option_spec
from convcli.text import printable


def _help(owner: type, name: str) -> str:
    """The help text declared for an option of :mod:`convcli.options`, so it is written once."""
    return option_spec(next(f for f in dataclasses.fields(owner) if f.name == name)).help


def _parse(owner: type, name: str, value: object) -> object:
    """A command-line value parsed as :mod:`convcli.options` declares for that option."""
    spec = option_spec(next(f for f in dataclasses.fields(owner) if f.name == name))
    return value if value is None or spec.parse is None else spec.parse(value)


# The same words as apply's --output-mode; here the default is None: abs for edge detectors, else clip.
OutputMode = cast(type[Enum], Enum("GalleryOutputMode", {choice: choice for choice in OUTPUT_MODE_CHOICES}, type=str))


def gallery(
    input: Annotated[str, typer.Argument(help="Image file, or - to read standard input.", metavar="INPUT")],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="Sheet file (format from the suffix), or - for standard output.", metavar="PATH"
        ),
    ],
    kernels: Annotated[
        str | None,
        typer.Option(
            "--kernels",
            "-k",
            help="Kernels to show, separated by commas: sobel,gaussian:sigma=2,radius=4,box (a comma followed "
            "by key=value continues the kernel before). Default: the whole catalogue but random and "
            "channel-mixing kernels.",
            metavar="LIST",
        ),
    ] = None,
    size: Annotated[int, typer.Option("--size", help="Thumbnail's long side in pixels.", min=1, metavar="N")] = 256,
    columns: Annotated[
        int | None, typer.Option("--columns", help="Tiles per row (default: a near-square grid).", min=1, metavar="N")
    ] = None,
    border: Annotated[str, typer.Option("--border", help=_help(FilterOptions, "border"), metavar="MODE")] = "reflect",
    gray: Annotated[bool, typer.Option("--gray", help=_help(InputOptions, "gray"))] = False,
    mode: Annotated[
        OutputMode | None,  # type: ignore[valid-type]
        typer.Option(
            "--output-mode",
            "-m",
            help="Mapping of every tile: clip, abs or normalize. Default: abs for "
            "edge detectors (taps summing to 0, and sets; their label says (abs)), clip for the rest.",
            case_sensitive=False,
        ),
    ] = None,
    quality: Annotated[
        int | None, typer.Option("--quality", help=_help(OutputOptions, "quality"), min=1, max=100, metavar="N")
    ] = None,
    compress_level: Annotated[
        int | None,
        typer.Option("--compress-level", help=_help(OutputOptions, "compress_level"), min=0, max=9, metavar="N"),
    ] = None,
    fmt: Annotated[str | None, typer.Option("--format", help=_help(OutputOptions, "format"), metavar="FMT")] = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a contact sheet: the image, then its thumbnail under each kernel, labelled, in a grid.

    [bold]Examples[/bold]

      convcli gallery photo.jpg -o sheet.png

      convcli gallery photo.jpg -k sobel,gaussian:sigma=3,laplacian --columns 2 -o sheet.png
    """
    from convcli.options import JobOptions
    from convcli.pictures.gallery import gallery_file, gallery_kernels, split_kernel_specs

    chosen = gallery_kernels(None if kernels is None else split_kernel_specs(kernels))
    if output == "-" and sys.stdout.isatty():
        raise ParameterError("refusing to write image data to a terminal; redirect standard output or use -o FILE")
    job = JobOptions.from_values(
        border=border,
        gray=gray,
        quality=quality,
        compress_level=compress_level,
        format=_parse(OutputOptions, "format", fmt),
    )
    result = gallery_file(
        input, output, chosen, size=size, columns=columns, job=job, mode=None if mode is None else mode.value
    )
    if not quiet and output != "-":
        shape = "x".join(str(n) for n in result.shape[1::-1])
        sys.stderr.write(
            f"wrote {printable(result.destination)} ({shape}, {result.tiles} tiles, {result.seconds:.2f} s)\n"
        )
