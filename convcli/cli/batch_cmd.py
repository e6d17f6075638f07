"""``convcli batch``: filter folders and file lists, in parallel, resumably, with progress.

The command parses options, calls :mod:`convcli.batch` and turns its results into lines on
stderr, a progress bar when stderr is a terminal, an optional JSON report and the exit code.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from convcli.cli import STOP_WORDS, error_line
from convcli.cli.params import (
    KernelOpt,
    QuietOpt,
    load_kernels,
    output_format,
    warn_ignored_encoder_options,
    with_job_options,
)
from convcli.errors import ExitCode, ParameterError
from convcli.options import JobOptions
from convcli.text import printable

if TYPE_CHECKING:
    from convcli.batch import Existing, FileStatus

_TEMPLATE_HELP = (
    "Output file name template. Fields: {stem} (photo for photo.jpg), {name} (photo.jpg), "
    "{ext} (output suffix: from --format, else the input's), {kernel} (sobel, gaussian-sigma2+sobel), "
    "{parent} (the input's folder name). No / or '..'."
)


def _plain_line(status: FileStatus) -> str:
    if status.status == "ok":
        return f"wrote {status.output} ({status.seconds:.2f} s)"
    if status.status == "skipped":
        return f"skipped {status.path}: {status.output} exists"
    return f"cancelled {status.path}"


class _Feedback:
    """Per-file lines, the progress bar and the closing summary, all on stderr."""

    def __init__(self, total: int, *, quiet: bool, verbose: bool) -> None:
        self.quiet = quiet
        self.verbose = verbose and not quiet
        self.progress = None
        self.task_id = None
        self.started = time.perf_counter()
        if not quiet and total > 0 and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]filtering"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.task_id = self.progress.add_task("batch", total=total, rate="")

    def __enter__(self) -> _Feedback:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def _line(self, text: str) -> None:
        text = printable(text)  # file names and messages may hold control characters
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)
        else:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def __call__(self, status: FileStatus) -> None:
        if status.status == "failed":
            if self.progress is not None:
                self._line(f"convcli: error: {status.error}")
            else:
                error_line(status.error or f"{status.path}: failed")
        elif self.verbose:
            self._line(_plain_line(status))
        if not self.quiet:
            for warning in status.warnings:
                self._line(f"convcli: warning: {warning}")
        if self.progress is not None and self.task_id is not None:
            self.progress.advance(self.task_id)
            done = self.progress.tasks[0].completed
            elapsed = time.perf_counter() - self.started
            self.progress.update(self.task_id, rate=f"{done / elapsed:.1f} files/s" if elapsed > 0 else "")


def _write_stderr(text: str) -> None:
    # After SIGHUP the terminal may be gone; the report must still be written.
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError:
        pass


def _read_list(source: str, null: bool) -> list[str]:
    from convcli.batch import read_file_list

    # A list that cannot be read is a usage error, as a missing SRC is.
    if source == "-":
        return read_file_list(sys.stdin.buffer, null=null, name="standard input")
    try:
        with open(source, "rb") as handle:
            return read_file_list(handle, null=null, name=source)
    except OSError as exc:
        raise ParameterError(f"{source}: cannot read the file list: {exc.strerror or exc}") from None


@with_job_options
def batch(
    kernel: KernelOpt,
    outdir: Annotated[str, typer.Option("--output", "-o", help="Output folder; created if missing.", metavar="OUTDIR")],
    sources: Annotated[
        list[str] | None,
        typer.Argument(help="Image files and folders to filter.", metavar="SRC...", show_default=False),
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Walk subfolders and mirror them under OUTDIR.")
    ] = False,
    pattern: Annotated[
        str | None,
        typer.Option(
            help="Glob on file names in folders, case-insensitive (default: the suffixes convcli reads).",
            metavar="GLOB",
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help=_TEMPLATE_HELP, metavar="TEMPLATE")] = "{stem}-{kernel}.{ext}",
    from_list: Annotated[
        str | None,
        typer.Option("--from", help="Read more input paths from FILE, or - for standard input, one per line.",
                     metavar="FILE"),
    ] = None,
    null: Annotated[
        bool, typer.Option("--null", "-0", help="Paths in --from are NUL-separated (find -print0).")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace outputs that exist.")] = False,
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="Leave outputs that exist alone: resumes an interrupted run.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("--jobs", "-j", help="Worker processes (default: all cores); 1 runs in this process.", min=1),
    ] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first file that fails.")] = False,
    report: Annotated[
        str | None,
        typer.Option(
            help="Write the summary and per-file statuses to this JSON file, or to standard output for -. "
            "Written atomically like the images: a link is followed, a device or FIFO written through. "
            "An input or an output of this run is refused before starting.",
            metavar="FILE.json",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print a line per file.")] = False,
    quiet: QuietOpt = False,
    *,
    job: JobOptions,
) -> None:
    """Filter many images: folders, globs and file lists, in parallel, resumable.

    A bad file is reported on one line and the others go on. Exit status: 1 if any file failed.

    Outputs are written atomically: Ctrl-C (exit 130), SIGTERM (143) or SIGHUP (129) never leaves a
    truncated image; rerun with --skip-existing, also with -o equal to SRC.

    [bold]Examples[/bold]

      convcli batch photos -k sobel -o edges    [dim]# a.jpg -> edges/a-sobel.jpg[/dim]

      convcli batch photos -r --pattern '*.png' -k box -o out

      convcli batch photos -k box -o out --name '{parent}-{stem}.{ext}'

      find photos -print0 | convcli batch --from - -0 -k sobel -o out

      convcli batch photos -r -k sobel -o out --skip-existing --report run.json
    """
    from convcli.batch import (
        BatchInterrupted,
        BatchReport,
        BatchTerminated,
        check_template,
        discover,
        filter_batch,
        plan_batch,
    )
    from convcli.batch.report import check_report_path

    if overwrite and skip_existing:
        raise ParameterError("--overwrite and --skip-existing exclude each other; choose one")
    if not sources and from_list is None:
        raise ParameterError("give SRC files or folders, or --from FILE (--from - reads standard input)")
    if null and from_list is None:
        raise ParameterError("--null/-0 describes the --from list; add --from FILE or --from -")
    check_template(name)
    kernels = load_kernels(kernel)
    listed = _read_list(from_list, null) if from_list is not None else []
    files = discover(sources or [], recursive=recursive, pattern=pattern, exclude=[outdir], listed=listed)
    tasks = plan_batch(files, outdir, kernels, template=name, fmt=job.output.format, resume=skip_existing)
    if report is not None:
        # Kernel files and the --from list are inputs too: a report must not replace them either.
        kernel_files = [k.source for k in kernels if k.source != "built-in" and os.path.isfile(k.source)]
        listing = [from_list] if from_list is not None and from_list != "-" else []
        inputs = [*(str(t.source) for t in tasks), *listing, *kernel_files]
        check_report_path(report, inputs=inputs, outputs=[t.destination for t in tasks])
    warn_ignored_encoder_options(job, {output_format(task.destination, job) for task in tasks})
    if not tasks:
        if not quiet:
            sys.stderr.write("no input files found\n")
        if report is not None:
            BatchReport([], 0.0, 0).write_json(report)
        return
    existing: Existing = "overwrite" if overwrite else "skip" if skip_existing else "refuse"
    stopped: tuple[str, int] | None = None  # what stopped the run, and the exit status it means
    with _Feedback(len(tasks), quiet=quiet, verbose=verbose) as feedback:
        try:
            result = filter_batch(
                tasks, kernels, job, jobs=jobs, existing=existing, fail_fast=fail_fast, on_file=feedback
            )
        except BatchInterrupted as exc:
            result, stopped = exc.report, ("interrupted", ExitCode.INTERRUPTED)
        except BatchTerminated as exc:
            result, stopped = exc.report, (STOP_WORDS.get(exc.signum, "terminated"), 128 + exc.signum)
    if not quiet:
        _write_stderr(printable(result.summary_line()) + "\n")
    if report is not None:
        result.write_json(report)
    if stopped is not None:
        word, status = stopped
        _write_stderr(f"convcli: error: {word}; rerun with --skip-existing to finish\n")
        raise typer.Exit(status)
    if result.count("failed"):
        raise typer.Exit(ExitCode.FAILURE)
