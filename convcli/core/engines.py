"""The engine registry and the cost model that picks an engine for ``method="auto"``.

Every engine takes an already padded float32 image and computes the cross-correlation described
by a :class:`~convcli.core.geometry.Geometry`:

``engine(padded, kernel, geometry, *, threads=1) -> float32 array``

of shape ``geometry.out_shape + padded.shape[2:]``. All engines agree within float32 rounding:

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
products and the FFT are expressed in the same unit from measured timings.
"""

from __future__ import annotations

from functools import partial
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from convcli.core.direct import correlate_direct, direct_strategy
from convcli.core.fft import correlate_fft, plan_tiles
from convcli.core.geometry import Geometry
from convcli.core.separable import correlate_separable, separable_passes, separable_terms


class Engine(Protocol):
    """The call signature every convolution engine implements."""

    def __call__(
        self, padded: NDArray[np.float32], kernel: NDArray[np.float32], geometry: Geometry, *, threads: int = 1
    ) -> NDArray[np.float32]: ...


ENGINES: dict[str, Engine] = {
    "direct": correlate_direct,
    "separable": correlate_separable,
    "fft": correlate_fft,
}


def engine_costs(kernel: NDArray[np.floating], geometry: Geometry, channels: int = 1) -> dict[str, float]:
    """Modelled cost of each engine in passes per output sample (lower is faster).

    ``separable`` is only offered for kernels whose rank is below their smaller side, where
    it can beat ``direct``; it is left out (infinite cost) otherwise.

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((100, 100), (3, 3), "same", 1, 1)
    >>> engine_costs(np.ones((3, 3)) / 9, g)["direct"]  # a box: 8 adds and one scaling
    9.0
    """
    weights = np.asarray(kernel, dtype=np.float32)
    costs: dict[str, float] = {"direct": direct_strategy(weights, geometry)[1]}
    terms = separable_terms(weights)
    if len(terms) < min(weights.shape):
        costs["separable"] = separable_passes(terms, geometry)
    else:
        costs["separable"] = float("inf")
    costs["fft"] = plan_tiles(geometry, channels).passes
    return costs


def choose_method(kernel: NDArray[np.floating], geometry: Geometry, channels: int = 1) -> str:
    """Name of the engine ``method="auto"`` uses for this kernel and geometry.

    >>> from convcli.core.geometry import resolve_geometry
    >>> g = resolve_geometry((1000, 1000), (3, 3), "same", 1, 1)
    >>> choose_method(np.arange(9.0).reshape(3, 3) ** 2, g)
    'direct'
    """
    costs = engine_costs(kernel, geometry, channels)
    return min(costs, key=costs.__getitem__)


def choose_engine(
    kernel: NDArray[np.float32], geometry: Geometry, method: str = "auto", channels: int = 1
) -> Engine:
    """The engine for ``method``; ``"auto"`` asks the cost model (:func:`choose_method`)."""
    name = choose_method(kernel, geometry, channels) if method == "auto" else method
    if name == "separable":
        # The SVD is cheap but not free; hand the terms over rather than decompose twice.
        return partial(correlate_separable, terms=separable_terms(kernel))
    return ENGINES[name]
