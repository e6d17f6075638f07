"""Opening files that must be regular files, without ever blocking, and reading them with a bound.

A FIFO blocks ``open()`` until a writer comes, and a device such as ``/dev/zero`` reports a size
of 0 and never ends. Kernel files and input images are regular files: anything else is refused
from ``stat`` before it is opened, and opened with ``O_NONBLOCK`` so that a path swapped for a
FIFO in between cannot block either (``fstat`` checks the file actually opened). This module
imports the standard library only; each caller turns the errors into its own messages.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFileError(OSError):
    """The path exists but is not a regular file (``kind`` says what it is)."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(f"{path}: is {kind}, not a regular file")
        self.kind = kind


def file_kind(mode: int) -> str | None:
    """What a ``st_mode`` describes when it is not a regular file, else None.

    >>> file_kind(stat.S_IFIFO), file_kind(stat.S_IFREG)
    ('a FIFO (named pipe)', None)
    """
    if stat.S_ISREG(mode):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for reading (links followed) without blocking on special files.

    Raises
    ------
    NotRegularFileError
        The path is a directory, FIFO, device or socket.
    OSError
        As ``open`` does (``FileNotFoundError``, ``PermissionError``, ...).
    """
    kind = file_kind(os.stat(path).st_mode)
    if kind is not None:
        raise NotRegularFileError(path, kind)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        kind = file_kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise NotRegularFileError(path, kind)
        # Reads from a regular file never block; clear the flag all the same.
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(handle: BinaryIO, limit: int) -> bytes:
    """Read to the end, or ``limit + 1`` bytes when there are more: the caller tells which.

    >>> import io
    >>> len(read_bounded(io.BytesIO(b"x" * 10), 4))
    5
    """
    chunks: list[bytes] = []
    remaining = limit + 1
    while remaining > 0:
        chunk = handle.read(min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)
