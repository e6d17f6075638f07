"""The exception tree shared by every convcli module, and the exit codes the CLI maps them to.

Library code raises these with the offending file or parameter and the cause; only the command
line turns them into a one-line message and an exit status.
"""

from __future__ import annotations

import errno
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit statuses of the ``convcli`` command (documented in the README)."""

    OK = 0
    FAILURE = 1  # a runtime failure: unreadable input, not an image, cannot write output
    USAGE = 2  # bad option value, unknown or malformed kernel
    HANGUP = 129  # SIGHUP (128 + SIGHUP): the terminal closed; temporary files are removed first
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    BROKEN_PIPE = 141  # the reader of standard output went away (128 + SIGPIPE), as `yes | head` reports
    TERMINATED = 143  # SIGTERM (128 + SIGTERM); temporary files are removed first


class Terminated(SystemExit):
    """A signal asked the process to stop (SIGTERM, SIGHUP); raised from its handler, so that the
    same cleanup runs as for Ctrl-C. The exit status is 128 + the signal number.

    A ``SystemExit``, not an ``Exception``: code that handles errors must not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


class ConvcliError(Exception):
    """Base class of every error convcli raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILURE


class ParameterError(ConvcliError, ValueError):
    """An argument or option value is out of range or malformed."""

    exit_code = ExitCode.USAGE


class KernelError(ConvcliError):
    """A kernel name is unknown or a kernel file is malformed."""

    exit_code = ExitCode.USAGE


class ImageError(ConvcliError):
    """An input image cannot be read or decoded."""

    exit_code = ExitCode.FAILURE


class LimitError(ImageError):
    """An image exceeds a safety limit: pixel count (``--max-pixels``) or working memory (``--max-memory``).

    Raised before the pixels are decoded or the memory is allocated.
    """

    exit_code = ExitCode.FAILURE


class OutputError(ConvcliError):
    """An output image cannot be encoded or written."""

    exit_code = ExitCode.FAILURE


class OutputExistsError(OutputError):
    """An output that must not replace anything found its name taken, possibly by a concurrent run."""


STDOUT_CLOSED = "standard output is closed"


class StdoutError(OutputError):
    """Standard output cannot take what is written to it: closed, full, or failing."""

    @classmethod
    def from_os_error(cls, exc: OSError) -> StdoutError:
        """The error for an :class:`OSError` raised by a write to standard output.

        >>> import errno
        >>> str(StdoutError.from_os_error(OSError(errno.ENOSPC, "No space left on device")))
        'standard output: No space left on device'
        """
        if exc.errno == errno.EBADF:
            return cls(STDOUT_CLOSED)
        return cls(f"standard output: {exc.strerror or exc}")
