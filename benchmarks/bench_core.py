"""Time convcli's convolution core against scipy.ndimage, Pillow and OpenCV in one run.

Not a test: run it by hand and paste the table it prints.

    PYTHONPATH=. python benchmarks/bench_core.py            # 3840x2160 RGB, kernels 3..31
    PYTHONPATH=. python benchmarks/bench_core.py --quick    # 960x540, kernels 3, 9, 31
    PYTHONPATH=. python benchmarks/bench_core.py --size 1920x1080 --repeat 5

Every peer runs single-threaded, as does convcli (``threads=1``); a separate column shows convcli
with ``threads=2``. convcli and scipy filter the float32 image, Pillow the uint8 one, OpenCV both.
Border handling is the same everywhere (reflect-101 / scipy "mirror"). Times are the median of
``--repeat`` runs in milliseconds (one run for peers slower than ~3 s); ratios are convcli (auto,
one thread) divided by the peer, so below 1 means convcli is faster. OpenCV is optional
(``pip install opencv-python-headless``); it is never a runtime dependency of convcli.
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

import numpy as np
from machine import cpu_model
from numpy.typing import NDArray

from convcli.core import convolve, resolve_geometry
from convcli.core.engines import choose_method
from convcli.core.separable import kernel_rank

try:
    import cv2
except ImportError:  # optional peer
    cv2 = None  # type: ignore[assignment,unused-ignore]  # a module once opencv ships its types

SLOW_MS = 3000.0


def median_ms(function: Callable[[], object], repeat: int) -> float:
    """Median wall time in ms of ``repeat`` runs after one untimed warm-up run (thread pools,
    FFT plans and page faults belong to the first call); a very slow first run is the answer."""
    start = time.perf_counter()
    function()
    first = (time.perf_counter() - start) * 1e3
    if first > SLOW_MS:
        return first
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1e3)
        if times[-1] > SLOW_MS:
            break
    return statistics.median(times)


def gaussian_1d(size: int) -> NDArray[np.float32]:
    """Normalised Gaussian taps with sigma = size / 6 (the kernel reaches 3 sigma)."""
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * (size / 6) ** 2))
    taps: NDArray[np.float32] = (g / g.sum()).astype(np.float32)
    return taps


def milliseconds(value: object) -> float | None:
    """A timing cell of a row: a number of ms, or None where the contender was not run."""
    return float(value) if isinstance(value, (int, float)) else None


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def ratio(mine: float, peer: float | None) -> str:
    return "-" if peer is None else f"{mine / peer:.2f}"


def run(width: int, height: int, sizes: list[int], repeat: int) -> list[dict[str, object]]:
    """Time every contender for every kernel; returns one row per (kernel kind, size)."""
    rng = np.random.default_rng(0)
    image_u8 = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    if cv2 is not None:
        cv2.setNumThreads(1)
    rows = []
    for kind in ("random", "gaussian"):
        for size in sizes:
            if kind == "random":
                kernel = (rng.standard_normal((size, size)) / size).astype(np.float32)
            else:
                g = gaussian_1d(size)
                kernel = np.outer(g, g).astype(np.float32)
            rows.append(time_kernel(image_u8, kind, kernel, repeat))
            print(f"  done {kind} {size}x{size}", file=sys.stderr)
    return rows


def time_kernel(image_u8: NDArray[np.uint8], kind: str, kernel: NDArray[np.float32], repeat: int) -> dict[str, object]:
    """One row of the table: convcli's engines and every peer on one kernel."""
    from PIL import Image, ImageFilter
    from scipy import ndimage

    image = image_u8.astype(np.float32)
    height, width = image.shape[:2]
    size = kernel.shape[0]
    row: dict[str, object] = {"kind": kind, "size": size}
    geometry = resolve_geometry((height, width), (size, size), "same", 1, 1)
    row["auto_method"] = choose_method(kernel, geometry, 3)

    def mine(method: str, threads: int = 1) -> None:
        convolve(image, kernel, border="reflect", method=method, threads=threads)

    row["auto"] = median_ms(lambda: mine("auto"), repeat)
    row["auto_t2"] = median_ms(lambda: mine("auto", 2), repeat)
    row["direct"] = median_ms(lambda: mine("direct"), repeat) if size <= 15 else None
    low_rank = kernel_rank(kernel) <= size // 2
    row["separable"] = median_ms(lambda: mine("separable"), repeat) if low_rank else None
    row["fft"] = median_ms(lambda: mine("fft"), repeat) if size >= 5 else None
    g = gaussian_1d(size)
    if kind == "random":
        row["scipy"] = median_ms(
            lambda: ndimage.correlate(image, kernel[:, :, None], mode="mirror"), 1 if size >= 9 else repeat
        )
    else:
        row["scipy"] = median_ms(
            lambda: ndimage.correlate1d(ndimage.correlate1d(image, g, axis=0, mode="mirror"), g, axis=1, mode="mirror"),
            repeat,
        )
    row["pillow"] = None
    if size <= 5 and kind == "random":
        pil_image = Image.fromarray(image_u8, "RGB")
        pil_kernel = ImageFilter.Kernel((size, size), kernel.ravel().tolist(), scale=1)
        row["pillow"] = median_ms(lambda: pil_image.filter(pil_kernel), repeat)
    row["cv2_u8"] = row["cv2_f32"] = row["cv2_sep"] = None
    if cv2 is not None:
        border = cv2.BORDER_REFLECT_101
        row["cv2_u8"] = median_ms(lambda: cv2.filter2D(image_u8, -1, kernel, borderType=border), repeat)
        row["cv2_f32"] = median_ms(lambda: cv2.filter2D(image, -1, kernel, borderType=border), repeat)
        if kind == "gaussian":
            row["cv2_sep"] = median_ms(lambda: cv2.sepFilter2D(image, -1, g, g, borderType=border), repeat)
    return row


def print_table(
    rows: list[dict[str, object]], width: int, height: int, repeat: int, load: tuple[float, float]
) -> None:
    """Markdown table of times (ms) and ratios convcli(auto, 1 thread) / peer."""
    print(f"Date: {datetime.datetime.now().isoformat(timespec='minutes')}  ")
    # Other processes on a shared machine slow everything down; the ratios, measured in the
    # same run, suffer less than the absolute times.
    print(f"1-minute load average at start/end: {load[0]:.2f} / {load[1]:.2f} (on {os.cpu_count()} CPUs)  ")
    cv2_version = cv2.__version__ if cv2 is not None else "not installed"
    print(f"Python {platform.python_version()}, numpy {np.__version__}, OpenCV {cv2_version}  ")
    print(f"CPU: {cpu_model()}  ")
    print(f"Image: {width}x{height} RGB, float32 (uint8 for Pillow and cv2 u8); median of {repeat}; ms  ")
    print()
    head = (
        "| kernel | auto picks | convcli auto | auto 2 thr | direct | separable | fft | scipy | Pillow "
        "| cv2 u8 | cv2 f32 | cv2 sep | /scipy | /Pillow | /cv2 u8 | /cv2 f32 | /cv2 sep |"
    )
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for row in rows:
        mine = milliseconds(row["auto"]) or 0.0
        cells = [
            f"{row['kind']} {row['size']}x{row['size']}",
            str(row["auto_method"]),
            *(fmt(milliseconds(row[key])) for key in ("auto", "auto_t2", "direct", "separable", "fft", "scipy",
                                                      "pillow", "cv2_u8", "cv2_f32", "cv2_sep")),
            *(ratio(mine, milliseconds(row[key])) for key in ("scipy", "pillow", "cv2_u8", "cv2_f32", "cv2_sep")),
        ]
        print("| " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="3840x2160", help="image size WxH (default 3840x2160)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per timing; the median is reported")
    parser.add_argument("--quick", action="store_true", help="960x540, kernels 3, 9, 31, three repeats")
    parser.add_argument("--kernels", default=None, help="comma-separated kernel sizes (default 3,5,9,15,31)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    repeat = max(1, args.repeat)
    if args.quick:
        width, height, repeat = 960, 540, 3
    default_sizes = "3,9,31" if args.quick else "3,5,9,15,31"
    sizes = [int(v) for v in (args.kernels or default_sizes).split(",")]
    load_start = os.getloadavg()[0]
    rows = run(width, height, sizes, repeat)
    print_table(rows, width, height, repeat, (load_start, os.getloadavg()[0]))


if __name__ == "__main__":
    main()
