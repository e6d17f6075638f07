"""Running an engine over disjoint bands of output rows on several threads.

NumPy releases the GIL inside its ufunc loops and FFTs, so threads that each fill their own band
of output rows run truly in parallel. Each band is further cut into cache-sized strips by the
engine itself; bands only decide which thread computes which rows.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from numbers import Integral
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from convcli.errors import ParameterError

# Work is counted in the cost model's unit (passes over one float32 sample; one pass over a
# 1080p RGB image is about a millisecond). Below this much work per thread a second thread costs
# more (hand-over, a second set of strip buffers) than it saves. Every catalogue kernel on a
# 1080p RGB image is above it, down to the one-pass identity (about 6 M), so two threads split
# it; a 512x512 RGB Sobel (about 5 M) stays on one thread.
MIN_WORK_PER_THREAD = 3_000_000

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()

BandWorker = Callable[[int, int], None]


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


def _shared_pool() -> ThreadPoolExecutor:
    """The process-wide worker pool, created on first use (starting threads on every call would
    cost more than filtering a small image)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            # Room for threads > cpu_count (allowed, if unwise); threads start only when needed.
            _pool = ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 1) * 2), thread_name_prefix="convcli")
        return _pool


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
    pool = _shared_pool()
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

    futures: list[Future[None]] = []
    try:
        # Submitting inside the try: a Ctrl-C between two submissions abandons the bands
        # already started, too.
        futures.extend(pool.submit(band, edges[b], edges[b + 1]) for b in range(1, bands))
        worker(edges[0], edges[1])
        for future in futures:
            future.result()
    except BaseException:
        # Ctrl-C or SIGTERM (raised in the calling thread only, while it computes its band or
        # waits for the others) or an error: the other bands stop at their next strip, instead of
        # finishing an image nobody will use while the caller, and the process's exit (which
        # joins the pool's threads), wait for them.
        abandoned.set()
        wait(futures)
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
