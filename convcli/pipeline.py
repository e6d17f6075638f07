"""Apply kernels to pixels and to files: the work behind every command.

Nothing here prints; results and warnings go back to the caller (warnings through the
:mod:`warnings` module, which the command line shows as one line each on stderr).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcli.core import centre_indices, convolve, map_to_uint8, map_to_uint16, resolve_geometry
from convcli.core.geometry import PaddingSpec, PairSpec, resolve_pair
from convcli.core.bands import combine_responses, filter_banded
from convcli.core.mixing import mix_convolve
from convcli.errors import LimitError, ParameterError
from convcli.images import (
    DEFAULT_MAX_PIXELS,
    STDIO,
    ImageHeader,
    check_output_capability,
    default_suffix,
    read_frames,
    read_image,
    resolve_format,
    write_frames,
)
from convcli.kernels import Kernel, load_kernel


@dataclass(frozen=True)
class FilterOptions:
    """How each kernel is applied: the keyword arguments of :func:`convcli.core.convolve`."""

    padding: PaddingSpec = "same"
    border: str = "reflect"
    border_value: float = 0.0
    stride: PairSpec = 1
    dilation: PairSpec = 1
    flip: bool = False
    method: str = "auto"
    threads: int | None = None  # None: one per CPU

    def convolve_kwargs(self) -> dict[str, object]:
        """The options as keyword arguments of :func:`convcli.core.convolve` (every field is one)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class OutputOptions:
    """How float responses become a file: the 8-bit mapping and the encoder settings."""

    mode: str = "clip"
    scale: float = 1.0
    offset: float = 0.0
    format: str | None = None
    quality: int | None = None
    compress_level: int | None = None
    depth: int = 8  # bits per sample written: 8, or 16 for grayscale PNG/TIFF


@dataclass(frozen=True)
class Limits:
    """Safety limits checked before any pixel is decoded.

    ``max_pixels`` caps width x height per frame (``None``: no cap). ``max_memory`` caps the
    estimated working memory in bytes; ``None`` uses :func:`available_memory`, and no check is
    made where that is unknown.
    """

    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_memory: int | None = None


@dataclass
class FileResult:
    """What :func:`process_file` did."""

    source: str
    destination: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    bytes_written: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def _resolve(kernels: Sequence[Kernel | str] | Kernel | str) -> list[Kernel]:
    if isinstance(kernels, (Kernel, str)):
        kernels = [kernels]
    resolved = [k if isinstance(k, Kernel) else load_kernel(k) for k in kernels]
    if not resolved:
        raise ParameterError("at least one kernel is needed")
    return resolved


def _anchored(kernel: Kernel, options: FilterOptions) -> tuple[PaddingSpec, tuple[int, int]]:
    """The padding to use for ``kernel`` and the anchor tap, after ``flip``.

    With ``padding="same"`` an explicit anchor becomes an explicit padding quad that puts the
    anchor tap over each output pixel: ``top = anchor_row * dilation`` and the rest of the
    footprint below. Other paddings are used as given.
    """
    kh, kw = kernel.shape
    row, col = kernel.anchor_position
    if options.flip:
        row, col = kh - 1 - row, kw - 1 - col
    padding = options.padding
    same = isinstance(padding, str) and padding.strip().lower() == "same"
    if kernel.anchor is None or not same:
        return padding, (row, col)
    dh, dw = resolve_pair(options.dilation, "dilation")
    top, left = row * dh, col * dw
    return (top, dh * (kh - 1) - top, left, dw * (kw - 1) - left), (row, col)


def apply_kernel(pixels: ArrayLike, kernel: Kernel | str, options: FilterOptions | None = None) -> NDArray[np.float32]:
    """Filter with one kernel; a kernel set combines its matrices' responses per pixel.

    A channel-mixing kernel turns ``(H, W, in)`` pixels into ``(H, W, out)``, or ``(H, W)`` when
    ``out`` is 1. The kernel's ``offset`` is added last, after the combination.
    """
    (kernel,) = _resolve(kernel)
    options = options or FilterOptions()
    kwargs = options.convolve_kwargs()
    kwargs["padding"], _ = _anchored(kernel, options)
    if kernel.weights is not None:
        result = _apply_mixing(pixels, kernel, kwargs)
    else:
        responses = (convolve(pixels, matrix, **kwargs) for matrix in kernel.matrices)  # type: ignore[arg-type]
        result = combine_responses(responses, kernel.combine, overwrite=True)
    if kernel.offset:
        result += np.float32(kernel.offset)
    return result


def _apply_mixing(pixels: ArrayLike, kernel: Kernel, kwargs: dict[str, object]) -> NDArray[np.float32]:
    array = np.asarray(pixels)
    channels = 1 if array.ndim == 2 else array.shape[-1]
    assert kernel.channels is not None
    wanted, produced = kernel.channels
    if channels != wanted:
        have = "a gray image (1 channel)" if channels == 1 else f"an image with {channels} channels"
        hint = "; drop --gray" if channels == 1 and wanted == 3 else ""
        raise ParameterError(
            f"kernel {kernel.name!r} mixes {wanted} input channel{'s' if wanted != 1 else ''} "
            f"into {produced}, but got {have}{hint}"
        )
    result = mix_convolve(array, kernel.weights, kernel.bias_pixels, **kwargs)  # type: ignore[arg-type]
    return result[..., 0] if produced == 1 else result


def apply_kernels(
    pixels: ArrayLike,
    kernels: Sequence[Kernel | str] | Kernel | str,
    options: FilterOptions | None = None,
    **overrides: object,
) -> NDArray[np.float32]:
    """Apply kernels in sequence, in float32, rounding nothing until the caller maps the result.

    ``overrides`` are :class:`FilterOptions` fields, so ``apply_kernels(img, "sobel",
    border="edge")`` works without building the options.

    >>> apply_kernels(np.full((4, 4), 10.0), ["box", "sobel"]).max()
    np.float32(0.0)
    """
    try:
        opts = dataclasses.replace(options or FilterOptions(), **overrides)
    except TypeError as exc:
        raise ParameterError(f"unknown filter option: {exc}") from None
    result = np.asarray(pixels, dtype=np.float32)
    for kernel in _resolve(kernels):
        result = apply_kernel(result, kernel, opts)
    return result


def render(
    pixels: ArrayLike,
    kernels: Sequence[Kernel | str] | Kernel | str,
    options: FilterOptions | None = None,
    output: OutputOptions | None = None,
    *,
    source: str = "image",
) -> NDArray[np.uint8] | NDArray[np.uint16]:
    """Apply ``kernels`` in sequence and map the result to 8 (or 16) bits, as written to a file.

    Equal to ``map_to_uint8(apply_kernels(pixels, kernels, options), ...)``. When the last
    kernel is a plain kernel or set and the output mapping works pixel by pixel (``clip``,
    ``abs``), that last step runs band by band (:func:`convcli.core.bands.filter_banded`):
    an 8-bit image is never copied whole to float32, and each band is padded, filtered,
    combined and mapped while it is in cache, on all threads.
    """
    options = options or FilterOptions()
    output = output or OutputOptions()
    *head, last = _resolve(kernels)
    values = apply_kernels(pixels, head, options) if head else np.asarray(pixels)
    if last.weights is None and output.mode in ("clip", "abs") and output.depth == 8:
        padding, _ = _anchored(last, options)
        kernel_offset = np.float32(last.offset)

        def to_pixels(band: NDArray[np.float32]) -> NDArray[np.uint8]:
            if kernel_offset:
                band += kernel_offset
            return map_to_uint8(band, output.mode, scale=output.scale, offset=output.offset, overwrite=True)

        kwargs = {**options.convolve_kwargs(), "padding": padding}
        return filter_banded(
            values, last.matrices, combine=last.combine, transform=to_pixels, out_dtype=np.uint8, **kwargs
        )
    filtered = apply_kernel(values.astype(np.float32, copy=False), last, options)
    if filtered.ndim == 3 and filtered.shape[2] != 3:
        raise ParameterError(f"the kernels leave {filtered.shape[2]} channels; an image file holds 1 (gray) or 3 (RGB)")
    if output.depth == 16:
        if filtered.ndim == 3:
            raise ParameterError(_COLOUR_16_BIT.format(source=source))
        return map_to_uint16(filtered, output.mode, scale=output.scale, offset=output.offset)
    return map_to_uint8(filtered, output.mode, scale=output.scale, offset=output.offset)


def carry_alpha(alpha: NDArray[np.uint8], kernels: Sequence[Kernel], options: FilterOptions) -> NDArray[np.uint8]:
    """Take the alpha channel through the same geometry as the pixels, unfiltered.

    Each output pixel keeps the alpha of the input pixel under its kernel's centre tap (or
    its anchor, for a kernel that sets one).
    """
    for kernel in kernels:
        padding, (row, col) = _anchored(kernel, options)
        geometry = resolve_geometry(alpha.shape, kernel.shape, padding, options.stride, options.dilation)
        if kernel.anchor is None:
            rows, cols = centre_indices(geometry, alpha.shape)
        else:
            # The input pixel under the anchor tap, clamped to the image like centre_indices.
            rows, cols = (
                np.clip(np.arange(geometry.out_shape[axis]) * geometry.stride[axis]
                        + tap * geometry.dilation[axis] - geometry.pad[2 * axis], 0, alpha.shape[axis] - 1)
                for axis, tap in ((0, row), (1, col))
            )
        alpha = alpha[np.ix_(rows, cols)]
    return alpha


def default_output_path(source: str | Path, kernels: Sequence[Kernel], fmt: str | None = None) -> Path:
    """``<stem>-<kernel>.<ext>`` beside the input; several kernels are joined with ``+``."""
    path = Path(source)
    slug = "+".join(k.slug for k in kernels)
    suffix = default_suffix(resolve_format("x.png", fmt)) if fmt else (path.suffix or ".png")
    return path.with_name(f"{path.stem}-{slug}{suffix}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


# -- memory ------------------------------------------------------------------------------------

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


def estimate_memory(header: ImageHeader, kernels: Sequence[Kernel], options: FilterOptions, *, gray: bool = False) -> int:
    """Estimate the peak working memory, in bytes, of filtering an image with ``kernels``.

    Per frame: 4 bytes a pixel for Pillow's decoded image, then float32 copies: the input, and
    for the largest kernel step its padded input and two outputs (the running result and one
    matrix's response); the 8-bit result; all times 1.25 for encoder buffers and scratch.
    A kernel that does not fit the image raises :class:`ParameterError` here, before decoding.

    >>> from convcli.images import ImageHeader
    >>> from convcli.kernels import load_kernel
    >>> header = ImageHeader("x", "PNG", "L", 1000, 1000, 1)
    >>> round(estimate_memory(header, [load_kernel("box")], FilterOptions()) / 1e6)
    28
    """
    channels = 1 if gray else header.channels
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


def _format_bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"  # pragma: no cover


def check_memory(
    header: ImageHeader, kernels: Sequence[Kernel], options: FilterOptions, limits: Limits, *, gray: bool = False
) -> None:
    """Raise :class:`LimitError` when the estimated working memory exceeds the limit."""
    needed = estimate_memory(header, kernels, options, gray=gray)
    limit = limits.max_memory
    origin = "--max-memory"
    if limit is None:
        limit = available_memory()
        origin = "available memory"
        if limit is None:
            return
    if needed > limit:
        raise LimitError(
            f"{header.source}: refused: a {header.width}x{header.height} image needs about "
            f"{_format_bytes(needed)} of working memory, more than the {_format_bytes(limit)} of {origin}; "
            "use a smaller image or fewer kernels, or raise --max-memory"
        )


_COLOUR_16_BIT = (
    "{source}: 16-bit output is written for grayscale images only (Pillow writes no 16-bit colour); "
    "add --gray or use --depth 8"
)


def process_file(
    source: str | Path,
    destination: str | Path | None,
    kernels: Sequence[Kernel | str] | Kernel | str,
    options: FilterOptions | None = None,
    output: OutputOptions | None = None,
    *,
    gray: bool = False,
    limits: Limits | None = None,
    all_frames: bool = False,
    in_place: bool = False,
) -> FileResult:
    """Read ``source``, apply ``kernels`` in sequence, map to 8 (or 16) bits and write ``destination``.

    ``source`` and ``destination`` may be ``-`` for stdin/stdout. ``destination=None`` picks
    :func:`default_output_path` (stdout when reading stdin), or the input itself with
    ``in_place``. The input is overwritten only with ``in_place=True``, and then atomically.
    Everything that can be checked without the pixels (formats, depth, the limits of
    ``limits``) is checked before any pixel is decoded.

    Raises
    ------
    ParameterError
        Bad options, or an output that would overwrite the input without ``in_place``.
    ImageError, LimitError
        The input cannot be read, or exceeds a limit.
    OutputError
        The output cannot be encoded or written; no partial file is left.
    """
    options = options or FilterOptions()
    output = output or OutputOptions()
    limits = limits or Limits()
    resolved = _resolve(kernels)
    if in_place:
        if str(source) == STDIO:
            raise ParameterError("`--in-place` needs an input file, not standard input")
        if destination is None:
            destination = source
        elif str(destination) == STDIO or not _same_file(Path(source), Path(destination)):
            raise ParameterError(f"`--in-place` writes over {source}; leave out -o, or drop --in-place")
    if destination is None:
        destination = STDIO if str(source) == STDIO else default_output_path(source, resolved, output.format)
    fmt = resolve_format(destination, output.format)
    check_output_capability(fmt, depth=output.depth)
    if not in_place and str(destination) != STDIO and str(source) != STDIO and _same_file(Path(source), Path(destination)):
        raise ParameterError(f"{destination}: the output would overwrite the input; choose another -o, or use --in-place")

    def guard(header: ImageHeader) -> None:
        if all_frames and header.frames > 1:
            check_output_capability(fmt, frames=True)
        if output.depth == 16 and header.channels == 3 and not gray:
            raise ParameterError(_COLOUR_16_BIT.format(source=header.source))
        check_memory(header, resolved, options, limits, gray=gray)

    start = time.perf_counter()
    reader: Callable[..., object] = read_frames if all_frames else read_image
    decoded_frames = reader(source, gray=gray, max_pixels=limits.max_pixels, before_decode=guard)
    pictures = decoded_frames if isinstance(decoded_frames, list) else [decoded_frames]
    decoded = time.perf_counter()
    frames = []
    for picture in pictures:
        pixels = render(picture.pixels, resolved, options, output, source=picture.source)
        alpha = carry_alpha(picture.alpha, resolved, options) if picture.alpha is not None else None
        frames.append((pixels, alpha))
    computed = time.perf_counter()
    written = write_frames(
        frames,  # type: ignore[arg-type]
        destination,
        fmt=fmt,
        quality=output.quality,
        compress_level=output.compress_level,
        durations=[p.duration for p in pictures],
        threads=options.threads,
    )
    end = time.perf_counter()
    return FileResult(
        source=pictures[0].source,
        destination="<stdout>" if str(destination) == STDIO else str(destination),
        input_shape=pictures[0].pixels.shape,
        output_shape=frames[0][0].shape,
        bytes_written=written,
        seconds=end - start,
        timings={"decode": decoded - start, "filter": computed - decoded, "encode": end - computed},
    )
