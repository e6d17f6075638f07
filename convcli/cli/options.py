"""Parsing option values written on the command line (``1,2``, ``same``, ``2,2,1,1``)."""

from __future__ import annotations

import typer

from convcli.errors import ParameterError

PADDING_HELP = (
    "same (output as large as the input), valid (no padding), full, N (N pixels on every side), "
    "R,C (rows, columns) or T,B,L,R (top, bottom, left, right)."
)


def _ints(text: str, option: str) -> list[int]:
    parts = [part.strip() for part in text.split(",")]
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise typer.BadParameter(f"expected integers separated by commas, got {text!r}", param_hint=option) from None


def parse_padding(text: str) -> str | int | tuple[int, ...]:
    """``same``/``valid``/``full``, ``N``, ``R,C`` or ``T,B,L,R``."""
    word = text.strip().lower()
    if word in ("same", "valid", "full"):
        return word
    values = _ints(text, "--padding")
    if len(values) not in (1, 2, 4):
        raise typer.BadParameter(f"give 1, 2 or 4 numbers, got {len(values)} in {text!r}", param_hint="--padding")
    if min(values) < 0:
        raise typer.BadParameter(f"padding must not be negative, got {text!r}", param_hint="--padding")
    return values[0] if len(values) == 1 else tuple(values)


def parse_pair(text: str, option: str) -> int | tuple[int, int]:
    """``N`` or ``R,C``, each at least 1."""
    values = _ints(text, option)
    if len(values) not in (1, 2):
        raise typer.BadParameter(f"give N or R,C, got {text!r}", param_hint=option)
    if min(values) < 1:
        raise typer.BadParameter(f"must be at least 1, got {text!r}", param_hint=option)
    return values[0] if len(values) == 1 else (values[0], values[1])


def checked(function, value, option: str):  # type: ignore[no-untyped-def]
    """Run a library validator and report its :class:`ParameterError` against ``option``."""
    try:
        return function(value)
    except ParameterError as exc:
        message = str(exc).split(" must ", 1)
        text = f"must {message[1]}" if len(message) == 2 else str(exc)
        raise typer.BadParameter(text, param_hint=option) from None
