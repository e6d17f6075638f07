"""End-to-end benchmark: one 3840x2160 JPEG through a Sobel filter, to PNG, JPEG and .npy.

Times ``convcli apply -k sobel`` (the gradient magnitude) against the same command from another
revision of convcli (``--baseline``, default ``main``: its sources are taken with ``git archive``
and run by the same Python, with the same libraries), ImageMagick (``convert -morphology Convolve
Sobel``) and libvips (``vips sobel``, and ``vips conv`` with the Sobel-x mask) where they are
installed, each at its own defaults, in one run on the same file. Reports the median wall time,
the peak resident memory of the process (from ``wait4``) and the output size, and the ratios
against convcli; then where convcli's time goes (decode, filter, encode, in one process) for this
tree and the baseline.

    python benchmarks/bench_cli.py [--repeat 5] [--size 3840x2160] [--baseline main]

The input is made from ``samples/rocket.jpg``, resized with Lanczos and saved as JPEG quality 90.
Python writes its bytecode caches on the warm-up run (PYTHONDONTWRITEBYTECODE is dropped for the
children), as an installed convcli has them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def baseline_tree(ref: str, work: Path) -> Path | None:
    """The sources of convcli at git revision ``ref``, extracted under ``work``; None if git cannot."""
    target = work / f"baseline-{ref.replace('/', '-')}"
    target.mkdir()
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "convcli", "kernels"], capture_output=True, check=True, timeout=60
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"baseline {ref!r} left out: {exc}", file=sys.stderr)
        return None
    return target


def child_env(tree: Path) -> dict[str, str]:
    """The environment that runs the convcli found in ``tree``, with bytecode caches allowed."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    return env


PHASES = """
import json, sys
from convcli.pipeline import filter_file
best = None
for _ in range(int(sys.argv[3])):
    result = filter_file(sys.argv[1], sys.argv[2], "sobel")
    best = result if best is None or result.seconds < best.seconds else best
print(json.dumps(best.timings))
"""


def phases(tree: Path, source: Path, target: Path, repeat: int) -> dict[str, float]:
    """Best-of-``repeat`` decode, filter and encode seconds of one in-process ``filter_file``."""
    command = [sys.executable, "-c", PHASES, str(source), str(target), str(repeat)]
    output = subprocess.run(command, capture_output=True, text=True, env=child_env(tree), check=True, timeout=600)
    timings: dict[str, float] = json.loads(output.stdout)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--size", default="3840x2160")
    parser.add_argument("--baseline", default="main", help="git revision to compare with ('' for none)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    work = Path(tempfile.mkdtemp(prefix="convcli-bench-"))
    source = work / "photo.jpg"
    Image.open(ROOT / "samples" / "rocket.jpg").convert("RGB").resize((width, height), Image.Resampling.LANCZOS).save(
        source, quality=90
    )
    mask = work / "sobel-x.mat"
    mask.write_text("3 3 1 0\n-1 0 1\n-2 0 2\n-1 0 1\n")  # width height scale offset

    trees = {"convcli": ROOT}
    baseline = baseline_tree(args.baseline, work) if args.baseline else None
    if baseline is not None:
        trees[f"convcli {args.baseline}"] = baseline
    magick = imagemagick()
    vips = shutil.which("vips")
    # (label, command, output, environment)
    contenders: list[tuple[str, list[str], Path, dict[str, str] | None]] = []
    for suffix in ("png", "jpg", "npy"):
        for name, tree in trees.items():
            out = work / f"{name.replace(' ', '-')}.{suffix}"
            contenders.append(
                (
                    f"{name} apply -k sobel -> {suffix}",
                    [sys.executable, "-m", "convcli", "apply", str(source), "-k", "sobel", "-q", "-o", str(out)],
                    out,
                    child_env(tree),
                )
            )
        if magick and suffix != "npy":
            out = work / f"magick.{suffix}"
            contenders.append(
                (
                    f"convert -morphology Convolve Sobel -> {suffix}",
                    [*magick, str(source), "-morphology", "Convolve", "Sobel", str(out)],
                    out,
                    None,
                )
            )
        if vips and suffix != "npy":
            out = work / f"vips-sobel.{suffix}"
            contenders.append((f"vips sobel -> {suffix}", [vips, "sobel", str(source), str(out)], out, None))
            out = work / f"vips-conv.{suffix}"
            contenders.append(
                (f"vips conv (sobel-x mask) -> {suffix}", [vips, "conv", str(source), str(out), str(mask)], out, None)
            )

    for _, command, _, env in contenders:
        run_once(command, env)  # warm the page cache, the bytecode caches and any lazy loading
    # Round robin: each round runs every command once, so a busy spell of the machine lands on all.
    times: list[list[float]] = [[] for _ in contenders]
    peaks: list[list[int]] = [[] for _ in contenders]
    for _ in range(args.repeat):
        for index, (_, command, _, env) in enumerate(contenders):
            seconds, peak = run_once(command, env)
            times[index].append(seconds)
            peaks[index].append(peak)
    results = [
        (label, statistics.median(times[i]), max(peaks[i]) / 1024, output.stat().st_size / 2**20)
        for i, (label, _, output, _) in enumerate(contenders)
    ]

    print(
        f"End to end, {width}x{height} JPEG, Sobel magnitude; median of {args.repeat} runs, "
        f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print()
    print("| command | time (s) | peak RSS (MiB) | output (MiB) | time / convcli |")
    print("|---|---|---|---|---|")
    base = {label.rsplit("-> ", 1)[1]: seconds for label, seconds, _, _ in results if label.startswith("convcli apply")}
    for label, median_seconds, peak_mib, size_mib in results:
        ratio = median_seconds / base[label.rsplit("-> ", 1)[1]]
        print(f"| {label} | {median_seconds:.2f} | {peak_mib:.0f} | {size_mib:.1f} | {ratio:.2f}x |")
    print()
    print("Inside one process (best of the runs): seconds per phase of filter_file")
    print()
    print("| convcli | output | decode | filter | encode |")
    print("|---|---|---|---|---|")
    for suffix in ("png", "jpg", "npy"):
        for name, tree in trees.items():
            timing = phases(tree, source, work / f"phases.{suffix}", args.repeat)
            print(f"| {name} | {suffix} | {timing['decode']:.3f} | {timing['filter']:.3f} | {timing['encode']:.3f} |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
