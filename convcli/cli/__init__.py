"""The ``convcli`` command line.

:func:`main` owns error handling: it runs the Typer app without Click's standalone mode and
turns every expected error into one line on stderr and an exit code (see
:class:`convcli.errors.ExitCode`); ``--debug`` (before or after the command) shows the traceback
instead. Click's usage errors are reworded in the same style (:func:`usage_message`), every line
goes through :func:`convcli.text.printable`, and shell completion requests are answered by
:func:`_complete`, which never prints a traceback.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import signal
import sys
import warnings
from collections.abc import Sequence
from types import FrameType
from typing import Any, Protocol, TextIO, cast

from convcli import __version__
from convcli.errors import STDOUT_CLOSED, ConvcliError, ExitCode, StdoutError, Terminated
from convcli.options import NATIVE_MESSAGES_ENV
from convcli.text import printable

PROG = "convcli"
# The variable that asks for shell completion instead of a run (Typer's _PROG_COMPLETE).
COMPLETE_VAR = "_CONVCLI_COMPLETE"

def error_line(message: str) -> None:
    """Print one error line on stderr."""
    sys.stderr.write(f"{PROG}: error: {printable(str(message).strip())}\n")
    sys.stderr.flush()


def warning_line(message: str) -> None:
    """Print one warning line on stderr, unless ``--quiet``."""
    if _quiet:
        return
    sys.stderr.write(f"{PROG}: warning: {printable(str(message).strip())}\n")
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
    warning_line(str(message))


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


# Click's messages for a bad command line, rewritten in the words of convcli's own errors: lower
# case, no closing full stop, options as --long/-s, "must be ..., got VALUE". A message no rule
# matches (another Click release) is still printed, only without its full stop.
_OPTION_HINT = re.compile(r"'(-[^' ]+)'((?: / '-[^' ]+')*)")
_USAGE_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^Missing (argument|option|parameter) '([^']+)'\.?", r"missing \1 \2"),
        (r"^Missing (argument|option|parameter) ", r"missing \1 "),
        (r"^No such option: (\S+) \(Possible options: ([^)]*)\)", r"no such option \1; did you mean \2?"),
        (r"^No such option: (\S+)", r"no such option \1"),
        (r"^No such command '([^']*)'.*$", r"no such command '\1'"),
        (r"^Option (\S+) requires an argument\.?", r"option \1 needs a value"),
        (r"^Option (\S+) requires (\d+) arguments\.?", r"option \1 needs \2 values"),
        (r"^Option (\S+) does not take a value\.?", r"option \1 takes no value"),
        (r"^Got unexpected extra argument(?:s|\(s\))? \(([^ ]*)\)$", r"unexpected extra argument \1"),
        (r"^Got unexpected extra argument(?:s|\(s\))? \((.*)\)$", r"unexpected extra arguments \1"),
        (r"^Invalid value for ", "invalid value for "),
        (r"('[^']*') is not a valid (?:int|integer)(?: range)?\.?$", r"\1 is not a whole number"),
        (r"('[^']*') is not a valid float(?: range)?\.?$", r"\1 is not a number"),
        (r"(\S+) is not in the range (\S+)<=x<=(\S+?)\.?$", r"must be from \2 to \3, got \1"),
        (r"(\S+) is not in the range x>=(\S+?)\.?$", r"must be at least \2, got \1"),
        (r"(\S+) is not in the range x<=(\S+?)\.?$", r"must be at most \2, got \1"),
        (r"('[^']*') is not one of (.*?)\.?$", r"must be one of \2, got \1"),
    )
)


def _join_hint(match: re.Match[str]) -> str:
    return "/".join(re.findall(r"'(-[^' ]+)'", match.group()))


def _command_names(command: object) -> list[str]:
    """The subcommands of a group (Click's public ``Group.commands``), for suggestions."""
    return sorted(getattr(command, "commands", None) or {})


def usage_message(message: str, command: object = None) -> str:
    """A Click usage error's message in convcli's one-line style.

    ``command`` is the group an unknown command was looked up in, for a suggestion.

    >>> usage_message("Invalid value for '--output-mode' / '-m': 'x' is not one of 'clip', 'abs'.")
    "invalid value for --output-mode/-m: must be one of clip, abs, got 'x'"
    """
    text = " ".join(message.split())
    text = _OPTION_HINT.sub(_join_hint, text)
    for pattern, replacement in _USAGE_REWRITES:
        text = pattern.sub(replacement, text)
    choices = re.search(r"must be one of (.*), got '([^']*)'$", text)
    if choices:
        words = [word.strip("' ") for word in choices.group(1).split(",")]
        listed = f"must be one of {', '.join(words)}, got"
        text = re.sub(r"must be one of .*, got", lambda _: listed, text, count=1)
        close = difflib.get_close_matches(choices.group(2).lower(), words, n=3, cutoff=0.6)
        if close:
            text += f"; did you mean {', '.join(close)}?"
    unknown = re.match(r"no such command '([^']*)'$", text)
    if unknown and _command_names(command):
        names = _command_names(command)
        close = difflib.get_close_matches(unknown.group(1), names, n=3, cutoff=0.5)
        text += f"; did you mean {', '.join(close)}?" if close else f"; the commands are {', '.join(names)}"
    text = text.rstrip(".")
    return text[:1].lower() + text[1:] if text[:2].istitle() else text


def _command_path(root: object, args: Sequence[str], ctx: object) -> str:
    """The command a usage error is about: its context's, or the one the arguments name."""
    path = getattr(ctx, "command_path", None)
    if isinstance(path, str) and path:
        return path
    names, command = [PROG], root
    for arg in args:
        if arg == "--":
            break
        commands = getattr(command, "commands", None) or {}
        if arg in commands:
            names.append(arg)
            command = commands[arg]
        elif not arg.startswith("-"):
            break
    return " ".join(names)


def debug_requested(args: Sequence[str]) -> bool:
    """``--debug`` anywhere before ``--`` (before or after the command), or ``CONVCLI_DEBUG=1``."""
    before_end = args[: args.index("--")] if "--" in args else args
    return "--debug" in before_end or os.environ.get("CONVCLI_DEBUG") == "1"


def _silence_stdout() -> None:
    # After EPIPE, flushing stdout at exit would raise again; point it at /dev/null instead.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, StdoutError):
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
    completing = bool(os.environ.get(COMPLETE_VAR))
    if args in (["--version"], ["-V"]) and not completing:  # answered before importing Typer, for fast scripts
        sys.stdout.write(f"{PROG} {__version__}\n")
        return ExitCode.OK
    debug = debug_requested(args)
    set_quiet(False)  # until a command's --quiet says otherwise
    warnings.showwarning = _show_warning
    if not debug:
        # Pillow logs some refusals (logger.error) just before raising; with no handler, logging's
        # last resort would print them as a second stderr line beside convcli's one error line.
        logging.getLogger("PIL").addHandler(logging.NullHandler())
    if completing:
        return _complete(args, debug)
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
        except OSError as exc:
            # --install-completion writes the shell's start-up files (Typer's installer), which
            # may be read-only or missing; every other OSError is handled below.
            if debug or "--install-completion" not in args or isinstance(exc, BrokenPipeError):
                raise
            error_line(f"cannot install shell completion: {exc.filename or 'HOME'}: {exc.strerror or exc}")
            return ExitCode.FAILURE
        except command_line_error as exc:
            if debug:
                raise
            ctx = getattr(exc, "ctx", None)
            status = int(getattr(exc, "exit_code", 1))
            group = getattr(ctx, "command", None)
            message = usage_message(cast(_CommandLineError, exc).format_message(), group)
            hint = f" (see '{_command_path(command, args, ctx)} --help')" if status == ExitCode.USAGE else ""
            error_line(f"{message}{hint}")
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


def _complete(args: Sequence[str], debug: bool) -> int:
    """Answer the shell's completion request: candidates on stdout, never a traceback.

    Typer reads the request from the environment (``_CONVCLI_COMPLETE``, ``COMP_WORDS``...), prints
    the candidates and exits. Completion runs on every Tab press, so a failure prints nothing
    (the shell then offers file names) rather than a traceback over the user's command line.
    """
    try:
        from typer.main import get_command

        from convcli.cli.app import app

        get_command(app).main(args=list(args), prog_name=PROG, complete_var=COMPLETE_VAR, standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else ExitCode.FAILURE
    except Exception:
        if debug:
            raise
        return ExitCode.FAILURE
    return ExitCode.OK
