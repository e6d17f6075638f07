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
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

import typer

from convcli.errors import ParameterError
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
    ),
]


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
        metavar=spec.metavar,
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
    parsed and checked as one ``job``.
    """
    own = inspect.signature(command, eval_str=True)
    if "job" not in own.parameters:
        raise TypeError(f"{command.__name__} needs a `job: JobOptions` parameter")
    parameters = [p for name, p in own.parameters.items() if name != "job"]
    parameters += [option.parameter for option in JOB_OPTIONS]
    names = {option.name for option in JOB_OPTIONS}

    @functools.wraps(command)
    def run(**values: Any) -> Any:
        job = job_options({name: values.pop(name) for name in names})
        return command(job=job, **values)

    # inspect.signature (and so Typer) reads a function's __signature__; typeshed does not declare it.
    run.__signature__ = own.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    return cast(_Command, run)


def load_kernels(specs: list[str]) -> list[Kernel]:
    """Load every ``--kernel`` before any file is touched, so a typo fails fast."""
    from convcli.kernels import load_kernel

    return [load_kernel(spec) for spec in specs]
