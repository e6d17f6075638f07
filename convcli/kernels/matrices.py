"""The kernel generators: pure functions from a few numbers to float64 taps, one per family.

They know nothing of parameter checking or kernel files: the registry in
:mod:`convcli.kernels.families` declares and checks each family's parameters and calls them.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from convcli.errors import KernelError
from convcli.kernels.kernel import MAX_KERNEL_SIDE


def _grid(radius: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if 2 * radius + 1 > MAX_KERNEL_SIDE:
        raise KernelError(
            f"kernel would be {2 * radius + 1}x{2 * radius + 1}, larger than the "
            f"{MAX_KERNEL_SIDE}-pixel limit per side"
        )
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    return x, y


# -- smoothing ---------------------------------------------------------------------------------


def gaussian_matrix(sigma: float, radius: int) -> NDArray[np.float64]:
    """The normalised 2-D Gaussian ``exp(-(x² + y²) / (2 sigma²))`` on ``[-radius, radius]²``.

    >>> gaussian_matrix(1.0, 1).round(4)
    array([[0.0751, 0.1238, 0.0751],
           [0.1238, 0.2042, 0.1238],
           [0.0751, 0.1238, 0.0751]])
    """
    x, y = _grid(radius)
    g = np.exp(-(x**2 + y**2) / (2.0 * sigma**2))
    normalised: NDArray[np.float64] = g / g.sum()
    return normalised


def box_matrix(size: int) -> NDArray[np.float64]:
    """The ``size`` x ``size`` mean: every tap ``1 / size²``.

    >>> box_matrix(2).tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    """
    return np.full((size, size), 1.0 / (size * size))


def motion_matrix(length: int, angle: float) -> NDArray[np.float64]:
    """A line ``length`` pixels long through the centre at ``angle`` degrees, summing to 1.

    ``angle`` is counter-clockwise from the positive x axis as the image is seen (rows grow
    downwards). The line's ``length`` sample points are one pixel apart and each is shared
    bilinearly among its four nearest taps, so any angle gives a smooth kernel.

    >>> motion_matrix(3, 0.0).round(4).tolist()
    [[0.0, 0.0, 0.0], [0.3333, 0.3333, 0.3333], [0.0, 0.0, 0.0]]
    """
    radius = max(1, math.ceil((length - 1) / 2))
    side = 2 * radius + 1
    out = np.zeros((side, side))
    theta = math.radians(angle)
    dx, dy = math.cos(theta), -math.sin(theta)
    for t in np.arange(length) - (length - 1) / 2.0:
        # round() removes sin/cos noise (cos 90° = 6e-17) that would smear a tap onto its neighbour.
        x, y = round(radius + t * dx, 9), round(radius + t * dy, 9)
        x0, y0 = math.floor(x), math.floor(y)
        fx, fy = x - x0, y - y0
        for row, col, weight in (
            (y0, x0, (1 - fx) * (1 - fy)),
            (y0, x0 + 1, fx * (1 - fy)),
            (y0 + 1, x0, (1 - fx) * fy),
            (y0 + 1, x0 + 1, fx * fy),
        ):
            if weight > 0:
                out[row, col] += weight
    normalised: NDArray[np.float64] = out / out.sum()
    return normalised


# -- derivatives -------------------------------------------------------------------------------


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
    zero_sum: NDArray[np.float64] = m - m.mean()
    return zero_sum


def dog_matrix(sigma1: float, sigma2: float, radius: int) -> NDArray[np.float64]:
    """Difference of Gaussians ``G(sigma1) - G(sigma2)``, each normalised, so the sum is zero.

    With ``sigma1 < sigma2`` the centre is positive (a band-pass "Mexican hat" that is the
    negated ``log`` in shape).

    >>> m = dog_matrix(1.0, 1.6, 4)
    >>> bool(m[4, 4] > 0), bool(abs(m.sum()) < 1e-12)
    (True, True)
    """
    return gaussian_matrix(sigma1, radius) - gaussian_matrix(sigma2, radius)


def sobel_pair(size: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Sobel x and y kernels of odd ``size``, built as OpenCV builds them.

    The smoothing row is the binomial row of ``size`` taps (``1 2 1``, ``1 4 6 4 1``); the
    derivative row is the binomial row of ``size - 2`` taps convolved with ``[-1, 0, 1]``.
    ``x = outer(smooth, derivative)``, ``y`` is its transpose.

    >>> sobel_pair(5)[0][2].tolist()
    [-6.0, -12.0, 0.0, 12.0, 6.0]
    """
    smooth = np.array([math.comb(size - 1, k) for k in range(size)], dtype=np.float64)
    inner = np.array([math.comb(size - 3, k) for k in range(size - 2)], dtype=np.float64)
    derivative = np.convolve(inner, [-1.0, 0.0, 1.0])
    x = np.outer(smooth, derivative)
    return x, np.ascontiguousarray(x.T)


# -- enhancement -------------------------------------------------------------------------------


def unsharp_matrix(amount: float, sigma: float, radius: int) -> NDArray[np.float64]:
    """Unsharp mask: the centre tap plus ``amount`` times (centre tap minus :func:`gaussian_matrix`).

    Filtering with it gives ``image + amount * (image - blurred)``.

    >>> m = unsharp_matrix(2.0, 1.0, 1)
    >>> round(float(m.sum()), 12), round(float(m[1, 1]), 4)
    (1.0, 2.5916)
    """
    # original + amount * (original - blurred): sums to 1, so flat areas keep their brightness.
    matrix = -amount * gaussian_matrix(sigma, radius)
    matrix[radius, radius] += 1.0 + amount
    return matrix


# Compass directions clockwise from north, and the 3x3 ring positions they point at.
COMPASS = ("n", "ne", "e", "se", "s", "sw", "w", "nw")
_RING = ((0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0))


def emboss_matrix(direction: str) -> NDArray[np.float64]:
    """3x3 emboss whose positive taps face ``direction`` (one of :data:`COMPASS`); sum 1.

    >>> emboss_matrix("se").astype(int).tolist()
    [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]
    """
    facing = COMPASS.index(direction)
    by_distance = {0: 2.0, 1: 1.0, 2: 0.0, 3: -1.0, 4: -2.0}
    out = np.zeros((3, 3))
    out[1, 1] = 1.0
    for index, (row, col) in enumerate(_RING):
        steps = min((index - facing) % 8, (facing - index) % 8)
        out[row, col] = by_distance[steps]
    return out


# -- channel mixing ----------------------------------------------------------------------------


def random_weights(
    out_channels: int, in_channels: int, size: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Weights and bias drawn as PyTorch initialises ``nn.Conv2d``, from a seeded NumPy generator.

    Both are uniform on ``[-b, b)`` with ``b = 1 / sqrt(fan_in)``, ``fan_in = in * size * size``
    (what ``kaiming_uniform_(a=sqrt(5))`` and the bias rule of ``nn.Conv2d.reset_parameters``
    reduce to). The numbers come from ``numpy.random.default_rng(seed)``, so they repeat from
    run to run but are not the numbers ``torch.manual_seed(seed)`` gives.

    >>> w, b = random_weights(3, 3, 3, 0)
    >>> w.shape, b.shape, bool(np.abs(w).max() <= 1 / 27 ** 0.5)
    ((3, 3, 3, 3), (3,), True)
    """
    bound = 1.0 / math.sqrt(in_channels * size * size)
    rng = np.random.default_rng(seed)
    weights = rng.uniform(-bound, bound, size=(out_channels, in_channels, size, size))
    bias = rng.uniform(-bound, bound, size=out_channels)
    return weights, bias
