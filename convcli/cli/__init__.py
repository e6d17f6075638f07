"""The ``convcli`` command line.

:func:`main` owns error handling: it runs the Typer app without Click's standalone mode and
turns every expected error into one line on stderr and an exit code (see
:class:`convcli.errors.ExitCode`); ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import Protocol, TextIO, cast

from convcli import __version__
from convcli.errors import ConvcliError, ExitCode

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
    except (OSError, ValueError):
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
