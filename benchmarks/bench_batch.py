"""Throughput of ``convcli batch`` against ImageMagick and vips on the same 200 photos.

The photos: the six images of ``samples/`` converted to RGB, resized to 1024x768 (Lanczos) and
saved as JPEG (quality 90), cycled into 200 files ``photo-000.jpg`` ... in a temporary folder.
Every tool reads those JPEGs and writes a JPEG per input into its own empty folder; the time
of each tool is the best of ``--repeat`` runs (wall clock, whole command including start-up).

Tools, all given the same CPU budget of ``--jobs`` cores (default: every core):

* ``convcli batch SRC -k sobel -o OUT --jobs N -q`` (``N`` worker processes);
* ``mogrify -path OUT -morphology Convolve Sobel *.jpg`` under ``MAGICK_THREAD_LIMIT=N`` (one
  process, ``N`` OpenMP threads). Note that ImageMagick's ``Sobel`` is one directional 3x3
  kernel, while convcli's ``sobel`` is the gradient magnitude of two kernels: ImageMagick does
  less arithmetic per pixel;
* a shell loop of ``vips sobel IN OUT`` under ``VIPS_CONCURRENCY=N`` (one process per file).

Peers that are not installed are left out. Run from the repository root::

    python benchmarks/bench_batch.py [--count 200] [--repeat 3] [--jobs N]

It prints a markdown table with the date, the machine and the versions.
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
from collections.abc import Callable
from pathlib import Path

from machine import convcli_command, cpu_model

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SIZE = (1024, 768)


def make_photos(folder: Path, count: int) -> list[Path]:
    """Write ``count`` 1024x768 RGB JPEGs made from the samples into ``folder``."""
    from PIL import Image

    bases = []
    for path in sorted(SAMPLES.iterdir()):
        if path.suffix.lower() in (".png", ".jpg"):
            with Image.open(path) as image:
                bases.append(image.convert("RGB").resize(SIZE, Image.Resampling.LANCZOS))
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"photo-{i:03d}.jpg"
        bases[i % len(bases)].save(path, quality=90)
        paths.append(path)
    return paths


def timed(command: list[str] | str, env: dict[str, str], *, shell: bool = False) -> float:
    """Wall time of one run; a failing command stops the benchmark."""
    start = time.perf_counter()
    subprocess.run(command, env=env, shell=shell, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def best_of(
    repeat: int, make_command: Callable[[], list[str] | str], out: Path, env: dict[str, str], *, shell: bool = False
) -> float:
    """Best wall time over ``repeat`` runs, each into an emptied output folder."""
    times = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        times.append(timed(make_command(), env, shell=shell))
    return min(times)


def version_of(command: list[str]) -> str:
    """First line of a tool's version output."""
    try:
        text = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    except OSError:
        return "not installed"
    return (text.strip().splitlines() or ["?"])[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="number of photos (default 200)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the best is kept (default 3)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)), help="cores per tool")
    args = parser.parse_args()

    import numpy
    import PIL

    import convcli

    command = convcli_command()
    mogrify = shutil.which("mogrify")
    vips = shutil.which("vips")
    jobs = str(args.jobs)

    rows: list[tuple[str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="convcli-bench-") as temp:
        base = Path(temp)
        photos = make_photos(base / "photos", args.count)
        env = dict(os.environ)

        seconds = best_of(
            args.repeat,
            lambda: [*command, "batch", str(base / "photos"), "-k", "sobel", "-o", str(base / "out-convcli"),
                     "--jobs", jobs, "-q"],
            base / "out-convcli",
            env,
        )
        rows.append(("convcli", f"convcli batch -k sobel --jobs {jobs}", seconds))

        if mogrify:
            magick_env = {**env, "MAGICK_THREAD_LIMIT": jobs, "OMP_NUM_THREADS": jobs}
            out = base / "out-magick"
            seconds = best_of(
                args.repeat,
                lambda: [mogrify, "-path", str(out), "-morphology", "Convolve", "Sobel", *map(str, photos)],
                out,
                magick_env,
            )
            rows.append(("ImageMagick", f"mogrify -morphology Convolve Sobel, MAGICK_THREAD_LIMIT={jobs}", seconds))

        if vips:
            vips_env = {**env, "VIPS_CONCURRENCY": jobs}
            out = base / "out-vips"
            loop = f'for f in "{base / "photos"}"/*.jpg; do "{vips}" sobel "$f" "{out}/$(basename "$f")"; done'
            seconds = best_of(args.repeat, lambda: loop, out, vips_env, shell=True)
            rows.append(("vips", f"loop of vips sobel, VIPS_CONCURRENCY={jobs}", seconds))

    convcli_rate = args.count / rows[0][2]
    print(f"Date: {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}  ")
    print(f"Machine: {cpu_model()}, {os.cpu_count()} logical cores ({args.jobs} used per tool), "
          f"{platform.system()} {platform.release()}  ")
    print(f"Versions: convcli {convcli.__version__}, Python {platform.python_version()}, numpy {numpy.__version__}, "
          f"Pillow {PIL.__version__}; {version_of(['mogrify', '-version'])}; {version_of(['vips', '--version'])}  ")
    print(f"Input: {args.count} RGB JPEGs of {SIZE[0]}x{SIZE[1]} made from samples/; JPEG out; best of {args.repeat}")
    print()
    print("| tool | command | seconds | images/s | convcli speed-up |")
    print("|---|---|---:|---:|---:|")
    for name, what, seconds in rows:
        rate = args.count / seconds
        print(f"| {name} | {what} | {seconds:.2f} | {rate:.1f} | {convcli_rate / rate:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
