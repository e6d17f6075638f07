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
# Most input or output channels a mixing kernel may have.
MAX_CHANNELS = 64

# Bias units of a mixing kernel: "unit" is PyTorch's scale (ToTensor maps 0..255 to 0..1), so a
# bias copied from ``conv.bias`` is multiplied by 255 before it is added to 0..255 pixels.
BIAS_UNITS: dict[str, float] = {"unit": 255.0, "pixel": 1.0}
DEFAULT_BIAS_UNITS = "unit"


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

    def describe_default(self, derived: Mapping[str, str]) -> str:
        """The default as documentation shows it: a value, a formula, or ``-``."""
        if self.name in derived:
            return derived[self.name]
        return "-" if self.default is None else str(self.default)


def _parse_int(text: str) -> int:
    number = float(text)
    if not number.is_integer():
        raise ValueError(text)
    return int(number)


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
    return g / g.sum()


def _gaussian(sigma: float, radius: int | None, size: int | None) -> Built:
    r = _radius(sigma, radius, size, "gaussian")
    return Built((gaussian_matrix(sigma, r),), derived=_radius_values(r))


def _box(size: int) -> Built:
    return Built((np.full((size, size), 1.0 / (size * size)),))


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
    return out / out.sum()


def _motion(length: int, angle: float) -> Built:
    return Built((motion_matrix(length, angle),))


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
    return m - m.mean()


def _log(sigma: float, radius: int | None, size: int | None) -> Built:
    r = _radius(sigma, radius, size, "log")
    return Built((log_matrix(sigma, r),), derived=_radius_values(r))


def dog_matrix(sigma1: float, sigma2: float, radius: int) -> NDArray[np.float64]:
    """Difference of Gaussians ``G(sigma1) - G(sigma2)``, each normalised, so the sum is zero.

    With ``sigma1 < sigma2`` the centre is positive (a band-pass "Mexican hat" that is the
    negated ``log`` in shape).

    >>> m = dog_matrix(1.0, 1.6, 4)
    >>> bool(m[4, 4] > 0), bool(abs(m.sum()) < 1e-12)
    (True, True)
    """
    return gaussian_matrix(sigma1, radius) - gaussian_matrix(sigma2, radius)


def _dog(sigma1: float, sigma2: float, radius: int | None, size: int | None) -> Built:
    if sigma1 == sigma2:
        raise KernelError(f"dog: `sigma1` and `sigma2` must differ (both {sigma1:g}); the difference would be zero")
    r = _radius(max(sigma1, sigma2), radius, size, "dog")
    return Built((dog_matrix(sigma1, sigma2, r),), derived=_radius_values(r))


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


def _emboss(direction: str) -> Built:
    return Built((emboss_matrix(direction),))


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
