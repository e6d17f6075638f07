"""Filtering a Dask array in tiles (convcli.cluster.tiles) and ``apply --scheduler``: the same pixels as
the in-memory path (convcli.pipeline.render, and ``apply`` without ``--scheduler``)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")

from convcli.cluster.client import ClusterError, connect  # noqa: E402
from convcli.cluster.tiles import filter_dask, filter_file_dask, import_dask_array  # noqa: E402
from convcli.kernels import Kernel  # noqa: E402
from convcli.options import JobOptions  # noqa: E402
from convcli.pipeline import render  # noqa: E402

from conftest import main_in_process  # noqa: E402

BORDERS = ("reflect", "symmetric", "edge", "wrap", "zero", "constant")
_RNG = np.random.default_rng(20261129)
GRAY = _RNG.integers(0, 256, (130, 170), dtype=np.uint8)
SMALL = _RNG.integers(0, 256, (70, 90), dtype=np.uint8)
RGB = _RNG.integers(0, 256, (60, 80, 3), dtype=np.uint8)
DEEP = _RNG.integers(0, 65536, (60, 80), dtype=np.uint16)
# A 15x15 kernel of full rank: method auto sends it to the FFT engine at stride 1.
DENSE = Kernel("dense", "random taps", (_RNG.normal(0.0, 1.0, (15, 15)) / 15,))
# Even-sized, off-centre anchor.
ANCHORED = Kernel("anchored", "random taps", (_RNG.normal(0.0, 1.0, (4, 5)),), anchor=(0, 3))
MIXER = Kernel("mixer", "colour mixer", (), weights=_RNG.normal(0.0, 0.4, (3, 3, 3, 3)), bias=np.array([0.1, 0, -0.2]))


Case = tuple[np.ndarray[Any, Any], tuple[int, int], list[Any], JobOptions]


def _compare(cases: list[Case]) -> list[str]:
    """Each case tiled (all computed at once on the threaded scheduler) against render; the failures."""
    lazy = [
        filter_dask(da.from_array(image, chunks=chunks + (-1,) * (image.ndim - 2)), kernels, job)
        for image, chunks, kernels, job in cases
    ]
    computed = da.compute(*lazy, scheduler="threads")
    failures = []
    for (image, chunks, kernels, job), got in zip(cases, computed, strict=True):
        want = render(image, kernels, job.filter, job.output)
        if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want, equal_nan=True):
            names = [k if isinstance(k, str) else k.name for k in kernels]
            failures.append(f"{names} {chunks} {job.filter} {job.output.mode} {job.output.depth}")
    return failures


@pytest.mark.parametrize("border", BORDERS)
def test_tiles_equal_in_memory_for_every_padding_stride_and_dilation(border: str) -> None:
    # Every padding with each stride and each dilation, the kernels in turn (pairwise coverage).
    kernels: Iterator[list[Any]] = itertools.cycle((["sobel"], ["gaussian:sigma=1.5", "laplacian"], [ANCHORED]))
    cases = [
        (
            GRAY,
            (37, 53),
            next(kernels),
            JobOptions.from_values(border=border, border_value=33.3, padding=padding, stride=stride, dilation=dilation),
        )
        for padding in ("same", "valid", "full", (3, 0, 1, 5))
        for stride, dilation in ((1, (2, 3)), ((3, 2), 1))
    ]
    assert _compare(cases) == []


def test_wrap_reaches_across_chunks_smaller_than_the_kernel() -> None:
    # The padded rows at the top come from the image's last chunk, 9 reach across several chunks of 4,
    # checked against an independent reference (scipy's grid-wrap), unrounded.
    ndimage = pytest.importorskip("scipy.ndimage")
    image = SMALL.astype(np.float32)
    kernel = _RNG.normal(0.0, 1.0, (9, 7)).astype(np.float32)
    job = JobOptions.from_values(border="wrap", depth="float", method="direct")
    got = filter_dask(da.from_array(image, chunks=(4, 5)), Kernel("k", "", (kernel.astype(np.float64),)), job)
    want = ndimage.correlate(image.astype(np.float64), kernel.astype(np.float64), mode="grid-wrap")
    np.testing.assert_allclose(got.compute(scheduler="threads"), want, rtol=1e-5, atol=1e-3)


def test_stride_lands_on_the_in_memory_pixels() -> None:
    # The identity kernel with stride 3 keeps every third pixel from the first, whatever the chunks.
    job = JobOptions.from_values(stride=3)
    got = filter_dask(da.from_array(SMALL, chunks=(7, 11)), "identity", job).compute(scheduler="threads")
    assert np.array_equal(got, SMALL[::3, ::3])


def test_sets_chains_output_modes_depths_and_inputs() -> None:
    cases: list[Case] = []
    images: Iterator[np.ndarray[Any, Any]] = itertools.cycle((SMALL, DEEP, RGB))
    for kernels in (["kirsch"], ["box", "sobel", "kirsch"], [DENSE], ["dog"]):
        for mode, depth in (("abs", 8), ("normalize", 8), ("normalize", 16), ("abs", "float")):
            job = JobOptions.from_values(mode=mode, depth=depth, scale=0.7, offset=5, flip=True)
            cases.append((next(images), (23, 31), kernels, job))
    for image in (SMALL, RGB):
        cases.append((image, (23, 31), ["gaussian:sigma=2", "sobel"], JobOptions.from_values(linear=True, stride=2)))
    cases.append((RGB, (17, 19), [MIXER, "sobel"], JobOptions.from_values(border="constant", border_value=200)))
    assert _compare(cases) == []


@pytest.mark.parametrize("method", ["direct", "separable", "fft"])
def test_every_engine_gives_the_in_memory_pixels(method: str) -> None:
    cases = [
        (GRAY, (37, 53), kernels, JobOptions.from_values(method=method, stride=stride, border="wrap", depth=depth))
        for kernels, stride, depth in ((["gaussian:sigma=2"], 2, 16), ([DENSE], 1, 8), (["box", "kirsch"], 1, 16))
    ]
    assert _compare(cases) == []


def test_importing_tiles_needs_no_dask() -> None:
    code = "import sys, convcli.cluster.tiles; print([m for m in ('dask', 'distributed', 'zarr') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_missing_dask_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ClusterError, match=r"pip install 'convcli\[dask\]'"):
        import_dask_array()


def test_an_unreachable_scheduler_is_a_usage_error_within_the_timeout() -> None:
    address = "tcp://127.0.0.1:9"
    with pytest.raises(ClusterError, match=r"tcp://127\.0\.0\.1:9") as caught, connect(address, timeout=0.5):
        pass
    assert caught.value.exit_code == 2


# -- apply --scheduler on a real cluster of worker processes --------------------------------------


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def tiled_tiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiles") / "gray.tif"
    tifffile.imwrite(path, _RNG.integers(0, 256, (300, 420), dtype=np.uint8), tile=(64, 64))
    return path


@pytest.fixture(scope="module")
def colour_tiff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tiles") / "colour16.tif"
    samples = _RNG.integers(0, 65536, (150, 200, 3), dtype=np.uint16)
    tifffile.imwrite(path, samples, tile=(32, 48), photometric="rgb")
    return path


@pytest.mark.parametrize(
    "colour, suffix, options",
    [
        (False, ".tif", ["-k", "gaussian:sigma=2", "-k", "sobel", "--border", "wrap", "--stride", "2"]),
        (True, ".zarr", ["-k", "kirsch", "--padding", "valid", "--dilation", "2", "--depth", "16"]),
    ],
)
def test_apply_on_a_cluster_writes_the_in_memory_pixels(
    capsys: pytest.CaptureFixture[str],
    scheduler: str,
    tiled_tiff: Path,
    colour_tiff: Path,
    tmp_path: Path,
    colour: bool,
    suffix: str,
    options: list[str],
) -> None:
    source = colour_tiff if colour else tiled_tiff
    code, _, err = main_in_process(capsys, "apply", str(source), *options, "-o", str(tmp_path / "mem.tif"))
    assert code == 0, err
    target = tmp_path / f"out{suffix}"
    code, _, err = main_in_process(capsys, "apply", str(source), *options, "-o", str(target), "--scheduler", scheduler)
    assert code == 0, err
    written = tifffile.imread(target) if suffix == ".tif" else np.asarray(zarr.open_array(str(target), mode="r"))
    assert np.array_equal(written, tifffile.imread(tmp_path / "mem.tif"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["mem.tif", target.name])


def test_an_interrupted_cluster_run_leaves_no_file(scheduler: str, tiled_tiff: Path, tmp_path: Path) -> None:
    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    for name in ("out.tif", "out.zarr"):
        with pytest.raises(KeyboardInterrupt):
            filter_file_dask(tiled_tiff, tmp_path / name, "sobel", scheduler=scheduler, progress=interrupt, block=64)
    assert list(tmp_path.iterdir()) == []


def test_a_source_that_cannot_be_read_in_parts_is_refused_before_connecting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(b"not read")
    code, _, err = main_in_process(
        capsys, "apply", str(source), "-k", "sobel", "-o", str(tmp_path / "o.tif"), "--scheduler", "tcp://127.0.0.1:9"
    )
    assert code == 2
    assert err.count("\n") == 1 and "convert it first" in err


@pytest.mark.parametrize("output", [{"depth": 8}, {"depth": 16}, {"depth": "float"}, {"mode": "normalize"}])
def test_fft_blocks_follow_the_in_memory_bands_of_a_tall_image(output: dict[str, Any]) -> None:
    # Tall enough for render's last step to run in several bands, each with its own FFT tiles:
    # mapped band by band to 8 bits, or (from 8-bit samples) mapped after all the bands.
    tall = np.random.default_rng(3).integers(0, 256, (2000, 1500), dtype=np.uint8)
    job = JobOptions.from_values(method="fft", border="wrap", **output)
    assert _compare([(tall, (700, 1500), [DENSE], job)]) == []


def test_integer_kernels_in_blocks_give_the_exact_integer_engines_values() -> None:
    # 8-bit samples take the exact integer engine in memory; float and 16-bit output would show the
    # float engines' rounding (a 15x15 box through a BLAS product, Scharr through its SVD factors).
    cases = [
        (GRAY, (37, 53), kernels, JobOptions.from_values(border=border, **output))
        for kernels in (["scharr-x"], ["sobel-5x5"], ["box:size=15"], ["scharr"])
        for border, output in (("wrap", {"depth": "float"}), ("reflect", {"depth": 16, "stride": 2}))
    ]
    assert _compare(cases) == []
