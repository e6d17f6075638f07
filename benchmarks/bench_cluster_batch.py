"""``convcli batch`` on the local process pool against the same batch on a Dask cluster.

The photos are those of ``bench_batch.py`` (200 RGB JPEGs of 1024x768 made from ``samples/``),
filtered with ``-k sobel`` to JPEG; each run writes into an emptied folder, and the time of each
way is the best of ``--repeat`` runs (wall clock, whole command including start-up):

* ``--jobs N``: the local process pool of ``N`` workers;
* ``--scheduler local --jobs N``: a LocalCluster of ``N`` worker processes started and closed
  by the command;
* ``--scheduler tcp://...``: a running LocalCluster of ``N`` one-thread worker processes,
  started once by this script, so that the cluster's start-up is left out; its workers, as
  those of ``--scheduler local``, start without Dask's ``MALLOC_TRIM_THRESHOLD_`` (``--trim``
  keeps it, to measure what it costs).

Run from the repository root (needs ``pip install '.[dask]'``)::

    python benchmarks/bench_cluster_batch.py [--count 200] [--repeat 3] [--jobs N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from bench_batch import best_of, make_photos
from machine import convcli_command, cpu_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="number of photos (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per way; the best is kept (default 3)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="worker processes")
    parser.add_argument("--trim", action="store_true", help="keep Dask's MALLOC_TRIM_THRESHOLD_ (running cluster)")
    args = parser.parse_args()

    import dask
    from distributed import LocalCluster

    import convcli

    command = convcli_command()
    jobs = str(args.jobs)
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="convcli-bench-") as temp:
        base = Path(temp)
        make_photos(base / "photos", args.count)
        env = dict(os.environ)
        out = base / "out"

        def batch(*extra: str) -> list[str]:
            photos = str(base / "photos")
            return [*command, "batch", photos, "-k", "sobel", "-o", str(out), "--jobs", jobs, "-q", *extra]

        rows.append((f"local pool, --jobs {jobs}", best_of(args.repeat, batch, out, env)))
        seconds = best_of(args.repeat, lambda: batch("--scheduler", "local"), out, env)
        rows.append((f"--scheduler local --jobs {jobs} (cluster started by the command)", seconds))
        key = "distributed.nanny.pre-spawn-environ"
        environ = {k: v for k, v in dask.config.get(key).items() if args.trim or k != "MALLOC_TRIM_THRESHOLD_"}
        with (
            dask.config.set({key: environ}),
            LocalCluster(
                n_workers=args.jobs,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
                scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                silence_logs=logging.ERROR,
            ) as cluster,
        ):
            seconds = best_of(args.repeat, lambda: batch("--scheduler", cluster.scheduler_address), out, env)
        trim = ", MALLOC_TRIM_THRESHOLD_ kept" if args.trim else ""
        rows.append((f"--scheduler tcp://... ({args.jobs} running one-thread workers{trim})", seconds))

    pool = rows[0][1]
    print(f"Date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}  ")
    print(f"Machine: {cpu_model()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}  ")
    print(
        f"Versions: convcli {convcli.__version__}, Python {platform.python_version()}, dask {version('dask')}, "
        f"distributed {version('distributed')}  "
    )
    print(f"Input: {args.count} RGB JPEGs made from samples/, -k sobel, JPEG out; best of {args.repeat}")
    print()
    print("| how | seconds | images/s | time / local pool |")
    print("|---|---:|---:|---:|")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.2f} | {args.count / seconds:.1f} | {seconds / pool:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
