"""The exact integer engine: integer kernels on 8- and 16-bit images, against the float path and
an int64 reference.

The float direct engine is exact for integer taps while every partial sum stays below 2**24, so
the integer engine must give its results bit for bit, before and after every output mapping.
"""

from __future__ import annotations

import importlib
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import convcli.core.integer as integer_module
import convcli.core.threads as threads_module
from convcli.core import convolve, map_to_float32, map_to_uint8, map_to_uint16, resolve_geometry
from convcli.core.bands import combine_responses, filter_banded
from convcli.core.integer import IntegerPlan, integer_kernel, plan_integer
from convcli.io import read_image, write_image
from convcli.kernels import load_kernel
from convcli.kernels.catalogue import builtin_names
from convcli.options import FilterOptions, OutputOptions
from convcli.pipeline import render

from conftest import main_in_process
from reference import BORDERS, correlate_reference

# The catalogue's kernels whose taps are integers once their own scale is set aside (a box's and a
# motion blur's taps share one magnitude). A kernel added to the catalogue lands in one list or the
# other by this test, not by accident.
INTEGER_KERNELS = (
    "box",
    "emboss",
    "gradient-x",
    "gradient-y",
    "gradient",
    "horizontal-edge",
    "identity",
    "kirsch",
    "laplacian-8",
    "laplacian",
    "mean",
    "motion",
    "prewitt-x",
    "prewitt-y",
    "prewitt",
    "roberts-x",
    "roberts-y",
    "roberts",
    "robinson",
    "scharr-x",
    "scharr-y",
    "scharr",
    "sharpen",
    "sobel-5x5",
    "sobel-7x7",
    "sobel-x",
    "sobel-y",
    "sobel",
)
SAMPLE_TYPES = (np.uint8, np.uint16)
BORDER_VALUE = 7.0


def sample_image(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Random samples over the whole range, with the extremes present (the worst case of a sum)."""
    image = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    image.flat[:2] = (0, np.iinfo(dtype).max)
    return image


def integer_reference(
    image: np.ndarray,
    kernel: np.ndarray,
    pad: tuple[int, int, int, int],
    border: str,
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    value: float = 0.0,
) -> np.ndarray:
    """Cross-correlation in int64 (shares no code with convcli): the float64 reference, exact here,
    since every sum of integer taps times 16-bit samples is far below 2**53."""
    taps = np.asarray(kernel).astype(np.int64)
    assert np.array_equal(taps, kernel)
    exact = correlate_reference(image, taps, pad, border, stride, dilation, value)
    return np.asarray(np.rint(exact), dtype=np.int64)


@pytest.fixture
def integer_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the accumulator type of every run of the integer engine."""
    runs: list[str] = []
    original = IntegerPlan.run

    def run(self: IntegerPlan, *args: Any, **kwargs: Any) -> None:
        runs.append(self.dtype.name)
        original(self, *args, **kwargs)

    monkeypatch.setattr(IntegerPlan, "run", run)
    return runs


def float_path(image: np.ndarray, matrices: tuple[np.ndarray, ...], combine: str, **options: Any) -> np.ndarray:
    """The float engines' responses, combined: the image as float32 through ``method="direct"``."""
    pixels = image.astype(np.float32)
    return combine_responses([convolve(pixels, m, method="direct", **options) for m in matrices], combine)


MAPPINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "8-bit clip": lambda v: map_to_uint8(v.copy(), "clip", scale=0.25, offset=100),
    "8-bit abs": lambda v: map_to_uint8(v.copy(), "abs"),
    "16-bit abs": lambda v: map_to_uint16(v, "abs", scale=0.5),
    "float": lambda v: map_to_float32(v, "clip"),
}


def test_the_catalogues_integer_kernels_are_the_expected_ones() -> None:
    found = []
    for name in builtin_names():
        kernel = load_kernel(name)
        if kernel.weights is None and all(
            integer_kernel(np.asarray(m, np.float32)) is not None for m in kernel.matrices
        ):
            found.append(name)
    assert sorted(found) == sorted(INTEGER_KERNELS)


@pytest.mark.parametrize("dtype", SAMPLE_TYPES)
@pytest.mark.parametrize("name", INTEGER_KERNELS)
def test_every_integer_kernel_and_border_equals_the_float_path(
    name: str, dtype: type, rng: np.random.Generator, integer_runs: list[str]
) -> None:
    """Bit for bit, as responses and through every output mapping, for every border mode."""
    kernel = load_kernel(name)
    image = sample_image(rng, (11, 9, 3) if dtype is np.uint8 else (9, 7), dtype)
    # Every one fits 8-bit images; on 16 bits, sobel-7x7's worst case is beyond 2**24.
    expect_integer = dtype is np.uint8 or name != "sobel-7x7"
    plan = plan_integer(kernel.matrices, np.dtype(dtype), "reflect", 0.0, kernel.combine)
    assert (plan is not None) == expect_integer
    if not expect_integer:
        return
    for border in BORDERS:
        options: dict[str, Any] = {"border": border, "border_value": BORDER_VALUE}
        want = float_path(image, kernel.matrices, kernel.combine, **options)
        for label, mapping in MAPPINGS.items():
            got = filter_banded(
                image,
                kernel.matrices,
                combine=kernel.combine,
                transform=mapping,
                out_dtype=mapping(want[:1, :1]).dtype,
                **options,
            )
            np.testing.assert_array_equal(got, mapping(want), err_msg=f"{name} {border} {label}")
        if kernel.combine == "single":
            np.testing.assert_array_equal(convolve(image, kernel.matrix, **options), want)
    assert len(integer_runs) == 6 * len(MAPPINGS) + 6 * (kernel.combine == "single")


@pytest.mark.parametrize("dtype", SAMPLE_TYPES)
@pytest.mark.parametrize("name", ["sobel-x", "laplacian-8", "emboss", "roberts-y", "sobel-5x5", "box"])
def test_against_an_int64_reference_with_stride_dilation_and_padding(
    name: str, dtype: type, rng: np.random.Generator, integer_runs: list[str]
) -> None:
    """The exact integer values, in float32, from an independent int64 sum."""
    matrix = load_kernel(name).matrices[0]
    integer = integer_kernel(np.asarray(matrix, np.float32))
    assert integer is not None
    image = sample_image(rng, (15, 13, 2), dtype)
    cases: list[dict[str, Any]] = [
        {"stride": 2},
        {"dilation": 2},
        {"stride": (1, 3), "dilation": (2, 1), "padding": "full"},
        {"padding": (0, 3, 4, 1), "border": "wrap"},
        {"padding": "valid", "flip": True},
        {"padding": (5, 5, 6, 6), "border": "symmetric"},  # pads wider than half the image
    ]
    for options in cases:
        taps = integer.taps[::-1, ::-1] if options.get("flip") else integer.taps
        geometry = resolve_geometry(
            image.shape[:2],
            taps.shape,
            options.get("padding", "same"),
            options.get("stride", 1),
            options.get("dilation", 1),
        )
        exact = integer_reference(
            image, taps, geometry.pad, options.get("border", "reflect"), geometry.stride, geometry.dilation
        )
        want = (exact.astype(np.float32) * integer.scale).astype(np.float32)
        got = convolve(image, matrix, **options)
        np.testing.assert_array_equal(got, want, err_msg=str(options))
        if integer.scale == 1:
            np.testing.assert_array_equal(got.astype(np.int64), exact)
    assert len(integer_runs) == len(cases)


def test_accumulators_and_the_float_fallback(rng: np.random.Generator, integer_runs: list[str]) -> None:
    """int16 where the worst case fits, int32 where not, float where even float32 would round."""
    sobel = load_kernel("sobel-x").matrix
    big = np.full((9, 9), 4.0)  # 81 * 4 * 255 > 2**15 on 8 bits; * 65535 > 2**24 on 16 bits

    def accumulator(
        kernels: list[np.ndarray], dtype: type, border: str = "reflect", value: float = 0.0, combine: str = "single"
    ) -> str | None:
        plan = plan_integer(kernels, np.dtype(dtype), border, value, combine)
        return None if plan is None else plan.dtype.name

    assert accumulator([sobel], np.uint8) == "int16"
    assert accumulator([sobel], np.uint16) == "int32"
    assert accumulator([big], np.uint8) == "int32"
    assert accumulator([big], np.uint16) is None
    assert accumulator([sobel], np.int16) is None
    assert accumulator([sobel], np.uint8, "constant", 2.5) is None  # no integer border
    assert accumulator([sobel], np.uint8, "constant", 300.0) is None
    assert accumulator([sobel], np.uint8, "constant", 255.0) == "int16"
    assert accumulator([sobel * 0.1], np.uint8) is None  # 0.1 and 0.2: no one scale
    assert accumulator([sobel / 64], np.uint8) == "int16"  # a power of two is exact
    image8 = sample_image(rng, (21, 17), np.uint8)
    image16 = sample_image(rng, (21, 17), np.uint16)
    for image, kernel in ((image8, big), (image16, big), (image8, sobel / 64)):
        want = convolve(image.astype(np.float32), kernel, method="direct")
        np.testing.assert_array_equal(convolve(image, kernel), want)
    assert integer_runs == ["int32", "int16"]
    # A sum of responses is bounded by the sum of the kernels: two of them no longer fit int16 here.
    wide = np.full((3, 3), 8.0)
    assert accumulator([wide], np.uint8, combine="max") == "int16"
    assert accumulator([wide, wide], np.uint8, combine="sum") == "int32"


def test_only_auto_uses_it_and_large_dense_kernels_stay_with_the_float_engines(
    rng: np.random.Generator, integer_runs: list[str]
) -> None:
    image = sample_image(rng, (64, 64), np.uint8)
    laplacian = load_kernel("laplacian").matrix
    for method in ("direct", "separable", "fft"):
        convolve(image, laplacian, method=method)
    convolve(image.astype(np.float32), laplacian)
    assert integer_runs == []
    dense = rng.integers(-3, 4, (31, 31)).astype(np.float64)
    assert plan_integer([dense], np.dtype(np.uint8), "reflect", 0.0) is not None  # it could, exactly
    np.testing.assert_allclose(
        convolve(image, dense), integer_reference(image, dense, (15,) * 4, "reflect"), rtol=0, atol=1e-2
    )
    assert integer_runs == []  # but the FFT is cheaper
    convolve(image, laplacian)
    assert integer_runs == ["int16"]


@pytest.mark.parametrize("threads", [1, 2])
def test_strips_and_threads_give_the_same_result(
    threads: int, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, integer_runs: list[str]
) -> None:
    """Short strips (the last one shorter), bands on two threads, and a check for Ctrl-C per strip."""
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    checks: list[int] = []
    original_check = threads_module.check_abandoned

    def check() -> None:
        checks.append(1)
        original_check()

    monkeypatch.setattr(integer_module, "check_abandoned", check)
    image = sample_image(rng, (47, 23, 3), np.uint8)
    for name in ("kirsch", "sobel", "box"):
        kernel = load_kernel(name)
        want = float_path(image, kernel.matrices, kernel.combine, stride=(2, 1))
        got = filter_banded(
            image, kernel.matrices, combine=kernel.combine, rows_per_band=5, threads=threads, stride=(2, 1)
        )
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert len(integer_runs) == 3
    assert len(checks) == 3 * 5  # 24 output rows: 5 strips of at most 5 rows (aligned to the bands)


def test_a_1080p_rgb_sobel_runs_on_two_threads() -> None:
    """The work figure of the integer engine, in the cost model's unit, splits a 1080p RGB image."""
    plan = plan_integer([load_kernel("sobel-x").matrix], np.dtype(np.uint8), "reflect", 0.0)
    assert plan is not None
    geometry = resolve_geometry((1080, 1920), (3, 3), "same", 1, 1)
    step = plan.strip_rows(geometry, 1920, 3)
    assert 8 <= step <= 256
    assert threads_module.band_count(2, 1080, plan.work(1080 * 1920 * 3), step) == 2
    assert threads_module.band_count(1, 1080, plan.work(1080 * 1920 * 3), step) == 1
    assert threads_module.band_count(2, 512, plan.work(512 * 512 * 3), step) == 1  # small images stay on one


PIPELINE_KERNELS = ("sobel", "laplacian", "box", "scharr", "kirsch", "emboss", "sobel-x")
OUTPUTS = [
    OutputOptions(depth=8),
    OutputOptions(depth=8, mode="abs", scale=3.0),
    OutputOptions(depth=16),
    OutputOptions(depth="float"),
    OutputOptions(depth="float", mode="abs"),
    OutputOptions(mode="normalize"),
]


@pytest.mark.parametrize("name", PIPELINE_KERNELS)
def test_render_uses_it_for_every_output_depth(name: str, rng: np.random.Generator, integer_runs: list[str]) -> None:
    """The pipeline's render of an 8-bit picture equals the float direct engine's (the same picture as
    float32); the separable engine's float factors would round where the integers are exact."""
    image = sample_image(rng, (19, 14, 3), np.uint8)
    for output in OUTPUTS:
        got = render(image, name, FilterOptions(border="edge"), output)
        want = render(image.astype(np.float32), name, FilterOptions(border="edge", method="direct"), output)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want, err_msg=f"{name} {output}")
    assert len(integer_runs) == len(OUTPUTS)


def test_cli_float_output_holds_the_exact_integers(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], rng: np.random.Generator, integer_runs: list[str]
) -> None:
    """``convcli apply`` of a PNG to .npy: the exact Sobel responses and their magnitude."""
    image = sample_image(rng, (13, 16, 3), np.uint8)
    source = tmp_path / "in.png"
    write_image(image, None, source)
    assert np.array_equal(read_image(source).pixels, image)
    for name in ("sobel-x", "sobel"):
        target = tmp_path / f"{name}.npy"
        code, _, err = main_in_process(capsys, "apply", str(source), "-k", name, "-o", str(target), "-q")
        assert code == 0, err
        got = np.load(target)
        gx = integer_reference(image, load_kernel("sobel-x").matrix, (1, 1, 1, 1), "reflect")
        if name == "sobel-x":
            np.testing.assert_array_equal(got, gx.astype(np.float32))
        else:
            gy = integer_reference(image, load_kernel("sobel-y").matrix, (1, 1, 1, 1), "reflect")
            np.testing.assert_array_equal(got, np.sqrt((gx**2 + gy**2).astype(np.float32)))
    assert len(integer_runs) == 2


def test_negative_constant_border_and_unusual_layouts(rng: np.random.Generator, integer_runs: list[str]) -> None:
    """A negative border value, a big-endian 16-bit image and a strided view: still exact."""
    sobel = load_kernel("sobel-y").matrix
    big_endian = sample_image(rng, (12, 10, 3), np.uint16).astype(">u2")
    strided = sample_image(rng, (12, 21), np.uint8)[:, ::2]
    for image, options in (
        (sample_image(rng, (12, 10), np.uint8), {"border": "constant", "border_value": -200.0}),
        (big_endian, {"border": "symmetric"}),
        (strided, {"border": "wrap", "stride": (1, 2)}),
    ):
        want = convolve(image.astype(np.float32), sobel, method="direct", **options)
        np.testing.assert_array_equal(convolve(image, sobel, **options), want)
    assert integer_runs == ["int16", "int32", "int16"]


def test_plans_are_remembered_for_small_kernels_only(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Filtering many images alike plans once; a large kernel's plan is not kept (nor its bytes)."""
    convolve_module = importlib.import_module("convcli.core.convolve")  # the name `convolve` is the function
    calls: list[int] = []
    original = convolve_module.plan_integer

    def spy(kernels: Any, *args: Any) -> Any:
        calls.append(int(np.shape(kernels[0])[0]))
        return original(kernels, *args)

    monkeypatch.setattr(convolve_module, "plan_integer", spy)
    image = sample_image(rng, (70, 70), np.uint8)
    small = np.array([[1.0, -3.0, 1.0]]) * 7  # a kernel no other test uses, so not planned yet
    large = rng.integers(-2, 3, (65, 65)).astype(np.float64)  # 4225 taps
    for kernel in (small, small, small, large, large):
        convolve(image, kernel, padding="valid")
    assert calls == [1, 65, 65]


@pytest.mark.parametrize("method", ["direct", "separable", "fft"])
def test_float_engines_pad_an_8_bit_image_in_its_own_type(method: str) -> None:
    """An 8-bit image reaches the float engines padded in uint8 and converted strip by strip:
    the same result as from its float32 copy, without that copy (nor a padded float32 one)."""
    rng = np.random.default_rng(7)
    image = rng.integers(0, 256, (400, 500, 3), dtype=np.uint8)
    kernel = rng.normal(size=(7, 7))  # not integer: the float engines run
    for border, value in (("reflect", 0.0), ("wrap", 0.0), ("constant", 9.0), ("constant", 0.5), ("constant", -1.0)):
        got = convolve(image, kernel, border=border, border_value=value, method=method, threads=1)
        want = convolve(image.astype(np.float32), kernel, border=border, border_value=value, method=method, threads=1)
        assert np.array_equal(got, want), (border, value)
    large = rng.integers(0, 256, (800, 1000, 3), dtype=np.uint8)
    as_float = large.astype(np.float32)

    def peak(pixels: np.ndarray[Any, Any]) -> int:
        tracemalloc.start()
        try:
            convolve(pixels, kernel, method=method, threads=1)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # From float32, the engines get a padded float32 copy (about one image); from uint8, only a
    # padded uint8 copy (a quarter of one), where converting first would add a whole float32 image.
    assert peak(large) < peak(as_float) - 0.5 * as_float.nbytes, method
