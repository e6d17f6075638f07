"""Images larger than memory: a gray tiled BigTIFF -> Gaussian -> tiled BigTIFF, against libvips.

Times ``convcli apply`` on the tiled path (``--max-memory``, default 256M) against
``vips gaussblur --precision float`` (float arithmetic, as convcli's) and vips's default integer
mode, on the same file and with the same number of threads (``--threads``, given to convcli and
as ``VIPS_CONCURRENCY``). Sizes up to 20000 also run convcli in memory (``--max-memory 1T``).
Each tool runs ``--repeat`` times, interleaved; the best wall time and the peak resident memory
of the process (GNU time's ``%M``) are reported, with the ratios against vips float. vips writes its
float result as float32 samples (4 bytes a pixel); convcli maps to 8 bits, as it always does.

    python benchmarks/bench_tiled.py [--size 40000] [--sigma 3] [--repeat 1] [--max-memory 256M]
    python benchmarks/bench_tiled.py --size 12000 --repeat 3

The input (seeded gray noise) is written band by band by convcli's own tiled writer, in
256x256 tiles, uncompressed: 1.6 GB at 40000x40000. The folder (``--folder``, default a
temporary one) needs about four times that free.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from machine import convcli_command, cpu_model

from convcli.io.tiled import open_chunked_target


def make_input(path: Path, size: int) -> None:
    """A ``size`` x ``size`` gray tiled BigTIFF of seeded noise, written a band at a time."""
    band = 1024
    with open_chunked_target(path, (size, size), np.uint8) as target:
        for number, top in enumerate(range(0, size, band)):
            rows = min(band, size - top)
            rng = np.random.default_rng(20261129 + number)
            noise = rng.integers(0, 256, (rows, size), dtype=np.uint8)
            target.write_rows(top, noise)
        target.commit()


def run_once(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall time in seconds and peak RSS in bytes of one run of ``command``.

    The peak comes from GNU time (``/usr/bin/time -f %M``): ``wait4``'s figure would be at least
    this script's own peak, which Linux carries into a child across ``exec``.
    """
    timer = Path("/usr/bin/time")
    wrapped = [str(timer), "-f", "%M", *command] if timer.exists() else command
    start = time.perf_counter()
    process = subprocess.Popen(wrapped, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({code}): {err.strip()}")
    if timer.exists():
        return elapsed, int(err.strip().splitlines()[-1]) * 1024
    return elapsed, usage.ru_maxrss * 1024


def compare_outputs(ours: Path, theirs: Path, rows: int = 512) -> float:
    """The largest difference between convcli's 8-bit output and vips's float one (rounded to
    8 bits as convcli rounds) over their first ``rows`` rows."""
    import tifffile
    import zarr

    with tifffile.imread(ours, aszarr=True) as a, tifffile.imread(theirs, aszarr=True) as b:
        mine = np.asarray(zarr.open_array(a, mode="r")[:rows], dtype=np.float64)
        other = np.clip(np.rint(np.asarray(zarr.open_array(b, mode="r")[:rows], dtype=np.float64)), 0, 255)
        edge = 32  # vips extends the border by copying the edge; convcli reflects it (its default)
        return float(np.abs(mine - other)[edge:, edge:-edge].max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=40000, help="image width and height (default 40000)")
    parser.add_argument("--sigma", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--max-memory", default="256M", help="convcli's budget on the tiled path (default 256M)")
    parser.add_argument("--folder", type=Path, default=None, help="where the files go (default: a temporary folder)")
    args = parser.parse_args()
    if shutil.which("vips") is None:
        sys.exit("vips is not installed (apt-get install libvips-tools)")
    folder = Path(tempfile.mkdtemp(prefix="bench-tiled-", dir=args.folder))
    try:
        source = folder / "in.tif"
        started = time.perf_counter()
        make_input(source, args.size)
        print(
            f"input: {args.size}x{args.size} gray tiled BigTIFF, {source.stat().st_size / 1e6:.0f} MB, "
            f"made in {time.perf_counter() - started:.1f} s"
        )
        convcli = convcli_command()
        common = [
            "apply",
            str(source),
            "-k",
            f"gaussian:sigma={args.sigma:g}",
            "--threads",
            str(args.threads),
            "--max-pixels",
            "0",
            "--quiet",
        ]
        env = {**os.environ, "VIPS_CONCURRENCY": str(args.threads)}
        vips = ["vips", "gaussblur", str(source)]
        # convcli's Gaussian stops at 3 sigma, where it is exp(-4.5) of its peak; vips's mask stops
        # where it falls below --min-ampl (default 0.2): the same mask makes the same arithmetic.
        same_mask = ["--min-ampl", f"{np.exp(-4.5) * 0.999:.6f}"]
        tools: dict[str, tuple[list[str], Path]] = {
            "convcli tiled": (
                [*convcli, *common, "-o", str(folder / "convcli.tif"), "--max-memory", args.max_memory],
                folder / "convcli.tif",
            ),
            "vips float": (
                [*vips, f"{folder / 'vf.tif'}[tile,bigtiff]", f"{args.sigma:g}", "--precision", "float", *same_mask],
                folder / "vf.tif",
            ),
            "vips integer": ([*vips, f"{folder / 'vi.tif'}[tile,bigtiff]", f"{args.sigma:g}"], folder / "vi.tif"),
        }
        tools["vips float, 0.2 mask"] = (
            [*vips, f"{folder / 'vf2.tif'}[tile,bigtiff]", f"{args.sigma:g}", "--precision", "float"],
            folder / "vf2.tif",
        )
        if args.size <= 20000:
            tools["convcli in memory"] = (
                [*convcli, *common, "-o", str(folder / "memory.tif"), "--max-memory", "1T"],
                folder / "memory.tif",
            )
        results: dict[str, list[tuple[float, int]]] = {name: [] for name in tools}
        for _ in range(args.repeat):
            for name, (command, output) in tools.items():
                results[name].append(run_once(command, env))
                if name != "convcli tiled" and output.exists() and name != "vips float":
                    output.unlink()  # keep the disk use down; the tiled and float outputs are compared below
        difference = compare_outputs(folder / "convcli.tif", folder / "vf.tif")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print(
        f"{datetime.date.today()} {platform.node()} {cpu_model()}, {os.cpu_count()} CPUs, "
        f"{args.threads} threads each, best of {args.repeat}; sigma {args.sigma:g}"
    )
    print(f"{'tool':<20}{'time (s)':>10}{'peak RSS (MiB)':>16}{'time / vips float':>19}")
    reference = min(t for t, _ in results["vips float"])
    for name, runs in results.items():
        best = min(t for t, _ in runs)
        peak = max(m for _, m in runs)
        print(f"{name:<20}{best:>10.2f}{peak / 2**20:>16.0f}{best / reference:>19.2f}")
    print(f"largest difference from vips float (rounded), inside the first 512 rows: {difference:.0f} of 255")
    print("convcli and vips float use the same 3-sigma mask; vips integer and the 0.2 mask use vips's default")


if __name__ == "__main__":
    main()
