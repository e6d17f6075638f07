"""What a convolution engine is: a planner that costs a kernel and geometry, and the plan it returns.

An engine is registered (:mod:`convcli.core.engines`) as an :class:`Engine` record. Its planner
looks at one kernel and :class:`~convcli.core.geometry.Geometry` and returns an
:class:`EnginePlan`: the modelled :attr:`~EnginePlan.cost` that ``method="auto"`` compares, and
a :meth:`~EnginePlan.run` that computes the cross-correlation. Whatever the planner worked out
while costing (tap groups, SVD terms, FFT tile sizes) stays in the plan, so running it never
recomputes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from convcli.core.geometry import Geometry

Float32Array = NDArray[np.float32]


class EnginePlan(Protocol):
    """One engine's plan for one kernel and geometry."""

    @property
    def cost(self) -> float:
        """Modelled passes over one float32 sample per output sample (lower is faster).

        ``inf`` when the engine does not suit the kernel; :meth:`run` still computes the exact
        result then, for a caller that forces this engine.
        """
        ...

    def run(self, padded: Float32Array, geometry: Geometry, *, threads: int = 1) -> Float32Array:
        """Cross-correlate an already padded image with the planned kernel.

        ``geometry`` is the planned geometry, or the same with fewer output rows: one band of
        the image, as :func:`~convcli.core.bands.filter_banded` runs it. A band is the planned
        convolution over fewer rows, so everything worked out from the kernel holds for it; an
        engine whose plan depends on the row count (the FFT's tile sizes) plans that part again.

        Parameters
        ----------
        padded
            Padded float32 image ``(Hp, Wp)`` or ``(Hp, Wp, C)``.
        geometry
            Stride, dilation and output shape, from :func:`~convcli.core.geometry.resolve_geometry`.
        threads
            Upper bound on worker threads; small images use one.

        Returns
        -------
        float32 array of shape ``geometry.out_shape + padded.shape[2:]``.
        """
        ...


Planner = Callable[[Float32Array, Geometry, int], EnginePlan]


@dataclass(frozen=True)
class Engine:
    """A registered engine: ``plan(kernel, geometry, channels)`` and a one-line summary.

    ``kernel`` is 2-D float32 (already flipped if convolution was asked for) and ``channels``
    the number of colour channels filtered alike, which some costs depend on.
    """

    name: str
    plan: Planner
    summary: str


def channel_count(shape: tuple[int, ...]) -> int:
    """Samples per pixel of an ``(H, W, ...)`` array: the product of the trailing axes.

    >>> channel_count((4, 5)), channel_count((4, 5, 3)), channel_count((4, 5, 0))
    (1, 3, 0)
    """
    return int(np.prod(shape[2:], dtype=np.int64))  # explicit: -1 would fail for C == 0


def as_hwc(array: Float32Array) -> Float32Array:
    """View an (H, W, ...) array as contiguous (H, W, C) with all trailing axes folded into C."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    return array.reshape(array.shape[0], array.shape[1], channel_count(array.shape))
