"""The registry :data:`FAMILIES`: every parametric family, with its parameters and its generator.

Each entry names a pure generator of :mod:`convcli.kernels.matrices` and declares the
parameters it takes (type, default, range), which :class:`~convcli.kernels.family.Family`
checks before calling it. Families that draw Gaussians on a square window share the
``radius`` and ``size`` parameters and the default window of three standard deviations
(:func:`_windowed`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from convcli.errors import KernelError
from convcli.kernels import matrices
from convcli.kernels.family import Built, Family, Param
from convcli.kernels.kernel import MAX_CHANNELS, MAX_KERNEL_SIDE, MAX_KERNEL_TAPS

Generator = Callable[..., NDArray[np.float64]]


def _odd(size: int, family: str) -> int:
    if size % 2 == 0:
        raise KernelError(f"{family}: parameter `size` must be odd, got {size}")
    return size


def _radius(sigma: float, radius: int | None, size: int | None, family: str) -> int:
    if radius is not None and size is not None:
        raise KernelError(f"{family}: give `radius` or `size`, not both")
    if size is not None:
        return _odd(size, family) // 2
    if radius is None:
        # Three standard deviations hold 99.7% of a Gaussian's mass; at least 3x3.
        radius = max(1, math.ceil(3 * sigma))
        if 2 * radius + 1 > MAX_KERNEL_SIDE:
            # Refused before any tap is drawn.
            raise KernelError(
                f"{family}: kernel would be {2 * radius + 1}x{2 * radius + 1} (radius ceil(3*sigma) = {radius}), "
                f"larger than the {MAX_KERNEL_SIDE}-pixel limit per side; give a smaller sigma or a `radius`"
            )
    return radius


def _sigma(default: float, name: str = "sigma") -> Param:
    return Param(name, float, default, 0.0, 64.0, "standard deviation in pixels", exclusive_minimum=True)


_RADIUS = Param("radius", int, None, 0, 127, "half-width: the kernel is 2*radius+1 wide")
_SIZE = Param("size", int, None, 1, MAX_KERNEL_SIDE, "odd width, an alternative to radius")
_SOBEL_SIZE = Param("size", int, 3, 3, 15, "odd width: 3, 5, 7 ... 15")


def _single(generator: Generator) -> Callable[..., Built]:
    """A builder for a family whose generator takes the parameters as they are and gives one matrix."""

    def build(**values: object) -> Built:
        return Built((generator(**values),))

    return build


def _windowed(
    name: str,
    description: str,
    generator: Generator,
    params: tuple[Param, ...],
    *,
    normalization: str,
    reference: str = "",
    check: Callable[..., None] | None = None,
) -> Family:
    """A family drawn on a ``(2*radius+1)``-wide window: ``params``, then ``radius`` and ``size``.

    The window is ``radius``, else ``size``, else three times the largest ``sigma*`` parameter.
    ``check`` vets the other parameters first; ``generator`` gets them with ``radius``.
    """
    sigmas = [p.name for p in params if p.name.startswith("sigma")]
    widest = sigmas[0] if len(sigmas) == 1 else f"max({', '.join(sigmas)})"

    def build(radius: int | None, size: int | None, **values: float) -> Built:
        if check is not None:
            check(**values)
        r = _radius(max(values[s] for s in sigmas), radius, size, name)
        return Built((generator(**values, radius=r),), derived={"radius": r, "size": 2 * r + 1})

    return Family(
        name, description, (*params, _RADIUS, _SIZE), build, reference=reference, normalization=normalization,
        defaults_doc={"radius": f"ceil(3*{widest})", "size": "2*radius+1"},
    )


def _distinct_sigmas(sigma1: float, sigma2: float) -> None:
    if sigma1 == sigma2:
        raise KernelError(f"dog: `sigma1` and `sigma2` must differ (both {sigma1:g}); the difference would be zero")


def _sobel(name: str, description: str, reference: str, axes: tuple[int, ...]) -> Family:
    """A Sobel family: the x (``axes`` 0) or y (1) kernel of :func:`sobel_pair`, or both by magnitude."""

    def build(size: int) -> Built:
        pair = matrices.sobel_pair(_odd(size, name))
        return Built(tuple(pair[axis] for axis in axes), combine="magnitude" if len(axes) == 2 else "single")

    return Family(name, description, (_SOBEL_SIZE,), build, reference=reference)


def _random(**params: int) -> Built:
    # `in` is a Python keyword, so the parameters arrive as a mapping.
    taps = params["out"] * params["in"] * params["size"] ** 2
    if taps > MAX_KERNEL_TAPS:
        # Checked before the weights are drawn: out=64,in=64,size=255 would be 2 GiB of float64.
        raise KernelError(
            f"random: out*in*size*size is {taps:,} taps, more than the limit of {MAX_KERNEL_TAPS:,}; "
            "use fewer channels or a smaller size"
        )
    weights, bias = matrices.random_weights(params["out"], params["in"], params["size"], params["seed"])
    return Built(weights=weights, bias=bias, bias_units="unit")


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        _windowed(
            "gaussian", "Gaussian blur, normalised to sum 1", matrices.gaussian_matrix, (_sigma(1.0),),
            reference="Gonzalez & Woods, Digital Image Processing, 3.5", normalization="divided by its sum (sum 1)",
        ),
        Family(
            "box", "Box (mean) blur: every tap 1/size^2",
            (Param("size", int, 3, 1, MAX_KERNEL_SIDE, "width and height in pixels"),),
            _single(matrices.box_matrix), normalization="every tap 1/size^2 (sum 1)",
        ),
        Family(
            "motion", "Motion blur: a line of `length` pixels at `angle` degrees, sum 1",
            (
                Param("length", int, 9, 1, MAX_KERNEL_SIDE, "length of the streak in pixels"),
                Param("angle", float, 0.0, -360.0, 360.0, "degrees counter-clockwise from horizontal"),
            ),
            _single(matrices.motion_matrix), normalization="divided by its sum (sum 1)",
        ),
        _windowed(
            "log", "Laplacian of Gaussian (Marr-Hildreth), zero-sum", matrices.log_matrix, (_sigma(1.4),),
            reference="Marr & Hildreth 1980, Theory of edge detection", normalization="mean subtracted (sum 0)",
        ),
        _windowed(
            "dog", "Difference of Gaussians G(sigma1) - G(sigma2), zero-sum band-pass", matrices.dog_matrix,
            (_sigma(1.0, "sigma1"), _sigma(1.6, "sigma2")), check=_distinct_sigmas,
            reference="Marr & Hildreth 1980 (sigma2/sigma1 = 1.6 approximates the LoG)",
            normalization="each Gaussian divided by its sum (sum 0)",
        ),
        _sobel(
            "sobel", "Sobel edge strength: gradient magnitude of sobel-x and sobel-y",
            "Sobel & Feldman 1968; OpenCV Sobel(ksize=size)", (0, 1),
        ),
        _sobel(
            "sobel-x", "Sobel horizontal derivative (positive where brightness rises to the right)",
            "Sobel & Feldman 1968; OpenCV Sobel(dx=1, dy=0, ksize=size)", (0,),
        ),
        _sobel(
            "sobel-y", "Sobel vertical derivative (positive where brightness rises downwards)",
            "Sobel & Feldman 1968; OpenCV Sobel(dx=0, dy=1, ksize=size)", (1,),
        ),
        _windowed(
            "unsharp", "Unsharp mask: image + amount * (image - gaussian blur), sum 1", matrices.unsharp_matrix,
            (Param("amount", float, 1.0, 0.0, 100.0, "strength of the sharpening"), _sigma(1.0)),
            normalization="sum 1 by construction",
        ),
        Family(
            "emboss", "Emboss: relief lit from `direction` (a compass point), sum 1",
            (Param("direction", str, "se", 0, 0, "compass point the relief faces", choices=matrices.COMPASS),),
            _single(matrices.emboss_matrix), normalization="sum 1 by construction",
        ),
        Family(
            "random", "Random channel-mixing kernel drawn like PyTorch's nn.Conv2d initialisation (seeded)",
            (
                Param("out", int, 3, 1, MAX_CHANNELS, "output channels"),
                Param("in", int, 3, 1, MAX_CHANNELS, "input channels (3 for RGB, 1 for gray)"),
                Param("size", int, 3, 1, MAX_KERNEL_SIDE, "kernel height and width"),
                Param("seed", int, 0, 0, 2**63 - 1, "seed of numpy.random.default_rng"),
            ),
            _random,
            reference="PyTorch nn.Conv2d.reset_parameters",
            notes="NumPy's generator cannot reproduce torch's random stream; the distribution is the same.",
            normalization="none (uniform in +-1/sqrt(in*size*size))",
        ),
    )
}
