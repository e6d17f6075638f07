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
# Modes that come with alpha (a palette may have a transparent index): counted as one more channel.
_MAY_HAVE_ALPHA = frozenset({"RGBA", "LA", "La", "RGBa", "PA", "P"})
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

    Per frame: 4 bytes a pixel for Pillow's decoded image, then the largest kernel step, each
    at the channel count it actually has (a mixing kernel changes it: ``random:out=64`` makes
    64 channels for the steps after it). A step holds its float32 input while it runs, and

    * a plain kernel or set: the padded input and two outputs (the running result and one
      matrix's response);
    * a mixing kernel: a copy of the input planes, one padded plane and response at a time,
      and its output channels twice (each channel, then all of them stacked);

    then the mapping to 8 bits: a float32 copy of the result and the result (for 16-bit and
    float output, the result and its encoded copies at 2 or 4 bytes a sample). All times 1.25 for
    encoder buffers and scratch. Each further frame of an animation (``header.frames``) adds its
    decoded pixels and six copies of its result, all held until the frames are encoded. A kernel
    that does not fit the image raises :class:`~convcli.errors.ParameterError` here, before
    decoding.

    >>> from convcli.io import ImageHeader
    >>> from convcli.kernels import load_kernel
    >>> header = ImageHeader("x", "PNG", "L", 1000, 1000, 1)
    >>> round(estimate_memory(header, [load_kernel("box")]) / 1e6)
    25
    >>> wide = [load_kernel("random:out=64"), load_kernel("random:in=64,out=3")]
    >>> round(estimate_memory(ImageHeader("x", "PNG", "RGB", 1000, 1000, 1), wide) / 1e6)
    685
    """
    job = job or JobOptions()
    options = job.filter
    channels = 1 if job.input.gray else header.channels
    if header.mode in _MAY_HAVE_ALPHA:
        from convcli.pipeline import resolve_alpha  # imported here: the pipeline imports this module

        # Premultiplied or filtered, alpha is one more float32 channel through every step.
        channels += int(resolve_alpha(options.alpha, kernels) != "carry")
    # 16-bit colour files (header.bits 16) are decoded to 16-bit samples: up to 8 bytes a pixel.
    decoded = (8 if header.bits > 8 else 4) * header.width * header.height
    if header.format == "AVIF":
        # libavif decodes into YUV planes (up to 4 bytes a pixel with alpha) and hands Pillow the
        # RGB(A) bytes (4 more), which it copies into the image.
        decoded += 8 * header.width * header.height
    current = (header.height, header.width)
    step_peak = 0
    for kernel in kernels:
        geometry = resolve_geometry(current, kernel.shape, options.padding, options.stride, options.dilation)
        top, bottom, left, right = geometry.pad
        padded_plane = (current[0] + top + bottom) * (current[1] + left + right) * 4
        out_plane = geometry.out_shape[0] * geometry.out_shape[1] * 4
        held = current[0] * current[1] * 4 * channels
        if kernel.channels is not None:
            produced = kernel.channels[1]
            work = held + padded_plane + out_plane + 2 * out_plane * produced
        else:
            produced = channels
            work = (padded_plane + 2 * out_plane) * channels
        step_peak = max(step_peak, held + work)
        current, channels = geometry.out_shape, produced
    result = current[0] * current[1] * channels
    # 16-bit and float results are not mapped band by band: a float32 copy, then the result
    # (2 or 4 bytes a sample) about five times over (stacked with alpha, encoded, and copied).
    sample = {16: 2, "float": 4}.get(job.output.depth, 0)
    mapping = (5 + 5 * sample) * result if sample else 5 * result + 4 * result
    frame = decoded + max(step_peak, mapping)
    # With --all-frames every frame is decoded before the first is filtered, and every result is
    # kept until all are encoded together: per further frame, its pixels (float32 for 16-bit and
    # float files) and its result six times (the array, Pillow's image of it, the writers' working
    # copies, as APNG's difference images, and the encoded bytes).
    deep = header.bits > 8 or header.mode == "F" or header.mode.startswith("I")
    input_frame = header.width * header.height * (1 if job.input.gray else header.channels) * (4 if deep else 1)
    output_frame = result * {16: 2, "float": 4}.get(job.output.depth, 1)
    return int(frame * _MEMORY_HEADROOM) + (input_frame + 6 * output_frame) * max(0, header.frames - 1)


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


def memory_limit(job: JobOptions | None = None) -> tuple[int | None, str]:
    """The memory a job may use and where that figure comes from: ``--max-memory``, else the
    memory available (None where unknown).

    >>> memory_limit(JobOptions.from_values(max_memory=2**20))
    (1048576, '--max-memory')
    """
    job = job or JobOptions()
    if job.limits.max_memory is not None:
        return job.limits.max_memory, "--max-memory"
    return available_memory(), "available memory"


# What to do about an image too large for memory: a TIFF is filtered in tiles (convcli.tiles)
# when it is written to a format written in parts; anything else must become a tiled TIFF first.
_TILED_HINT = {
    "TIFF": "or write .tif, .png or .zarr without --all-frames: an 8- or 16-bit gray or RGB TIFF is then filtered "
    "in tiles",
}
_CONVERT_HINT = (
    "or convert it to a tiled TIFF, which convcli filters in tiles: vips tiffsave IN OUT.tif --tile --bigtiff"
)


def check_memory(header: ImageHeader, kernels: Sequence[Kernel], job: JobOptions | None = None) -> None:
    """Raise :class:`~convcli.errors.LimitError` when the estimated working memory exceeds the
    limit: ``job.limits.max_memory``, else :func:`available_memory` (no check where unknown).
    The message says how to filter the image in tiles instead."""
    job = job or JobOptions()
    needed = estimate_memory(header, kernels, job)
    limit, origin = memory_limit(job)
    if limit is None:
        return
    if needed > limit:
        hint = _TILED_HINT.get(header.format or "", _CONVERT_HINT)
        raise LimitError(
            f"{header.source}: refused: a {header.width}x{header.height} image needs about "
            f"{format_bytes(needed)} of working memory, more than the {format_bytes(limit)} of {origin}; "
            f"use a smaller image or fewer kernels, raise --max-memory, {hint}"
        )
