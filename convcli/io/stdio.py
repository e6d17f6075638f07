"""Opening a source, which may be standard input, and writing all of a result to standard output.

Every failure to write to standard output, other than a reader that went away, is a
:class:`StdoutError` naming standard output and the cause."""

from __future__ import annotations

import io
import os
import select
import sys
from pathlib import Path
from typing import BinaryIO

from convcli.errors import STDOUT_CLOSED, ImageError, StdoutError
from convcli.io.formats import STDIO


def describe(source: str | Path) -> str:
    """How a source is named in messages.

    >>> describe("-"), describe("a.png")
    ('<stdin>', 'a.png')
    """
    return "<stdin>" if str(source) == STDIO else str(source)


def open_source(source: str | Path) -> BinaryIO:
    """Open a file for reading, or take all of standard input for ``-``.

    Standard input is read whole into memory, because decoders seek.

    Raises
    ------
    ImageError
        Naming the file and the cause: missing, a folder, permission denied, empty stdin.
    """
    if str(source) == STDIO:
        data = sys.stdin.buffer.read()
        if not data:
            raise ImageError("<stdin>: no data on standard input")
        return io.BytesIO(data)
    path = Path(source)
    try:
        if path.is_dir():
            raise ImageError(f"{path}: is a directory, not an image")
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file") from exc
    except PermissionError as exc:
        raise ImageError(f"{path}: permission denied") from exc
    except OSError as exc:
        raise ImageError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    return handle


def check_stdout() -> None:
    """Refuse, before any work, to write to a standard output that is closed (``>&-``).

    A stream without a descriptor (captured by a test harness, say) is taken as open.

    Raises
    ------
    StdoutError
        When standard output is closed.
    """
    stream = sys.stdout
    if stream is None:  # Python found no descriptor 1 at start-up
        raise StdoutError(STDOUT_CLOSED)
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return
    try:
        os.fstat(fd)
    except OSError as exc:
        raise StdoutError.from_os_error(exc) from exc


def write_stdout(data: bytes) -> None:
    """Write all of ``data`` to standard output.

    ``BufferedWriter.write`` returns a short count instead of raising when the reader closes
    the pipe part-way, which would lose the rest silently; writing to the descriptor until
    every byte is out raises :class:`BrokenPipeError` instead.

    Raises
    ------
    BrokenPipeError
        When the reader went away, so that the command line can end quietly as SIGPIPE would.
    StdoutError
        When standard output is closed, full, or fails otherwise.
    """
    if sys.stdout is None:
        raise StdoutError(STDOUT_CLOSED)
    stream = sys.stdout.buffer
    try:
        stream.flush()
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            fd = None
        view = memoryview(data)
        while view:
            try:
                written = os.write(fd, view) if fd is not None else stream.write(view)
            except BlockingIOError:
                # A non-blocking descriptor (set so by the parent process) is full for now: wait
                # until the reader makes room rather than fail.
                if fd is None:
                    raise
                select.select([], [fd], [])
                continue
            if not written:
                raise BrokenPipeError("standard output accepted no more data")
            view = view[written:]
        if fd is None:
            stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise StdoutError.from_os_error(exc) from exc
