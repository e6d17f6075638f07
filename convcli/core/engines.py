"""The engine registry and the cost model that picks an engine for ``method="auto"``.

Every engine is an :class:`~convcli.core.engine.Engine` record whose planner returns an
:class:`~convcli.core.engine.EnginePlan` with a modelled cost and a ``run`` that computes the
cross-correlation of an already padded float32 image. All engines agree within float32 rounding:

``direct``
    shift-and-add of every non-zero tap (:mod:`convcli.core.direct`); best for small kernels.
``separable``
    a sum of vertical and horizontal 1-D passes, one per singular value of the kernel
    (:mod:`convcli.core.separable`); best for low-rank kernels (Gaussian, box, Sobel, LoG).
``fft``
    overlap-save FFT over bounded tiles (:mod:`convcli.core.fft`); best for large kernels
    that are not low-rank, at stride 1.

The cost model counts, per output sample, the passes over a float32 array that each engine
makes (NumPy has no fused multiply-add, so a shift-and-add tap is one or two passes); BLAS
products and the FFT are expressed in the same unit by constants fitted to the timings of
``benchmarks/bench_core.py``.

Adding an engine takes a module that defines its planner and :class:`Engine` record, and one
entry in :data:`BUILTIN_ENGINES`; ``method`` then accepts its name everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
from numpy.typing import NDArray

from convcli.core.direct import DIRECT_ENGINE
from convcli.core.engine import Engine, EnginePlan
from convcli.core.fft import FFT_ENGINE
from convcli.core.geometry import Geometry
from convcli.core.separable import SEPARABLE_ENGINE
from convcli.errors import ParameterError

# The order is the tie-break order of the cost model and the order ``method`` lists them in.
BUILTIN_ENGINES: tuple[Engine, ...] = (DIRECT_ENGINE, SEPARABLE_ENGINE, FFT_ENGINE)

ENGINES: dict[str, Engine] = {}


def register_engine(engine: Engine) -> Engine:
    """Add ``engine`` to :data:`ENGINES`, after the engines already there; return it."""
    if engine.name == "auto" or engine.name in ENGINES:
        raise ParameterError(f"engine name {engine.name!r} is taken (by `auto` or a registered engine)")
    ENGINES[engine.name] = engine
    return engine


for _engine in BUILTIN_ENGINES:
    register_engine(_engine)


class MethodNames(Sequence[str]):
    """``("auto", *ENGINES)``, read from the registry on every use."""

    def _names(self) -> tuple[str, ...]:
        return ("auto", *ENGINES)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return self._names()[index]

    def __len__(self) -> int:
        return len(ENGINES) + 1

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __contains__(self, value: object) -> bool:
        return value == "auto" or value in ENGINES

    def __repr__(self) -> str:
        return repr(self._names())


METHODS: Sequence[str] = MethodNames()
"""Every valid ``method``: ``auto`` and the registered engines' names."""


def check_method(method: str) -> str:
    """Return ``method`` if it is ``auto`` or a registered engine; raise :class:`ParameterError`.

    >>> check_method("fft")
    'fft'
    """
    if method not in METHODS:
        raise ParameterError(f"`method` must be one of {', '.join(METHODS)}, got {method!r}")
    return method


def engine_plans(kernel: NDArray[np.floating], geometry: Geometry, channels: int = 1) -> dict[str, EnginePlan]:
    """Every registered engine's plan for this kernel and geometry, in registration order."""
    weights = np.asarray(kernel, dtype=np.float32)
    return {name: engine.plan(weights, geometry, channels) for name, engine in ENGINES.items()}


def _cheapest(plans: dict[str, EnginePlan]) -> str:
    """The name of the lowest-cost plan; the first registered wins a tie."""
    return min(plans, key=lambda name: plans[name].cost)


def engine_costs(kernel: NDArray[np.floating], geometry: Geometry, channels: int = 1) -> dict[str, float]:
    """Modelled cost of each engine in passes per output sample (lower is faster).

    ``separable`` is only offered for kernels whose rank is below their smaller side, where
    it can beat ``direct``; it is left out (infinite cost) otherwise.

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((100, 100), (3, 3), "same", 1, 1)
    >>> engine_costs(np.ones((3, 3)) / 9, g)["direct"]  # a box: 8 adds and one scaling
    9.0
    """
    return {name: plan.cost for name, plan in engine_plans(kernel, geometry, channels).items()}


def choose_method(kernel: NDArray[np.floating], geometry: Geometry, channels: int = 1) -> str:
    """Name of the engine ``method="auto"`` uses for this kernel and geometry.

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((1000, 1000), (3, 3), "same", 1, 1)
    >>> choose_method(np.arange(9.0).reshape(3, 3) ** 2, g)
    'direct'
    """
    return _cheapest(engine_plans(kernel, geometry, channels))


def plan_engine(
    kernel: NDArray[np.floating], geometry: Geometry, method: str = "auto", channels: int = 1
) -> EnginePlan:
    """The plan of the engine named ``method``; for ``"auto"``, of the cheapest engine.

    ``channels`` is the number of colour channels the plan will filter alike.

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((1, 4), (1, 2), "valid", 1, 1)
    >>> plan = plan_engine(np.array([[1, 10]]), g)
    >>> plan.run(np.array([[1, 2, 3, 4]], np.float32), g)
    array([[21., 32., 43.]], dtype=float32)
    """
    if check_method(method) != "auto":
        return ENGINES[method].plan(np.asarray(kernel, dtype=np.float32), geometry, channels)
    plans = engine_plans(kernel, geometry, channels)
    return plans[_cheapest(plans)]
