"""Where the files of a batch are filtered: in this process, or in a pool of worker processes.

An executor runs the work of one file (a picklable callable, sent to each worker once) over a
list of :class:`WorkItem` and yields the outcomes of each unit of work as it finishes: one file
in this process, a chunk of files from a worker. When the caller stops iterating early (the first
failure with ``--fail-fast``, Ctrl-C, SIGTERM) and closes the iterator, the executor stops the work
still running before it returns, so no worker writes a file after that.

A new executor (a cluster scheduler, say) implements :class:`Executor` and is passed to
:func:`convcli.batch.run.filter_batch`.
"""

from __future__ import annotations

import importlib.machinery
import multiprocessing
import os
import signal
from collections.abc import Callable, Generator, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.context import BaseContext, ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, Protocol, cast

from convcli.batch.report import FileStatus


@dataclass(frozen=True)
class WorkItem:
    """One file to filter: its place in the plan, its input and its output."""

    index: int
    source: str
    destination: str


Outcome = tuple[int, FileStatus]
WorkFunction = Callable[[WorkItem], FileStatus]  # the work of one file, such as run.FileWork
Outcomes = Generator[list[Outcome], None, None]


class Executor(Protocol):
    """Runs ``work`` over ``items`` and yields the outcomes of each finished unit of work.

    Closing the returned iterator before it is exhausted must stop the work still running and
    return only once nothing more will be written.
    """

    @property
    def jobs(self) -> int:
        """How many files may be filtered at once."""
        ...

    def run(self, work: WorkFunction, items: Sequence[WorkItem]) -> Outcomes:
        """Filter ``items`` with ``work``, yielding outcomes as they are known."""
        ...


class InProcessExecutor:
    """Filters the files one after the other in the calling process (``--jobs 1``)."""

    jobs = 1

    def run(self, work: WorkFunction, items: Sequence[WorkItem]) -> Outcomes:
        """Yield each file's outcome as soon as it is done."""
        for item in items:
            yield [(item.index, work(item))]


# -- the worker side ------------------------------------------------------------------------------

_work: WorkFunction | None = None  # a worker's copy, set once by the pool initializer


def _init_worker(work: WorkFunction) -> None:
    """Pool initializer: keep the work of one file for every chunk, leave Ctrl-C to the parent."""
    global _work
    # The parent decides what an interruption means (cancel, terminate, sweep, summary); a
    # worker dying with a KeyboardInterrupt traceback on Ctrl-C would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _work = work


def _run_chunk(chunk: list[WorkItem]) -> list[Outcome]:
    """Worker entry point: a few files per round trip."""
    assert _work is not None, "the pool initializer did not run"
    return [(item.index, _work(item)) for item in chunk]


# -- the pool -------------------------------------------------------------------------------------


class _TrackedContext:
    """A multiprocessing context that remembers the worker processes it starts.

    Stopping a batch mid-file means terminating the pool's workers, and ProcessPoolExecutor has
    no public way to reach them before Python 3.14 (``terminate_workers``). It does create them
    through the public ``mp_context`` it is given, so a context that records what it starts
    gives us the processes without touching the executor's private state.
    """

    def __init__(self, base: ForkServerContext | SpawnContext) -> None:
        self._base = base
        self.processes: list[BaseProcess] = []

    def Process(self, *args: Any, **kwargs: Any) -> BaseProcess:  # noqa: N802 - the context API's name
        process: BaseProcess = self._base.Process(*args, **kwargs)
        self.processes.append(process)
        return process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


def _base_context() -> ForkServerContext | SpawnContext:
    # Not fork: the parent may hold threads (rich's refresh thread, BLAS pools) whose locks a
    # forked child would inherit held. Forkserver imports convcli once in the server process,
    # so each worker starts from a ready copy instead of importing numpy and Pillow again.
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        if not _shadowed_in_current_folder():
            context.set_forkserver_preload(["convcli.batch"])
        return context
    return multiprocessing.get_context("spawn")


def _shadowed_in_current_folder() -> bool:
    """Whether the current folder holds another module or package named ``convcli``.

    The forkserver process imports its preload modules with the current folder first on its
    path (Python 3.11's forkserver ignores the parent's ``sys.path`` there), so run from a folder
    holding another convcli (a checkout of another version, a script called convcli.py) it
    would preload that one, and every worker would fail. Without the preload, each worker
    imports convcli with the parent's path, as spawned processes do.
    """
    spec = importlib.machinery.PathFinder.find_spec("convcli", [os.getcwd()])
    if spec is None or spec.origin is None:  # nothing there, or a bare folder (a namespace portion)
        return False
    ours = Path(__file__).resolve().parent.parent / "__init__.py"
    return Path(spec.origin).resolve() != ours


def chunk_size(count: int, jobs: int) -> int:
    """Files per round trip to a worker.

    About four chunks per worker balances uneven file sizes; at most four files per chunk keeps
    the progress display moving and an interruption quick.

    >>> chunk_size(1000, 2), chunk_size(10, 2)
    (4, 1)
    """
    return max(1, min(4, count // (jobs * 4)))


class LocalPoolExecutor:
    """Filters the files on ``jobs`` worker processes of this machine, in chunks.

    A worker that dies (killed, out of memory) fails the files of its chunk, naming the cause;
    the others go on.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def run(self, work: WorkFunction, items: Sequence[WorkItem]) -> Outcomes:
        """Yield the outcomes of each chunk as its worker returns it."""
        size = chunk_size(len(items), self.jobs)
        chunks = [list(items[i : i + size]) for i in range(0, len(items), size)]
        context = _TrackedContext(_base_context())
        pool = ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=cast(BaseContext, context),  # a context in all but name: see _TrackedContext
            initializer=_init_worker,
            initargs=(work,),
        )
        pending: dict[Future[list[Outcome]], list[WorkItem]] = {}
        finished = False
        try:
            pending = {pool.submit(_run_chunk, chunk): chunk for chunk in chunks}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    chunk = pending.pop(future)
                    try:
                        outcomes = future.result()
                    except Exception as exc:  # a worker died (killed, out of memory)
                        cause = exc or type(exc).__name__
                        outcomes = [
                            (i.index, FileStatus(i.source, i.destination, "failed",
                                                 f"{i.source}: the worker process failed: {cause}"))
                            for i in chunk
                        ]
                    yield outcomes
            finished = True
        finally:
            if finished:
                pool.shutdown(wait=True)
            else:
                _stop(pool, pending, context.processes)


def _stop(pool: ProcessPoolExecutor, futures: Iterable[Future[Any]], processes: list[BaseProcess]) -> None:
    """Cancel what has not started and end the workers now, mid-file if need be."""
    for future in futures:
        future.cancel()
    for process in processes:
        if process.is_alive():
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.pid is not None:  # started (a start can fail when the server process died)
            process.join(timeout=10)  # dead before the caller sweeps, so no temporary file appears after it
