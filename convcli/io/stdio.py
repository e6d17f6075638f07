"""Opening a source, which may be standard input, and writing all of a result to standard output."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path
from typing import BinaryIO

from convcli.errors import ImageError
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


def write_stdout(data: bytes) -> None:
    """Write all of ``data`` to standard output.

    ``BufferedWriter.write`` returns a short count instead of raising when the reader closes
    the pipe part-way, which would lose the rest silently; writing to the descriptor until
    every byte is out raises :class:`BrokenPipeError` instead.
    """
    stream = sys.stdout.buffer
    stream.flush()
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        fd = None
    view = memoryview(data)
    while view:
        written = os.write(fd, view) if fd is not None else stream.write(view)
        if not written:
            raise BrokenPipeError("standard output accepted no more data")
        view = view[written:]
    if fd is None:
        stream.flush()
