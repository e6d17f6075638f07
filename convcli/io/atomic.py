"""Writing a file so that it is never seen half-written: the one helper every output goes through.

Images, batch reports and exported kernels are written to a temporary file in the target's
folder, flushed to disk and renamed into place: a crash, a full disk or an interruption leaves
either the old file or the complete new one. Device nodes and FIFOs (``/dev/stdout``, a named
pipe) cannot be replaced by a rename and are written through instead.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from convcli.errors import OutputError

_TEMP_SUFFIX = ".tmp"


def temp_file_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """The names :func:`write_bytes_atomic` gives the temporary files of outputs called ``names``:
    ``.NAME.XXXXXXXX.tmp``, eight characters from :func:`tempfile.mkstemp`'s alphabet.

    >>> bool(temp_file_pattern(["a.png"]).fullmatch(".a.png.k2_9xq0z.tmp"))
    True
    """
    alternatives = "|".join(re.escape(name) for name in names)
    return re.compile(rf"\.(?:{alternatives})\.[a-z0-9_]{{8}}{re.escape(_TEMP_SUFFIX)}")


def _is_special(path: Path) -> bool:
    """A device node, FIFO or socket: something that exists but is neither a file nor a folder."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def write_bytes_atomic(data: bytes, destination: Path) -> None:
    """Write ``data`` to ``destination`` atomically: a temporary file beside it, renamed into place.

    The temporary file is removed on any failure or interruption. A device node or FIFO is
    written through instead of being replaced.

    Raises
    ------
    OutputError
        Naming the destination and the cause (missing folder, permission denied, disk full).
    """
    if _is_special(destination):
        _write_through(data, destination)
        return
    directory = destination.parent
    if destination.is_dir():
        raise OutputError(f"{destination}: is a directory")
    if not directory.is_dir():
        raise OutputError(f"{destination}: the folder {directory} does not exist")
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=_TEMP_SUFFIX, dir=directory)
    except PermissionError as exc:
        raise OutputError(f"{destination}: permission denied (cannot create files in {directory})") from exc
    except OSError as exc:
        raise OutputError(f"{destination}: cannot write: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, destination)
    except BaseException as exc:
        try:
            os.unlink(temp_name)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"{destination}: cannot write: {exc.strerror or exc}") from exc
        raise


def _write_through(data: bytes, path: Path) -> None:
    try:
        with path.open("wb") as handle:
            handle.write(data)
            handle.flush()
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
