"""The working memory a job will need, and the memory there is: checked before decoding.

The estimate is made from the image's header alone, so a job that cannot fit is refused before
any pixel memory is allocated (:class:`~convcli.errors.LimitError`, naming both figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from convcli.core import resolve_geometry
from convcli.errors import LimitError
from convcli.options import JobOptions

if TYPE_CHECKING:
    from convcli.io import ImageHeader
    from convcli.kernels import Kernel

_MEMINFO = Path("/proc/meminfo")
_CGROUP = Path("/sys/fs/cgroup")
# Headroom over the estimate for what it leaves out: encoder buffers, engine scratch, Python.
_MEMORY_HEADROOM = 1.25


def available_memory() -> int | None:
    """Bytes this process can still allocate: ``MemAvailable`` from ``/proc/meminfo``, lowered
    to what the cgroup (container) memory limit leaves; ``None`` where neither is readable.
    """
    found: list[int] = []
    try:
        for line in _MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            used = int((_CGROUP / "memory.current").read_text().strip())
            found.append(max(0, int(limit) - used))
    except (OSError, ValueError):
        pass
    return min(found) if found else None


def estimate_memory(header: ImageHeader, kernels: Sequence[Kernel], job: JobOptions | None = None) -> int:
    """Estimate the peak working memory, in bytes, of filtering an image with ``kernels``.

    Per frame: 4 bytes a pixel for Pillow's decoded image, then float32 copies: the input, and
    for the largest kernel step its padded input and two outputs (the running result and one
    matrix's response); the 8-bit result; all times 1.25 for encoder buffers and scratch.
    A kernel that does not fit the image raises :class:`~convcli.errors.ParameterError` here,
    before decoding.

    >>> from convcli.io import ImageHeader
    >>> from convcli.kernels import load_kernel
    >>> header = ImageHeader("x", "PNG", "L", 1000, 1000, 1)
    >>> round(estimate_memory(header, [load_kernel("box")]) / 1e6)
    28
    """
    job = job or JobOptions()
    options = job.filter
    channels = 1 if job.input.gray else header.channels
    height, width = header.height, header.width
    sample = 4 * channels
    decoded = 4 * width * height
    current = (height, width)
    float_input = height * width * sample
    step_peak = 0
    for kernel in kernels:
        geometry = resolve_geometry(current, kernel.shape, options.padding, options.stride, options.dilation)
        top, bottom, left, right = geometry.pad
        padded = (current[0] + top + bottom) * (current[1] + left + right) * sample
        out = geometry.out_shape[0] * geometry.out_shape[1] * sample
        step_peak = max(step_peak, padded + 2 * out)
        current = geometry.out_shape
    final = current[0] * current[1] * channels * 2
    frame = decoded + float_input + step_peak + final
    return int(frame * _MEMORY_HEADROOM) + final * max(0, header.frames - 1)


def format_bytes(count: float) -> str:
    """A byte count for people.

    >>> format_bytes(512), format_bytes(3 * 1024**3)
    ('512 bytes', '3.0 GiB')
    """
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"  # pragma: no cover


def check_memory(header: ImageHeader, kernels: Sequence[Kernel], job: JobOptions | None = None) -> None:
    """Raise :class:`~convcli.errors.LimitError` when the estimated working memory exceeds the
    limit: ``job.limits.max_memory``, else :func:`available_memory` (no check where unknown)."""
    job = job or JobOptions()
    needed = estimate_memory(header, kernels, job)
    limit = job.limits.max_memory
    origin = "--max-memory"
    if limit is None:
        limit = available_memory()
        origin = "available memory"
        if limit is None:
            return
    if needed > limit:
        raise LimitError(
            f"{header.source}: refused: a {header.width}x{header.height} image needs about "
            f"{format_bytes(needed)} of working memory, more than the {format_bytes(limit)} of {origin}; "
            "use a smaller image or fewer kernels, or raise --max-memory"
        )
