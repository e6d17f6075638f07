"""Parametric kernel families: kernels generated in code from a few numbers.

A family is named on the command line as ``NAME:key=value,...`` (``gaussian:sigma=2,radius=6``)
and in a kernel file as ``family = "gaussian"`` with a ``[params]`` table. Every parameter has a
type, a default and a valid range, checked before any kernel is built.

This module imports numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.errors import KernelError

# Largest kernel side convcli accepts, from a file or a family (documented in the README).
MAX_KERNEL_SIDE = 255


@dataclass(frozen=True)
class Param:
    """One parameter of a family: its type, default (None: derived from others), range, help."""

    name: str
    kind: type  # int or float
    default: float | int | None
    minimum: float
    maximum: float
    help: str
    exclusive_minimum: bool = False

    def check(self, family: str, value: Any) -> float | int:
        """Coerce ``value`` to the parameter's type and check its range."""
        where = f"{family}: parameter `{self.name}`"
        if isinstance(value, bool):
            raise KernelError(f"{where} must be a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value) if self.kind is float else _parse_int(value)
            except ValueError:
                kind = "a number" if self.kind is float else "an integer"
                raise KernelError(f"{where} must be {kind}, got {value!r}") from None
        if not isinstance(value, (int, float)):
            raise KernelError(f"{where} must be a number, got {value!r}")
        if self.kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise KernelError(f"{where} must be an integer, got {value!r}")
            value = int(value)
        else:
            value = float(value)
            if not math.isfinite(value):
                raise KernelError(f"{where} must be finite, got {value!r}")
        low_ok = value > self.minimum if self.exclusive_minimum else value >= self.minimum
        if not low_ok or value > self.maximum:
            low = "(" if self.exclusive_minimum else "["
            raise KernelError(f"{where} must be in {low}{self.minimum:g}, {self.maximum:g}], got {value!r}")
        return value


def _parse_int(text: str) -> int:
    number = float(text)
    if not number.is_integer():
        raise ValueError(text)
    return int(number)


@dataclass(frozen=True)
class Built:
    """What a family builds: one or more matrices and how their responses are combined."""

    matrices: tuple[NDArray[np.float64], ...]
    combine: str = "single"


@dataclass(frozen=True)
class Family:
    """A kernel generator with named, checked parameters."""

    name: str
    description: str
    params: tuple[Param, ...]
    build_fn: Callable[..., Built]
    reference: str = ""
    notes: str = ""
    defaults_doc: Mapping[str, str] = field(default_factory=dict)

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
        """Build the kernel; returns it with the full parameter set that made it."""
        values = self.resolve(given)
        built = self.build_fn(**values)
        for matrix in built.matrices:
            if max(matrix.shape) > MAX_KERNEL_SIDE:
                raise KernelError(
                    f"{self.name}: kernel would be {matrix.shape[0]}x{matrix.shape[1]}, "
                    f"larger than the {MAX_KERNEL_SIDE}-pixel limit per side"
                )
        return built, values


def _radius(sigma: float, radius: int | None, size: int | None, family: str) -> int:
    if radius is not None and size is not None:
        raise KernelError(f"{family}: give `radius` or `size`, not both")
    if size is not None:
        if size % 2 == 0:
            raise KernelError(f"{family}: parameter `size` must be odd, got {size}")
        return size // 2
    if radius is not None:
        return radius
    return max(1, math.ceil(3 * sigma))


def _grid(radius: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if 2 * radius + 1 > MAX_KERNEL_SIDE:
        raise KernelError(
            f"kernel would be {2 * radius + 1}x{2 * radius + 1}, larger than the "
            f"{MAX_KERNEL_SIDE}-pixel limit per side"
        )
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    return x, y


def gaussian_matrix(sigma: float, radius: int) -> NDArray[np.float64]:
    """The normalised 2-D Gaussian ``exp(-(x² + y²) / (2 sigma²))`` on ``[-radius, radius]²``.

    >>> gaussian_matrix(1.0, 1).round(4)
    array([[0.0751, 0.1238, 0.0751],
           [0.1238, 0.2042, 0.1238],
           [0.0751, 0.1238, 0.0751]])
    """
    x, y = _grid(radius)
    g = np.exp(-(x**2 + y**2) / (2.0 * sigma**2))
    return g / g.sum()


def _gaussian(sigma: float, radius: int | None, size: int | None) -> Built:
    return Built((gaussian_matrix(sigma, _radius(sigma, radius, size, "gaussian")),))


def log_matrix(sigma: float, radius: int) -> NDArray[np.float64]:
    """Laplacian of Gaussian, shifted to sum to exactly zero (flat areas give 0).

    Negative at the centre, like the 3x3 ``laplacian`` kernel.

    >>> m = log_matrix(1.4, 4)
    >>> m.shape, bool(m[4, 4] < 0), bool(abs(m.sum()) < 1e-12)
    ((9, 9), True, True)
    """
    x, y = _grid(radius)
    r2 = (x**2 + y**2) / (2.0 * sigma**2)
    m = -(1.0 / (math.pi * sigma**4)) * (1.0 - r2) * np.exp(-r2)
    return m - m.mean()


def _log(sigma: float, radius: int | None, size: int | None) -> Built:
    return Built((log_matrix(sigma, _radius(sigma, radius, size, "log")),))


def _box(size: int) -> Built:
    return Built((np.full((size, size), 1.0 / (size * size)),))


_SIGMA = Param("sigma", float, 1.0, 0.0, 64.0, "standard deviation in pixels", exclusive_minimum=True)
_RADIUS = Param("radius", int, None, 0, 127, "half-width: the kernel is 2*radius+1 wide (default ceil(3*sigma))")
_SIZE = Param("size", int, None, 1, MAX_KERNEL_SIDE, "odd width, an alternative to radius")

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "gaussian",
            "Gaussian blur, normalised to sum 1",
            (_SIGMA, _RADIUS, _SIZE),
            _gaussian,
            reference="Gonzalez & Woods, Digital Image Processing, 3.5",
            defaults_doc={"radius": "ceil(3*sigma)"},
        ),
        Family(
            "log",
            "Laplacian of Gaussian (Marr-Hildreth), zero-sum",
            (Param("sigma", float, 1.4, 0.0, 64.0, "standard deviation in pixels", exclusive_minimum=True),
             _RADIUS, _SIZE),
            _log,
            reference="Marr & Hildreth 1980, Theory of edge detection",
            defaults_doc={"radius": "ceil(3*sigma)"},
        ),
        Family(
            "box",
            "Box (mean) blur: every tap 1/size²",
            (Param("size", int, 3, 1, MAX_KERNEL_SIDE, "width and height in pixels"),),
            _box,
        ),
    )
}
