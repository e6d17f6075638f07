"""Running a batch: each task's file filtered by an executor, every outcome reported, one bad file
never stopping the others, and no temporary file left behind however the run ends."""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict, Unpack, get_args

from convcli.batch.executors import Executor, InProcessExecutor, LocalPoolExecutor, WorkItem, check_main_guard
from convcli.batch.plan import Task
from convcli.batch.report import BatchInterrupted, BatchReport, FileStatus
from convcli.errors import ConvcliError, OutputExistsError, ParameterError, Terminated
from convcli.io import format_from_name
from convcli.io.atomic import temp_file_pattern
from convcli.kernels import Kernel
from convcli.options import FilterOptions, JobOptions, Limits, OutputOptions
from convcli.pipeline import check_job, filter_file

Existing = Literal["refuse", "skip", "overwrite"]
EXISTING_CHOICES: tuple[str, ...] = get_args(Existing)


@dataclass(frozen=True)
class FileWork:
    """The work of one file of a batch: picklable, sent to each worker process once."""

    kernels: tuple[Kernel, ...]
    job: JobOptions
    existing: Existing

    def __call__(self, item: WorkItem) -> FileStatus:
        """Filter one file; every error becomes a ``failed`` status naming the file."""
        source, destination = item.source, item.destination
        if item.attempt > 1 and self.existing != "overwrite" and os.path.lexists(destination):
            # Run again because its worker died; the output was not there when the run began, so
            # that first attempt wrote it and died before it could report it.
            return FileStatus(source, destination, "ok")
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                claim = self.existing != "overwrite"
                if claim and os.path.lexists(destination):
                    # Checked again here: the output may have appeared since the plan was made.
                    raise OutputExistsError(destination)
                # Claimed, not replaced, when written: another run may take the name meanwhile.
                result = filter_file(source, destination, self.kernels, self.job, exclusive=claim)
                height, width = result.input_shape[:2]
                status = FileStatus(source, destination, "ok", megapixels=height * width / 1e6)
            except OutputExistsError:
                if self.existing == "skip":
                    status = FileStatus(source, destination, "skipped")
                else:
                    message = f"{destination}: already exists; use --overwrite or --skip-existing"
                    status = FileStatus(source, destination, "failed", message)
            except ConvcliError as exc:
                status = FileStatus(source, destination, "failed", _with_path(str(exc), source))
            except Exception as exc:  # one file's surprise must not end the batch
                status = FileStatus(source, destination, "failed", f"{source}: {type(exc).__name__}: {exc}")
        status.seconds = time.perf_counter() - start
        status.warnings = [_with_path(str(w.message), source) for w in caught]
        return status


class BatchTerminated(Terminated):
    """SIGTERM or SIGHUP stopped a batch (see :class:`~convcli.errors.Terminated`); ``report``
    holds what was finished before, as :class:`~convcli.batch.report.BatchInterrupted` does for Ctrl-C."""

    def __init__(self, report: BatchReport, signum: int) -> None:
        super().__init__(signum)
        self.report = report


def _identity(path: str) -> tuple[int, int, int] | None:
    """Device, inode and change time of ``path`` (not followed), or None if there is nothing there."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


def _with_path(message: str, source: str) -> str:
    return message if source in message else f"{source}: {message}"


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return max(1, os.cpu_count() or 1)


def sweep_temp_files(destinations: Iterable[Path]) -> int:
    """Remove the temporary files of interrupted writes to ``destinations``; return how many.

    Only the temporary files of these outputs are touched (see
    :func:`~convcli.io.atomic.temp_file_pattern`).
    """
    removed = 0
    by_folder: dict[Path, set[str]] = {}
    for destination in destinations:
        by_folder.setdefault(destination.parent, set()).add(destination.name)
    for folder, names in by_folder.items():
        pattern = temp_file_pattern(names)
        try:
            with os.scandir(folder) as scan:
                stale = [e.path for e in scan if pattern.fullmatch(e.name)]
        except OSError:
            continue
        for path in stale:
            try:
                os.unlink(path)
                removed += 1
            except OSError:
                pass
    return removed


def filter_batch(
    tasks: Sequence[Task],
    kernels: Sequence[Kernel],
    job: JobOptions | None = None,
    *,
    jobs: int | None = None,
    existing: Existing = "refuse",
    fail_fast: bool = False,
    on_file: Callable[[FileStatus], None] | None = None,
    executor: Executor | None = None,
) -> BatchReport:
    """Filter every task's input and write its output; one bad file does not stop the others.

    Parameters
    ----------
    tasks
        From :func:`~convcli.batch.plan.plan_batch`.
    kernels
        Built once here and sent to each worker once.
    job
        Every filtering option (:class:`~convcli.options.JobOptions`), as for
        :func:`convcli.pipeline.filter_file`. With several workers and no ``threads`` set, each
        worker filters on one thread: one process per core already fills the machine.
    jobs
        Worker processes; default: every core. ``1`` runs in this process, without a pool.
    existing
        What to do when an output exists: ``refuse`` (that file fails), ``skip`` or ``overwrite``.
    fail_fast
        Stop at the first failed file; the files not yet done are ``cancelled``.
    on_file
        Called in this process with each :class:`FileStatus` as it is known, for progress.
    executor
        Where the files are filtered; default: :class:`~convcli.batch.executors.InProcessExecutor`
        for one job, else :class:`~convcli.batch.executors.LocalPoolExecutor`; with
        ``job.filter.scheduler`` set, the Dask cluster it names
        (:func:`convcli.cluster.batch.filter_batch_on_cluster`; ``jobs`` is then the number of
        worker processes of a ``local`` cluster).

    Returns
    -------
    BatchReport
        One status per task, in the order of ``tasks``.

    Raises
    ------
    ParameterError
        Before any work (no folder created), for options or kernels no file could be filtered
        with (:func:`~convcli.pipeline.check_job`), or a pool started from the unguarded top
        level of a script (:func:`~convcli.batch.executors.check_main_guard`).
    BatchInterrupted
        On Ctrl-C, after the workers are stopped and their temporary files removed; finished
        outputs are kept and the exception carries the report.
    BatchTerminated
        The same on SIGTERM or SIGHUP, when the program turns them into
        :class:`~convcli.errors.Terminated` (the command line does).
    """
    if existing not in EXISTING_CHOICES:
        raise ParameterError(f"`existing` must be one of {', '.join(EXISTING_CHOICES)}, got {existing!r}")
    jobs = executor.jobs if executor is not None else default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ParameterError(f"`jobs` must be at least 1, got {jobs}")
    job = job or JobOptions()
    # A name with no suffix takes its input's format, known once the file is read.
    named = (format_from_name(t.destination, job.output.format) for t in tasks if t.error is None)
    formats = {fmt for fmt in named if fmt is not None}
    check_job(kernels, job, formats)
    if executor is None and job.filter.scheduler is not None:
        from convcli.cluster.batch import filter_batch_on_cluster  # imports Dask: only when asked to

        return filter_batch_on_cluster(
            tasks, kernels, job, jobs=jobs, existing=existing, fail_fast=fail_fast, on_file=on_file
        )
    if executor is None and jobs > 1 and len(tasks) > 1:
        check_main_guard()
    if jobs > 1 and job.filter.threads is None:
        job = job.replace(threads=1)
    start = time.perf_counter()
    results: list[FileStatus | None] = [None] * len(tasks)

    def settle(index: int, status: FileStatus) -> None:
        results[index] = status
        if on_file is not None:
            on_file(status)

    todo = _prepare(tasks, existing, settle)
    before = {item.index: _identity(item.destination) for item in todo}
    stopped = fail_fast and any(r is not None and r.status == "failed" for r in results)
    jobs = max(1, min(jobs, len(todo)))
    if executor is None:
        executor = InProcessExecutor() if jobs == 1 else LocalPoolExecutor(jobs)
    stop: KeyboardInterrupt | Terminated | None = None
    try:
        if todo and not stopped:
            outcomes = executor.run(FileWork(tuple(kernels), job, existing), todo)
            try:
                for finished in outcomes:
                    for index, status in finished:
                        settle(index, status)
                    if fail_fast and any(status.status == "failed" for _, status in finished):
                        stopped = True
                        break
            finally:
                outcomes.close()  # stops the work still running: nothing is written after this
    except (KeyboardInterrupt, Terminated) as exc:  # every stop signal gets the same cleanup
        stop = exc
    finally:
        # However the run ended, no half-written temporary file of this batch survives it.
        if any(results[item.index] is None for item in todo):
            sweep_temp_files(Path(item.destination) for item in todo if results[item.index] is None)
        # A worker stopped between writing its output and reporting it leaves a finished file the
        # report has not heard of: the report must match the disk, so it counts as written.
        for item in todo:
            if results[item.index] is None and _identity(item.destination) not in (None, before[item.index]):
                results[item.index] = FileStatus(item.source, item.destination, "ok")

    files = [
        status if status is not None else FileStatus(str(t.source), str(t.destination), "cancelled")
        for status, t in zip(results, tasks, strict=True)
    ]
    report = BatchReport(files, time.perf_counter() - start, jobs, stop is not None)
    if isinstance(stop, Terminated):
        raise BatchTerminated(report, stop.signum)
    if stop is not None:
        raise BatchInterrupted(report)
    return report


def _prepare(
    tasks: Sequence[Task], existing: Existing, settle: Callable[[int, FileStatus], None]
) -> list[WorkItem]:
    """Settle the tasks that need no work (known errors, existing outputs); return the rest."""
    todo: list[WorkItem] = []
    for index, task in enumerate(tasks):
        source, destination = str(task.source), str(task.destination)
        if task.error is not None:
            settle(index, FileStatus(source, destination, "failed", task.error))
        elif existing != "overwrite" and os.path.lexists(destination):
            if existing == "skip":
                settle(index, FileStatus(source, destination, "skipped"))
            else:
                message = f"{destination}: already exists; use --overwrite or --skip-existing"
                settle(index, FileStatus(source, destination, "failed", message))
        else:
            try:
                task.destination.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                message = f"{task.destination.parent}: cannot create the folder: {exc.strerror or exc}"
                settle(index, FileStatus(source, destination, "failed", message))
                continue
            todo.append(WorkItem(index, source, destination))
    return todo


class RunSettings(TypedDict, total=False):
    """The keywords of :func:`filter_batch` that say how to run, rather than what to compute."""

    jobs: int | None
    existing: Existing
    fail_fast: bool
    on_file: Callable[[FileStatus], None] | None
    executor: Executor | None


def run_batch(
    tasks: Sequence[Task],
    kernels: Sequence[Kernel],
    options: FilterOptions | None = None,
    output: OutputOptions | None = None,
    *,
    gray: bool = False,
    limits: Limits | None = None,
    all_frames: bool = False,
    **settings: Unpack[RunSettings],
) -> BatchReport:
    """:func:`filter_batch` with the option groups given one by one; ``settings`` are the other
    keywords of :func:`filter_batch` (``jobs``, ``existing``, ``fail_fast``, ``on_file``, ``executor``).

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from convcli.batch import discover, plan_batch
    >>> from convcli.io import write_image
    >>> from convcli.kernels import load_kernel
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_image(np.zeros((8, 8), np.uint8), None, folder / "a.png")
    >>> kernels = [load_kernel("sobel")]
    >>> plan = plan_batch(discover([folder]), folder / "out", kernels)
    >>> report = run_batch(plan, kernels, jobs=1)
    >>> report.count("ok"), sorted(p.name for p in (folder / "out").iterdir())
    (1, ['a-sobel.png'])
    """
    job = JobOptions.from_groups(options, output, gray=gray, limits=limits, all_frames=all_frames)
    return filter_batch(tasks, kernels, job, **settings)
