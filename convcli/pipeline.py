"""Apply kernels to pixels and to files: the work behind every command.

Nothing here prints; results and warnings go back to the caller (warnings through the
:mod:`warnings` module, which the command line shows as one line each on stderr).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcli.core import centre_indices, convolve, map_to_uint8, resolve_geometry
from convcli.core.geometry import PaddingSpec, PairSpec, resolve_pair
from convcli.core.mixing import mix_convolve
from convcli.errors import ParameterError
from convcli.images import STDIO, default_suffix, read_image, resolve_format, write_image
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

    def convolve_kwargs(self) -> dict[str, object]:
        """The options as keyword arguments of :func:`convcli.core.convolve`."""
        return {
            "padding": self.padding,
            "border": self.border,
            "border_value": self.border_value,
            "stride": self.stride,
            "dilation": self.dilation,
            "flip": self.flip,
            "method": self.method,
        }


@dataclass(frozen=True)
class OutputOptions:
    """How float responses become a file: the 8-bit mapping and the encoder settings."""

    mode: str = "clip"
    scale: float = 1.0
    offset: float = 0.0
    format: str | None = None
    quality: int | None = None
    compress_level: int | None = None


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
        result = _combine(kernel, (convolve(pixels, matrix, **kwargs) for matrix in kernel.matrices))  # type: ignore[arg-type]
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


def _combine(kernel: Kernel, responses: Iterator[NDArray[np.float32]]) -> NDArray[np.float32]:
    if kernel.combine == "single":
        return next(responses)
    result = next(responses)
    if kernel.combine == "magnitude":
        np.multiply(result, result, out=result)
        for response in responses:
            np.multiply(response, response, out=response)
            np.add(result, response, out=result)
        return np.sqrt(result, out=result)
    combine = np.maximum if kernel.combine == "max" else np.add
    for response in responses:
        combine(result, response, out=result)
    return result


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


def process_file(
    source: str | Path,
    destination: str | Path | None,
    kernels: Sequence[Kernel | str] | Kernel | str,
    options: FilterOptions | None = None,
    output: OutputOptions | None = None,
    *,
    gray: bool = False,
) -> FileResult:
    """Read ``source``, apply ``kernels`` in sequence, map to 8 bits and write ``destination``.

    ``source`` and ``destination`` may be ``-`` for stdin/stdout. ``destination=None`` picks
    :func:`default_output_path` (stdout when reading stdin). The input file is never overwritten.
    """
    options = options or FilterOptions()
    output = output or OutputOptions()
    resolved = _resolve(kernels)
    if destination is None:
        destination = STDIO if str(source) == STDIO else default_output_path(source, resolved, output.format)
    fmt = resolve_format(destination, output.format)
    if str(destination) != STDIO and str(source) != STDIO and _same_file(Path(source), Path(destination)):
        raise ParameterError(f"{destination}: the output would overwrite the input; choose another -o")
    start = time.perf_counter()
    picture = read_image(source, gray=gray)
    decoded = time.perf_counter()
    filtered = apply_kernels(picture.pixels, resolved, options)
    alpha = carry_alpha(picture.alpha, resolved, options) if picture.alpha is not None else None
    if filtered.ndim == 3 and filtered.shape[2] != 3:
        raise ParameterError(
            f"the kernels leave {filtered.shape[2]} channels; an image file holds 1 (gray) or 3 (RGB)"
        )
    pixels = map_to_uint8(filtered, output.mode, scale=output.scale, offset=output.offset)
    computed = time.perf_counter()
    written = write_image(
        pixels, alpha, destination, fmt=fmt, quality=output.quality, compress_level=output.compress_level
    )
    end = time.perf_counter()
    return FileResult(
        source=picture.source,
        destination="<stdout>" if str(destination) == STDIO else str(destination),
        input_shape=picture.pixels.shape,
        output_shape=pixels.shape,
        bytes_written=written,
        seconds=end - start,
        timings={"decode": decoded - start, "filter": computed - decoded, "encode": end - computed},
    )
