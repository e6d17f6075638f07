"""A 12000x12000 gray tiled TIFF through a Gaussian into a tiled TIFF: time and peak memory.

Runs, each in its own process, on the same file and the same cores:

* ``tiles``: convcli's Dask path on one machine (:func:`convcli.cluster.tiles.filter_dask`,
  ``dask.array.map_overlap`` on the threaded scheduler, one row of blocks at a time, written as a
  tiled BigTIFF by :func:`convcli.cluster.tiles.write_tiff_bands`);
* ``in memory``: ``convcli apply IN -k gaussian:sigma=S -o OUT.tif`` (the whole image in memory);
* ``--scheduler local``: the same command on a Dask ``LocalCluster`` of worker processes started
  for the run (its start-up included), the client writing the TIFF;
* ``vips float`` and ``vips integer``: ``vips gaussblur IN OUT S`` with ``--precision float``
  (the same arithmetic) and with vips's default integer arithmetic, where vips is installed.

Peak memory is the maximum resident set size of each process (``wait4``; for ``--scheduler
local``, of the largest of the client and its worker processes). The tiled output is
checked against the in-memory one, pixel for pixel. Run from the repository root::

    python benchmarks/bench_dask_tiles.py [--size 12000] [--sigma 3] [--block 1024] [--threads N]

It prints a markdown table and the ratios against the in-memory path measured in the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from machine import convcli_command, cpu_model

TILES = """
import sys
import dask, dask.config
from convcli.cluster.tiles import filter_dask, iter_bands, open_dask_source, write_tiff_bands
from convcli.options import JobOptions
from pathlib import Path

source, target, sigma, block, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
image, _ = open_dask_source(source, block=block)
result = filter_dask(image, f"gaussian:sigma={sigma}", JobOptions.from_values(threads=1), block=block)
write_tiff_bands(Path(target), result.shape, result.dtype, iter_bands(result, workers=threads))
"""


def run(command: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall time in seconds and peak RSS in bytes of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode() if process.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed: {stderr.strip()}")
    return seconds, usage.ru_maxrss * 1024  # kilobytes on Linux


def make_source(path: Path, size: int) -> None:
    """A smooth gradient with noise, as a deflated 512x512-tiled BigTIFF, written band by band."""
    import numpy as np
    import tifffile

    rng = np.random.default_rng(20261129)
    columns = np.arange(size, dtype=np.float32)

    def tiles() -> Iterator[np.ndarray[Any, Any]]:
        for r0 in range(0, size, 512):
            rows = np.arange(r0, min(size, r0 + 512), dtype=np.float32)[:, None]
            band = 127 + 60 * np.sin(rows / 700) * np.cos(columns / 500) + rng.normal(0, 12, (len(rows), size))
            band = np.clip(band, 0, 255).astype(np.uint8)
            for c0 in range(0, size, 512):
                yield band[:, c0 : c0 + 512]

    tifffile.imwrite(
        path, tiles(), shape=(size, size), dtype=np.uint8, tile=(512, 512), bigtiff=True, compression="zlib"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=12000)
    parser.add_argument("--sigma", type=float, default=3.0)
    parser.add_argument("--block", type=int, default=1024, help="input samples per block and axis")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--folder", type=Path, help="keep the files here (default: a temporary folder)")
    args = parser.parse_args()
    folder = args.folder or Path(tempfile.mkdtemp(prefix="bench-dask-tiles-"))
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f"gray-{args.size}.tif"
    if not source.exists():
        make_source(source, args.size)
    sigma = f"{args.sigma:g}"
    rows: list[tuple[str, float, int]] = []
    tiled_out, memory_out = folder / "tiles.tif", folder / "memory.tif"
    rows.append(
        (
            "convcli tiles (Dask threads)",
            *run([sys.executable, "-c", TILES, str(source), str(tiled_out), sigma, str(args.block), str(args.threads)]),
        )
    )
    rows.append(
        (
            "convcli in memory",
            *run(
                [
                    *convcli_command(),
                    "apply",
                    str(source),
                    "-k",
                    f"gaussian:sigma={sigma}",
                    "-o",
                    str(memory_out),
                    "--threads",
                    str(args.threads),
                    "-q",
                ]
            ),
        )
    )
    cluster_out = folder / "cluster.tif"
    command = [*convcli_command(), "apply", str(source), "-k", f"gaussian:sigma={sigma}", "-o", str(cluster_out)]
    rows.append(("convcli --scheduler local", *run([*command, "--scheduler", "local", "-q"])))
    vips = shutil.which("vips")
    if vips:
        env = {**os.environ, "VIPS_CONCURRENCY": str(args.threads)}
        for label, extra in (("vips float", ["--precision", "float"]), ("vips integer", [])):
            out = folder / f"vips-{label.split()[1]}.tif[tile,bigtiff]"
            rows.append((f"{label}", *run([vips, "gaussblur", str(source), str(out), sigma, *extra], env)))
    import numpy as np
    import tifffile

    memory = tifffile.imread(memory_out)
    same = np.array_equal(tifffile.imread(tiled_out), memory) and np.array_equal(tifffile.imread(cluster_out), memory)
    print(
        f"{dt.date.today()} {platform.node()} {cpu_model()}, {args.threads} threads; "
        f"{args.size}x{args.size} gray tiled TIFF, gaussian sigma {sigma}, blocks of {args.block}"
    )
    print()
    print("| run | seconds | peak RSS MiB | time / in memory | RSS / in memory |")
    print("|---|---|---|---|---|")
    base_time, base_rss = rows[1][1], rows[1][2]
    for label, seconds, rss in rows:
        print(f"| {label} | {seconds:.2f} | {rss / 2**20:.0f} | {seconds / base_time:.2f} | {rss / base_rss:.2f} |")
    print()
    print(f"tiles and cluster equal to in memory, pixel for pixel: {same}")


if __name__ == "__main__":
    main()
