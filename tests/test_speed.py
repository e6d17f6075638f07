"""What makes the engines fast and well-behaved: the fused and BLAS passes agree with the
reference, threads split every catalogue kernel, BLAS and the FFT start no threads of their
own, and Ctrl-C stops a long filter within a second. Speed itself is measured by
benchmarks/bench_core.py, never here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import convcli.core.direct as direct_module
import convcli.core.fft as fft_module
import convcli.core.separable as separable_module
import convcli.core.threads as threads_module
from convcli.core import convolve, resolve_geometry
from convcli.core.engines import plan_engine
from convcli.kernels import builtin_names, load_kernel

from reference import assert_close, correlate_reference


def _blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]


def _gaussian(size: int, sigma: float) -> NDArray[np.float64]:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    kernel: NDArray[np.float64] = np.outer(g, g) / g.sum() ** 2
    return kernel


# --- the fused horizontal pass -----------------------------------------------------------------


@pytest.mark.parametrize("stride, dilation", [((1, 1), (1, 1)), ((2, 3), (1, 2))])
def test_fused_horizontal_pass_matches_the_reference(stride: tuple[int, int], dilation: tuple[int, int]) -> None:
    """A Gaussian's row is dense, so the fused pass (one multiply-add per tap) does it; a rank-2
    kernel adds its second term into the first."""
    rng = np.random.default_rng(31)
    image = rng.uniform(0, 255, (37, 45, 3))
    rank1 = _gaussian(11, 1.5)
    rank2 = rank1 + np.outer(rng.standard_normal(11), rng.uniform(0.5, 1.0, 11))
    for kernel in (rank1, rank2):
        geometry = resolve_geometry(image.shape[:2], kernel.shape, "same", stride, dilation)
        plan = separable_module.plan_separable(kernel, geometry, 3)
        assert all(term.horizontal_fused for term in plan.term_plans)
        actual = convolve(image, kernel, stride=stride, dilation=dilation, method="separable", border="wrap")
        expected = correlate_reference(image, kernel, geometry.pad, "wrap", stride, dilation)
        assert_close(actual, expected)


def test_rows_with_zero_taps_keep_shift_and_add() -> None:
    """einsum would multiply a zero tap by an infinite pixel (NaN); shift-and-add skips it."""
    geometry = resolve_geometry((50, 50), (3, 3), "same", 1, 1)
    sobel = np.outer([1, 2, 1], [-1, 0, 1]).astype(np.float32)
    (term,) = separable_module.plan_separable(sobel, geometry, 1).term_plans
    assert not term.horizontal_fused
    image = np.zeros((5, 7), np.float32)
    image[2, 3] = np.inf
    out = convolve(image, sobel, method="separable", border="zero")
    assert np.isnan(out).sum() == 0 and np.isinf(out).sum() == 6  # the column's own pixels stay finite


# --- integer images converted strip by strip ------------------------------------------------------


@pytest.mark.parametrize(
    "method, strategy",
    [("direct", "taps"), ("direct", "fused"), ("direct", "blas"), ("separable", ""), ("fft", "")],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_engines_convert_an_integer_image_strip_by_strip(
    method: str, strategy: str, dtype: type[np.unsignedinteger[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handed an integer padded image, every engine (each direct strategy forced) gives exactly
    what it gives for the same image in float32, over several strips and bands."""
    monkeypatch.setattr(direct_module, "STRIP_BYTES", 8192)
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    rng = np.random.default_rng(39)
    weights = _gaussian(7, 1.3) if method == "separable" else rng.uniform(0.5, 1.5, (5, 5))
    image = rng.integers(0, np.iinfo(dtype).max, (41, 37, 3), endpoint=True).astype(dtype)
    for stride, dilation in (((1, 1), (1, 1)), ((2, 3), (2, 1))):
        geometry = resolve_geometry(image.shape[:2], weights.shape, "same", stride, dilation)
        plan = plan_engine(weights, geometry, method, 3)
        if strategy:
            plan = replace(direct_module.plan_direct(weights, geometry), strategy=strategy)
        widths = ((geometry.pad[0], geometry.pad[1]), (geometry.pad[2], geometry.pad[3]), (0, 0))
        padded = np.pad(image, widths, mode="reflect")
        as_float = plan.run(padded.astype(np.float32), geometry, threads=2)
        np.testing.assert_array_equal(plan.run(padded, geometry, threads=2), as_float)
        expected = correlate_reference(image, weights, geometry.pad, "reflect", stride, dilation)
        assert_close(as_float, expected)


# --- threads -----------------------------------------------------------------------------------


def _catalogue_matrices() -> Iterator[tuple[str, np.ndarray]]:
    for name in builtin_names():
        for index, matrix in enumerate(load_kernel(name).matrices):
            yield f"{name}[{index}]", np.asarray(matrix, dtype=np.float32)


def test_every_catalogue_kernel_splits_a_1080p_image_over_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """With threads=2 each engine's work on a 1080p RGB image is cut into two bands (the bands
    are not run here: only the split is checked)."""
    decided: list[int] = []

    def split_only(worker: Any, rows: int, threads: int, work: float, align: int) -> None:
        decided.append(threads_module.band_count(threads, rows, work, align))

    monkeypatch.setattr(threads_module, "_run_bands", split_only)
    image = np.zeros((1080, 1920, 3), np.float32)
    for name, matrix in _catalogue_matrices():
        convolve(image, matrix, threads=2)
        assert decided[-1] == 2, name
    assert len(decided) > 20


@pytest.mark.parametrize(
    "method, shape", [("direct", (3, 3)), ("direct", (9, 9)), ("separable", (7, 7)), ("fft", (15, 15))]
)
def test_results_are_bit_identical_whatever_the_thread_count(
    method: str, shape: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    monkeypatch.setattr(fft_module, "MAX_TILE_ELEMENTS", 3 * 40 * 40)  # many FFT tiles
    monkeypatch.setattr(fft_module, "MIN_TILE", 32)
    rng = np.random.default_rng(32)
    image = rng.uniform(0, 255, (113, 97, 3))
    kernel = rng.standard_normal(shape) if method != "separable" else _gaussian(shape[0], 1.2)
    one = convolve(image, kernel, method=method, threads=1)
    for threads in (2, 3, 5):
        np.testing.assert_array_equal(convolve(image, kernel, method=method, threads=threads), one)


def test_fft_threads_share_tiles_not_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """An image one tile tall still splits over two threads: the tiles are shared out."""
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    seen: list[tuple[int, int]] = []
    original = fft_module._fft_tiles

    def spy(*args: Any) -> None:
        seen.append((args[-2], args[-1]))
        original(*args)

    monkeypatch.setattr(fft_module, "_fft_tiles", spy)
    monkeypatch.setattr(fft_module, "MAX_TILE_ELEMENTS", 3 * 64 * 256)
    rng = np.random.default_rng(33)
    image = rng.uniform(0, 255, (40, 900, 3))
    kernel = rng.standard_normal((15, 15))
    geometry = resolve_geometry(image.shape[:2], kernel.shape, "same", 1, 1)
    tiles = fft_module.plan_tiles(geometry, 3)
    assert tiles.out_per_tile[0] >= 40 and tiles.out_per_tile[1] < 900  # one tile row, several columns
    out = convolve(image, kernel, method="fft", threads=2)
    assert len(seen) == 2 and seen[0][0] == 0 and seen[0][1] == seen[1][0]
    assert_close(out, correlate_reference(image, kernel, geometry.pad, "reflect", (1, 1), (1, 1)))


# --- no hidden threads ---------------------------------------------------------------------------


def test_no_blas_product_runs_on_more_than_one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning (the SVD) and every BLAS product of the direct and separable engines run with
    BLAS held to the calling thread, whatever limit the process had."""
    from threadpoolctl import threadpool_limits

    if not _blas_threads():
        pytest.skip("NumPy's BLAS is not visible to threadpoolctl")
    seen: list[list[int]] = []
    original_stack, original_svd = direct_module.row_stack, np.linalg.svd

    def stack_spy(*args: Any) -> Any:
        seen.append(_blas_threads())
        return original_stack(*args)

    def svd_spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(_blas_threads())
        return original_svd(*args, **kwargs)

    monkeypatch.setattr(direct_module, "row_stack", stack_spy)
    monkeypatch.setattr(separable_module, "row_stack", stack_spy)
    monkeypatch.setattr(np.linalg, "svd", svd_spy)
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    rng = np.random.default_rng(34)
    image = rng.uniform(0, 255, (60, 70, 3))
    with threadpool_limits(limits=2, user_api="blas"):
        convolve(image, rng.standard_normal((9, 9)), method="direct", threads=2)
        convolve(image, _gaussian(15, 2.0), method="separable", threads=2)
        assert set(_blas_threads()) == {2}
    assert len(seen) > 4 and all(threads == [1] * len(threads) for threads in seen)


@pytest.mark.parametrize("columns, reach, stride", [(3, 2, 1), (9, 8, 1), (31, 30, 2), (101, 100, 1), (255, 254, 1)])
def test_blas_chunks_are_sane(columns: int, reach: int, stride: int) -> None:
    """Chunks are at least the kernel's reach (so no more than half of every product is overlap),
    never below MIN_CHUNK unless the row is narrower, and within the cache budget otherwise."""
    for out_w in (10, 700, 1920, 13000):
        chunk = direct_module.blas_chunk(columns, 3, reach, stride, out_w)
        assert 1 <= chunk <= out_w
        if chunk < out_w:
            assert chunk >= max(direct_module.MIN_CHUNK, -(-reach // stride))
            span = (chunk - 1) * stride + reach + 1
            floor = max(direct_module.MIN_CHUNK, -(-reach // stride))
            assert columns * span * 3 * 4 <= direct_module.BLAS_CHUNK_BYTES or chunk == floor


def test_a_large_kernel_is_chunked_by_the_cache_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """The case that once let BLAS start threads of its own: a large kernel, method direct."""
    widths: list[int] = []
    original = direct_module.row_stack

    def spy(source: np.ndarray, first_row: int, rows: int, *args: int) -> np.ndarray:
        widths.append(args[4])
        return original(source, first_row, rows, *args)

    monkeypatch.setattr(direct_module, "row_stack", spy)
    rng = np.random.default_rng(35)
    image = rng.uniform(0, 255, (6, 700, 3))
    kernel = rng.standard_normal((5, 101))
    out = convolve(image, kernel, method="direct", padding="valid")
    assert widths and max(widths) <= direct_module.BLAS_CHUNK_BYTES // (101 * 3 * 4) + 100
    expected = correlate_reference(image, kernel, (0, 0, 0, 0), "reflect", (1, 1), (1, 1))
    assert_close(out, expected)


def test_the_fft_engine_starts_no_thread() -> None:
    """NumPy's FFT (pocketfft) runs on the calling thread: no thread appears during a run."""
    tasks = "/proc/self/task"
    if not os.path.isdir(tasks):
        pytest.skip("needs /proc to count threads")
    before = len(os.listdir(tasks))
    counts: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            counts.append(len(os.listdir(tasks)))
            time.sleep(0.0005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        image = np.random.default_rng(36).uniform(0, 255, (600, 800, 3))
        convolve(image, np.random.default_rng(37).standard_normal((31, 31)), method="fft", threads=1)
    finally:
        done.set()
        watcher.join()
    assert counts and max(counts) <= before + 1  # the watcher itself


# --- Ctrl-C --------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["direct", "separable", "fft"])
def test_every_engine_checks_for_a_stop_in_its_pool_bands(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pool threads cannot be interrupted: each engine asks whether its band was abandoned
    between strips (or tiles), several times per band."""
    monkeypatch.setattr(threads_module, "MIN_WORK_PER_THREAD", 1)
    monkeypatch.setattr(direct_module, "STRIP_BYTES", 8192)
    monkeypatch.setattr(fft_module, "MAX_TILE_ELEMENTS", 3 * 40 * 40)
    monkeypatch.setattr(fft_module, "MIN_TILE", 32)
    module = {"direct": direct_module, "separable": separable_module, "fft": fft_module}[method]
    calls: list[str] = []
    original = module.check_abandoned

    def spy() -> None:
        calls.append(threading.current_thread().name)
        original()

    monkeypatch.setattr(module, "check_abandoned", spy)
    rng = np.random.default_rng(38)
    image = rng.uniform(0, 255, (120, 90, 3))
    kernel = _gaussian(9, 1.5) if method == "separable" else rng.standard_normal((9, 9))
    convolve(image, kernel, method=method, threads=2)
    in_pool = [name for name in calls if name != threading.main_thread().name]
    assert len(in_pool) >= 3


def test_ctrl_c_while_waiting_for_other_bands_abandons_them() -> None:
    """Ctrl-C that lands while the calling thread waits for a slower band (its own band done)
    still stops that band: otherwise the process's exit would wait for it to finish."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not Python's default handler here")
    own_band_done, stopped = threading.Event(), threading.Event()

    def worker(r0: int, r1: int) -> None:
        if r0 == 0:
            own_band_done.set()  # the calling thread's band: done at once, then it waits
            return
        try:
            assert own_band_done.wait(timeout=5)
            os.kill(os.getpid(), signal.SIGINT)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                threads_module.check_abandoned()
                time.sleep(0.001)
        finally:
            stopped.set()

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        threads_module.run_bands(worker, 2, 2, work=1e12)
    assert stopped.is_set() and time.monotonic() - start < 1.0


_EARLY_CHILD = textwrap.dedent(
    """
    import os, signal, time
    import convcli.core.threads as threads

    def worker(r0, r1):
        if r0:  # a pool band, started while the caller may still be handing out the others
            os.kill(os.getpid(), signal.SIGINT)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                threads.check_abandoned()
                time.sleep(0.001)

    try:
        threads.run_bands(worker, 8, 8, work=1e12)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    """
)


def test_ctrl_c_while_bands_start_does_not_hold_up_the_exit() -> None:
    """Ctrl-C that lands while the bands are handed out: the process still ends at once (a
    worker thread started but not yet registered must not be one the exit waits for)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    start = time.monotonic()
    command = [sys.executable, "-c", _EARLY_CHILD]
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=20)
    assert result.returncode == 0 and result.stdout == "stopped\n", result.stderr
    assert time.monotonic() - start < 10  # the bands would run for 30 s


_CHILD = textwrap.dedent(
    """
    import sys, threading
    import numpy as np
    import convcli.core.direct as direct, convcli.core.separable as separable
    from convcli.core import convolve, resolve_geometry
    from convcli.core.engines import plan_engine

    announced = threading.Event()

    def announcing(original):
        def check():
            # From a pool thread: the bands are running on every thread.
            if threading.current_thread() is not threading.main_thread() and not announced.is_set():
                announced.set()
                print("ready", flush=True)
            original()
        return check

    for module in (direct, separable):
        module.check_abandoned = announcing(module.check_abandoned)
    rng = np.random.default_rng(0)
    sparse = np.zeros((101, 101))
    sparse.flat[rng.choice(101 * 101, 500, replace=False)] = rng.uniform(0.5, 1.5, 500)
    jobs = [
        ("blas", (1000, 1000, 3), rng.standard_normal((151, 151)), "direct", 4),
        ("taps", (2000, 2000, 3), sparse, "direct", 2),
        ("separable", (1000, 1000, 3), rng.standard_normal((61, 61)), "separable", 2),
    ]
    for name, shape, kernel, method, threads in jobs:
        image = rng.uniform(0, 255, shape).astype(np.float32)
        geometry = resolve_geometry(shape[:2], kernel.shape, "same", 1, 1)
        assert getattr(plan_engine(kernel, geometry, method, 3), "strategy", method) == name, name
        announced.clear()
        try:
            convolve(image, kernel, method=method, threads=threads)
            print("finished", name, flush=True)
        except KeyboardInterrupt:
            print("stopped", name, flush=True)
    """
)


def test_ctrl_c_stops_a_long_filter_within_a_second() -> None:
    """A real process, a real SIGINT, on filters that would run for many seconds: each one
    stops, with every band, within a second."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    delays: list[tuple[str, float]] = []
    try:
        for _ in range(3):
            line = child.stdout.readline()
            assert line == "ready\n", (line, child.stderr.read() if child.stderr else "")
            sent = time.monotonic()
            child.send_signal(signal.SIGINT)
            line = child.stdout.readline()
            delays.append((line.strip(), time.monotonic() - sent))
            assert line.startswith("stopped"), line
        # The process ends at once: no band of an interrupted filter is still running for the
        # interpreter's exit to wait for.
        assert child.wait(timeout=2) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert all(delay < 1.0 for _, delay in delays), delays
