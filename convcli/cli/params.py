"""The command line's options, built from their one declaration in :mod:`convcli.options`.

``apply`` and ``batch`` take the same filtering, input, output and limit options. Each command
is decorated with :func:`with_job_options`, which adds those options to its signature (Typer
reads the signature) and hands the command one :class:`~convcli.options.JobOptions` instead.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
from collections.abc import Callable, Collection
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer
from typer.core import TyperCommand

from convcli.cli.completion import complete_kernel
from convcli.errors import ConvcliError, ParameterError
from convcli.options import OPTION_GROUPS, JobOptions, OptionSpec, option_flags, option_spec

if TYPE_CHECKING:
    from convcli.kernels import Kernel

KernelOpt = Annotated[
    list[str],
    typer.Option(
        "--kernel",
        "-k",
        help=(
            "Kernel name (sobel), name with parameters (gaussian:sigma=2) or a .toml file. "
            "Repeat to apply several in sequence (in float, rounded once at the end)."
        ),
        metavar="NAME|FILE",
        autocompletion=complete_kernel,
    ),
]

# Accepted by every command as well as before it (`convcli apply ... --debug`). The value is read by
# convcli.cli.main from the arguments, before parsing, so that errors in parsing show a traceback too.
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show a traceback on errors (or set CONVCLI_DEBUG=1).")]


class Command(TyperCommand):
    """A command whose usage line shows a required argument as ``INPUT``, not Typer's ``{INPUT}``."""

    def collect_usage_pieces(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]  # Click's Context
        pieces = super().collect_usage_pieces(ctx)
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in pieces]


def show_help_without_command(ctx: typer.Context) -> None:
    """In a group's callback: with no command, print the group's help and exit 0 (as git and cargo do)."""
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        text = ctx.get_help()  # Typer's rich help prints itself and returns ""
        if text:
            typer.echo(text)
        raise typer.Exit(0)


def _quiet_callback(value: bool) -> bool:
    from convcli.cli import set_quiet

    return set_quiet(value)


# The callback runs while options are parsed, so warnings from loading kernels are silenced too.
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing but errors.", callback=_quiet_callback)
]


@dataclasses.dataclass(frozen=True)
class _CliOption:
    name: str
    spec: OptionSpec
    flag: str  # the long flag, as error messages name it
    parameter: inspect.Parameter


def _choices(name: str, choices: tuple[str, ...]) -> type[Enum]:
    """An Enum of the allowed words, which Typer shows and checks as a choice."""
    return cast(type[Enum], Enum(name.title().replace("_", ""), {choice: choice for choice in choices}, type=str))


def _cli_option(item: dataclasses.Field[Any], panel: str) -> _CliOption:
    spec = option_spec(item)
    default = item.default if spec.cli_default is None else spec.cli_default
    kind: Any = spec.kind or type(item.default)
    if spec.choices:
        kind = _choices(item.name, spec.choices)
        default = kind(default)
    if default is None:
        kind = kind | None
    flags = option_flags(item)
    info = typer.Option(
        *flags,
        help=spec.help,
        # Typer would show an integer with limits as "<int range>"; N reads better beside [1<=x<=100].
        metavar=spec.metavar or ("N" if kind in (int, int | None) else None),
        envvar=spec.envvar,
        min=spec.minimum,
        max=spec.maximum,
        case_sensitive=not spec.choices,
        rich_help_panel=panel,
    )
    parameter = inspect.Parameter(item.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                  annotation=Annotated[kind, info])
    return _CliOption(item.name, spec, flags[0], parameter)


JOB_OPTIONS: tuple[_CliOption, ...] = tuple(
    _cli_option(item, panel) for _, group, panel in OPTION_GROUPS for item in dataclasses.fields(group)
)


def _parsed(option: _CliOption, value: Any) -> Any:
    if isinstance(value, Enum):
        value = value.value
    if option.spec.parse is None or value is None:
        return value
    try:
        return option.spec.parse(value)
    except ParameterError as exc:
        # Library validators name their parameter (`border` must be ...); the hint names the flag.
        message = str(exc)
        named = re.fullmatch(r"`[\w-]+` (must .*)", message, flags=re.DOTALL)
        raise typer.BadParameter(named.group(1) if named else message, param_hint=option.flag) from None


def job_options(values: dict[str, Any]) -> JobOptions:
    """The :class:`~convcli.options.JobOptions` of the command line's values, each parsed and checked.

    Raises
    ------
    typer.BadParameter
        Naming the flag and what is wrong with its value.
    """
    return JobOptions.from_values(**{option.name: _parsed(option, values[option.name]) for option in JOB_OPTIONS})


_Command = TypeVar("_Command", bound=Callable[..., Any])


def with_job_options(command: _Command) -> _Command:
    """Give a Typer command every option of :class:`~convcli.options.JobOptions`.

    The command declares a keyword-only ``job: JobOptions`` parameter; the command line shows the
    options in their groups (Filtering, Input, Output, Limits), and the command receives them
    parsed and checked as one ``job``. The command also accepts ``--debug``.
    """
    own = inspect.signature(command, eval_str=True)
    if "job" not in own.parameters:
        raise TypeError(f"{command.__name__} needs a `job: JobOptions` parameter")
    parameters = [p for name, p in own.parameters.items() if name != "job"]
    parameters.append(inspect.Parameter("debug", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=DebugOpt))
    parameters += [option.parameter for option in JOB_OPTIONS]
    names = {option.name for option in JOB_OPTIONS}

    @functools.wraps(command)
    def run(**values: Any) -> Any:
        values.pop("debug")  # read by convcli.cli.main before parsing
        job = job_options({name: values.pop(name) for name in names})
        return command(job=job, **values)

    # inspect.signature (and so Typer) reads a function's __signature__; typeshed does not declare it.
    run.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return cast(_Command, run)


# The formats whose encoders read each encoder option, as convcli.io.write passes them to Pillow.
_ENCODER_OPTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("quality", "--quality", ("JPEG", "WEBP", "AVIF")),
    ("compress_level", "--compress-level", ("PNG", "TIFF")),
)


def warn_ignored_encoder_options(job: JobOptions, formats: Collection[str | None]) -> None:
    """One warning line for an encoder option that none of the output ``formats`` reads.

    ``formats`` holds the output format of each file (None where it cannot be told yet: the
    writer then reports the error).
    """
    from convcli.cli import warning_line

    known = {fmt for fmt in formats if fmt}
    if not known:
        return
    for name, flag, readers in _ENCODER_OPTIONS:
        if getattr(job.output, name) is not None and not known & set(readers):
            warning_line(
                f"{flag} applies to {' and '.join(readers)} output only; ignored for {', '.join(sorted(known))}"
            )


def output_format(destination: str | Path, job: JobOptions) -> str | None:
    """The format an output will be written in, or None if it cannot be told (the writer says why)."""
    from convcli.io.formats import resolve_format

    try:
        return resolve_format(destination, job.output.format)
    except ConvcliError:
        return None


def load_kernels(specs: list[str]) -> list[Kernel]:
    """Load every ``--kernel`` before any file is touched, so a typo fails fast."""
    from convcli.kernels import load_kernel

    return [load_kernel(spec) for spec in specs]
