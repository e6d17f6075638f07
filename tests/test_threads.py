"""Threads over bands of output rows (convcli.core.threads): the split, and results that do not
depend on it."""

from __future__ import annotations

import os

import numpy as np
import pytest

import convcli.core.threads as threads_module
from convcli.core import convolve
from convcli.core.threads import one_blas_thread, run_bands
from convcli.errors import ParameterError

from reference import assert_close, correlate_reference

ENGINE_NAMES = ("direct", "separable", "fft")


@pytest.mark.parametrize("method", [*ENGINE_NAMES, "auto"])
def test_threads_give_the_same_result(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Force real banding even on a test-sized image.
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    rng = np.random.default_rng(4)
    image = rng.uniform(0, 255, (97, 83, 3))
    kernel = rng.standard_normal((7, 7))
    one = convolve(image, kernel, stride=(2, 1), method=method, threads=1)
    two = convolve(image, kernel, stride=(2, 1), method=method, threads=2)
    three = convolve(image, kernel, stride=(2, 1), method=method, threads=3)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-5 * np.abs(one).max())
    np.testing.assert_allclose(three, one, rtol=0, atol=1e-5 * np.abs(one).max())


def test_fft_threads_split_on_tile_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image several FFT tiles tall: bands start on tile boundaries, result unchanged."""
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    calls: list[tuple[int, int]] = []
    original = threads_module.run_bands

    def spy(worker: threads_module.BandWorker, rows: int, threads: int, work: float, align: int = 1) -> None:
        calls.append((rows, align))
        return original(worker, rows, threads, work, align)

    monkeypatch.setattr("convcli.core.fft.run_bands", spy)
    monkeypatch.setattr("convcli.core.fft.MAX_TILE_ELEMENTS", 3 * 256 * 256)  # small tiles
    rng = np.random.default_rng(8)
    image = rng.uniform(0, 255, (700, 300, 3))
    kernel = rng.standard_normal((7, 7))
    one = convolve(image, kernel, method="fft", threads=1)
    two = convolve(image, kernel, method="fft", threads=2)
    rows, align = calls[-1]
    assert align < rows  # several tile rows, so two bands really ran
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-5 * np.abs(one).max())
    expected = correlate_reference(image, kernel, (3, 3, 3, 3), "reflect", (1, 1), (1, 1))
    assert_close(two, expected)


def test_band_edges_respect_alignment() -> None:
    assert threads_module.band_edges(1000, 2, align=300) == [0, 600, 1000]
    assert threads_module.band_edges(7, 2) == [0, 3, 7]
    assert threads_module.band_count(2, 250, 1e12, align=300) == 1


def test_bands_really_split_the_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[int, int]] = []
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    threads_module.run_bands(lambda a, b: seen.append((a, b)), 10, 3, 1e9)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 10)]


def test_small_jobs_stay_on_one_thread() -> None:
    assert threads_module.band_count(8, 100, 1000.0) == 1
    assert threads_module.band_count(2, 2160, 1e9) == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_threads_validation_names_the_parameter(bad: object) -> None:
    with pytest.raises(ParameterError, match="`threads`"):
        convolve(np.zeros((5, 5)), np.ones((3, 3)), threads=bad)  # type: ignore[arg-type]  # wrong on purpose


@pytest.mark.parametrize("method", ["direct", "separable", "auto"])
def test_threads_none_uses_one_thread_per_cpu(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``threads=None`` asks for os.cpu_count() threads and really runs that many bands."""
    monkeypatch.setattr(os, "cpu_count", lambda: 3)  # what resolve_threads(None) asks
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    decided: list[tuple[int, int]] = []  # (threads asked for, bands run)
    splits: list[list[int]] = []
    band_count, band_edges = threads_module.band_count, threads_module.band_edges

    def count_spy(threads: int, rows: int, work: float, align: int = 1) -> int:
        decided.append((threads, band_count(threads, rows, work, align)))
        return decided[-1][1]

    def edges_spy(rows: int, bands: int, align: int = 1) -> list[int]:
        splits.append(band_edges(rows, bands, align))
        return splits[-1]

    monkeypatch.setattr(threads_module, "band_count", count_spy)
    monkeypatch.setattr(threads_module, "band_edges", edges_spy)
    rng = np.random.default_rng(11)
    image = rng.uniform(0, 255, (61, 47, 3))
    kernel = np.outer([1.0, 2.0, 1.0], [-1.0, 0.0, 1.0])
    several = convolve(image, kernel, method=method, threads=None)
    assert decided == [(3, 3)]
    assert len(splits) == 1 and len(splits[0]) == 4 and splits[0][0] == 0 and splits[0][-1] == 61
    one = convolve(image, kernel, method=method, threads=1)
    assert decided[-1] == (1, 1)
    np.testing.assert_array_equal(several, one)


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def test_blas_stays_on_the_calling_thread_inside_bands() -> None:
    """Inside every band BLAS may use one thread (convcli's threads are the bands); the limit
    found before is restored afterwards, also when bands of several calls overlap."""
    from threadpoolctl import threadpool_limits

    if not _blas_threads():
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl")
    with threadpool_limits(limits=2, user_api="blas"):
        assert set(_blas_threads()) == {2}
        seen: list[list[int]] = []

        def worker(r0: int, r1: int) -> None:
            seen.append(_blas_threads())

        run_bands(worker, 64, 2, work=1e12)
        assert len(seen) == 2 and all(threads == [1] * len(threads) for threads in seen)
        assert set(_blas_threads()) == {2}
        # two callers overlapping: the first in sets the limit, the last out restores it
        with one_blas_thread():
            run_bands(worker, 64, 2, work=1e12)
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {2}
