"""Running an engine over disjoint bands of output rows on several threads.

NumPy releases the GIL inside its ufunc loops and FFTs, so threads that each fill their own band
of output rows run truly in parallel. Each band is further cut into cache-sized strips by the
engine itself; bands only decide which thread computes which rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from numbers import Integral

from convcli.errors import ParameterError

# Below this many float multiply-adds a second thread costs more (pool start-up, a second set of
# strip buffers, cache sharing) than it saves; measured on a 2-core EPYC with benchmarks/.
MIN_WORK_PER_THREAD = 4_000_000

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


def band_count(threads: int, rows: int, work: float) -> int:
    """How many bands to run: at most one per thread, per row and per MIN_WORK_PER_THREAD."""
    return max(1, min(threads, rows, int(work // MIN_WORK_PER_THREAD)))


def run_bands(worker: BandWorker, rows: int, threads: int, work: float) -> None:
    """Call ``worker(r0, r1)`` over disjoint row ranges covering ``range(rows)``.

    ``work`` estimates the total number of multiply-adds; small jobs run on the calling thread
    only. Exceptions raised by a worker propagate to the caller.
    """
    bands = band_count(threads, rows, work)
    if bands == 1:
        worker(0, rows)
        return
    edges = [rows * b // bands for b in range(bands + 1)]
    with ThreadPoolExecutor(max_workers=bands, thread_name_prefix="convcli") as pool:
        futures = [pool.submit(worker, edges[b], edges[b + 1]) for b in range(bands)]
        for future in futures:
            future.result()
