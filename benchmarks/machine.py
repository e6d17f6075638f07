"""What the benchmark scripts share: how to name the machine and how to run convcli."""

from __future__ import annotations

import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def convcli_command() -> list[str]:
    """The convcli console script beside this Python, else ``python -m convcli``."""
    script = Path(sys.executable).parent / "convcli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "convcli"]


def _spin(count: int) -> int:
    total = 0
    for i in range(count):
        total += i
    return total


def parallel_capacity(workers: int = 2, count: int = 5_000_000) -> float:
    """How much faster ``workers`` processes spinning in pure Python finish than one doing all
    their work: 2.0 on two idle cores, less where other work (or a virtual machine's neighbours)
    takes CPU time. Printed beside the thread speed-ups, which cannot exceed it."""
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_spin, [1000] * workers))  # start the workers before timing
        start = time.perf_counter()
        for _ in range(workers):
            _spin(count)
        alone = time.perf_counter() - start
        start = time.perf_counter()
        list(pool.map(_spin, [count] * workers))
        together = time.perf_counter() - start
    return alone / together
