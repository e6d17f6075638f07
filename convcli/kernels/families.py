"""The registry of parametric families: each family's parameters, and how it calls its generator.

The generators themselves are the pure functions of :mod:`convcli.kernels.matrices`.
"""

from __future__ import annotations

import math

import numpy as np

from convcli.errors import KernelError
from convcli.kernels.family import Built, Family, Param
from convcli.kernels.kernel import MAX_CHANNELS, MAX_KERNEL_SIDE
from convcli.kernels.matrices import (
    COMPASS,
    dog_matrix,
    emboss_matrix,
    gaussian_matrix,
    log_matrix,
    motion_matrix,
    random_weights,
    sobel_pair,
)

# -- shared helpers ----------------------------------------------------------------------------


def _radius(sigma: float, radius: int | None, size: int | None, family: str) -> int:
    if radius is not None and size is not None:
        raise KernelError(f"{family}: give `radius` or `size`, not both")
    if size is not None:
        if size % 2 == 0:
            raise KernelError(f"{family}: parameter `size` must be odd, got {size}")
        return size // 2
    if radius is not None:
        return radius
    # Three standard deviations hold 99.7% of a Gaussian's mass; at least 3x3.
    return max(1, math.ceil(3 * sigma))


def _radius_values(radius: int) -> dict[str, int]:
    return {"radius": radius, "size": 2 * radius + 1}


# -- smoothing ---------------------------------------------------------------------------------


def _gaussian(sigma: float, radius: int | None, size: int | None) -> Built:
    r = _radius(sigma, radius, size, "gaussian")
    return Built((gaussian_matrix(sigma, r),), derived=_radius_values(r))


def _box(size: int) -> Built:
    return Built((np.full((size, size), 1.0 / (size * size)),))


def _motion(length: int, angle: float) -> Built:
    return Built((motion_matrix(length, angle),))


# -- derivatives -------------------------------------------------------------------------------


def _log(sigma: float, radius: int | None, size: int | None) -> Built:
    r = _radius(sigma, radius, size, "log")
    return Built((log_matrix(sigma, r),), derived=_radius_values(r))


def _dog(sigma1: float, sigma2: float, radius: int | None, size: int | None) -> Built:
    if sigma1 == sigma2:
        raise KernelError(f"dog: `sigma1` and `sigma2` must differ (both {sigma1:g}); the difference would be zero")
    r = _radius(max(sigma1, sigma2), radius, size, "dog")
    return Built((dog_matrix(sigma1, sigma2, r),), derived=_radius_values(r))


def _sobel_size(size: int, family: str) -> int:
    if size % 2 == 0:
        raise KernelError(f"{family}: parameter `size` must be odd, got {size}")
    return size


def _sobel(size: int) -> Built:
    return Built(sobel_pair(_sobel_size(size, "sobel")), combine="magnitude")


def _sobel_x(size: int) -> Built:
    return Built((sobel_pair(_sobel_size(size, "sobel-x"))[0],))


def _sobel_y(size: int) -> Built:
    return Built((sobel_pair(_sobel_size(size, "sobel-y"))[1],))


# -- enhancement -------------------------------------------------------------------------------


def _unsharp(amount: float, sigma: float, radius: int | None, size: int | None) -> Built:
    r = _radius(sigma, radius, size, "unsharp")
    # original + amount * (original - blurred): sums to 1, so flat areas keep their brightness.
    matrix = -amount * gaussian_matrix(sigma, r)
    matrix[r, r] += 1.0 + amount
    return Built((matrix,), derived=_radius_values(r))


def _emboss(direction: str) -> Built:
    return Built((emboss_matrix(direction),))


# -- channel mixing ----------------------------------------------------------------------------


def _random(**params: int) -> Built:
    # `in` is a Python keyword, so the parameters arrive as a mapping.
    weights, bias = random_weights(params["out"], params["in"], params["size"], params["seed"])
    return Built(weights=weights, bias=bias, bias_units="unit")


# -- the families ------------------------------------------------------------------------------


def _sigma(default: float, name: str = "sigma") -> Param:
    return Param(name, float, default, 0.0, 64.0, "standard deviation in pixels", exclusive_minimum=True)


_RADIUS = Param("radius", int, None, 0, 127, "half-width: the kernel is 2*radius+1 wide")
_SIZE = Param("size", int, None, 1, MAX_KERNEL_SIDE, "odd width, an alternative to radius")
_SOBEL_SIZE = Param("size", int, 3, 3, 15, "odd width: 3, 5, 7 ... 15")
_RADIUS_DOC = {"radius": "ceil(3*sigma)", "size": "2*radius+1"}

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            "gaussian",
            "Gaussian blur, normalised to sum 1",
            (_sigma(1.0), _RADIUS, _SIZE),
            _gaussian,
            reference="Gonzalez & Woods, Digital Image Processing, 3.5",
            defaults_doc=_RADIUS_DOC,
            normalization="divided by its sum (sum 1)",
        ),
        Family(
            "box",
            "Box (mean) blur: every tap 1/size^2",
            (Param("size", int, 3, 1, MAX_KERNEL_SIDE, "width and height in pixels"),),
            _box,
            normalization="every tap 1/size^2 (sum 1)",
        ),
        Family(
            "motion",
            "Motion blur: a line of `length` pixels at `angle` degrees, sum 1",
            (
                Param("length", int, 9, 1, MAX_KERNEL_SIDE, "length of the streak in pixels"),
                Param("angle", float, 0.0, -360.0, 360.0, "degrees counter-clockwise from horizontal"),
            ),
            _motion,
            normalization="divided by its sum (sum 1)",
        ),
        Family(
            "log",
            "Laplacian of Gaussian (Marr-Hildreth), zero-sum",
            (_sigma(1.4), _RADIUS, _SIZE),
            _log,
            reference="Marr & Hildreth 1980, Theory of edge detection",
            defaults_doc=_RADIUS_DOC,
            normalization="mean subtracted (sum 0)",
        ),
        Family(
            "dog",
            "Difference of Gaussians G(sigma1) - G(sigma2), zero-sum band-pass",
            (_sigma(1.0, "sigma1"), _sigma(1.6, "sigma2"), _RADIUS, _SIZE),
            _dog,
            reference="Marr & Hildreth 1980 (sigma2/sigma1 = 1.6 approximates the LoG)",
            defaults_doc={"radius": "ceil(3*max(sigma1, sigma2))", "size": "2*radius+1"},
            normalization="each Gaussian divided by its sum (sum 0)",
        ),
        Family(
            "sobel",
            "Sobel edge strength: gradient magnitude of sobel-x and sobel-y",
            (_SOBEL_SIZE,),
            _sobel,
            reference="Sobel & Feldman 1968; OpenCV Sobel(ksize=size)",
        ),
        Family(
            "sobel-x",
            "Sobel horizontal derivative (positive where brightness rises to the right)",
            (_SOBEL_SIZE,),
            _sobel_x,
            reference="Sobel & Feldman 1968; OpenCV Sobel(dx=1, dy=0, ksize=size)",
        ),
        Family(
            "sobel-y",
            "Sobel vertical derivative (positive where brightness rises downwards)",
            (_SOBEL_SIZE,),
            _sobel_y,
            reference="Sobel & Feldman 1968; OpenCV Sobel(dx=0, dy=1, ksize=size)",
        ),
        Family(
            "unsharp",
            "Unsharp mask: image + amount * (image - gaussian blur), sum 1",
            (Param("amount", float, 1.0, 0.0, 100.0, "strength of the sharpening"), _sigma(1.0), _RADIUS, _SIZE),
            _unsharp,
            defaults_doc=_RADIUS_DOC,
            normalization="sum 1 by construction",
        ),
        Family(
            "emboss",
            "Emboss: relief lit from `direction` (a compass point), sum 1",
            (Param("direction", str, "se", 0, 0, "compass point the relief faces", choices=COMPASS),),
            _emboss,
            normalization="sum 1 by construction",
        ),
        Family(
            "random",
            "Random channel-mixing kernel drawn like PyTorch's nn.Conv2d initialisation (seeded)",
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
