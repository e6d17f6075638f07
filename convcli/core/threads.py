"""Running an engine over disjoint bands of output rows on several threads.

NumPy releases the GIL inside its ufunc loops and FFTs, so threads that each fill their own band
of output rows run truly in parallel. Each band is further cut into cache-sized strips by the
engine itself; bands only decide which thread computes which rows.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from functools import partial
from numbers import Integral
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from convcli.errors import ParameterError

# Work is counted in the cost model's unit (passes over one float32 sample). Below this much
# work per thread a second thread costs more (hand-over, a second set of strip buffers) than it
# saves. Every catalogue kernel on a 1080p RGB image is above it, down to the one-pass identity
# (about 6 M), so two threads split it; a 512x512 RGB Sobel (about 5 M) stays on one thread.
MIN_WORK_PER_THREAD = 3_000_000

BandWorker = Callable[[int, int], None]

# How often a caller waiting for other bands wakes up to let a Ctrl-C through (see _Band.result).
WAKE_SECONDS = 0.05


def resolve_threads(threads: int | None) -> int:
    """Validate the ``threads`` argument; ``None`` means one thread per CPU.

    >>> resolve_threads(2)
    2
    """
    if threads is None:
        return max(1, os.cpu_count() or 1)
    if not isinstance(threads, Integral) or isinstance(threads, bool):
        raise ParameterError(f"`threads` must be an integer >= 1 or None, got {threads!r}")
    if threads < 1:
        raise ParameterError(f"`threads` must be >= 1, got {threads!r}")
    return int(threads)


def band_count(threads: int, rows: int, work: float, align: int = 1) -> int:
    """How many bands to run: at most one per thread, per ``align`` rows and per MIN_WORK_PER_THREAD."""
    return max(1, min(threads, -(-rows // max(1, align)), int(work // MIN_WORK_PER_THREAD)))


def band_edges(rows: int, bands: int, align: int = 1) -> list[int]:
    """Row boundaries of ``bands`` near-equal bands, inner ones on multiples of ``align``.

    >>> band_edges(10, 3), band_edges(1000, 2, align=300)
    ([0, 3, 6, 10], [0, 600, 1000])
    """
    blocks = -(-rows // max(1, align))
    edges = [min(rows, (blocks * b // bands) * align) for b in range(bands)]
    return [*edges, rows]


class _Band:
    """One band handed to a pool thread: the call, and its outcome once :attr:`done` is set."""

    def __init__(self, call: Callable[[], None]) -> None:
        self.call = call
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.call()
        except BaseException as exc:  # handed to the caller, who re-raises it
            self.error = exc
        finally:
            self.done.set()

    def result(self) -> None:
        """Wait for the band and raise what it raised.

        The wait wakes up every WAKE_SECONDS: the kernel may hand Ctrl-C to any thread of the
        process (a pool thread busy in NumPy, say), and Python then runs its handler only when
        the calling thread next runs Python code; a wait that never woke up would delay Ctrl-C
        until the band ends.
        """
        while not self.done.wait(WAKE_SECONDS):
            pass
        if self.error is not None:
            raise self.error


class _BandPool:
    """Worker threads shared by every :func:`run_bands` call, started when none is idle.

    The threads are daemon threads, unlike ThreadPoolExecutor's, which the interpreter joins at
    exit: a Ctrl-C landing inside ``ThreadPoolExecutor.submit`` between starting a worker and
    registering it leaves a thread that is never told to stop, and the process never exits.
    An idle daemon thread waits on its queue and holds nothing up.
    """

    def __init__(self) -> None:
        self._bands: queue.SimpleQueue[_Band] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._started = 0

    def submit(self, call: Callable[[], None]) -> _Band:
        band = _Band(call)
        with self._lock:
            start = self._idle == 0
            if start:
                self._started += 1
            else:
                self._idle -= 1  # an idle thread will take this band
        self._bands.put(band)
        if start:
            threading.Thread(target=self._serve, name=f"convcli-{self._started}", daemon=True).start()
        return band

    def _serve(self) -> None:
        while True:
            self._bands.get().run()
            with self._lock:
                self._idle += 1


_pool = _BandPool()


def run_bands(worker: BandWorker, rows: int, threads: int, work: float, align: int = 1) -> None:
    """Call ``worker(r0, r1)`` over disjoint row ranges covering ``range(rows)``.

    ``work`` estimates the total cost (see :data:`MIN_WORK_PER_THREAD`); small jobs run on the
    calling thread only. Band boundaries fall on multiples of ``align`` rows (an engine's tile
    height), so splitting adds no partial tiles. The calling thread computes the first band itself while pool threads
    compute the others, so a busy pool can delay but never deadlock a call. Exceptions raised
    by a worker propagate to the caller.
    """
    with one_blas_thread():
        _run_bands(worker, rows, threads, work, align)


def _run_bands(worker: BandWorker, rows: int, threads: int, work: float, align: int) -> None:
    bands = band_count(threads, rows, work, align)
    worker = _without_float_warnings(worker)
    if bands == 1:
        worker(0, rows)
        return
    edges = band_edges(rows, bands, align)
    abandoned = threading.Event()

    def band(r0: int, r1: int) -> None:
        outer = getattr(_local, "abandoned", None)
        _local.abandoned = abandoned
        try:
            worker(r0, r1)
        except _BandAbandonedError:
            pass
        finally:
            _local.abandoned = outer

    started: list[_Band] = []
    try:
        # Submitting inside the try: a Ctrl-C between two submissions abandons the bands
        # already started, too.
        for b in range(1, bands):
            started.append(_pool.submit(partial(band, edges[b], edges[b + 1])))
        worker(edges[0], edges[1])
        for other in started:
            other.result()
    except BaseException:
        # Ctrl-C or SIGTERM (raised in the calling thread only, while it computes its band or
        # waits for the others) or an error: the other bands stop at their next strip, instead of
        # finishing an image nobody will use while the caller waits for them.
        abandoned.set()
        for other in started:
            other.done.wait()
        raise


def _without_float_warnings(worker: BandWorker) -> BandWorker:
    """``worker`` with NumPy's floating-point warnings off, in whichever thread runs it.

    A float32 response beyond range becomes infinity, which the output mapping clips like any
    large value; NumPy's "overflow encountered" warning would only leak to the user. NumPy's
    error state belongs to a thread (a context), and pool threads do not inherit the caller's,
    so each band sets it itself.
    """

    def run(r0: int, r1: int) -> None:
        with np.errstate(all="ignore"):
            worker(r0, r1)

    return run


_local = threading.local()  # in a pool thread: the Event that says its band was abandoned


class _BandAbandonedError(Exception):
    """Raised in a pool thread by :func:`check_abandoned` to end a band nobody waits for."""


def check_abandoned() -> None:
    """End the band this pool thread computes if its caller gave up; engines call it between strips.

    A no-op in the calling thread, which a signal interrupts by itself.
    """
    abandoned = getattr(_local, "abandoned", None)
    if abandoned is not None and abandoned.is_set():
        raise _BandAbandonedError


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter: Any = None
_controller: ThreadpoolController | None = None


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Keep BLAS on the thread that calls it, for the duration.

    convcli's threads are its bands (``threads``); a BLAS call inside a band (the direct and
    separable engines' matrix products) must not start threads of its own on top of them, or two
    bands would run 2 x BLAS threads on two cores. BLAS libraries offer only a process-wide
    limit, so the first caller sets it (through threadpoolctl) and the last one out restores the
    limit it found: calls that overlap on several threads share one setting.
    """
    global _blas_users, _blas_limiter, _controller
    with _blas_lock:
        if _blas_users == 0:
            if _controller is None:  # lists the loaded BLAS libraries once; NumPy loaded its own on import
                _controller = ThreadpoolController()
            _blas_limiter = _controller.limit(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limiter is not None:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None
