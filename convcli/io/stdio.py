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

from convcli.errors import STDOUT_CLOSED, ImageError, LimitError, StdoutError
from convcli.io.formats import STDIO
from convcli.readfile import NotRegularFileError, open_regular


def describe(source: str | Path) -> str:
    """How a source is named in messages.

    >>> describe("-"), describe("a.png")
    ('<stdin>', 'a.png')
    """
    return "<stdin>" if str(source) == STDIO else str(source)


def open_source(source: str | Path, *, limit: int | None = None) -> BinaryIO:
    """Open a file for reading, or take all of standard input for ``-``.

    Only a regular file is opened: a FIFO, a device or a socket is refused before it is opened,
    so nothing blocks and nothing endless is read (standard input is ``-``). Standard input is
    read into memory, because decoders seek: at most ``limit`` bytes (None: no limit).

    Raises
    ------
    ImageError
        Naming the file and the cause: missing, a folder or other non-regular file, permission
        denied, empty stdin; :class:`~convcli.errors.LimitError` for stdin beyond ``limit``.
    """
    if str(source) == STDIO:
        return io.BytesIO(read_stdin(b"", limit))
    path = Path(source)
    try:
        return open_regular(path)
    except NotRegularFileError as exc:
        raise ImageError(not_an_image_file(path, exc.kind)) from exc
    except FileNotFoundError as exc:
        raise ImageError(f"{path}: no such file") from exc
    except PermissionError as exc:
        raise ImageError(f"{path}: permission denied") from exc
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise ImageError(f"{path}: cannot open: {getattr(exc, 'strerror', None) or exc}") from exc


def not_an_image_file(path: str | Path, kind: str) -> str:
    """The reason an input that is not a regular file (``kind``: "a FIFO (named pipe)"...) is refused.

    >>> not_an_image_file("p.png", "a socket")
    'p.png: is a socket, not an image file'
    """
    hint = "; to read a pipe, give - and redirect it to standard input" if kind.startswith("a FIFO") else ""
    return f"{path}: is {kind}, not an image file{hint}"


def read_upto(stream: BinaryIO, count: int) -> bytes:
    """Read ``count`` bytes, fewer only at the end of the stream (a pipe gives short reads)."""
    chunks: list[bytes] = []
    while count > 0:
        chunk = stream.read(count)
        if not chunk:
            break
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def read_stdin(head: bytes, limit: int | None) -> bytes:
    """``head`` (already read from standard input) and the rest of standard input, at most ``limit`` bytes.

    Raises
    ------
    ImageError
        No data at all; :class:`~convcli.errors.LimitError` when there is more than ``limit``.
    """
    stream = sys.stdin.buffer
    rest = read_upto(stream, limit + 1 - len(head)) if limit is not None else stream.read()
    data = head + rest
    if not data:
        raise ImageError("<stdin>: no data on standard input")
    if limit is not None and len(data) > limit:
        raise stdin_limit_error(limit)
    return data


def stdin_limit_error(limit: int) -> LimitError:
    """The error for standard input longer than ``limit`` bytes."""
    return LimitError(
        f"<stdin>: refused: standard input holds more than {limit:,} bytes, the most read for one image "
        "(8 bytes a pixel of --max-pixels, plus 16 MiB); stopped reading"
    )


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
