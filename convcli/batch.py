"""Filter many files at once: discovery, output names, a process pool, per-file errors.

The work is split in three steps so that everything that can be wrong with the request is
found before the first pixel is computed:

1. :func:`discover` walks folders (and takes file lists from :func:`read_file_list`);
2. :func:`plan_batch` gives every input its output path from a name template and refuses
   collisions and outputs that would replace an input;
3. :func:`run_batch` runs the files, in this process (``jobs=1``) or in a pool of worker
   processes that receive the kernels once, and returns a :class:`BatchReport`.

Nothing here prints: per-file results go to a callback and into the report.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import multiprocessing
import os
import signal
import string
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import BinaryIO, Literal

from convcli.errors import ConvcliError, OutputError, ParameterError
from convcli.images import READ_FORMATS, STDIO, WRITE_FORMATS, default_suffix, resolve_format, temp_file_pattern
from convcli.kernels import Kernel
from convcli.pipeline import FilterOptions, Limits, OutputOptions, process_file

DEFAULT_TEMPLATE = "{stem}-{kernel}.{ext}"
# The fields a name template may use, with what each one holds (shown by ``--help``).
NAME_FIELDS: dict[str, str] = {
    "stem": "input file name without its suffix (photo for photo.jpg)",
    "name": "input file name with its suffix (photo.jpg)",
    "ext": "output suffix without the dot: from --format, else the input's (jpg), png if unwritable",
    "kernel": "kernel names joined with + (sobel, gaussian-sigma2+sobel)",
    "parent": "name of the folder holding the input (2024 for photos/2024/photo.jpg)",
}

_MPO_SUFFIXES = (".mpo",)  # MPO (multi-picture JPEG) is read but never written
# Suffixes of the formats convcli reads: the default --pattern.
READ_SUFFIXES: tuple[str, ...] = tuple(
    sorted({s for fmt, suffixes in WRITE_FORMATS.items() if fmt in READ_FORMATS for s in suffixes} | set(_MPO_SUFFIXES))
)
_WRITE_SUFFIXES = {s for suffixes in WRITE_FORMATS.values() for s in suffixes}

Existing = Literal["refuse", "skip", "overwrite"]
Status = Literal["ok", "skipped", "failed", "cancelled"]


# -- names -------------------------------------------------------------------------------------


def check_template(template: str) -> str:
    """Check an output name template and return it.

    A template is a file name with ``{field}`` placeholders (see :data:`NAME_FIELDS`); it may not
    hold a path separator or ``..``, so every output stays inside the output folder.

    Raises
    ------
    ParameterError
        For an empty template, an unknown or positional field, a separator or ``..``.

    Examples
    --------
    >>> check_template("{stem}-{kernel}.{ext}")
    '{stem}-{kernel}.{ext}'
    >>> check_template("{stem}/{ext}")
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: `--name` must be a file name, not a path: '{stem}/{ext}' holds '/'
    """
    if not template or not template.strip():
        raise ParameterError("`--name` must not be empty")
    if ".." in template:
        raise ParameterError(f"`--name` must not contain '..', got {template!r}")
    for separator in filter(None, (os.sep, os.altsep, "/", "\0")):
        if separator in template:
            shown = "a NUL byte" if separator == "\0" else repr(separator)
            raise ParameterError(f"`--name` must be a file name, not a path: {template!r} holds {shown}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ParameterError(f"`--name` is not a valid template ({exc}): {template!r}") from None
    known = ", ".join(NAME_FIELDS)
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        if field_name not in NAME_FIELDS:
            what = "an empty field {}" if field_name == "" else f"unknown field {{{field_name}}}"
            raise ParameterError(f"`--name` has {what}; the fields are {known}")
    return template


def output_suffix(source: str | Path, fmt: str | None) -> str:
    """The ``{ext}`` field: from ``fmt``, else the input's suffix if convcli writes it, else ``png``.

    >>> output_suffix("a/photo.JPG", None), output_suffix("scan.mpo", None), output_suffix("x.jpg", "png")
    ('JPG', 'png', 'png')
    """
    if fmt:
        return default_suffix(resolve_format(STDIO, fmt)).lstrip(".")
    suffix = Path(source).suffix
    return suffix.lstrip(".") if suffix.lower() in _WRITE_SUFFIXES else "png"


def render_name(template: str, source: str | Path, kernels: Sequence[Kernel], fmt: str | None = None) -> str:
    """The output file name of ``source`` under ``template`` (checked by :func:`check_template`).

    >>> from convcli.kernels import load_kernel
    >>> render_name("{parent}_{stem}.{ext}", "photos/2024/beach.jpg", [load_kernel("sobel")], "png")
    '2024_beach.png'
    """
    path = Path(source)
    values = {
        "stem": path.stem,
        "name": path.name,
        "ext": output_suffix(path, fmt),
        "kernel": "+".join(k.slug for k in kernels),
        "parent": Path(os.path.abspath(path)).parent.name,
    }
    name = check_template(template).format(**values)
    if name in ("", ".", "..") or os.sep in name or (os.altsep and os.altsep in name):
        raise ParameterError(f"`--name` {template!r} gives the unusable file name {name!r} for {source}")
    return name


# -- discovery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFile:
    """An input found by :func:`discover`.

    ``relative`` is where its output goes under the output folder (its folder part is mirrored);
    ``error`` is set for a match that cannot be used (a broken link, an unreadable folder).
    """

    path: Path
    relative: PurePath
    error: str | None = None


def _matcher(pattern: str | None) -> Callable[[str], bool]:
    if pattern is None:
        return lambda name: os.path.splitext(name)[1].lower() in READ_SUFFIXES
    folded = pattern.lower()
    # Case-insensitive, so that *.jpg also finds the PHOTO.JPG cameras write.
    return lambda name: fnmatch.fnmatchcase(name.lower(), folded)


def _key(path: Path | os.DirEntry[str], *, follow: bool = True) -> tuple[int, int] | None:
    try:
        st = path.stat(follow_symlinks=follow) if isinstance(path, os.DirEntry) else os.stat(path, follow_symlinks=follow)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _walk(
    root: Path,
    recursive: bool,
    matches: Callable[[str], bool],
    visited: set[tuple[int, int]],
    excluded: set[tuple[int, int]],
) -> Iterator[SourceFile]:
    """Files under ``root`` in name order, skipping folders already visited or excluded."""
    stack: list[tuple[Path, PurePath]] = [(root, PurePath())]
    while stack:
        folder, relative = stack.pop()
        key = _key(folder)
        # The root itself is walked even when it is the output folder (outputs beside inputs).
        if key is None or key in visited or (key in excluded and folder != root):
            continue
        visited.add(key)  # a folder reached twice (bind mount, SRC given twice) is walked once
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            yield SourceFile(folder, relative, f"{folder}: cannot list the folder: {exc.strerror or exc}")
            continue
        subfolders: list[tuple[Path, PurePath]] = []
        for entry in entries:
            try:
                is_link = entry.is_symlink()
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        subfolders.append((Path(entry.path), relative / entry.name))
                    continue
                if is_link and entry.is_dir():
                    continue  # never descend through a folder link: that is how walks loop
                if not matches(entry.name):
                    continue
                if entry.is_file():
                    yield SourceFile(Path(entry.path), relative / entry.name)
                elif is_link and not os.path.exists(entry.path):
                    yield SourceFile(Path(entry.path), relative / entry.name, f"{entry.path}: broken symbolic link")
            except OSError as exc:
                yield SourceFile(Path(entry.path), relative / entry.name, f"{entry.path}: {exc.strerror or exc}")
        stack.extend(reversed(subfolders))


def _listed_relative(path: Path, recursive: bool) -> PurePath:
    # A relative path from a list keeps its folders under OUTDIR with --recursive, as long as it
    # stays below the current folder; anything else goes flat into OUTDIR.
    if recursive and not path.is_absolute() and ".." not in path.parts:
        return PurePath(*[part for part in path.parts if part != "."])
    return PurePath(path.name)


def discover(
    sources: Iterable[str | Path],
    *,
    recursive: bool = False,
    pattern: str | None = None,
    exclude: Iterable[str | Path] = (),
    listed: Iterable[str | Path] = (),
) -> list[SourceFile]:
    """Find the input files of a batch.

    Parameters
    ----------
    sources
        Files and folders. A file is taken whatever its name; a folder gives the files in it
        that match ``pattern`` (with ``recursive``, those in its subfolders too, mirrored by
        their path relative to the folder).
    recursive
        Walk subfolders. Links to files are followed; links to folders are not descended into,
        and no folder is walked twice, so a link loop cannot trap the walk.
    pattern
        A glob on the file name, matched case-insensitively; default: the suffixes convcli reads
        (:data:`READ_SUFFIXES`).
    exclude
        Folders not walked into: the output folder, when it lies inside a source folder. A
        source folder that is itself excluded is still read (outputs written beside inputs).
    listed
        Paths from a file list (:func:`read_file_list`), taken like ``sources``.

    Returns
    -------
    list of SourceFile
        In the order given, folders in name order, each path once.

    Raises
    ------
    ParameterError
        When a source does not exist.
    """
    matches = _matcher(pattern)
    excluded = {key for key in (_key(Path(p)) for p in exclude) if key is not None}
    visited: set[tuple[int, int]] = set()
    found: list[SourceFile] = []
    seen: set[str] = set()

    def add(item: SourceFile) -> None:
        key = os.path.abspath(item.path)
        if key not in seen:
            seen.add(key)
            found.append(item)

    for from_list, entries in ((False, sources), (True, listed)):
        for entry in entries:
            path = Path(entry)
            if path.is_dir():
                for item in _walk(path, recursive, matches, visited, excluded):
                    add(item)
            elif path.exists():
                add(SourceFile(path, _listed_relative(path, recursive) if from_list else PurePath(path.name)))
            elif from_list:
                # One stale line in a list is one failed file, not a reason to refuse the batch.
                add(SourceFile(path, _listed_relative(path, recursive), f"{path}: no such file"))
            else:
                raise ParameterError(f"{path}: no such file or folder")
    return found


def read_file_list(stream: BinaryIO, *, null: bool = False) -> list[str]:
    """Read paths from a stream: one per line, or NUL-separated with ``null`` (``find -print0``).

    Bytes that are not valid UTF-8 are kept with :func:`os.fsdecode`, so any name the file
    system allows comes through. Empty entries are ignored.

    >>> import io
    >>> read_file_list(io.BytesIO(b"a.jpg\\nb c.png\\n\\n"))
    ['a.jpg', 'b c.png']
    >>> read_file_list(io.BytesIO(b"new\\nline.png\\0x.png\\0"), null=True)
    ['new\\nline.png', 'x.png']
    """
    data = stream.read()
    if null:
        parts = data.split(b"\0")
    else:
        parts = [line[:-1] if line.endswith(b"\r") else line for line in data.split(b"\n")]
    return [os.fsdecode(part) for part in parts if part]


# -- planning ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One input and the output it will be written to; ``error`` marks an input known to be bad."""

    source: Path
    destination: Path
    error: str | None = None


def plan_batch(
    files: Sequence[SourceFile],
    outdir: str | Path,
    kernels: Sequence[Kernel],
    *,
    template: str = DEFAULT_TEMPLATE,
    fmt: str | None = None,
) -> list[Task]:
    """Give every input its output path, and refuse a plan that would lose data.

    The output of ``files[i]`` is ``outdir / relative.parent / render_name(...)``.

    Raises
    ------
    ParameterError
        When the template is bad, an output format cannot be told from a name, two inputs
        map to the same output, or an output would replace an input file.
    """
    check_template(template)
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ParameterError(f"{outdir}: the output folder is a file")
    tasks: list[Task] = []
    for item in files:
        destination = outdir / item.relative.parent / render_name(template, item.path, kernels, fmt)
        if item.error is None:
            resolve_format(destination, fmt)  # an unknown suffix fails now, not once per file
        tasks.append(Task(item.path, destination, item.error))

    claimed: dict[str, Path] = {}
    collisions: list[str] = []
    for task in tasks:
        key = os.path.normcase(os.path.abspath(task.destination))
        if key in claimed:
            collisions.append(f"{claimed[key]} and {task.source} -> {task.destination}")
        else:
            claimed[key] = task.source
    if collisions:
        more = f" (and {len(collisions) - 3} more)" if len(collisions) > 3 else ""
        raise ParameterError(
            f"two inputs would be written to the same output: {'; '.join(collisions[:3])}{more}; "
            "add {parent} or {name} to --name, or use --recursive to mirror folders"
        )

    input_paths = {os.path.normcase(os.path.abspath(t.source)) for t in tasks}
    input_keys = {key for key in (_key(t.source) for t in tasks) if key is not None}
    for task in tasks:
        hits_path = os.path.normcase(os.path.abspath(task.destination)) in input_paths
        if hits_path or _key(task.destination) in input_keys:
            raise ParameterError(
                f"{task.destination}: the output would overwrite an input file; choose another -o or --name"
            )
    return tasks


# -- results -----------------------------------------------------------------------------------


@dataclass
class FileStatus:
    """What happened to one input.

    ``status`` is ``ok``, ``skipped`` (the output existed), ``failed`` (``error`` says why) or
    ``cancelled`` (not run: the batch was interrupted or stopped by ``fail_fast``).
    """

    path: str
    output: str
    status: Status
    error: str | None = None
    seconds: float = 0.0
    megapixels: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The fields of the JSON report."""
        return {
            "path": self.path,
            "output": self.output,
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class BatchReport:
    """The outcome of :func:`run_batch`, one :class:`FileStatus` per task in plan order."""

    files: list[FileStatus]
    seconds: float
    jobs: int
    interrupted: bool = False

    def count(self, status: Status) -> int:
        """How many files ended with ``status``."""
        return sum(1 for f in self.files if f.status == status)

    @property
    def megapixels(self) -> float:
        """Input megapixels of the files processed."""
        return sum(f.megapixels for f in self.files if f.status == "ok")

    @property
    def megapixels_per_second(self) -> float:
        """Throughput over the wall time of the run."""
        return self.megapixels / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        """The summary and per-file statuses, ready for :func:`json.dumps`."""
        return {
            "processed": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "cancelled": self.count("cancelled"),
            "interrupted": self.interrupted,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 4),
            "megapixels": round(self.megapixels, 4),
            "megapixels_per_second": round(self.megapixels_per_second, 4),
            "files": [f.to_dict() for f in self.files],
        }


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`run_batch`; ``report`` holds what was finished before."""

    def __init__(self, report: BatchReport) -> None:
        super().__init__("interrupted")
        self.report = report


# -- the work of one file (runs in a worker process or, with jobs=1, in the caller) -----------


@dataclass(frozen=True)
class _Settings:
    kernels: tuple[Kernel, ...]
    options: FilterOptions
    output: OutputOptions
    gray: bool
    existing: Existing
    limits: Limits | None = None
    all_frames: bool = False


_settings: _Settings | None = None  # a worker's copy, set once by the pool initializer


def _init_worker(settings: _Settings) -> None:
    """Pool initializer: keep the kernels for every file, leave Ctrl-C to the parent."""
    global _settings
    # The parent decides what an interruption means (cancel, terminate, sweep, summary); a
    # worker dying with a KeyboardInterrupt traceback on Ctrl-C would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _settings = settings


def _process(settings: _Settings, index: int, source: str, destination: str) -> tuple[int, FileStatus]:
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if settings.existing == "refuse" and os.path.lexists(destination):
                # Checked again here: the output may have appeared since the plan was made.
                raise OutputError(f"{destination}: already exists; use --overwrite or --skip-existing")
            result = process_file(
                source,
                destination,
                settings.kernels,
                settings.options,
                settings.output,
                gray=settings.gray,
                limits=settings.limits,
                all_frames=settings.all_frames,
            )
            height, width = result.input_shape[:2]
            status = FileStatus(source, destination, "ok", megapixels=height * width / 1e6)
        except ConvcliError as exc:
            status = FileStatus(source, destination, "failed", _with_path(str(exc), source))
        except Exception as exc:  # noqa: BLE001 - one file's surprise must not end the batch
            status = FileStatus(source, destination, "failed", f"{source}: {type(exc).__name__}: {exc}")
    status.seconds = time.perf_counter() - start
    status.warnings = [_with_path(str(w.message), source) for w in caught]
    return index, status


def _with_path(message: str, source: str) -> str:
    return message if source in message else f"{source}: {message}"


def _run_chunk(chunk: list[tuple[int, str, str]]) -> list[tuple[int, FileStatus]]:
    """Worker entry point: a few files per round trip, with the kernels from the initializer."""
    assert _settings is not None, "the pool initializer did not run"
    return [_process(_settings, index, source, destination) for index, source, destination in chunk]


# -- running -----------------------------------------------------------------------------------


def default_jobs() -> int:
    """The number of cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return max(1, os.cpu_count() or 1)


def sweep_temp_files(destinations: Iterable[Path]) -> int:
    """Remove the temporary files of interrupted writes to ``destinations``; return how many.

    Only the temporary files of these outputs are touched (see :func:`temp_file_pattern`).
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


def _pool_context() -> multiprocessing.context.BaseContext:
    # Not fork: the parent may hold threads (rich's refresh thread, BLAS pools) whose locks a
    # forked child would inherit held. Forkserver imports convcli once in the server process,
    # so each worker starts from a ready copy instead of importing numpy and Pillow again.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["convcli.batch"])
        return context
    return multiprocessing.get_context("spawn")


def _chunk_size(count: int, jobs: int) -> int:
    # About four chunks per worker balances uneven file sizes; at most four files per chunk
    # keeps the progress display moving and an interruption quick.
    return max(1, min(4, count // (jobs * 4)))


def _stop_pool(executor: ProcessPoolExecutor, futures: Iterable[Future[object]]) -> None:
    """Cancel what has not started and end the workers now, mid-file if need be."""
    for future in futures:
        future.cancel()
    terminate = getattr(executor, "terminate_workers", None)  # Python 3.14+
    processes = list((getattr(executor, "_processes", None) or {}).values())
    if terminate is not None:
        terminate()
    else:
        for process in processes:
            if process.is_alive():
                process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=10)  # dead before the sweep, so no temp file appears after it


def run_batch(
    tasks: Sequence[Task],
    kernels: Sequence[Kernel],
    options: FilterOptions | None = None,
    output: OutputOptions | None = None,
    *,
    gray: bool = False,
    jobs: int | None = None,
    existing: Existing = "refuse",
    fail_fast: bool = False,
    on_file: Callable[[FileStatus], None] | None = None,
    limits: Limits | None = None,
    all_frames: bool = False,
) -> BatchReport:
    """Filter every task's input and write its output; one bad file does not stop the others.

    Parameters
    ----------
    tasks
        From :func:`plan_batch`.
    kernels
        Built once here and sent to each worker once, through the pool initializer.
    options, output, gray
        As for :func:`convcli.pipeline.process_file`.
    jobs
        Worker processes; default: every core. ``1`` runs in this process, without a pool.
    existing
        What to do when an output exists: ``refuse`` (that file fails), ``skip`` or ``overwrite``.
    fail_fast
        Stop at the first failed file; the files not yet done are ``cancelled``.
    on_file
        Called in this process with each :class:`FileStatus` as it is known, for progress.

    Returns
    -------
    BatchReport
        One status per task, in the order of ``tasks``.

    Raises
    ------
    BatchInterrupted
        On Ctrl-C, after the workers are stopped and their temporary files removed; finished
        outputs are kept and the exception carries the report.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from convcli.kernels import load_kernel
    >>> from convcli.images import write_image
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_image(np.zeros((8, 8), np.uint8), None, folder / "a.png")
    >>> kernels = [load_kernel("sobel")]
    >>> plan = plan_batch(discover([folder]), folder / "out", kernels)
    >>> report = run_batch(plan, kernels, jobs=1)
    >>> report.count("ok"), sorted(p.name for p in (folder / "out").iterdir())
    (1, ['a-sobel.png'])
    """
    if existing not in ("refuse", "skip", "overwrite"):
        raise ParameterError(f"`existing` must be one of refuse, skip, overwrite, got {existing!r}")
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ParameterError(f"`jobs` must be at least 1, got {jobs}")
    options = options or FilterOptions()
    if jobs > 1 and options.threads is None:
        # One process per core already fills the machine; threads inside each would only
        # oversubscribe it.
        options = dataclasses.replace(options, threads=1)
    settings = _Settings(tuple(kernels), options, output or OutputOptions(), gray, existing, limits, all_frames)
    start = time.perf_counter()
    results: list[FileStatus | None] = [None] * len(tasks)

    def settle(index: int, status: FileStatus) -> None:
        results[index] = status
        if on_file is not None:
            on_file(status)

    todo: list[tuple[int, str, str]] = []
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
            todo.append((index, source, destination))

    stopped = fail_fast and any(r is not None and r.status == "failed" for r in results)
    interrupted = False
    jobs = max(1, min(jobs, len(todo)))
    try:
        if stopped or not todo:
            pass
        elif jobs == 1:
            for index, source, destination in todo:
                _, status = _process(settings, index, source, destination)
                settle(index, status)
                if fail_fast and status.status == "failed":
                    stopped = True
                    break
        else:
            stopped = _run_pool(settings, todo, jobs, fail_fast, settle)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # Whatever ended the run, no half-written temporary file of this batch survives it.
        if interrupted or stopped:
            sweep_temp_files(Path(d) for i, _, d in todo if results[i] is None)

    files = [
        status if status is not None else FileStatus(str(t.source), str(t.destination), "cancelled")
        for status, t in zip(results, tasks, strict=True)
    ]
    report = BatchReport(files, time.perf_counter() - start, jobs, interrupted)
    if interrupted:
        raise BatchInterrupted(report)
    return report


def _run_pool(
    settings: _Settings,
    todo: list[tuple[int, str, str]],
    jobs: int,
    fail_fast: bool,
    settle: Callable[[int, FileStatus], None],
) -> bool:
    """Run ``todo`` on ``jobs`` worker processes; return True when stopped by ``fail_fast``."""
    size = _chunk_size(len(todo), jobs)
    chunks = [todo[i : i + size] for i in range(0, len(todo), size)]
    executor = ProcessPoolExecutor(
        max_workers=jobs, mp_context=_pool_context(), initializer=_init_worker, initargs=(settings,)
    )
    pending: dict[Future[list[tuple[int, FileStatus]]], list[tuple[int, str, str]]] = {}
    finished = False
    try:
        pending = {executor.submit(_run_chunk, chunk): chunk for chunk in chunks}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                chunk = pending.pop(future)
                try:
                    outcomes = future.result()
                except Exception as exc:  # noqa: BLE001 - a worker died (killed, out of memory)
                    outcomes = [
                        (i, FileStatus(s, d, "failed", f"{s}: the worker process failed: {exc or type(exc).__name__}"))
                        for i, s, d in chunk
                    ]
                for index, status in outcomes:
                    settle(index, status)
                if fail_fast and any(status.status == "failed" for _, status in outcomes):
                    return True
        finished = True
        return False
    finally:
        if finished:
            executor.shutdown(wait=True)
        else:
            _stop_pool(executor, pending)
