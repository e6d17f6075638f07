"""Messages that native libraries write straight to descriptor 2, folded into convcli's one line.

libtiff reports a decoding failure ("ZIPDecode: Decoding error at scanline 0, ...") by writing
to the C library's standard error before Pillow raises its own, vaguer error ("decoder error
-2"). Pillow offers no public way to install libtiff's error handler, so around a decode the
command line points descriptor 2 at a temporary file, puts it back afterwards (whatever
happens), and adds what was written there to the error it raises. Nothing is lost: when the
decode succeeds, or fails for another reason, the text is written to standard error as it came.

Redirecting a descriptor is process-wide, so it is done only where the command line asked for
it (the environment variable ``NATIVE_MESSAGES_ENV``, which batch worker processes inherit), one
decode at a time, and never by library code on its own.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, TypeVar

from convcli.io.modes import ImageWarning
from convcli.options import NATIVE_MESSAGES_ENV

# What of a library's message goes into the error line; the rest is cut.
MAX_FOLDED_CHARS = 300
_lock = threading.Lock()


class NativeDecoderError(Exception):
    """A decoder failed after writing its reason to standard error: that reason, then the error."""


def _flush_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass


def _redirect() -> tuple[int, IO[bytes]] | None:
    """Point descriptor 2 at a new temporary file; return the saved descriptor and the file."""
    _flush_stderr()
    try:
        capture = tempfile.TemporaryFile()  # a file, not a pipe: a chatty library cannot fill it and block
    except OSError:
        return None
    try:
        saved = os.dup(2)
    except OSError:
        capture.close()
        return None
    try:
        os.dup2(capture.fileno(), 2)
    except OSError:
        os.close(saved)
        capture.close()
        return None
    return saved, capture


def _restore(saved: int, capture: IO[bytes]) -> bytes:
    """Put descriptor 2 back and return what was written to it meanwhile."""
    _flush_stderr()
    try:
        os.dup2(saved, 2)
    finally:
        os.close(saved)
    try:
        capture.seek(0)
        return capture.read(64 * 1024)
    except OSError:
        return b""
    finally:
        capture.close()


def _replay(text: bytes) -> None:
    view = memoryview(text)
    try:
        while view:
            view = view[os.write(2, view) :]
    except OSError:
        pass


# Pillow hands libtiff this made-up file name when it decodes from a file object; libtiff puts it
# in front of some messages ("tempfile.tif: Using code not yet in table"), where it would mislead.
_PILLOW_TIFF_NAME = "tempfile.tif: "


def fold(text: bytes) -> str:
    """A library's message as one short clause.

    >>> fold(b"ZIPDecode: Decoding error at scanline 0, incorrect data check.\\n")
    'ZIPDecode: Decoding error at scanline 0, incorrect data check'
    >>> fold(b"tempfile.tif: Using code not yet in table.\\n")
    'Using code not yet in table'
    """
    lines = [" ".join(line.split()).rstrip(".") for line in text.decode("utf-8", "replace").splitlines()]
    lines = [line.removeprefix(_PILLOW_TIFF_NAME) for line in lines]
    folded = "; ".join(line for line in lines if line)
    return folded if len(folded) <= MAX_FOLDED_CHARS else folded[: MAX_FOLDED_CHARS - 3] + "..."


def _is_library_text(text: bytes) -> bool:
    """Whether captured text is a library's plain message, not convcli's own lines or a
    terminal's control sequences (a progress bar drawn by another thread meanwhile)."""
    return (
        b"\x1b" not in text
        and b"\r" not in text
        and not any(line.startswith(b"convcli:") for line in text.splitlines())
    )


@contextmanager
def native_messages(name: str | None = None, *, enabled: bool | None = None) -> Iterator[None]:
    """Catch what native code writes to descriptor 2 for the length of the block.

    If the block raises ``OSError``, ``ValueError`` or ``SyntaxError`` (a decoder's failure) after
    such text was written, :class:`NativeDecoderError` is raised instead, its message the text
    and then the original error. If the block succeeds, a library's message becomes an
    :class:`ImageWarning` naming ``name`` (a line like every other warning); anything else, or
    text without a ``name``, is written to standard error unchanged.
    ``enabled=None`` follows ``NATIVE_MESSAGES_ENV``; when disabled, or while another thread
    holds the capture, the block runs as it is.
    """
    if enabled is None:
        enabled = os.environ.get(NATIVE_MESSAGES_ENV) == "1"
    if not enabled or not _lock.acquire(blocking=False):
        yield
        return
    try:
        redirect = _redirect()
    except BaseException:
        _lock.release()
        raise
    if redirect is None:
        _lock.release()
        yield
        return
    failure: Exception | None = None
    try:
        yield
    except Exception as exc:
        failure = exc
    finally:
        try:
            text = _restore(*redirect)
        finally:
            _lock.release()
    folded = fold(text) if text.strip() and _is_library_text(text) else ""
    if failure is not None:
        if folded and isinstance(failure, (OSError, ValueError, SyntaxError)):
            cause = " ".join(str(failure).split()) or type(failure).__name__
            raise NativeDecoderError(f"{folded} ({cause})") from failure
        if text:
            _replay(text)
        raise failure
    if folded and name is not None:
        warnings.warn(f"{name}: {folded}", ImageWarning, stacklevel=3)
    elif text:
        _replay(text)


_Result = TypeVar("_Result")


def run_interruptibly(call: Callable[[], _Result], name: str) -> _Result:
    """``call()``, run on a helper thread so that Ctrl-C and SIGTERM reach the caller at once.

    Python runs signal handlers between calls into C, and some codecs (libavif, dav1d) take one
    call of seconds, or minutes for the largest images, to encode or decode a frame. They release
    the GIL, so the work runs on a daemon thread while this one waits, ready to take a signal;
    a stopped job abandons the work, whose thread ends with it or with the process. Exceptions
    raised by ``call`` are raised here.
    """
    outcome: list[_Result] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the waiting thread, which raises it
            failure.append(exc)

    worker = threading.Thread(target=work, name=name, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if failure:
        raise failure[0]
    return outcome[0]
