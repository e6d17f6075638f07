"""The ``convcli`` command line.

:func:`main` owns error handling: it runs the Typer app without Click's standalone mode and
turns every expected error into one line on stderr and an exit code (see
:class:`convcli.errors.ExitCode`); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import Any, Protocol, TextIO, cast

from convcli import __version__
from convcli.errors import STDOUT_CLOSED, ConvcliError, ExitCode, StdoutError
from convcli.options import NATIVE_MESSAGES_ENV

PROG = "convcli"


def error_line(message: str) -> None:
    """Print one error line on stderr."""
    message = " ".join(str(message).split())
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()


_quiet = False


def set_quiet(quiet: bool) -> bool:
    """Silence warning lines (``--quiet``); returns ``quiet`` so it can serve as an option callback."""
    global _quiet
    _quiet = bool(quiet)
    return quiet


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    if _quiet:
        return
    text = " ".join(str(message).split())
    sys.stderr.write(f"{PROG}: warning: {text}\n")


class _CommandLineError(Protocol):
    """What Click's exceptions (Typer's) offer: the message without the usage text."""

    def format_message(self) -> str: ...


def _command_line_error() -> type[Exception]:
    """The base class of the errors Typer raises for a bad command line (unknown option, bad value).

    Typer 0.28 and later vendor Click and export the base as ``typer.TyperException``; earlier
    releases depend on Click, whose public base is ``click.ClickException``. Both carry
    ``exit_code`` and ``format_message()``, and usage errors a ``ctx``.
    """
    import typer

    base = getattr(typer, "TyperException", None)
    if isinstance(base, type) and issubclass(base, Exception):
        return base
    from click import ClickException  # type: ignore[import-not-found, unused-ignore]  # typer < 0.26

    return cast("type[Exception]", ClickException)


def _silence_stdout() -> None:
    # After EPIPE, flushing stdout at exit would raise again; point it at /dev/null instead.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, StdoutError):
        pass


class _Terminated(SystemExit):
    """SIGTERM, raised as an exception so that ``finally`` blocks remove temporary files."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated(ExitCode.TERMINATED)


def _install_sigterm() -> None:
    try:
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals to the host program
        pass


class _GuardedStdout:
    """Standard output for the length of a command: a failed write raises :class:`StdoutError`.

    Click, Rich and convcli's own writers all write to ``sys.stdout`` (or its ``buffer``); an
    ``OSError`` from any of them (a full disk, an I/O error) becomes one error line naming
    standard output. A broken pipe stays a :class:`BrokenPipeError`, which ends quietly.
    Everything else is the wrapped stream's.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @property
    def buffer(self) -> _GuardedStdout:
        return _GuardedStdout(self._stream.buffer)

    def write(self, data: Any) -> Any:
        try:
            return self._stream.write(data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutError.from_os_error(exc) from exc

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StdoutError.from_os_error(exc) from exc


class _ClosedStdout:
    """Standard output when the command was started without one (``>&-``): writing raises.

    Python sets ``sys.stdout`` to None then, and Click and Rich silently write nothing to None,
    so a command would seem to succeed. Commands that write nothing to it are unaffected.
    """

    encoding = "utf-8"
    errors = "strict"

    @property
    def buffer(self) -> _ClosedStdout:
        return self

    def write(self, data: Any) -> int:
        raise StdoutError(STDOUT_CLOSED)

    def writelines(self, lines: Any) -> None:
        raise StdoutError(STDOUT_CLOSED)

    def fileno(self) -> int:
        raise StdoutError(STDOUT_CLOSED)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


def _occupy_stdout_descriptor() -> None:
    # With descriptor 1 closed, the next file opened would get it, and anything written to
    # "standard output" by a library would land in that file; /dev/null takes its place.
    try:
        os.fstat(1)
    except OSError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            if devnull != 1:
                os.dup2(devnull, 1)
                os.close(devnull)
        except OSError:
            pass


class _Main(Protocol):
    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def _guarding_stdout(run: _Main) -> _Main:
    """Run the command line with standard output guarded, and flushed before the exit code is returned.

    A full or closed standard output is then one error line and exit 1, however the command wrote
    to it (see :class:`_GuardedStdout`); a broken pipe stays quiet, status 141.
    """

    @functools.wraps(run)
    def guarded(argv: Sequence[str] | None = None) -> int:
        original = sys.stdout
        if original is None:
            _occupy_stdout_descriptor()
        sys.stdout = cast(TextIO, _ClosedStdout() if original is None else _GuardedStdout(original))
        # Native decoders' messages on descriptor 2 are folded into the one error line
        # (convcli.io.native), here and in the batch workers, unless the environment says otherwise.
        fold_native = NATIVE_MESSAGES_ENV not in os.environ
        if fold_native:
            os.environ[NATIVE_MESSAGES_ENV] = "1"
        debug = "--debug" in (sys.argv[1:] if argv is None else argv) or os.environ.get("CONVCLI_DEBUG") == "1"
        try:
            code = run(argv)
            try:
                sys.stdout.flush()
            except BrokenPipeError:
                _silence_stdout()
                return ExitCode.BROKEN_PIPE
            except StdoutError as exc:
                if debug:
                    raise
                _silence_stdout()
                if code == ExitCode.OK:  # a command that failed has said why already
                    error_line(str(exc))
                    return ExitCode.FAILURE
            return code
        except StdoutError as exc:
            if debug:
                raise
            _silence_stdout()
            error_line(str(exc))
            return ExitCode.FAILURE
        finally:
            sys.stdout = original
            if fold_native:
                os.environ.pop(NATIVE_MESSAGES_ENV, None)

    return guarded


@_guarding_stdout
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):  # answered before importing Typer, for fast scripts
        sys.stdout.write(f"{PROG} {__version__}\n")
        return ExitCode.OK
    debug = "--debug" in args or os.environ.get("CONVCLI_DEBUG") == "1"
    set_quiet(False)  # until a command's --quiet says otherwise
    warnings.showwarning = _show_warning
    if not debug:
        # Pillow logs some refusals (logger.error) just before raising; with no handler, logging's
        # last resort would print them as a second stderr line beside convcli's one error line.
        logging.getLogger("PIL").addHandler(logging.NullHandler())
    _install_sigterm()
    try:
        from typer.main import get_command

        from convcli.cli.app import app

        command_line_error = _command_line_error()
        command = get_command(app)
        try:
            result = command.main(args=args, prog_name=PROG, standalone_mode=False)
        except SystemExit as exc:
            # Typer turns a broken pipe into sys.exit(1) from inside its `except OSError`; the
            # BrokenPipeError is the exit's context. Report it as SIGPIPE would, and quietly.
            if isinstance(exc.__context__, BrokenPipeError) and not isinstance(exc, _Terminated):
                _silence_stdout()
                return ExitCode.BROKEN_PIPE
            raise
        except command_line_error as exc:
            if debug:
                raise
            ctx = getattr(exc, "ctx", None)
            status = int(getattr(exc, "exit_code", 1))
            hint = f" (see '{ctx.command_path} --help')" if status == ExitCode.USAGE and ctx is not None else ""
            error_line(f"{cast(_CommandLineError, exc).format_message()}{hint}")
            return status
        code = result if isinstance(result, int) else ExitCode.OK
        return int(code)
    except ConvcliError as exc:
        if debug:
            raise
        error_line(str(exc))
        return int(exc.exit_code)
    except KeyboardInterrupt:
        error_line("interrupted")
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return ExitCode.BROKEN_PIPE
    except _Terminated:
        error_line("terminated")
        return ExitCode.TERMINATED
    except MemoryError:
        if debug:
            raise
        error_line("out of memory; try a smaller image or kernel, or lower --max-memory")
        return ExitCode.FAILURE
    except RecursionError:
        if debug:
            raise
        error_line("input nested too deeply to process")
        return ExitCode.USAGE
