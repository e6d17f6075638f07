"""``convcli apply``: filter one image."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from convcli.cli import error_line, warning_line
from convcli.cli.params import (
    KernelOpt,
    QuietOpt,
    load_kernels,
    output_format,
    warn_ignored_encoder_options,
    with_job_options,
)
from convcli.errors import ConvcliError, ExitCode, ParameterError
from convcli.options import JobOptions
from convcli.text import printable

if TYPE_CHECKING:
    from convcli.kernels import Kernel


@with_job_options
def apply(
    input: Annotated[str, typer.Argument(help="Image file to filter, or - to read standard input.", metavar="INPUT")],
    kernel: KernelOpt,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Output file, a folder (the default name inside it), or - for standard output. A name "
            "without a suffix takes the input's format. Default: INPUT-KERNEL.EXT beside the input "
            "(standard output when INPUT is -).",
            metavar="PATH",
        ),
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Overwrite the input file with the result (atomically).")
    ] = False,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="Write the input and the output side by side, labelled, instead of the output alone "
            "(8-bit, one frame).",
        ),
    ] = False,
    preview: Annotated[
        bool,
        typer.Option(
            "--preview",
            help="Draw a small preview of the written image on the terminal (truecolor half blocks); "
            "only when stderr is a terminal, the image is not on standard output, NO_COLOR is unset and "
            "--quiet is not given.",
        ),
    ] = False,
    quiet: QuietOpt = False,
    *,
    job: JobOptions,
) -> None:
    """Filter one image with one or more kernels and write the result.

    [bold]Examples[/bold]

      convcli apply photo.jpg -k sobel                    [dim]# writes photo-sobel.jpg[/dim]

      convcli apply photo.jpg -k gaussian:sigma=3 -o blurred.png

      convcli apply photo.jpg -k sobel-x -m normalize --gray -o gx.png

      cat a.png | convcli apply - -k gaussian | convcli apply - -k sobel > edges.png

      convcli apply photo.jpg -k sobel -m abs --compare -o side.png --preview

      convcli apply slide.tif -k gaussian -o out.tif --max-memory 1G  [dim]# tiles[/dim]
    """
    from convcli.pictures.preview import preview_wanted
    from convcli.pipeline import filter_file, output_path

    kernels = load_kernels(kernel)
    if job.filter.scheduler is not None:
        refused = (in_place, compare, preview)
        _apply_on_cluster(input, output, kernels, job, job.filter.scheduler, quiet=quiet, refused=refused)
        return
    destination = output if output is not None else ("-" if input == "-" else None)
    if destination == "-" and sys.stdout.isatty():
        raise ParameterError("refusing to write image data to a terminal; redirect standard output or use -o FILE")
    try:  # where filter_file will write, to tell which encoder options apply
        in_place_target = in_place and destination is None
        planned = input if in_place_target else output_path(input, destination, kernels, job.output.format)
    except ConvcliError:  # filter_file reports a bad output path itself, after the input's checks
        planned = destination or input
    warn_ignored_encoder_options(job, [output_format(planned, job)])
    bar = _BandProgress() if not quiet and sys.stderr.isatty() else None
    try:
        result = filter_file(input, destination, kernels, job, in_place=in_place, compare=compare, progress=bar)
    except KeyboardInterrupt:
        error_line("interrupted; no output was written")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    finally:
        if bar is not None:
            bar.stop()
    if not quiet and result.destination != "<stdout>":
        shape = "x".join(str(n) for n in result.output_shape[1::-1])
        sys.stderr.write(f"wrote {printable(result.destination)} ({shape}, {result.seconds:.2f} s)\n")
    if preview and not quiet and preview_wanted(sys.stderr.isatty(), result.destination == "<stdout>", os.environ):
        _draw_preview(result.destination)


class _BandProgress:
    """A progress bar over the bands of an image filtered in tiles, shown from the first band on."""

    def __init__(self) -> None:
        self.progress: Any = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if self.progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]filtering in tiles"), BarColumn(), TextColumn("{task.completed}/{task.total} rows"),
                TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            )
            self.task = self.progress.add_task("tiles", total=total)
            self.progress.start()
        self.progress.update(self.task, completed=done)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
def _apply_on_cluster(
    source: str, output: str | None, kernels: list[Kernel], job: JobOptions, scheduler: str, *, quiet: bool,
    refused: tuple[bool, bool, bool],
) -> None:
    """``apply --scheduler``: the image in tiles on a Dask cluster, with a progress bar over blocks."""
    from convcli.cluster.tiles import filter_file_dask

    for given, flag in zip(refused, ("--in-place", "--compare", "--preview"), strict=True):
        if given:
            raise ParameterError(f"{flag} is not available with --scheduler")
    if "-" in (source, output):
        raise ParameterError("--scheduler reads and writes files, not standard input or output")
    with contextlib.ExitStack() as stack:
        progress = None
        if not quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            bar = stack.enter_context(Progress(
                TextColumn("[bold]tiles"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True,
            ))
            task = bar.add_task("tiles", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

        try:
            result = filter_file_dask(source, output, kernels, job, scheduler=scheduler, progress=progress)
        except KeyboardInterrupt:
            stack.close()
            error_line("interrupted; no output was written")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
    if not quiet:
        shape = "x".join(str(n) for n in result.output_shape[1::-1])
        sys.stderr.write(f"wrote {printable(result.destination)} ({shape}, {result.blocks} tiles, "
                         f"{result.seconds:.2f} s)\n")


def _draw_preview(path: str) -> None:
    """Read the written image back and draw it on stderr, fitted to the terminal."""
    from convcli.io import read_image
    from convcli.pictures.preview import PREVIEW_COLUMNS, PREVIEW_ROWS, render_preview

    try:
        picture = read_image(path, max_pixels=None)
    except ConvcliError as exc:  # a float TIFF or an array file has no picture to show
        warning_line(f"no preview: {exc}")
        return
    # The terminal is the one stderr draws on; shutil.get_terminal_size asks stdout's, which may be a file.
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except OSError:
        size = os.terminal_size((PREVIEW_COLUMNS, PREVIEW_ROWS + 2))
    if size.columns <= 0 or size.lines <= 0:  # a terminal that reports no size
        size = os.terminal_size((PREVIEW_COLUMNS, PREVIEW_ROWS + 2))
    columns, rows = min(PREVIEW_COLUMNS, size.columns), min(PREVIEW_ROWS, max(1, size.lines - 2))
    sys.stderr.write(render_preview(picture.pixels, picture.alpha, columns=columns, rows=rows))
    sys.stderr.flush()
