"""Connecting to a Dask scheduler, or starting a local cluster for one run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from importlib import import_module
from typing import TYPE_CHECKING, Any

from convcli.errors import ConvcliError, ExitCode

if TYPE_CHECKING:
    import distributed

DASK_INSTALL = "pip install 'convcli[dask]'"


class MissingDaskError(ConvcliError):
    """Dask, distributed or zarr is not installed, and the path taken needs it."""


class SchedulerError(ConvcliError):
    """The scheduler address is malformed or nothing answers there."""

    exit_code = ExitCode.USAGE


def connect(address: str, *, timeout: float = 5.0) -> contextlib.AbstractContextManager[distributed.Client]:
    """A client of the scheduler at ``address`` (``tcp://HOST:PORT``), or of a ``LocalCluster`` with
    worker processes started for the run when ``address`` is ``local``; closed on leaving.

    Raises
    ------
    SchedulerError
        Nothing answers at ``address`` within ``timeout`` seconds, or it is no scheduler address.
    MissingDaskError
        distributed is not installed.
    """
    return _connect(address, timeout)


@contextlib.contextmanager
def _connect(address: str, timeout: float) -> Iterator[distributed.Client]:
    try:
        distributed: Any = import_module("distributed")  # its type hints describe it only in part
    except ImportError as exc:
        raise MissingDaskError(f"--scheduler needs Dask ({exc.name} is missing): {DASK_INSTALL}") from None
    text = address.strip()
    with contextlib.ExitStack() as stack:
        if text == "local":
            # The scheduler's web server on a free port: the default 8787 may be taken by another cluster.
            cluster = stack.enter_context(distributed.LocalCluster(processes=True, dashboard_address=":0"))
            client = stack.enter_context(distributed.Client(cluster, timeout=timeout))
        else:
            if "://" not in text:
                raise SchedulerError(f"--scheduler: expected tcp://HOST:PORT or local, got {address!r}")
            try:
                client = stack.enter_context(distributed.Client(text, timeout=timeout))
            except (OSError, TimeoutError, ValueError) as exc:
                cause = " ".join(str(exc).split()) or type(exc).__name__  # one line, whatever distributed says
                raise SchedulerError(f"no Dask scheduler answers at {address} within {timeout:g} s ({cause})") from None
        yield client
