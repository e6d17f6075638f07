"""Where the files of a batch are filtered: in this process, or in a pool of worker processes.

An executor runs the work of one file (a picklable callable, sent to each worker once) over a
list of :class:`WorkItem` and yields the outcomes of each unit of work as it finishes. When the
caller stops iterating early (the first failure with ``--fail-fast``, Ctrl-C, SIGTERM) and closes
the iterator, the executor stops the work still running before it returns, so no worker writes a
file after that.

A new executor (a cluster scheduler, say) implements :class:`Executor` and is passed to
:func:`convcli.batch.run.filter_batch`.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.machinery
import inspect
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, cast

from convcli.batch.report import FileStatus
from convcli.errors import ParameterError


@dataclass(frozen=True)
class WorkItem:
    """One file to filter: its place in the plan, its input and its output.

    ``attempt`` is 1, or more for a file run again because the worker filtering it died.
    """

    index: int
    source: str
    destination: str
    attempt: int = 1


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
_release: Any = None  # the semaphore that holds the start-up pings (see LocalPoolExecutor._start)
_current: WorkItem | None = None  # the file this worker is filtering, if any
_SIGHUP: int | None = getattr(signal, "SIGHUP", None)  # not on Windows
# Besides SIGINT, the signals that stop a batch.
_STOP_SIGNALS: tuple[int, ...] = (signal.SIGTERM, *([_SIGHUP] if _SIGHUP else []))
# How long a worker whose batch process died waits for the file in progress to unwind (its
# temporary file removed) before it removes that file itself and exits.
_UNWIND_SECONDS = 5.0


class _Stopped(BaseException):
    """Raised in a worker by SIGTERM, so that the write in progress removes its temporary file."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _init_worker(work: WorkFunction, parent: Connection, release: Any) -> None:
    """Pool initializer: keep the work of one file, leave Ctrl-C to the parent, watch the parent."""
    global _work, _release
    # The parent decides what an interruption means (cancel, terminate, sweep, summary); a
    # worker dying with a KeyboardInterrupt traceback on Ctrl-C would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A closed terminal sends SIGHUP to every process of the job: that too is the parent's to
    # handle. A worker is stopped by SIGTERM, from the parent or from its own watch thread.
    if _SIGHUP:
        signal.signal(_SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_stop_signal)
    _work, _release = work, release
    threading.Thread(target=_watch_parent, args=(parent,), name="convcli-parent-watch", daemon=True).start()


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    if _current is None:
        os._exit(128 + signum)  # idle: nothing to clean up
    raise _Stopped(signum)


def _watch_parent(parent: Connection) -> None:
    """Stop this worker when the batch process is gone, however it died (SIGKILL included).

    Workers are children of the forkserver, not of the batch process, so they would never learn
    of its death from the process tree; and the pool's queues stay open in every worker. Only the
    batch process holds the write end of ``parent``: the read here ends when it dies or ends the
    run, with no pid that could have been reused.
    """
    try:
        parent.recv_bytes()
    except (EOFError, OSError):
        pass
    item = _current
    # Delivered to the main thread, which may be blocked reading the next task: the handler exits
    # at once when idle, or unwinds the file in progress (removing its temporary file).
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
    else:  # Windows: no signal reaches a thread; this ends the process at once
        os.kill(os.getpid(), signal.SIGTERM)
    threading.Event().wait(_UNWIND_SECONDS)
    # Still here: the main thread is stuck inside a long computation. Remove what it may have
    # begun to write, and go.
    if item is not None:
        from convcli.batch.run import sweep_temp_files  # run imports this module

        sweep_temp_files([Path(item.destination)])
    os._exit(128 + signal.SIGTERM)


def _ping() -> None:
    """Start-up task: hold this worker until every worker of the pool has been started."""
    _release.acquire()
    _release.release()


def _run_one(item: WorkItem) -> FileStatus:
    """Worker entry point: one file."""
    global _current
    assert _work is not None, "the pool initializer did not run"
    _current = item
    try:
        return _work(item)
    except _Stopped as stop:
        # The write in progress removed its temporary file while this unwound; nothing else to do.
        os._exit(128 + stop.signum)
    finally:
        _current = None


# -- the pool -------------------------------------------------------------------------------------


class _TrackedContext:
    """A multiprocessing context that remembers the worker processes it starts.

    Stopping a batch mid-file means terminating the pool's workers, and ProcessPoolExecutor has
    no public way to reach them before Python 3.14 (``terminate_workers``). It does create them
    through the public ``mp_context`` it is given, so a context that records what it starts
    gives us the processes without touching the executor's private state.
    """

    def __init__(self, base: BaseContext) -> None:
        self._base = base
        self.processes: list[BaseProcess] = []

    def Process(self, *args: Any, **kwargs: Any) -> BaseProcess:  # noqa: N802 - the context API's name
        process: BaseProcess = self._base.Process(*args, **kwargs)  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def started(self) -> list[BaseProcess]:
        """The processes that did start (a start can fail: too many processes, a dead server)."""
        return [p for p in self.processes if p.pid is not None]


def _base_context() -> BaseContext:
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


def check_main_guard() -> None:
    """Refuse to start worker processes from the unguarded top level of a script.

    Worker processes import the main script again (spawn and forkserver do, to find what it
    defines); a script whose batch call is not under ``if __name__ == "__main__":`` would run
    that call again in every worker, which cannot start processes of its own there, and every
    file would fail. Found here, before any work, it is one clear error instead.

    Raises
    ------
    ParameterError
        When the call comes from the top level of the main script, outside the guard.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if main is None or not isinstance(path, str):
        return  # python -c, an interactive session, a notebook: nothing is imported again
    spec_name = getattr(getattr(main, "__spec__", None), "name", None)
    if spec_name is not None and (spec_name == "__main__" or spec_name.endswith(".__main__")):
        return  # python -m package: multiprocessing does not run a package's __main__ again
    frame = inspect.currentframe()
    while frame is not None and not (frame.f_code.co_name == "<module>" and frame.f_globals is vars(main)):
        frame = frame.f_back
    if frame is None:
        return  # not called from the script's top level (a thread, an atexit hook)
    line = frame.f_lineno
    del frame
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.lineno <= line <= (node.end_lineno or 0):
            return
    raise ParameterError(
        f"{path}: worker processes import this script again, and its batch call at line {line} would "
        'run again in each of them; put it under `if __name__ == "__main__":` (or pass jobs=1)'
    )


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"``, either way round."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    values = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and values == ["__main__"]


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP while worker processes are being started.

    An exception raised inside a process start (the handlers raise) leaves a process that
    the parent never learns of, still reading its set-up. Held here, a signal takes effect as
    soon as the start is over, through the handler that was in place. Python-level handlers
    only (the default actions end the process at once anyway); only the main thread can set them.

    SIGHUP is also blocked in this thread, and the helper processes started here (forkserver,
    resource tracker) keep that mask: when a terminal closes, every process of the job gets
    SIGHUP, and the resource tracker, dying of it, would be started again and print tracebacks
    for the resources it no longer knows. The parent's own SIGHUP waits for the unblocking.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not (_SIGHUP and hasattr(signal, "pthread_sigmask")):
        with _handlers_deferred():
            yield
        return
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {_SIGHUP})
    try:
        with _handlers_deferred():
            yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


@contextmanager
def _handlers_deferred() -> Iterator[None]:
    """Replace the Python-level handlers of the stop signals by a note, and run the first noted
    one on leaving."""
    received: list[int] = []
    previous: dict[int, Callable[[int, FrameType | None], Any]] = {}
    for held in (signal.SIGINT, *_STOP_SIGNALS):
        handler = signal.getsignal(held)
        if callable(handler):
            previous[held] = handler
            signal.signal(held, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)
        if received:
            previous[received[0]](received[0], None)


# Errors that say the pool itself failed (a worker died, a start failed), not the file.
_POOL_ERRORS = (BrokenProcessPool, OSError, EOFError, RuntimeError)


def _death(processes: Sequence[BaseProcess]) -> str:
    """How the worker that broke the pool ended, as far as can be told."""
    stopped = {-signal.SIGTERM, 128 + signal.SIGTERM}  # how the pool ends the other workers
    for process in processes:
        code = process.exitcode
        if code is None or code == 0 or code in stopped:
            continue
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with status {code}"
    return "it ended"


@dataclass
class _Pool:
    """One process pool of a run, the processes it started and its size."""

    executor: ProcessPoolExecutor
    context: _TrackedContext
    jobs: int


class LocalPoolExecutor:
    """Filters the files on ``jobs`` worker processes of this machine.

    A worker that dies (killed, out of memory) costs no file by itself: the pool is started
    again and the files that were in progress are filtered again, one at a time; a file whose
    worker dies even then fails, naming the cause. When fewer processes can be started than
    asked (a process limit, ``ulimit -u``), the run goes on with fewer, or in this process, with
    a warning. Workers stop when the batch process dies, removing the file they were writing.

    ``context`` is the multiprocessing context to start workers with (default: forkserver
    where available, else spawn).
    """

    def __init__(self, jobs: int, *, context: BaseContext | None = None) -> None:
        self.jobs = jobs
        self._context = context

    def run(self, work: WorkFunction, items: Sequence[WorkItem]) -> Outcomes:
        """Yield the outcome of each file as its worker returns it."""
        queue = deque(items)
        suspects: deque[WorkItem] = deque()  # in progress when a worker died: run again, alone
        jobs = max(1, min(self.jobs, len(items)))
        # Only this process holds the write end: the workers' read ends close when it dies.
        watch_read, watch_write = multiprocessing.Pipe(duplex=False)
        pool: _Pool | None = None
        try:
            while queue or suspects:
                pool = self._start(work, jobs, watch_read)
                if pool is None:
                    yield from self._in_this_process(work, queue, suspects)
                    return
                jobs = pool.jobs
                yield from self._drive(pool, work, queue, suspects)
                pool = None
        finally:
            if pool is not None:
                _stop(pool.executor, (), pool.context.processes)
            watch_write.close()
            watch_read.close()

    def _start(self, work: WorkFunction, jobs: int, watch: Connection) -> _Pool | None:
        """A pool whose ``jobs`` workers are all started, with fewer if fewer can be; None if none can."""
        first_error: BaseException | None = None
        while jobs >= 1:
            context = _TrackedContext(self._context or _base_context())
            executor: ProcessPoolExecutor | None = None
            ready = False
            try:
                with _signals_deferred():
                    # The pool's locks start the resource tracker, and its first process the
                    # forkserver: both inside, so that they too ignore a closed terminal.
                    release = context.Semaphore(0)
                    executor = ProcessPoolExecutor(
                        max_workers=jobs,
                        mp_context=cast(BaseContext, context),  # a context in all but name: see _TrackedContext
                        initializer=_init_worker,
                        initargs=(work, watch, release),
                    )
                    try:
                        # One held task per worker makes the pool start them all now: starts
                        # fail here or never, and no later submit starts a process.
                        pings = [executor.submit(_ping) for _ in range(jobs)]
                    finally:
                        release.release()
                for ping in pings:
                    ping.result()  # a worker that cannot start (an import fails) breaks the pool here
                ready = True
            except _POOL_ERRORS as exc:
                first_error = first_error or exc
                started = len(context.started())
                if isinstance(exc, BrokenProcessPool):
                    jobs = 0  # started, then died starting (an import failed): so would any other
                else:
                    jobs = started if 0 < started < jobs else jobs - 1  # refused: try with fewer
                continue
            finally:
                if not ready and executor is not None:
                    _stop(executor, (), context.processes)
            if first_error is not None:
                warnings.warn(
                    f"could start {jobs} worker process{'es' if jobs > 1 else ''} of {self.jobs} "
                    f"({_describe(first_error)}); going on with {jobs}",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return _Pool(executor, context, jobs)
        warnings.warn(
            f"cannot start worker processes ({_describe(first_error)}); filtering in this process",
            RuntimeWarning,
            stacklevel=2,
        )
        return None

    def _drive(
        self, pool: _Pool, work: WorkFunction, queue: deque[WorkItem], suspects: deque[WorkItem]
    ) -> Outcomes:
        """Run ``suspects`` one at a time, then ``queue``, until done or a worker dies."""
        running: dict[Future[FileStatus], WorkItem] = {}
        alone: WorkItem | None = None  # a suspect, running with nothing else
        settled = False
        try:
            while queue or suspects or running:
                if alone is None and suspects and not running:
                    alone = suspects.popleft()
                    if not self._submit(pool, alone, running):
                        suspects.appendleft(alone)
                        return
                elif alone is None and not suspects:
                    # Two files per worker: one in progress, one ready, so that no worker waits
                    # for this process between files.
                    while queue and len(running) < 2 * pool.jobs:
                        item = queue.popleft()
                        if not self._submit(pool, item, running):
                            queue.appendleft(item)
                            break
                if not running:
                    return  # the pool broke before taking anything: the caller starts another
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                outcomes: list[Outcome] = []
                broken = False
                for future in done:
                    item = running[future]
                    # Read as a value, not raised: a SystemExit from a library in the worker
                    # must fail its file, not end this process.
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        broken = True
                        continue  # settled below, with the others in progress
                    if error is None:
                        outcomes.append((item.index, future.result()))
                    else:  # the pool's own machinery, or the work, failed on this file
                        outcomes.append((item.index, _failed(item, f"the worker process failed: {_describe(error)}")))
                    del running[future]
                    if item is alone:
                        alone = None
                if outcomes:
                    yield outcomes
                if broken:
                    cause = _death(pool.context.processes)
                    settled = True
                    _stop(pool.executor, (), pool.context.processes)
                    # Files other workers finished as the pool broke keep their outcome: run
                    # again, their output (already there) would be refused.
                    wait(running, timeout=_STOP_SECONDS)
                    finished = [(i.index, f.result()) for f, i in running.items() if _succeeded(f)]
                    if finished:
                        yield finished
                    done_indexes = {index for index, _ in finished}
                    lost = sorted((i for i in running.values() if i.index not in done_indexes), key=lambda i: i.index)
                    running.clear()
                    _sweep(item.destination for item in lost)
                    if alone is not None:
                        message = f"the worker process filtering it died ({cause}), also when it was filtered alone"
                        yield [(alone.index, _failed(alone, message))]
                    else:
                        suspects.extend(dataclasses.replace(item, attempt=item.attempt + 1) for item in lost)
                    return
            pool.executor.shutdown(wait=True)
            settled = True
        finally:
            if not settled:
                _stop(pool.executor, running, pool.context.processes)

    @staticmethod
    def _submit(pool: _Pool, item: WorkItem, running: dict[Future[FileStatus], WorkItem]) -> bool:
        """Hand ``item`` to the pool; False when the pool is broken."""
        try:
            running[pool.executor.submit(_run_one, item)] = item
        except _POOL_ERRORS:
            return False
        return True

    @staticmethod
    def _in_this_process(work: WorkFunction, queue: deque[WorkItem], suspects: deque[WorkItem]) -> Outcomes:
        # A file whose worker died is not tried here: it could end this process and the batch.
        for item in suspects:
            yield [(item.index, _failed(item, "the worker process filtering it died, and no other could be started"))]
        suspects.clear()
        while queue:
            item = queue.popleft()
            yield [(item.index, work(item))]


def _succeeded(future: Future[Any]) -> bool:
    return future.done() and not future.cancelled() and future.exception() is None


def _failed(item: WorkItem, message: str) -> FileStatus:
    return FileStatus(item.source, item.destination, "failed", f"{item.source}: {message}")


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown cause"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _sweep(destinations: Iterable[str]) -> None:
    from convcli.batch.run import sweep_temp_files  # run imports this module

    sweep_temp_files(Path(d) for d in destinations)


# How long stopped workers get to unwind (remove the file they were writing) before they are killed.
_STOP_SECONDS = 5.0


def _stop(pool: ProcessPoolExecutor, futures: Iterable[Future[Any]], processes: list[BaseProcess]) -> None:
    """Cancel what has not started and end the workers now, mid-file if need be."""
    for future in futures:
        future.cancel()
    for process in processes:
        if process.pid is not None and process.is_alive():
            process.terminate()  # a worker unwinds the file in progress, removing its temporary file
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + _STOP_SECONDS
    for process in processes:
        if process.pid is None:  # never started (a start can fail when the server process died)
            continue
        process.join(timeout=max(0.0, deadline - time.monotonic()))
        if process.is_alive():  # stuck in a long computation: end it
            process.kill()
            process.join(timeout=_STOP_SECONDS)
