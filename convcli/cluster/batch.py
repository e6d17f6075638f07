"""Batches on a Dask cluster (``batch --scheduler``): each file is one task, run by the workers
with the same per-file work as the local process pool, so the outputs are the same bytes.

Workers read the inputs and write the outputs on the paths given: the cluster must share the
filesystem (or mount it on the same paths). Files are submitted as futures, a few per worker
thread at a time, so that a list of a million files never becomes a million-task graph; results
come back through ``as_completed``.

Faults: a worker that dies has its tasks run again by Dask on other workers. A task that had
written its output before its worker died finds that output on its second run; the output is
this run's own (the scheduler's ``remove-worker`` events name the tasks it held), so it counts as
written, not as skipped or refused. The temporary files of the files those workers were writing
are removed at the end.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from convcli.batch.executors import Outcome, Outcomes, WorkFunction, WorkItem
from convcli.batch.report import BatchInterrupted, BatchReport, FileStatus
from convcli.batch.run import BatchTerminated, Existing, filter_batch, sweep_temp_files
from convcli.cluster.client import LOCAL, connect
from convcli.kernels import Kernel
from convcli.options import JobOptions

if TYPE_CHECKING:
    import distributed

# Tasks in flight per worker thread: one running, one or two waiting on the worker, so that no
# thread waits for this process between files.
IN_FLIGHT_PER_THREAD = 3
# How long a stopped run (Ctrl-C, SIGTERM, --fail-fast) waits for the files the workers are
# filtering to be finished. Dask cannot stop a task that is running; waiting keeps the report
# true to the disk.
STOP_SECONDS = 10.0
# How often the number of worker threads is asked again (workers may join or leave).
_REFRESH_SECONDS = 1.0
# How often the client's status is looked at (see _end_if_closed).
_WATCH_SECONDS = 0.5


def run_file(work: WorkFunction, item: WorkItem, stop: str) -> FileStatus | None:
    """The task of one file, on a worker: ``work`` (as the local pool runs it), unless the batch was
    stopped before the task started (None)."""
    from distributed import Event

    if Event(stop).is_set():
        return None
    return work(item)


def hold(value: object) -> object:
    """A task whose result is ``value``: the work of a file, sent to the cluster once and then
    fetched by each worker once, recomputed by Dask if the worker holding it dies."""
    return value


class DaskExecutor:
    """Filters the files of a batch as tasks of a dask.distributed cluster (an
    :class:`~convcli.batch.executors.Executor`).

    ``address`` names the cluster in error messages.
    """

    def __init__(self, client: distributed.Client, address: str) -> None:
        self._client = client
        self._address = address
        self._threads = self._worker_threads()
        self._checked = time.monotonic()

    @property
    def jobs(self) -> int:
        """The worker threads of the cluster (at least 1, for a cluster whose workers have not joined yet)."""
        return max(1, self._threads)

    def _worker_threads(self) -> int:
        workers = self._client.scheduler_info(n_workers=-1).get("workers", {})
        return sum(int(w.get("nthreads", 1)) for w in workers.values())

    def _in_flight(self) -> int:
        now = time.monotonic()
        if now - self._checked > _REFRESH_SECONDS:
            self._threads, self._checked = self._worker_threads(), now
        return IN_FLIGHT_PER_THREAD * self.jobs

    def run(self, work: WorkFunction, items: Sequence[WorkItem]) -> Outcomes:
        """Yield the outcome of each file as its task finishes."""
        from distributed import Event, as_completed

        client = self._client
        token = uuid.uuid4().hex
        stop = Event(f"convcli-stop-{token}", client=client)
        keys = {f"convcli-file-{token}-{item.index}": item for item in items}
        shared = client.submit(hold, work, key=f"convcli-work-{token}", pure=False)
        if not self._threads:
            warnings.warn(
                f"{self._address}: the Dask scheduler has no workers yet; the files wait for some",
                RuntimeWarning,
                stacklevel=2,
            )
        pending: Iterator[tuple[str, WorkItem]] = iter(keys.items())
        running: dict[distributed.Future[Any], WorkItem] = {}
        finished = as_completed(loop=client.loop)
        lost: set[str] = set()  # keys of the tasks that were on a worker when it died

        def refill() -> None:
            while len(running) < self._in_flight():
                key, item = next(pending, (None, None))
                if key is None or item is None:
                    return
                future = client.submit(run_file, shared, _absolute(item), stop.name, key=key, pure=False)
                running[future] = item
                finished.add(future)

        completed = False
        watched = threading.Event()
        watch = threading.Thread(target=_end_if_closed, args=(client, finished, watched), daemon=True)
        try:
            try:
                refill()
                watch.start()
                for future in finished:
                    outcome = self._outcome(future, running[future], lost)
                    del running[future]
                    future.release()
                    refill()
                    if outcome is not None:
                        yield [outcome]
                if running:  # the watch ended the iteration: the client closed
                    raise ConnectionError("the client gave up reconnecting")
            except Exception as exc:  # the scheduler is gone: distributed's errors have no common base
                cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                message = f"the connection to the Dask scheduler at {self._address} was lost ({cause})"
                left = [*running.values(), *(item for _, item in pending)]
                running.clear()
                yield [(item.index, _failed(item, message)) for item in left]
            completed = True
        finally:
            watched.set()
            if running and not completed:
                self._stop(stop, running)
            with contextlib.suppress(Exception):  # the scheduler may be gone
                shared.release()
            self._note_lost(lost)
            # Only this run's outputs: the tasks its dead workers held, and those not finished.
            mine = [keys[k] for k in lost if k in keys] + list(running.values())
            if mine:
                sweep_temp_files(Path(item.destination) for item in mine)

    def _stop(self, stop: distributed.Event, running: dict[distributed.Future[Any], WorkItem]) -> None:
        """Tell the tasks not started to do nothing, give those running time to finish, cancel the rest."""
        try:
            stop.set()  # first: a task that starts from now on does nothing
            # Tasks no worker holds yet are cancelled now; those on a worker finish or return at once.
            held = {str(key) for keys in self._client.processing().values() for key in keys}
            self._client.cancel([future for future in running if str(future.key) not in held])
            deadline = time.monotonic() + STOP_SECONDS
            for future in running:
                if str(future.key) in held:
                    future.exception(timeout=max(0.0, deadline - time.monotonic()))
        except Exception:  # a timeout, or the scheduler gone: cancel below
            pass
        try:
            self._client.cancel(list(running))
            stop.clear()
        except Exception:  # the scheduler is gone: nothing left to cancel
            pass

    def _note_lost(self, lost: set[str]) -> None:
        """Add to ``lost`` the tasks the scheduler reports on workers that died (its public event log)."""
        try:
            events = self._client.get_events("all")
        except Exception:  # the scheduler is gone: nothing more can be learnt
            return
        for _, event in events:
            if isinstance(event, dict) and event.get("action") == "remove-worker" and not event.get("expected"):
                for field in ("processing-tasks", "lost-computed-tasks"):
                    lost.update(str(k) for k in event.get(field, ()) if str(k).startswith("convcli-file-"))

    def _outcome(self, future: distributed.Future[Any], item: WorkItem, lost: set[str]) -> Outcome | None:
        """The status of a finished task; None for a task that did nothing because the run stopped."""
        status: FileStatus | None
        if future.status == "finished":
            status = future.result()
            if status is None:
                return None
        elif future.status == "cancelled" and self._client.status != "running":
            # The client lost its scheduler (it is reconnecting, or gave up), and with it every task.
            status = _failed(item, f"the connection to the Dask scheduler at {self._address} was lost")
        elif future.status == "cancelled":
            status = _failed(item, f"its task was cancelled on the cluster at {self._address}")
        else:
            error = future.exception()
            if type(error).__name__ == "KilledWorker":
                status = _failed(item, f"the Dask workers filtering it died ({error})")
            else:
                status = _failed(item, f"the Dask worker failed: {type(error).__name__}: {error}")
        if status.status != "ok" and os.path.lexists(item.destination):
            self._note_lost(lost)
            if str(future.key) in lost:
                # Run again because its worker died, the task found the output its first run
                # wrote (no output existed when the run began): it is this run's, and done.
                status = FileStatus(item.source, item.destination, "ok", seconds=status.seconds)
        return item.index, _as_given(status, item)


def _end_if_closed(client: distributed.Client, finished: distributed.as_completed, done: threading.Event) -> None:
    """Until ``done``, end the iteration over ``finished`` when ``client`` closes (it does when it
    cannot reach its scheduler again), which ``as_completed`` would otherwise wait for without end.
    The client offers no notice of its closing: its status is looked at twice a second."""
    while not done.wait(_WATCH_SECONDS):
        if client.status in ("closing", "closed"):
            finished.clear()
            return


def _absolute(item: WorkItem) -> WorkItem:
    """``item`` with absolute paths: a worker's current folder is not this process's."""
    return dataclasses.replace(item, source=os.path.abspath(item.source), destination=os.path.abspath(item.destination))


def _as_given(status: FileStatus, item: WorkItem) -> FileStatus:
    """``status`` with the paths as the user gave them, in its fields and messages, as a local batch reports them."""
    pairs = [(os.path.abspath(item.source), item.source), (os.path.abspath(item.destination), item.destination)]

    def given(text: str) -> str:
        for absolute, relative in pairs:
            text = text.replace(absolute, relative)
        return text

    status.path, status.output = item.source, item.destination
    status.error = None if status.error is None else given(status.error)
    status.warnings = [given(w) for w in status.warnings]
    return status


def _failed(item: WorkItem, message: str) -> FileStatus:
    return FileStatus(item.source, item.destination, "failed", f"{item.source}: {message}")


def filter_batch_on_cluster(
    tasks: Sequence[Any],
    kernels: Sequence[Kernel],
    job: JobOptions,
    *,
    jobs: int | None,
    existing: Existing,
    fail_fast: bool,
    on_file: Callable[[FileStatus], None] | None,
) -> BatchReport:
    """:func:`~convcli.batch.run.filter_batch` on the Dask cluster of ``job.filter.scheduler``.

    ``jobs`` is the number of worker processes of a ``local`` cluster (default: one per core);
    a running cluster's workers are its own.
    """
    from convcli.batch.executors import check_main_guard

    address = job.filter.scheduler or ""
    if address == LOCAL:
        check_main_guard()  # a local cluster's workers import the main script again, as a pool's do
    report: BatchReport | None = None
    try:
        with connect(address, workers=jobs) as client:
            report = filter_batch(
                tasks,
                kernels,
                job.replace(scheduler=None),
                existing=existing,
                fail_fast=fail_fast,
                on_file=on_file,
                executor=DaskExecutor(client, address),
            )
        return report
    except (BatchInterrupted, BatchTerminated) as exc:
        report = exc.report
        raise
    finally:
        cancelled = [Path(f.output) for f in report.files if f.status == "cancelled"] if report else []
        if cancelled and address == LOCAL:
            # The local cluster is closed by now, and with it any task still running after the
            # stop: what it was writing is removed.
            sweep_temp_files(cancelled)
