"""Connecting to a Dask cluster: a running dask.distributed scheduler, or a local one for the run.

dask and distributed are optional (``pip install 'convcli[dask]'``) and imported here only when a
command asks for a cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from convcli.errors import ConvcliError, ExitCode

if TYPE_CHECKING:
    import distributed

LOCAL = "local"
INSTALL_HINT = "pip install 'convcli[dask]'"
# A bare HOST:PORT, which distributed takes as tcp://HOST:PORT.
_HOST_PORT = re.compile(r"(?:tcp://)?(\[[^\]]+\]|[^:/\[\]]+):(\d{1,5})/?")


class ClusterError(ConvcliError):
    """The cluster cannot be used: no dask/distributed installed, a bad or unreachable address."""

    exit_code = ExitCode.USAGE


def _import_distributed() -> Any:
    try:
        import dask  # noqa: F401  # distributed needs it; named so that its absence is reported too
        import distributed
    except ImportError as exc:
        raise ClusterError(
            f"--scheduler needs dask and distributed ({exc.name or 'dask'} is not installed): {INSTALL_HINT}"
        ) from None
    return distributed


def _check_scheduler(address: str, timeout: float) -> None:
    """Fail at once when no Dask scheduler answers at a TCP address: nothing listens there (refused,
    unknown host), nothing answers within ``timeout``, or what answers is not a scheduler.

    distributed would retry a refused connection until its timeout, and wait without end for the
    greeting of a server that is not a scheduler (a dashboard's web port). A scheduler greets a
    new connection first, with a message whose first 8 bytes are its small length.
    """
    match = _HOST_PORT.fullmatch(address)
    if match is None:
        return  # another transport (tls://, ucx://): distributed connects and reports
    host, port = match.group(1).strip("[]"), int(match.group(2))
    deadline = time.monotonic() + timeout
    head = b""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            while len(head) < 8:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(8 - len(head))
                if not chunk:
                    break
                head += chunk
    except TimeoutError:
        raise ClusterError(f"{address}: no Dask scheduler answered within {timeout:g} s") from None
    except OSError as exc:
        cause = exc.strerror or str(exc) or type(exc).__name__
        raise ClusterError(f"{address}: cannot reach the Dask scheduler: {cause}") from None
    if len(head) < 8 or not 0 < struct.unpack("<Q", head)[0] < _GREETING_BYTES:
        raise ClusterError(f"{address}: what answers there is not a Dask scheduler")


# A scheduler's greeting is a few hundred bytes; anything claiming more is another protocol.
_GREETING_BYTES = 1 << 20


@contextlib.contextmanager
def _distributed_logs_quiet() -> Iterator[None]:
    """Keep distributed's own log lines (worker restarts, connections closed at shutdown, their
    tracebacks) off the terminal while convcli uses a cluster: convcli reports what matters itself.
    Every logger of distributed (its configuration gives several their own level) is set to
    CRITICAL, and restored afterwards."""
    names = ("distributed", "tornado", "bokeh")
    known = [name for name in logging.root.manager.loggerDict if name.split(".")[0] in names]
    loggers = [logging.getLogger(name) for name in {*names, *known}]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


@contextlib.contextmanager
def _without_malloc_trim() -> Iterator[None]:
    """While a local cluster starts, leave glibc's trimming of freed memory at its default.

    distributed's nannies give their workers MALLOC_TRIM_THRESHOLD_=65536, which returns every
    freed image buffer to the system and faults it in again for the next file: convcli's per-file
    work then runs markedly slower (``benchmarks/bench_cluster_batch.py``). The other variables
    (one BLAS/OpenMP thread) are kept. Dask's configuration is restored on leaving.
    """
    import dask

    key = "distributed.nanny.pre-spawn-environ"
    environ = {k: v for k, v in (dask.config.get(key, None) or {}).items() if k != "MALLOC_TRIM_THRESHOLD_"}
    with dask.config.set({key: environ}):
        yield


def _local_workers(workers: int | None) -> int:
    if workers is not None:
        return max(1, workers)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on every platform
        return max(1, os.cpu_count() or 1)


def dask_setup(worker: object) -> None:
    """Preload of a local cluster's workers (distributed calls it as each one starts): leave Ctrl-C
    and a closed terminal to the convcli process.

    A terminal sends SIGINT (and SIGHUP) to every process of the job, the workers included; convcli
    stops the run and closes the cluster itself, instead of each worker printing a traceback.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, signal.SIG_IGN)


@contextlib.contextmanager
def connect(address: str, *, timeout: float = 5.0, workers: int | None = None) -> Iterator[distributed.Client]:
    """A Dask client for the length of a ``with`` block.

    Parameters
    ----------
    address
        ``tcp://HOST:PORT`` (or ``HOST:PORT``) of a running dask.distributed scheduler, or
        ``local`` to start a ``LocalCluster`` on this machine for the run: worker processes of one
        thread each on 127.0.0.1, no dashboard, closed at the end of the block.
    timeout
        Seconds to wait for a running scheduler to answer.
    workers
        Worker processes of a ``local`` cluster; default: one per core. Ignored for an address.

    Raises
    ------
    ClusterError
        Exit status 2: dask or distributed is missing (naming ``pip install 'convcli[dask]'``), or
        the scheduler cannot be reached within ``timeout`` seconds (naming the address), or the
        address is none.

    >>> with connect("photos:gallery"):
    ...     pass
    Traceback (most recent call last):
    ...
    convcli.cluster.client.ClusterError: --scheduler 'photos:gallery' is not an address: give tcp://HOST:PORT, or local
    """
    address = address.strip()
    if address != LOCAL and _HOST_PORT.fullmatch(address) is None and "://" not in address:
        raise ClusterError(f"--scheduler {address!r} is not an address: give tcp://HOST:PORT, or local")
    dist = _import_distributed()
    with _distributed_logs_quiet(), contextlib.ExitStack() as stack:
        if address == LOCAL:
            try:
                with _without_malloc_trim():
                    cluster = dist.LocalCluster(
                        n_workers=_local_workers(workers),
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=None,
                        # The scheduler serves its health routes over HTTP even without a dashboard,
                        # on the dashboard's port 8787 unless told: any free port, not a warning
                        # when another cluster holds that one.
                        scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                        silence_logs=logging.CRITICAL,
                        preload=[__name__],  # dask_setup, above
                    )
            except Exception as exc:  # distributed's errors have no common base but Exception
                cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ClusterError(f"cannot start a local Dask cluster: {cause}") from None
            stack.callback(cluster.close)
            client = dist.Client(cluster, set_as_default=False)
        else:
            _check_scheduler(address, timeout)
            try:
                client = dist.Client(address, timeout=timeout, set_as_default=False)
            except ValueError as exc:  # an address distributed cannot parse
                raise ClusterError(f"--scheduler {address!r} is not an address: {exc}") from None
            except Exception as exc:  # distributed's errors have no common base but Exception
                cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ClusterError(f"{address}: cannot reach the Dask scheduler: {cause}") from None
        stack.callback(client.close)
        yield client
