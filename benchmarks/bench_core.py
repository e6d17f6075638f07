"""Time convcli's convolution core against OpenCV, scipy.ndimage and Pillow in one run.

Not a test: run it by hand and paste the tables it prints.

    PYTHONPATH=. python benchmarks/bench_core.py                 # 1920x1080 RGB, the targets
    PYTHONPATH=. python benchmarks/bench_core.py --quick         # 960x540, three repeats
    PYTHONPATH=. python benchmarks/bench_core.py --engines       # also every engine forced

The image is 8-bit RGB (seeded noise) and every result is float32, as ``convolve(uint8_image,
kernel)`` returns it: OpenCV gets the same uint8 image with a float32 (or, on the integer
kernels, its ``CV_16S``) output depth, scipy.ndimage a float32 output. Pillow's
``ImageFilter.Kernel`` filters the uint8 image to uint8 (it can do nothing else) and only
3x3 and 5x5 kernels. Borders are reflect-101 everywhere (scipy's "mirror").

Two tables: one thread on each side (``threads=1``, ``cv2.setNumThreads(1)``), then two threads
on each side. scipy.ndimage and Pillow have no threads: their one-thread times appear in both.
Times are medians of ``--repeat`` runs after a warm-up run, in ms, measured alternately with the
peer of the row, so a busy machine slows both alike; the ratio columns divide convcli by the
peer (below 1: convcli is faster). OpenCV is optional (``pip install opencv-python-headless``),
never a runtime dependency of convcli.

Targets at one thread: the Gaussians within 3x ``sepFilter2D``; dense 15x15 and 31x31 within
1.5x ``filter2D``; the integer kernels within 2.5x OpenCV's ``CV_16S`` path; every row at most
half of scipy.ndimage's time and faster than Pillow where Pillow can. At two threads, convcli
at least 1.6x faster than itself at one (the ``speed-up`` column).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from machine import cpu_model, parallel_capacity
from numpy.typing import NDArray

from convcli.core import convolve, resolve_geometry
from convcli.core.engines import choose_method

try:
    import cv2
except ImportError:  # optional peer
    cv2 = None  # type: ignore[assignment,unused-ignore]  # a module once opencv ships its types

SLOW_MS = 3000.0
Timed = Callable[[], object]
Peer = Callable[[NDArray[np.uint8]], object]


@dataclass
class Row:
    """One kernel: how convcli and each peer filter it, and the times measured."""

    name: str
    kernel: NDArray[np.float32]
    peer_name: str = "-"
    peer: Peer | None = None  # OpenCV's best call for this kernel
    scipy: Peer | None = None
    pillow: bool = False
    auto: str = ""
    times: dict[str, float | None] = field(default_factory=dict)


def gaussian_1d(size: int, sigma: float) -> NDArray[np.float32]:
    """Normalised Gaussian taps of ``size`` (odd) with standard deviation ``sigma``."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    taps: NDArray[np.float32] = (g / g.sum()).astype(np.float32)
    return taps


def make_rows(sizes: list[int]) -> list[Row]:
    """The kernels of the tables, each with its OpenCV, scipy and Pillow counterparts."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    f32 = np.float32

    def scipy_dense(kernel: NDArray[np.float32]) -> Peer:
        return lambda image: ndimage.correlate(image, kernel[:, :, None], output=f32, mode="mirror")

    def scipy_separable(g: NDArray[np.float32]) -> Peer:
        def run(image: NDArray[np.uint8]) -> object:
            rows = ndimage.correlate1d(image, g, axis=0, output=f32, mode="mirror")
            return ndimage.correlate1d(rows, g, axis=1, output=f32, mode="mirror")

        return run

    rows: list[Row] = []
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], f32)
    scharr = np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], f32)
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], f32)
    box = np.ones((3, 3), f32)
    ninth = (box / 9).astype(f32)
    b101 = cv2.BORDER_REFLECT_101 if cv2 is not None else 0
    integer: list[tuple[str, NDArray[np.float32], str, Peer | None]] = [
        (
            "sobel-x",
            sobel,
            "Sobel 16S",
            None if cv2 is None else partial(cv2.Sobel, ddepth=cv2.CV_16S, dx=1, dy=0, ksize=3, borderType=b101),
        ),
        (
            "laplacian",
            laplacian,
            "filter2D 16S",
            None if cv2 is None else partial(cv2.filter2D, ddepth=cv2.CV_16S, kernel=laplacian, borderType=b101),
        ),
        (
            "scharr-x",
            scharr,
            "Scharr 16S",
            None if cv2 is None else partial(cv2.Scharr, ddepth=cv2.CV_16S, dx=1, dy=0, borderType=b101),
        ),
        # A box with its divisor; OpenCV's 16-bit path gives the sum (the divisor is convcli's extra).
        (
            "box 3x3 / 9",
            ninth,
            "boxFilter 16S",
            None if cv2 is None else partial(cv2.boxFilter, ddepth=-1, ksize=(3, 3), borderType=b101),
        ),
    ]
    for name, kernel, peer_name, peer in integer:
        rows.append(Row(name, kernel, peer_name, peer, scipy_dense(kernel), pillow=True))
    for sigma, size in ((1.5, 11), (5.0, 31)):
        g = gaussian_1d(size, sigma)
        peer = (
            None if cv2 is None else partial(cv2.sepFilter2D, ddepth=cv2.CV_32F, kernelX=g, kernelY=g, borderType=b101)
        )
        rows.append(
            Row(
                f"gaussian s={sigma:g} ({size} taps)",
                np.outer(g, g).astype(f32),
                "sepFilter2D f32",
                peer,
                scipy_separable(g),
            )
        )
    for size in sizes:
        kernel = (rng.standard_normal((size, size)) / size).astype(f32)
        peer = None if cv2 is None else partial(cv2.filter2D, ddepth=cv2.CV_32F, kernel=kernel, borderType=b101)
        rows.append(Row(f"dense {size}x{size}", kernel, "filter2D f32", peer, scipy_dense(kernel), pillow=size <= 5))
    return rows


def median_ms(functions: list[Timed], repeat: int) -> list[float]:
    """Median wall times in ms of each function, run alternately ``repeat`` times after one
    untimed warm-up run each (thread pools, FFT plans and page faults belong to the first call);
    a function whose first run is very slow is timed by that run alone."""
    firsts = []
    for function in functions:
        start = time.perf_counter()
        function()
        firsts.append((time.perf_counter() - start) * 1e3)
    times: list[list[float]] = [[] for _ in functions]
    for _ in range(repeat):
        for index, function in enumerate(functions):
            if firsts[index] > SLOW_MS:
                continue
            start = time.perf_counter()
            function()
            times[index].append((time.perf_counter() - start) * 1e3)
    return [statistics.median(t) if t else first for t, first in zip(times, firsts, strict=True)]


def time_rows(image: NDArray[np.uint8], rows: list[Row], repeat: int, threads: list[int], engines: bool) -> None:
    """Fill every row's ``times``: convcli and OpenCV at each thread count, scipy and Pillow once."""
    for row in rows:
        time_row(image, row, repeat, threads, engines)
        print(f"  done {row.name}", file=sys.stderr)


def time_row(image: NDArray[np.uint8], row: Row, repeat: int, threads: list[int], engines: bool) -> None:
    """Fill one row's ``times``."""
    from PIL import Image, ImageFilter

    height, width = image.shape[:2]
    kernel = row.kernel
    row.auto = choose_method(kernel, resolve_geometry((height, width), kernel.shape, "same", 1, 1), 3)
    for count in threads:
        if cv2 is not None:
            cv2.setNumThreads(count)

        def mine(count: int = count, method: str = "auto") -> object:
            return convolve(image, kernel, border="reflect", method=method, threads=count)

        if row.peer is not None:
            both = median_ms([mine, partial(row.peer, image)], repeat)
            row.times[f"convcli {count}"], row.times[f"peer {count}"] = both
        else:
            row.times[f"convcli {count}"], row.times[f"peer {count}"] = median_ms([mine], repeat)[0], None
        if engines and count == 1:
            for method in ("direct", "separable", "fft"):
                row.times[method] = median_ms([partial(mine, 1, method)], repeat)[0]
    # scipy is slow on large dense kernels (seconds): fewer runs there.
    scipy_run = row.scipy
    if scipy_run is not None:
        row.times["scipy"] = median_ms([lambda: scipy_run(image)], repeat if kernel.size <= 81 else 1)[0]
    if row.pillow:
        size = kernel.shape[0]
        scale = float(kernel.sum()) or 1.0
        pil_kernel = ImageFilter.Kernel((size, size), (kernel * scale).ravel().tolist(), scale=scale)
        pil_image = Image.fromarray(image, "RGB")
        row.times["pillow"] = median_ms([lambda: pil_image.filter(pil_kernel)], repeat)[0]


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def ratio(mine: float | None, peer: float | None) -> str:
    return "-" if mine is None or peer is None else f"{mine / peer:.2f}"


def print_table(rows: list[Row], count: int, engines: bool) -> None:
    """One markdown table: convcli and OpenCV at ``count`` threads, scipy and Pillow."""
    head = [
        "kernel",
        "auto picks",
        "convcli",
        "OpenCV call",
        "OpenCV",
        "/OpenCV",
        "scipy",
        "/scipy",
        "Pillow",
        "/Pillow",
    ]
    if count != 1:
        head.append("speed-up vs 1 thread")
    if engines and count == 1:
        head += ["direct", "separable", "fft"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        mine, peer = row.times[f"convcli {count}"], row.times[f"peer {count}"]
        cells = [
            row.name,
            row.auto,
            fmt(mine),
            row.peer_name,
            fmt(peer),
            ratio(mine, peer),
            fmt(row.times.get("scipy")),
            ratio(mine, row.times.get("scipy")),
            fmt(row.times.get("pillow")),
            ratio(mine, row.times.get("pillow")),
        ]
        if count != 1:
            single = row.times.get("convcli 1")
            cells.append("-" if single is None or mine is None else f"{single / mine:.2f}x")
        if engines and count == 1:
            cells += [fmt(row.times.get(method)) for method in ("direct", "separable", "fft")]
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1920x1080", help="image size WxH (default 1920x1080, the targets' size)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing; the median is reported")
    parser.add_argument("--quick", action="store_true", help="960x540, three repeats")
    parser.add_argument("--kernels", default="3,5,9,15,31", help="sizes of the dense rows (default 3,5,9,15,31)")
    parser.add_argument("--threads", default="1,2", help="thread counts, one table each (default 1,2)")
    parser.add_argument("--engines", action="store_true", help="also time every engine forced, one thread")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    repeat = max(1, args.repeat)
    if args.quick:
        width, height, repeat = 960, 540, 3
    threads = [int(v) for v in args.threads.split(",")]
    if 1 not in threads:
        threads.insert(0, 1)
    image = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    rows = make_rows([int(v) for v in args.kernels.split(",")])
    load_start, start = os.getloadavg()[0], time.perf_counter()
    capacity = [parallel_capacity(max(threads))] if max(threads) > 1 else []
    time_rows(image, rows, repeat, threads, args.engines)
    capacity += [parallel_capacity(max(threads))] if max(threads) > 1 else []
    elapsed = time.perf_counter() - start
    print(f"Date: {datetime.datetime.now().isoformat(timespec='minutes')}, {elapsed:.0f} s  ")
    # Other processes on a shared machine slow everything down; the ratios, measured alternately
    # in the same run, suffer less than the absolute times.
    load_end = os.getloadavg()[0]
    print(f"1-minute load average at start/end: {load_start:.2f} / {load_end:.2f} (on {os.cpu_count()} CPUs)  ")
    cv2_version = cv2.__version__ if cv2 is not None else "not installed"
    print(f"Python {platform.python_version()}, numpy {np.__version__}, OpenCV {cv2_version}  ")
    print(f"CPU: {cpu_model()}  ")
    if capacity:
        # The ceiling of any speed-up column: what the machine gave two busy processes just now.
        shown = " / ".join(f"{c:.2f}x" for c in capacity)
        print(f"{max(threads)} processes of pure Python at start/end ran {shown} faster than one  ")
    print(
        f"Image: {width}x{height} RGB uint8 in, float32 out (int16 for OpenCV's 16S calls, uint8 for Pillow)"
        f"; median of {repeat}; ms  "
    )
    for count in threads:
        print()
        print(f"**{count} thread{'s' if count != 1 else ''}** (OpenCV too; scipy and Pillow: one)")
        print()
        print_table(rows, count, args.engines)


if __name__ == "__main__":
    main()
