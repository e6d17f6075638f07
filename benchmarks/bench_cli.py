"""End-to-end benchmark: one 3840x2160 JPEG to PNG with a Sobel filter.

Times ``convcli apply`` against ImageMagick (``convert -morphology Convolve Sobel``) and libvips
(``vips sobel`` and ``vips conv`` with the Sobel-x mask) where they are installed, each at its
own defaults, in one run on the same file. Reports the median wall time, the peak resident
memory of the process (from ``wait4``) and the output size, and the ratios against convcli.

    python benchmarks/bench_cli.py [--repeat 5] [--size 3840x2160] [--threads N]

The input is made from ``samples/rocket.jpg``, resized with Lanczos and saved as JPEG quality 90.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import convcli_command
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def imagemagick() -> list[str] | None:
    """The real ImageMagick ``convert`` (IM7's ``magick`` first), or None."""
    for name in ("magick", "convert-im6.q16", "convert"):
        path = shutil.which(name)
        if not path:
            continue
        try:
            version = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=10, check=False).stdout
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "ImageMagick" in version:
            return [path]
    return None


def run_once(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall time in seconds and peak RSS in KiB of one run of ``command``."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        err = process.stderr.read().decode(errors="replace") if process.stderr else ""
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {err.strip()}")
    return elapsed, usage.ru_maxrss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", default="3840x2160")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    work = Path(tempfile.mkdtemp(prefix="convcli-bench-"))
    source = work / "photo.jpg"
    Image.open(ROOT / "samples" / "rocket.jpg").convert("RGB").resize((width, height), Image.Resampling.LANCZOS).save(
        source, quality=90
    )
    mask = work / "sobel-x.mat"
    mask.write_text("3 3 1 0\n-1 0 1\n-2 0 2\n-1 0 1\n")  # width height scale offset

    contenders: list[tuple[str, list[str], Path]] = []
    out = work / "convcli.png"
    contenders.append(("convcli apply -k sobel", [*convcli_command(), "apply", str(source), "-k", "sobel", "-q",
                                                 "-o", str(out)], out))
    magick = imagemagick()
    if magick:
        out = work / "magick.png"
        contenders.append(("convert -morphology Convolve Sobel", [*magick, str(source), "-morphology", "Convolve",
                                                                  "Sobel", str(out)], out))
    vips = shutil.which("vips")
    if vips:
        out = work / "vips-sobel.png"
        contenders.append(("vips sobel", [vips, "sobel", str(source), str(out)], out))
        out = work / "vips-conv.png"
        contenders.append(("vips conv (sobel-x mask)", [vips, "conv", str(source), str(out), str(mask)], out))

    results = []
    for label, command, output in contenders:
        run_once(command)  # warm the page cache and any lazy loading
        times: list[float] = []
        peaks: list[int] = []
        for _ in range(args.repeat):
            seconds, peak = run_once(command)
            times.append(seconds)
            peaks.append(peak)
        results.append((label, statistics.median(times), max(peaks) / 1024, output.stat().st_size / 2**20))

    base = results[0][1]
    print(f"End to end, {width}x{height} JPEG -> PNG, Sobel; median of {args.repeat} runs, "
          f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print("| command | time (s) | peak RSS (MiB) | output (MiB) | time / convcli |")
    print("|---|---|---|---|---|")
    for label, median_seconds, peak_mib, size_mib in results:
        print(f"| {label} | {median_seconds:.2f} | {peak_mib:.0f} | {size_mib:.1f} | {median_seconds / base:.2f}x |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
