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
from typing import Any, Protocol, TextIO, cast

from convcli import __version__
from convcli.errors import ConvcliError, ExitCode, Terminated

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


# The signals that stop convcli, and the word the error line uses for each (Windows has no SIGHUP).
_SIGHUP: int | None = getattr(signal, "SIGHUP", None)
STOP_WORDS: dict[int, str] = {signal.SIGTERM: "terminated", **({_SIGHUP: "hung up (SIGHUP)"} if _SIGHUP else {})}
_stopping = False  # a stop signal (or Ctrl-C) has been received: its cleanup is under way


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP raise, so that ``finally`` blocks and a batch's cleanup run as for Ctrl-C."""
    global _stopping
    if _stopping:
        return  # a second signal must not interrupt the cleanup of the first (it is bounded)
    _stopping = True
    raise Terminated(signum)


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _stopping
    if _stopping:
        return
    _stopping = True
    raise KeyboardInterrupt


_HANDLERS = ((signal.SIGINT, _on_sigint), *((signum, _on_stop_signal) for signum in STOP_WORDS))


def _install_signal_handlers() -> dict[int, Any]:
    """Install the handlers where the signal has its default action; return what they replaced.

    A signal the caller ignores (``nohup`` ignores SIGHUP) or handles itself is left alone.
    """
    global _stopping
    _stopping = False
    replaced: dict[int, Any] = {}
    for signum, handler in _HANDLERS:
        try:
            current = signal.getsignal(signum)
            if current is signal.SIG_DFL or (signum == signal.SIGINT and current is signal.default_int_handler):
                signal.signal(signum, handler)
                replaced[signum] = current
        except ValueError:  # not the main thread: leave signals to the host program
            pass
    return replaced


def _restore_signal_handlers(replaced: dict[int, Any]) -> None:
    for signum, handler in replaced.items():
        signal.signal(signum, handler)


def _stop_line(signum: int) -> None:
    # After SIGHUP the terminal may be gone: a line that cannot be written is not an error.
    try:
        error_line(STOP_WORDS.get(signum, "terminated"))
    except OSError:
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
    replaced = _install_signal_handlers()
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
            if isinstance(exc.__context__, BrokenPipeError) and not isinstance(exc, Terminated):
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
    except Terminated as exc:
        _stop_line(exc.signum)
        return 128 + exc.signum
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
    finally:
        _restore_signal_handlers(replaced)
