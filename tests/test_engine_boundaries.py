"""The engines and bands across their inner boundaries: strips, BLAS column chunks, FFT tiles, bands.

Each test shrinks the constant that sizes one piece of work, so that a test-sized image needs
several pieces; a spy proves that several pieces really ran, and the result is checked against
the float64 reference of tests/reference.py. Stride, dilation, uneven padding and colour
channels move every boundary off the easy positions.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import convcli.core.bands as bands_module
import convcli.core.direct as direct_module
import convcli.core.fft as fft_module
import convcli.core.separable as separable_module
import convcli.core.threads as threads_module
from convcli.core import convolve, resolve_geometry
from convcli.core.bands import filter_banded
from convcli.core.geometry import Geometry, PaddingSpec, PairSpec
from convcli.core.separable import plan_separable

from reference import assert_close, correlate_reference

# (channels, padding, stride, dilation); channels 0 means a 2-D image.
GEOMETRIES = [
    (3, "same", (1, 1), (1, 1)),
    (3, (2, 1, 0, 3), (2, 1), (1, 2)),
    (3, "valid", (1, 2), (2, 1)),
    (0, "full", (2, 2), (1, 1)),
]
GEOMETRY_IDS = ["same", "uneven-stride-dilation", "valid-colstride", "gray-full-stride2"]

Geometries = pytest.mark.parametrize("channels, padding, stride, dilation", GEOMETRIES, ids=GEOMETRY_IDS)


def make_image(rng: np.random.Generator, height: int, width: int, channels: int) -> np.ndarray:
    return rng.uniform(0, 255, (height, width, channels) if channels else (height, width))


def run_and_reference(
    image: np.ndarray, kernel: np.ndarray, method: str, padding: PaddingSpec, stride: PairSpec, dilation: PairSpec
) -> tuple[Geometry, np.ndarray, np.ndarray]:
    """``(geometry, convolve(...) with method forced on one thread, float64 reference)``."""
    geometry = resolve_geometry(image.shape[:2], kernel.shape, padding, stride, dilation)
    actual = convolve(image, kernel, padding=padding, stride=stride, dilation=dilation, method=method, threads=1)
    expected = correlate_reference(image, kernel, geometry.pad, "reflect", geometry.stride, geometry.dilation)
    return geometry, actual, expected


def spy_on_tap_plans(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the rows of the accumulator of every TapPlan.apply call: one call per strip and pass."""
    rows: list[int] = []
    original = direct_module.TapPlan.apply

    def apply(self: direct_module.TapPlan, acc: np.ndarray, *args: Any, **kwargs: Any) -> None:
        rows.append(acc.shape[0])
        original(self, acc, *args, **kwargs)

    monkeypatch.setattr(direct_module.TapPlan, "apply", apply)
    # The separable engine's fused horizontal pass: one stack of shifted rows per strip and term.
    original_stack = separable_module.shifted_columns

    def shifted_columns(rows_array: np.ndarray, *args: Any) -> np.ndarray:
        rows.append(rows_array.shape[0])
        return original_stack(rows_array, *args)

    monkeypatch.setattr(separable_module, "shifted_columns", shifted_columns)
    return rows


@Geometries
def test_direct_taps_across_strips(
    channels: int, padding: PaddingSpec, stride: PairSpec, dilation: PairSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_module, "STRIP_BYTES", 2048)  # a few output rows per strip
    rng = np.random.default_rng(21)
    image = make_image(rng, 41, 37, channels)
    kernel = rng.standard_normal((5, 5))
    kernel[rng.random((5, 5)) < 0.6] = 0.0  # sparse: shift-and-add is the cheaper strategy
    geometry = resolve_geometry(image.shape[:2], kernel.shape, padding, stride, dilation)
    assert direct_module.direct_strategy(kernel, geometry)[0] == "taps"
    rows = spy_on_tap_plans(monkeypatch)
    geometry, actual, expected = run_and_reference(image, kernel, "direct", padding, stride, dilation)
    out_h = geometry.out_shape[0]
    assert len(rows) > 1 and max(rows) < out_h and sum(rows) == out_h  # strips that cover the rows
    assert_close(actual, expected)


@Geometries
def test_direct_blas_across_strips_and_column_chunks(
    channels: int, padding: PaddingSpec, stride: PairSpec, dilation: PairSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(direct_module, "STRIP_BYTES", 16 * 1024)
    monkeypatch.setattr(direct_module, "BLAS_CHUNK_BYTES", 1)  # chunks shrink to their 64-pixel floor
    pieces: list[tuple[int, int, int, int]] = []  # (first row, rows, first column, columns) per product
    original = direct_module.row_stack

    def row_stack(source: np.ndarray, first_row: int, rows: int, *args: int) -> np.ndarray:
        pieces.append((first_row, rows, args[3], args[4]))
        return original(source, first_row, rows, *args)

    monkeypatch.setattr(direct_module, "row_stack", row_stack)
    rng = np.random.default_rng(22)
    image = make_image(rng, 40, 200, channels)  # over 64 output columns even at column stride 2
    kernel = rng.standard_normal((9, 9))  # dense: row-stack products are the cheaper strategy
    geometry = resolve_geometry(image.shape[:2], kernel.shape, padding, stride, dilation)
    assert direct_module.direct_strategy(kernel, geometry)[0] == "blas"
    geometry, actual, expected = run_and_reference(image, kernel, "direct", padding, stride, dilation)
    strips = {first_row for first_row, _, _, _ in pieces}
    chunks = {first_col for _, _, first_col, _ in pieces}
    assert len(strips) > 1 and max(rows for _, rows, _, _ in pieces) < geometry.out_shape[0]
    assert len(chunks) == math.ceil(geometry.out_shape[1] / 64) > 1
    assert len(pieces) == len(strips) * len(chunks)
    assert_close(actual, expected)


@pytest.mark.parametrize("kernel_shape, vertical_blas", [((9, 7), True), ((2, 5), False)], ids=["gemv", "taps"])
@Geometries
def test_separable_across_strips(
    channels: int, padding: PaddingSpec, stride: PairSpec, dilation: PairSpec, kernel_shape: tuple[int, int],
    vertical_blas: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both ways of the vertical pass (a matrix-vector product per row, or shift-and-add)."""
    monkeypatch.setattr(direct_module, "STRIP_BYTES", 4096)  # the separable engine's strips too
    rng = np.random.default_rng(23)
    image = make_image(rng, 43, 38, channels)
    kh, kw = kernel_shape
    kernel = np.outer(rng.standard_normal(kh), rng.standard_normal(kw))
    kernel += np.outer(rng.standard_normal(kh), rng.standard_normal(kw))  # rank 2: two terms per strip
    geometry = resolve_geometry(image.shape[:2], kernel.shape, padding, stride, dilation)
    assert [term.vertical_blas for term in plan_separable(kernel, geometry).term_plans] == [vertical_blas] * 2
    rows = spy_on_tap_plans(monkeypatch)
    geometry, actual, expected = run_and_reference(image, kernel, "separable", padding, stride, dilation)
    # Every strip makes one horizontal pass per term (and one vertical, without BLAS), so a
    # single strip would have made all of them over every output row.
    assert len(rows) > 2 and max(rows) < geometry.out_shape[0]
    assert_close(actual, expected)


@Geometries
def test_fft_across_tiles_in_both_directions(
    channels: int, padding: PaddingSpec, stride: PairSpec, dilation: PairSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fft_module, "MAX_TILE_ELEMENTS", max(1, channels) * 32 * 32)  # tiles of 32x32 or less
    monkeypatch.setattr(fft_module, "MIN_TILE", 16)
    tiles: list[tuple[int, ...]] = []
    original = np.fft.rfft2

    def rfft2(a: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        if kwargs.get("out") is not None:  # a tile; the kernel's spectrum is made without out=
            tiles.append(a.shape)
        return original(a, *args, **kwargs)

    monkeypatch.setattr(np.fft, "rfft2", rfft2)
    rng = np.random.default_rng(24)
    image = make_image(rng, 70, 90, channels)
    kernel = rng.standard_normal((5, 5))
    geometry = resolve_geometry(image.shape[:2], kernel.shape, padding, stride, dilation)
    plan = fft_module.plan_fft(kernel, geometry, max(1, channels))
    rows_per, cols_per = plan.tiles.out_per_tile
    down, across = math.ceil(geometry.out_shape[0] / rows_per), math.ceil(geometry.out_shape[1] / cols_per)
    assert down > 1 and across > 1
    geometry, actual, expected = run_and_reference(image, kernel, "fft", padding, stride, dilation)
    assert len(tiles) == down * across
    assert_close(actual, expected)


def spy_on_bands(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, str]]:
    """Record ``(first, stop, thread name)`` of every band filter_banded pads and filters."""
    seen: list[tuple[int, int, str]] = []
    original: Callable[..., Iterator[tuple[int, int, np.ndarray, Geometry]]] = bands_module.iter_bands

    def iter_bands(*args: Any, **kwargs: Any) -> Iterator[tuple[int, int, np.ndarray, Geometry]]:
        for first, stop, band, band_geometry in original(*args, **kwargs):
            seen.append((first, stop, threading.current_thread().name))
            yield first, stop, band, band_geometry

    monkeypatch.setattr(bands_module, "iter_bands", iter_bands)
    return seen


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("method", ["direct", "separable", "fft", "auto"])
def test_filter_banded_across_bands(method: str, threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each kernel is planned for the whole image and run band by band (its last band shorter)."""
    monkeypatch.setattr(bands_module, "_BAND_BYTES", 16 * 1024)
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    seen = spy_on_bands(monkeypatch)
    rng = np.random.default_rng(25)
    image = rng.integers(0, 256, (53, 41, 3), dtype=np.uint8)
    kernels = [np.outer([1.0, 2.0, 1.0], rng.standard_normal(5)), rng.standard_normal((3, 5))]
    options: dict[str, Any] = {"padding": (2, 1, 0, 3), "stride": (2, 1), "dilation": (1, 2), "border": "wrap"}
    got = filter_banded(image, kernels, combine="magnitude", method=method, threads=threads, **options)
    geometry = resolve_geometry(image.shape[:2], kernels[0].shape, options["padding"], (2, 1), (1, 2))
    bands = sorted((first, stop) for first, stop, _ in seen)
    assert len(bands) > 2 and bands[0][0] == 0 and bands[-1][1] == geometry.out_shape[0]
    assert all(stop == next_first for (_, stop), (next_first, _) in itertools.pairwise(bands))
    assert len({name for _, _, name in seen}) == threads
    responses = [correlate_reference(image, k, geometry.pad, "wrap", (2, 1), (1, 2)) for k in kernels]
    assert_close(got, np.sqrt(sum(r**2 for r in responses)))


def test_fft_bands_get_tiles_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The FFT plan made for the whole image plans its tiles again for a band: tiles as tall as
    the image would be correct but waste most of every transform on a short band."""
    monkeypatch.setattr(bands_module, "_BAND_BYTES", 64 * 1024)
    heights: list[int] = []
    original = np.fft.rfft2

    def rfft2(a: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        if kwargs.get("out") is not None:
            heights.append(a.shape[-2])
        return original(a, *args, **kwargs)

    monkeypatch.setattr(np.fft, "rfft2", rfft2)
    rng = np.random.default_rng(26)
    image = rng.uniform(0, 255, (300, 40))
    kernel = rng.standard_normal((9, 9))
    geometry = resolve_geometry(image.shape, kernel.shape, "same", 1, 1)
    band = bands_module.band_rows(geometry, 40, 1)
    whole_image_tile = fft_module.plan_fft(kernel, geometry).tiles.tile[0]
    assert band < geometry.out_shape[0]
    got = filter_banded(image, [kernel], method="fft", threads=1)
    assert heights and max(heights) < whole_image_tile
    assert_close(got, correlate_reference(image, kernel, geometry.pad, "reflect"))
