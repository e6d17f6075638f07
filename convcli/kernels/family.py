"""Parametric families: a kernel generator with named, typed, range-checked parameters.

A family is named on the command line as ``NAME:key=value,...`` (``gaussian:sigma=2,radius=6``)
and in a kernel file as ``family = "gaussian"`` with a ``[params]`` table. Every parameter has a
type, a default and a valid range, checked before any kernel is built. The families themselves
are registered in :mod:`convcli.kernels.families`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.errors import KernelError
from convcli.kernels.kernel import DEFAULT_BIAS_UNITS, MAX_KERNEL_SIDE


@dataclass(frozen=True)
class Param:
    """One parameter of a family: its type, default (None: derived from others), range, help.

    ``kind`` is ``int``, ``float`` or ``str``; a ``str`` parameter takes one of ``choices``.
    """

    name: str
    kind: type
    default: float | int | str | None
    minimum: float
    maximum: float
    help: str
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()

    def check(self, family: str, value: Any) -> float | int | str:
        """Coerce ``value`` to the parameter's type and check its range.

        >>> Param("size", int, 3, 1, 9, "width").check("box", "5")
        5
        """
        where = f"{family}: parameter `{self.name}`"
        if self.kind is str:
            text = str(value).strip().lower() if isinstance(value, str) else None
            if text not in self.choices:
                raise KernelError(f"{where} must be one of {', '.join(self.choices)}, got {value!r}")
            return text
        if isinstance(value, bool):
            raise KernelError(f"{where} must be a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value) if self.kind is float else _parse_int(value)
            except ValueError:
                kind = "a number" if self.kind is float else "an integer"
                raise KernelError(f"{where} must be {kind}, got {_shown(value)}") from None
        if not isinstance(value, (int, float)):
            raise KernelError(f"{where} must be a number, got {_shown(value)}")
        number: int | float
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise KernelError(f"{where} must be an integer, got {value!r}")
            number = int(value)
        else:
            try:
                number = float(value)
            except OverflowError:  # an integer of hundreds of digits
                number = math.inf
            if not math.isfinite(number):
                raise KernelError(f"{where} must be finite, got {_shown(value)}")
        low_ok = number > self.minimum if self.exclusive_minimum else number >= self.minimum
        if not low_ok or number > self.maximum:
            low = "(" if self.exclusive_minimum else "["
            high = f"{self.maximum:g}" if self.kind is float or self.maximum < 1e15 else str(int(self.maximum))
            raise KernelError(f"{where} must be in {low}{self.minimum:g}, {high}], got {_shown(number)}")
        return number

    def describe_default(self, derived: Mapping[str, str]) -> str:
        """The default as documentation shows it: a value, a formula, or ``-``."""
        if self.name in derived:
            return derived[self.name]
        return "-" if self.default is None else str(self.default)


def _parse_int(text: str) -> int:
    """An integer written out (exactly, however large: seeds need all 64 bits), or as a float
    with no fraction (``5.0``, ``1e3``) below 2**53, where floats are still exact."""
    text = text.strip()
    if re.fullmatch(r"[+-]?\d{1,40}", text):
        return int(text)
    number = float(text)
    if not number.is_integer() or abs(number) >= 2**53:
        raise ValueError(text)
    return int(number)


def _shown(value: Any) -> str:
    """``repr(value)``, shortened: an integer of hundreds of digits, or a long string."""
    if isinstance(value, int) and abs(value).bit_length() > 128:
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class Built:
    """What a family builds.

    Either ``matrices`` (one 2-D kernel, or several combined by ``combine``), or ``weights`` of
    shape ``(out, in, kh, kw)`` with ``bias`` ``(out,)`` for a kernel that mixes channels.
    ``derived`` holds parameter values the family worked out (the radius used), so callers can
    show what was actually built.
    """

    matrices: tuple[NDArray[np.float64], ...] = ()
    combine: str = "single"
    weights: NDArray[np.float64] | None = None
    bias: NDArray[np.float64] | None = None
    bias_units: str = DEFAULT_BIAS_UNITS
    derived: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Family:
    """A kernel generator with named, checked parameters.

    ``normalization`` says how the generated taps are scaled (shown by ``kernels show``);
    ``defaults_doc`` documents derived defaults such as ``radius: ceil(3*sigma)``.
    """

    name: str
    description: str
    params: tuple[Param, ...]
    build_fn: Callable[..., Built]
    reference: str = ""
    notes: str = ""
    defaults_doc: Mapping[str, str] = field(default_factory=dict)
    normalization: str = "none"

    def resolve(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``given`` against the parameter list and fill in the defaults."""
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            names = ", ".join(known) or "none"
            raise KernelError(f"{self.name}: unknown parameter `{unknown[0]}` (parameters: {names})")
        values: dict[str, Any] = {}
        for param in self.params:
            if param.name in given:
                values[param.name] = param.check(self.name, given[param.name])
            else:
                values[param.name] = param.default
        return values

    def build(self, given: Mapping[str, Any]) -> tuple[Built, dict[str, Any]]:
        """Build the kernel; returns it with the full parameter set that made it.

        Derived parameters (a radius worked out from sigma) are filled in with the value used.

        >>> from convcli.kernels import FAMILIES
        >>> built, values = FAMILIES["gaussian"].build({"sigma": 2})
        >>> values["radius"], built.matrices[0].shape
        (6, (13, 13))
        """
        values = self.resolve(given)
        built = self.build_fn(**values)
        shapes = [m.shape for m in built.matrices]
        if built.weights is not None:
            shapes.append(built.weights.shape[2:])
        for shape in shapes:
            if max(shape) > MAX_KERNEL_SIDE:
                raise KernelError(
                    f"{self.name}: kernel would be {shape[0]}x{shape[1]}, "
                    f"larger than the {MAX_KERNEL_SIDE}-pixel limit per side"
                )
        values.update(built.derived)
        return built, values
