"""The convolution engines (direct, separable, fft), the engine registry and the cost model.

Every engine is checked against independent float64 references: the sliding-window sum of
tests/reference.py (its own padding rules, no convcli code) and ``scipy.ndimage.correlate``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
from numpy.typing import NDArray

import convcli.core.direct as direct_module
import convcli.core.engines as engines_module
from convcli.core import convolve, pad_image, resolve_geometry
from convcli.core.engine import Engine, EnginePlan
from convcli.core.engines import ENGINES, METHODS, choose_method, engine_costs, plan_engine, register_engine
from convcli.core.fft import FftPlan, next_fast_len, plan_tiles
from convcli.core.geometry import Geometry, PaddingSpec, PairSpec
from convcli.core.separable import SeparablePlan, kernel_rank, separable_terms
from convcli.errors import ParameterError

from reference import BORDERS, SCIPY_MODES, assert_close, correlate_reference

ndimage = pytest.importorskip("scipy.ndimage")

ENGINE_NAMES = ("direct", "separable", "fft")


def random_kernel(rng: np.random.Generator, shape: tuple[int, int], kind: str) -> NDArray[np.float64]:
    """A kernel of the given rank structure; ``kind`` is rank1, rank2, full or sparse."""
    kh, kw = shape
    if kind == "rank1":
        return np.outer(rng.standard_normal(kh), rng.standard_normal(kw))
    if kind == "rank2":
        return np.outer(rng.standard_normal(kh), rng.standard_normal(kw)) + np.outer(
            rng.standard_normal(kh), rng.standard_normal(kw)
        )
    kernel = rng.standard_normal(shape)
    if kind == "sparse":
        kernel[rng.random(shape) < 0.5] = 0.0
    return kernel


def gaussian(size: int, sigma: float) -> NDArray[np.float64]:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return np.asarray(np.outer(g, g) / g.sum() ** 2)


def log_kernel(size: int, sigma: float) -> NDArray[np.float64]:
    x = np.arange(size) - (size - 1) / 2
    xx, yy = np.meshgrid(x, x)
    r2 = (xx**2 + yy**2) / (2 * sigma**2)
    # Not shifted to zero sum: subtracting the mean adds a constant (rank-1) term, making it rank 3.
    return np.asarray(-(1 - r2) * np.exp(-r2))


SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)


# --- every engine against the naive reference ------------------------------------------------

# (image shape, kernel shape, kernel kind, padding, stride, dilation)
Case = tuple[tuple[int, ...], tuple[int, int], str, PaddingSpec, tuple[int, int], tuple[int, int]]

CASES: list[Case] = [
    ((23, 31), (3, 3), "full", "same", (1, 1), (1, 1)),
    ((23, 31, 3), (5, 5), "rank1", "same", (1, 1), (1, 1)),
    ((40, 37, 3), (4, 6), "rank2", "same", (1, 1), (1, 1)),
    ((29, 33), (1, 7), "full", "valid", (1, 1), (1, 1)),
    ((29, 33, 3), (7, 1), "full", "full", (1, 1), (1, 1)),
    ((30, 28, 3), (5, 5), "sparse", (1, 3, 0, 2), (2, 3), (1, 1)),
    ((30, 28), (3, 4), "full", (2, 0, 3, 1), (1, 2), (2, 1)),
    ((41, 39, 3), (3, 3), "rank1", "same", (3, 2), (2, 3)),
    ((26, 35, 2), (6, 5), "full", 2, (2, 2), (1, 2)),
    ((50, 47, 3), (11, 9), "full", "same", (1, 1), (1, 1)),
    ((17, 19), (2, 2), "rank2", (0, 1), (1, 1), (3, 3)),
]


@pytest.mark.parametrize("method", [*ENGINE_NAMES, "auto"])
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("index", range(len(CASES)), ids=[f"case{i}" for i in range(len(CASES))])
def test_engine_matches_naive_reference(index: int, border: str, method: str) -> None:
    image_shape, kernel_shape, kind, padding, stride, dilation = CASES[index]
    rng = np.random.default_rng(index)
    image = rng.uniform(0, 255, image_shape)
    kernel = random_kernel(rng, kernel_shape, kind)
    geometry = resolve_geometry((image_shape[0], image_shape[1]), kernel_shape, padding, stride, dilation)
    expected = correlate_reference(image, kernel, geometry.pad, border, geometry.stride, geometry.dilation, 17.0)
    actual = convolve(
        image, kernel, padding=padding, border=border, border_value=17.0, stride=stride, dilation=dilation,
        method=method, threads=1,
    )
    assert_close(actual, expected)


@pytest.mark.parametrize("method", ENGINE_NAMES)
def test_engines_random_geometries(method: str) -> None:
    """Seeded random sweep over sizes, kernels, paddings, strides, dilations and borders."""
    rng = np.random.default_rng(20240611)
    checked = 0
    while checked < 60:
        height, width = (int(v) for v in rng.integers(4, 30, 2))
        channels = int(rng.choice([0, 1, 3]))
        image = rng.uniform(0, 255, (height, width, channels) if channels else (height, width))
        kernel_shape = (int(rng.integers(1, 8)), int(rng.integers(1, 8)))
        kernel = random_kernel(rng, kernel_shape, str(rng.choice(["rank1", "rank2", "full", "sparse"])))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        paddings: list[PaddingSpec] = ["same", "valid", "full", [int(v) for v in rng.integers(0, 4, 4)]]
        padding = paddings[int(rng.integers(4))]
        border = str(rng.choice(BORDERS))
        try:
            geometry = resolve_geometry((height, width), kernel_shape, padding, stride, dilation)
        except ParameterError:
            continue  # kernel larger than the padded image: rejected before any engine runs
        expected = correlate_reference(image, kernel, geometry.pad, border, geometry.stride, geometry.dilation, 3.0)
        actual = convolve(
            image, kernel, padding=padding, border=border, border_value=3.0, stride=stride,
            dilation=dilation, method=method, threads=1,
        )
        assert_close(actual, expected)
        checked += 1


@pytest.mark.parametrize("method", [*ENGINE_NAMES, "auto"])
@pytest.mark.parametrize("border", sorted(SCIPY_MODES))
@pytest.mark.parametrize("size", [3, 4, 7, 15])
def test_engine_matches_scipy_correlate(size: int, border: str, method: str) -> None:
    rng = np.random.default_rng(size)
    image = rng.uniform(0, 255, (64, 70, 3))
    kernel = rng.standard_normal((size, size))
    # scipy centres an even kernel one pixel further down/right than "same" padding does;
    # origin=-1 moves it back so both compute the same window for every output.
    origin = -1 if size % 2 == 0 else 0
    expected = ndimage.correlate(image, kernel[:, :, None], mode=SCIPY_MODES[border], origin=(origin, origin, 0))
    actual = convolve(image, kernel, border=border, method=method, threads=1)
    assert_close(actual, expected)


def test_convolution_flip_matches_scipy_convolve() -> None:
    rng = np.random.default_rng(5)
    image = rng.uniform(0, 255, (40, 45))
    kernel = rng.standard_normal((9, 9))
    expected = ndimage.convolve(image, kernel, mode="mirror")
    for method in ENGINE_NAMES:
        assert_close(convolve(image, kernel, flip=True, method=method, threads=1), expected)


@pytest.mark.parametrize("method", ENGINE_NAMES)
def test_large_kernel_relative_to_image(method: str) -> None:
    """A kernel nearly as large as the image (FFT tiles then cover the whole image)."""
    rng = np.random.default_rng(9)
    image = rng.uniform(0, 255, (20, 21, 3))
    kernel = rng.standard_normal((19, 21))
    expected = correlate_reference(image, kernel, (0, 0, 0, 0), "reflect", (1, 1), (1, 1))
    assert_close(convolve(image, kernel, padding="valid", method=method, threads=1), expected)


@pytest.mark.parametrize("method", [*ENGINE_NAMES, "auto"])
def test_degenerate_shapes(method: str) -> None:
    """One pixel, one tap, and an image with no channels at all."""
    assert convolve(np.full((1, 1), 3.0), np.full((1, 1), 2.0), method=method).tolist() == [[6.0]]
    assert convolve(np.zeros((5, 6, 0)), np.ones((3, 3)), method=method).shape == (5, 6, 0)


@pytest.mark.parametrize("method", ENGINE_NAMES)
def test_zero_kernel_gives_zeros(method: str) -> None:
    image = np.full((12, 13, 3), 200.0)
    out = convolve(image, np.zeros((3, 3)), method=method, threads=1)
    assert out.shape == (12, 13, 3)
    assert not out.any()


@pytest.mark.parametrize("method", ENGINE_NAMES)
def test_integer_kernel_on_uint8_is_exact(method: str) -> None:
    """Sobel on 8-bit values: every engine lands on the exact integer (float32 holds them)."""
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (33, 34, 3), dtype=np.uint8)
    expected = correlate_reference(image, SOBEL_X, (1, 1, 1, 1), "edge", (1, 1), (1, 1))
    actual = convolve(image, SOBEL_X, border="edge", method=method, threads=1)
    np.testing.assert_allclose(actual, expected, atol=1e-3)


def run_direct(
    image: NDArray[np.floating], kernel: NDArray[np.floating], strategy: str, *, border: str = "reflect",
    padding: PaddingSpec = "same", stride: PairSpec = 1, dilation: PairSpec = 1,
) -> NDArray[np.float32]:
    """The direct engine with its inner strategy forced, on an image padded as ``convolve`` pads it."""
    geometry = resolve_geometry(image.shape[:2], kernel.shape, padding, stride, dilation)
    plan = replace(direct_module.plan_direct(kernel, geometry), strategy=strategy)
    return plan.run(pad_image(image.astype(np.float32), geometry.pad, border), geometry)


@pytest.mark.parametrize("strategy", ["taps", "blas"])
@pytest.mark.parametrize("case", CASES[:9], ids=[f"case{i}" for i in range(9)])
def test_direct_strategies_match_reference(case: Case, strategy: str) -> None:
    """Both inner strategies of the direct engine, forced, incl. a kernel with zero columns."""
    image_shape, kernel_shape, kind, padding, stride, dilation = case
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 255, image_shape)
    kernel = random_kernel(rng, kernel_shape, kind)
    if kernel.shape[1] > 2:
        kernel[:, 0] = 0  # an all-zero first column is skipped by the blas strategy
    geometry = resolve_geometry((image_shape[0], image_shape[1]), kernel_shape, padding, stride, dilation)
    expected = correlate_reference(image, kernel, geometry.pad, "reflect", geometry.stride, geometry.dilation)
    actual = run_direct(image, kernel, strategy, padding=padding, stride=stride, dilation=dilation)
    assert_close(actual, expected)


UNIT_KERNELS = {
    "minus-box": -np.ones((3, 3)),
    "diff-row": np.array([[1.0, -1.0]]),
    "diff-col-neg-first": np.array([[-1.0], [1.0]]),
    "two-negatives": np.array([[-1.0, 0.0], [0.0, -1.0]]),
    "one-negative": np.array([[0.0, -1.0]]),
    "laplacian": np.array([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]]),
    "mixed": np.array([[1.0, -2.0, 1.0], [-0.5, 0.0, 0.5], [2.0, 2.0, -1.0]]),
}


@pytest.mark.parametrize("name", sorted(UNIT_KERNELS))
def test_tap_plan_signs_and_groups(name: str) -> None:
    """The shift-and-add plan's add/subtract/negate paths for unit and grouped taps."""
    kernel = UNIT_KERNELS[name]
    image = np.random.default_rng(3).uniform(0, 255, (15, 16, 3))
    geometry = resolve_geometry((15, 16), kernel.shape, "same", 1, 1)
    expected = correlate_reference(image, kernel, geometry.pad, "wrap", (1, 1), (1, 1))
    assert_close(run_direct(image, kernel, "taps", border="wrap"), expected)


def test_direct_prefers_taps_for_sparse_and_blas_for_dense() -> None:
    geometry = resolve_geometry((500, 500), (5, 5), "same", 1, 1)
    dense = np.random.default_rng(0).standard_normal((5, 5))
    assert direct_module.direct_strategy(dense, geometry)[0] == "blas"
    assert direct_module.direct_strategy(SOBEL_X, geometry)[0] == "taps"


# --- rank detection ---------------------------------------------------------------------------


def test_rank_of_known_kernels() -> None:
    rng = np.random.default_rng(0)
    assert kernel_rank(gaussian(31, 5.0).astype(np.float32)) == 1
    assert kernel_rank(SOBEL_X) == 1
    assert kernel_rank(SOBEL_X.T) == 1
    assert kernel_rank(np.ones((5, 5))) == 1
    assert kernel_rank(log_kernel(9, 1.4)) == 2
    assert kernel_rank(rng.standard_normal((5, 5))) == 5
    assert kernel_rank(np.zeros((3, 3))) == 0


@pytest.mark.parametrize("kernel", [gaussian(7, 1.5), SOBEL_X, log_kernel(9, 1.4)], ids=["gauss", "sobel", "log"])
def test_separable_terms_reconstruct_kernel(kernel: NDArray[np.float64]) -> None:
    terms = separable_terms(kernel)
    rebuilt = sum(np.outer(col.astype(np.float64), row.astype(np.float64)) for col, row in terms)
    np.testing.assert_allclose(rebuilt, kernel, atol=1e-6 * np.abs(kernel).max())


def test_sobel_terms_keep_exact_zero_and_antisymmetry() -> None:
    """SVD noise is cleaned, so the zero column is skipped and +-taps pair up."""
    (column, row), = separable_terms(SOBEL_X)
    assert row[1] == 0
    assert row[0] == -row[2]
    assert column[0] == column[2]


# --- next_fast_len and FFT tiles --------------------------------------------------------------


def _is_5_smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


@pytest.mark.parametrize("n", [1, 2, 7, 11, 13, 97, 1021, 1025, 3870, 4097, 10007])
def test_next_fast_len_is_smallest_5_smooth(n: int) -> None:
    m = next_fast_len(n)
    assert m >= n and _is_5_smooth(m)
    assert not any(_is_5_smooth(k) for k in range(n, m))


def test_fft_tiles_are_bounded_on_a_large_image() -> None:
    geometry = resolve_geometry((2160, 3840), (31, 31), "same", 1, 1)
    plan = plan_tiles(geometry, channels=3)
    th, tw = plan.tile
    assert th * tw * 3 <= 2_400_000
    assert th < 2160 + 30 or tw < 3840 + 30  # the image really is cut into tiles


# --- auto choice ------------------------------------------------------------------------------


def test_auto_picks_separable_for_large_gaussian() -> None:
    geometry = resolve_geometry((1080, 1920), (31, 31), "same", 1, 1)
    assert choose_method(gaussian(31, 5.0).astype(np.float32), geometry, 3) == "separable"


def test_auto_picks_fft_for_large_random_kernel() -> None:
    kernel = np.random.default_rng(1).standard_normal((31, 31)).astype(np.float32)
    geometry = resolve_geometry((2160, 3840), (31, 31), "same", 1, 1)
    assert choose_method(kernel, geometry, 3) == "fft"


def test_auto_picks_direct_for_small_random_kernel() -> None:
    kernel = np.random.default_rng(1).standard_normal((3, 3)).astype(np.float32)
    geometry = resolve_geometry((2160, 3840), (3, 3), "same", 1, 1)
    assert choose_method(kernel, geometry, 3) == "direct"


def test_auto_avoids_fft_when_stride_makes_it_wasteful() -> None:
    kernel = np.random.default_rng(1).standard_normal((15, 15)).astype(np.float32)
    unstrided = resolve_geometry((2000, 2000), (15, 15), "same", 1, 1)
    strided = resolve_geometry((2000, 2000), (15, 15), "same", 4, 1)
    assert choose_method(kernel, unstrided, 3) == "fft"
    assert choose_method(kernel, strided, 3) == "direct"


def test_cost_model_rates_low_rank_below_full_rank() -> None:
    geometry = resolve_geometry((500, 500), (9, 9), "same", 1, 1)
    costs = engine_costs(log_kernel(9, 1.4), geometry)
    assert costs["separable"] < costs["direct"]
    assert engine_costs(np.random.default_rng(0).standard_normal((9, 9)), geometry)["separable"] == float("inf")


def test_methods_are_the_registered_engines() -> None:
    assert list(METHODS) == ["auto", *ENGINES] == ["auto", "direct", "separable", "fft"]
    assert all(engine.name == name for name, engine in ENGINES.items())


@dataclass(frozen=True)
class CountingPlan:
    """A test engine's plan: free by the cost model, and it counts its runs."""

    inner: EnginePlan
    runs: list[Geometry]
    cost: float = 0.0

    def run(self, padded: NDArray[np.float32], geometry: Geometry, *, threads: int = 1) -> NDArray[np.float32]:
        self.runs.append(geometry)
        return self.inner.run(padded, geometry, threads=threads)


def test_a_registered_engine_is_a_method_and_competes(monkeypatch: pytest.MonkeyPatch) -> None:
    """One register_engine call makes an engine a valid ``method`` and a candidate of ``auto``."""
    monkeypatch.setattr(engines_module, "ENGINES", dict(ENGINES))
    runs: list[Geometry] = []

    def plan_counting(kernel: NDArray[np.float32], geometry: Geometry, channels: int) -> CountingPlan:
        return CountingPlan(direct_module.plan_direct(kernel, geometry, channels), runs)

    register_engine(Engine("counting", plan_counting, "the direct engine, counted"))
    assert list(METHODS) == ["auto", *ENGINE_NAMES, "counting"]
    image = np.random.default_rng(12).uniform(0, 255, (20, 24, 3))
    expected = convolve(image, SOBEL_X, method="direct")
    np.testing.assert_array_equal(convolve(image, SOBEL_X, method="counting"), expected)
    np.testing.assert_array_equal(convolve(image, SOBEL_X), expected)  # auto: the cheapest engine
    assert len(runs) == 2
    with pytest.raises(ParameterError, match="taken"):
        register_engine(Engine("direct", plan_counting, "a second direct"))


def test_auto_runs_the_plan_it_costed() -> None:
    """``auto`` returns the cheapest engine's own plan: the separable one carries the SVD terms."""
    geometry = resolve_geometry((200, 200), (9, 9), "same", 1, 1)
    kernel = gaussian(9, 2.0).astype(np.float32)
    plan = plan_engine(kernel, geometry)
    assert isinstance(plan, SeparablePlan) and len(plan.terms) == 1
    assert plan.cost == min(engine_costs(kernel, geometry).values())
    assert isinstance(plan_engine(kernel, geometry, "fft"), FftPlan)


def test_unknown_method_is_rejected() -> None:
    with pytest.raises(ParameterError, match="`method`"):
        convolve(np.zeros((5, 5)), np.ones((3, 3)), method="winograd")
