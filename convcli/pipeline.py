"""Apply kernels to pixels and to files: the work behind every command.

Nothing here prints; results and warnings go back to the caller (warnings through the
:mod:`warnings` module, which the command line shows as one line each on stderr).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcli.core import centre_indices, convolve, map_to_float32, map_to_uint8, map_to_uint16, resolve_geometry
from convcli.core.alpha import split_alpha, stack_alpha, sums_to_one
from convcli.core.bands import combine_responses, filter_banded
from convcli.core.border import resolve_border
from convcli.core.colour import linear_to_srgb, srgb_to_linear
from convcli.core.geometry import resolve_pair
from convcli.core.mixing import mix_convolve
from convcli.core.validate import as_kernel, as_weights, check_filter_options
from convcli.errors import OutputError, ParameterError
from convcli.io import (
    STDIO,
    WRITE_SUFFIXES,
    ImageHeader,
    Picture,
    check_encoder_settings,
    check_output_capability,
    check_stdout,
    default_suffix,
    format_from_name,
    read_frames,
    read_image,
    resolve_format,
    size_problem,
    suffix_format,
    writable_format,
    write_frames,
)
from convcli.io.formats import NO_ALPHA_FORMATS
from convcli.io.metadata import NO_METADATA
from convcli.io.write import Frame, OutputPixels
from convcli.kernels import Kernel, load_kernel
from convcli.memory import check_memory
from convcli.options import (
    ALPHA_CHOICES,
    FilterOptions,
    InputOptions,
    JobOptions,
    Limits,
    OutputOptions,
    PaddingSpec,
)
from convcli.pictures.compare import compare_pictures, compare_shape

__all__ = [
    "FileResult",
    "FilterOptions",
    "InputOptions",
    "JobOptions",
    "Limits",
    "OutputOptions",
    "alpha_for_output",
    "apply_kernel",
    "apply_kernels",
    "apply_kernels_alpha",
    "carry_alpha",
    "check_job",
    "default_output_path",
    "filter_file",
    "output_path",
    "process_file",
    "render",
    "render_alpha",
    "resolve_alpha",
]




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


def anchored(kernel: Kernel, options: FilterOptions) -> tuple[PaddingSpec, tuple[int, int]]:
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
    ``out`` is 1. The kernel's ``offset`` is added last, after the combination. With
    ``options.linear`` this is :func:`apply_kernels` with one kernel: decoded, filtered, encoded.
    """
    (kernel,) = _resolve(kernel)
    options = options or FilterOptions()
    if options.linear:
        return apply_kernels(pixels, [kernel], options)
    kwargs = options.convolve_kwargs()
    kwargs["padding"], _ = anchored(kernel, options)
    if kernel.weights is not None:
        result = _apply_mixing(pixels, kernel, kwargs)
    else:
        responses = (convolve(pixels, matrix, **kwargs) for matrix in kernel.matrices)
        result = combine_responses(responses, kernel.combine, overwrite=True)
    if kernel.offset:
        with np.errstate(all="ignore"):  # beyond float32 is infinity, clipped by the output mapping
            result += np.float32(kernel.offset)
    return result


def _apply_mixing(pixels: ArrayLike, kernel: Kernel, kwargs: dict[str, Any]) -> NDArray[np.float32]:
    array = np.asarray(pixels)
    channels = 1 if array.ndim == 2 else array.shape[-1]
    assert kernel.channels is not None
    wanted, produced = kernel.channels
    if channels != wanted:
        have = "a gray image (1 channel)" if channels == 1 else f"an image with {channels} channels"
        raise ParameterError(f"{_mixes(kernel, wanted, produced)}, but got {have}")
    assert kernel.weights is not None
    result = mix_convolve(array, kernel.weights, kernel.bias_pixels, **kwargs)
    return result[..., 0] if produced == 1 else result


def _mixes(kernel: Kernel, wanted: int, produced: int) -> str:
    return f"kernel {kernel.name!r} mixes {wanted} input channel{'s' if wanted != 1 else ''} into {produced}"


def _check_channels(header: ImageHeader, kernels: Sequence[Kernel], gray: bool) -> None:
    """Refuse, before decoding, a mixing kernel given the wrong number of channels, saying why they differ.

    The hint names what the user did: ``--gray`` made a colour file gray, or the file itself is
    gray, or a colour file needs ``--gray``, or an earlier kernel changed the channels.
    """
    channels, cause = (1, "--gray") if gray and header.channels != 1 else (header.channels, "file")
    for kernel in kernels:
        if kernel.channels is None:
            continue
        wanted, produced = kernel.channels
        if channels != wanted:
            if cause == "--gray":
                why = "--gray made the image gray (1 channel)"
                why += "; drop --gray" if header.channels == wanted else ""
            elif cause == "file":
                kind = "a gray image (1 channel)" if channels == 1 else f"a colour image ({channels} channels)"
                why = f"{header.source} is {kind}"
                why += "; add --gray" if wanted == 1 else ""
            else:
                why = f"kernel {cause!r} before it leaves {channels} channel{'s' if channels != 1 else ''}"
            raise ParameterError(f"{_mixes(kernel, wanted, produced)}, but {why}")
        channels, cause = produced, kernel.name


def apply_kernels(
    pixels: ArrayLike,
    kernels: Sequence[Kernel | str] | Kernel | str,
    options: FilterOptions | None = None,
    **overrides: Any,
) -> NDArray[np.float32]:
    """Apply kernels in sequence, in float32, rounding nothing until the caller maps the result.

    ``overrides`` are :class:`FilterOptions` fields, so ``apply_kernels(img, "sobel",
    border="edge")`` works without building the options.

    With ``linear=True`` the pixels are decoded from the sRGB curve to linear light first and the
    result is encoded back once, after the last kernel, on the same 0..255 scale
    (:mod:`convcli.core.colour`); a negative response keeps its sign.

    >>> apply_kernels(np.full((4, 4), 10.0), ["box", "sobel"]).max()
    np.float32(0.0)
    """
    opts = _with_overrides(options, overrides)
    linear = opts.linear
    result, opts = _decoded(pixels, opts)
    for kernel in _resolve(kernels):
        result = apply_kernel(result, kernel, opts)
    return linear_to_srgb(result, overwrite=True) if linear else result


def _decoded(pixels: ArrayLike, options: FilterOptions) -> tuple[NDArray[np.float32], FilterOptions]:
    """The pixels in float32 for the kernels, and the options to filter them with: with
    ``linear``, decoded from the sRGB curve, and the border value, a pixel value like them,
    decoded alike (the options returned say ``linear=False``: the caller encodes once, at the end)."""
    if not options.linear:
        with np.errstate(all="ignore"):  # pixels beyond float32 are infinity, clipped by the output mapping
            return np.asarray(pixels, dtype=np.float32), options
    border_value = float(srgb_to_linear(np.float32(options.border_value)))
    return srgb_to_linear(pixels), dataclasses.replace(options, linear=False, border_value=border_value)


def _with_overrides(options: FilterOptions | None, overrides: dict[str, Any]) -> FilterOptions:
    try:
        return dataclasses.replace(options or FilterOptions(), **overrides)
    except TypeError as exc:
        raise ParameterError(f"unknown filter option: {exc}") from None


def _weighted_mean(kernel: Kernel) -> bool:
    """A single matrix whose taps sum to 1, with no offset: a weighted mean of its neighbourhood."""
    return kernel.weights is None and len(kernel.matrices) == 1 and not kernel.offset and sums_to_one(kernel.matrix)


def resolve_alpha(mode: str, kernels: Sequence[Kernel | str] | Kernel | str) -> str:
    """What ``--alpha mode`` does with ``kernels``: ``premultiply``, ``carry`` or ``filter``.

    ``auto`` premultiplies when every kernel of the chain is a weighted mean: one matrix whose
    taps sum to 1 and no offset (blurs, sharpening). Anything else is carried: an edge detector's
    taps sum to 0 and would leave no alpha at all; a set combines its responses by magnitude or
    maximum, which no division by alpha undoes; a kernel that mixes channels has no one kernel
    for alpha; an offset (a relief on mid-gray) is no colour of the image.

    >>> resolve_alpha("auto", ["gaussian", "sharpen"]), resolve_alpha("auto", ["gaussian", "sobel"])
    ('premultiply', 'carry')
    """
    if mode not in ALPHA_CHOICES:
        raise ParameterError(f"`alpha` must be one of {', '.join(ALPHA_CHOICES)}, got {mode!r}")
    if mode != "auto":
        return mode
    return "premultiply" if all(_weighted_mean(k) for k in _resolve(kernels)) else "carry"


def _check_alpha(mode: str, kernels: Sequence[Kernel]) -> str:
    """The resolved mode, refusing a channel mixer where alpha is to be filtered with the kernels."""
    resolved = resolve_alpha(mode, kernels)
    if resolved != "carry":
        for kernel in kernels:
            if kernel.weights is not None:
                raise ParameterError(
                    f"--alpha {resolved}: kernel {kernel.name!r} mixes channels and has no one kernel to filter "
                    "alpha with; use --alpha carry (or auto)"
                )
    return resolved


def apply_kernels_alpha(
    pixels: ArrayLike,
    alpha: ArrayLike,
    kernels: Sequence[Kernel | str] | Kernel | str,
    options: FilterOptions | None = None,
    **overrides: Any,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """:func:`apply_kernels` for pixels with an ``(H, W)`` alpha plane beside them, as ``options.alpha`` says.

    Returns ``(colour, alpha)`` in float32, unrounded. ``premultiply`` filters ``colour * alpha /
    255`` and ``alpha`` through the whole chain and divides once at the end (colour 0 where alpha
    is not above 0); a kernel's offset is added to the colour, not to alpha. ``filter`` treats
    alpha as one more channel. ``carry`` filters the colour alone and returns the alpha of the
    input pixel under each output pixel's centre tap (:func:`carry_alpha`).

    One opaque pixel of 200 between transparent black ones keeps its colour, and spreads its alpha:

    >>> colour, alpha = apply_kernels_alpha([[0, 200, 0]], [[0, 255, 0]], "box", border="zero")
    >>> colour.tolist(), [round(float(a), 2) for a in alpha[0]]
    ([[200.0, 200.0, 200.0]], [28.33, 28.33, 28.33])
    """
    opts = _with_overrides(options, overrides)
    resolved = _resolve(kernels)
    mode = _check_alpha(opts.alpha, resolved)
    plane = np.asarray(alpha)
    if mode == "carry":
        return apply_kernels(pixels, resolved, opts), carry_alpha(plane, resolved, opts).astype(np.float32)
    premultiplied = mode == "premultiply"
    linear = opts.linear
    values, opts = _decoded(pixels, opts)  # premultiplied in linear light, as light adds up
    stacked = _filter_stacked(values, plane, resolved, opts, premultiplied)
    colour, filtered = split_alpha(stacked, premultiplied=premultiplied, gray=np.ndim(pixels) == 2)
    return (linear_to_srgb(colour, overwrite=True) if linear else colour), filtered


def _filter_stacked(
    pixels: ArrayLike, alpha: NDArray[Any], kernels: Sequence[Kernel], options: FilterOptions, premultiplied: bool
) -> NDArray[np.float32]:
    """Colour (premultiplied or not) and alpha stacked, alpha last, through ``kernels``."""
    with np.errstate(all="ignore"):  # as in apply_kernels
        stacked = stack_alpha(pixels, alpha, premultiplied=premultiplied)
    for kernel in kernels:
        stacked = _apply_stacked(stacked, kernel, options, premultiplied)
    return stacked


def _apply_stacked(
    stacked: NDArray[np.float32], kernel: Kernel, options: FilterOptions, premultiplied: bool
) -> NDArray[np.float32]:
    """One kernel step on colour and alpha stacked; premultiplied, the offset is added to the colour as
    ``offset * alpha / 255``, which is the offset itself once divided by alpha."""
    if not premultiplied:
        return apply_kernel(stacked, kernel, options)
    plain = dataclasses.replace(kernel, offset=0.0) if kernel.offset else kernel
    if _opaque_border(options, premultiplied):
        colour = apply_kernel(stacked[..., :-1], plain, options)
        alpha = apply_kernel(stacked[..., -1], plain, dataclasses.replace(options, border_value=255.0))
        result = np.concatenate([colour, alpha[..., None]], axis=-1)
    else:
        result = apply_kernel(stacked, plain, options)
    if kernel.offset:
        with np.errstate(all="ignore"):
            result[..., :-1] += result[..., -1:] * np.float32(kernel.offset / 255.0)
    return result


def _opaque_border(options: FilterOptions, premultiplied: bool) -> bool:
    """Whether the border is the opaque colour ``border_value``: then its alpha is 255, not the value.

    Premultiplied, a border pixel of colour v and alpha 255 is v in every colour channel and 255
    in alpha; the value in all channels would make it white. ``zero`` is transparent black.
    """
    return premultiplied and resolve_border(options.border) == "constant"


def render_alpha(
    pixels: ArrayLike,
    alpha: ArrayLike,
    kernels: Sequence[Kernel | str] | Kernel | str,
    options: FilterOptions | None = None,
    output: OutputOptions | None = None,
    *,
    source: str = "image",
) -> tuple[OutputPixels, OutputPixels]:
    """:func:`render` for pixels with an alpha plane: ``(pixels, alpha)`` as written to a file.

    The colour is mapped as :func:`render` maps it (output mode, scale, offset, depth); alpha is
    only rounded and clipped to 0..255, since it is a coverage, not a response, and written in
    the output's sample type (8 or 16 bits, or float32 on the 0..255 scale). With
    ``premultiply``, a pixel whose written alpha is 0 gets colour 0: no colour is left there, and
    rounding noise divided by a nearly-zero alpha would otherwise show as random colour.
    """
    options = options or FilterOptions()
    output = output or OutputOptions()
    resolved = _resolve(kernels)
    mode = _check_alpha(options.alpha, resolved)
    plane = np.asarray(alpha)
    if mode == "carry":
        carried = carry_alpha(plane, resolved, options)
        return render(pixels, resolved, options, output, source=source), alpha_for_output(carried, output.depth)
    premultiplied = mode == "premultiply"
    gray = np.ndim(pixels) == 2
    if options.linear:  # the colour is encoded after the last kernel, before the output mapping
        colour, filtered = apply_kernels_alpha(pixels, plane, resolved, options)
        return _map_colour_alpha(colour, filtered, output, source, premultiplied)
    *head, last = resolved
    stacked = _filter_stacked(pixels, plane, head, options, premultiplied)

    def to_pixels(band: NDArray[np.float32]) -> NDArray[np.uint8]:
        """Offset, divide and map one band of the last step's stacked response: colour by the
        output options, alpha by rounding and clipping."""
        if last.offset:
            with np.errstate(all="ignore"):
                if premultiplied:
                    band[..., :-1] += band[..., -1:] * np.float32(last.offset / 255.0)
                else:
                    band += np.float32(last.offset)
        colour, filtered = split_alpha(band, premultiplied=premultiplied, gray=False)
        mapped = np.empty(band.shape, np.uint8)
        mapped[..., -1] = map_to_uint8(filtered, "clip", overwrite=True)
        mapped[..., :-1] = map_to_uint8(colour, output.mode, scale=output.scale, offset=output.offset, overwrite=True)
        if premultiplied:
            mapped[mapped[..., -1] == 0] = 0
        return mapped

    if output.mode in ("clip", "abs") and output.depth == 8 and not _opaque_border(options, premultiplied):
        # As in render: the last step band by band, mapped while each band is in cache.
        padding, _ = anchored(last, options)
        kwargs = {**options.convolve_kwargs(), "padding": padding}
        both = filter_banded(stacked, last.matrices, combine=last.combine, transform=to_pixels, out_dtype=np.uint8,
                             **kwargs)
        colour8 = np.ascontiguousarray(both[..., 0] if gray else both[..., :-1])
        return colour8, np.ascontiguousarray(both[..., -1])
    stacked = _apply_stacked(stacked, last, options, premultiplied)
    colour, filtered = split_alpha(stacked, premultiplied=premultiplied, gray=gray)
    return _map_colour_alpha(colour, filtered, output, source, premultiplied)


def _map_colour_alpha(
    colour: NDArray[np.float32], filtered: NDArray[np.float32], output: OutputOptions, source: str, premultiplied: bool
) -> tuple[OutputPixels, OutputPixels]:
    """Filtered colour and alpha in the file's samples: colour as :func:`render` maps it, alpha rounded and clipped."""
    written = _map_alpha(filtered, output.depth)
    if premultiplied:
        # NaN maps to 0, and normalize stretches the range of the other pixels: a pixel written
        # fully transparent has no colour to count.
        colour[written == 0] = np.nan
    return _map_pixels(colour, output, source), written


def _map_alpha(filtered: NDArray[np.float32], depth: int | str) -> OutputPixels:
    """A filtered alpha plane (0..255 scale) in the output's sample type, only rounded and clipped."""
    if depth == "float":
        return np.clip(np.nan_to_num(filtered), 0, 255).astype(np.float32, copy=False)
    if depth == 16:
        return map_to_uint16(filtered, "clip")
    return map_to_uint8(filtered, "clip", overwrite=True)


def render(
    pixels: ArrayLike,
    kernels: Sequence[Kernel | str] | Kernel | str,
    options: FilterOptions | None = None,
    output: OutputOptions | None = None,
    *,
    source: str = "image",
) -> NDArray[np.uint8] | NDArray[np.uint16] | NDArray[np.float32]:
    """Apply ``kernels`` in sequence and map the result to 8 (or 16) bits, as written to a file.

    Equal to ``map_to_uint8(apply_kernels(pixels, kernels, options), ...)``; with
    ``output.depth`` 16, :func:`~convcli.core.map_to_uint16`, and with ``"float"``,
    :func:`~convcli.core.map_to_float32` (any number of channels). When the last
    kernel is a plain kernel or set and the output mapping works pixel by pixel (``clip``,
    ``abs``), that last step runs band by band (:func:`convcli.core.bands.filter_banded`):
    an 8-bit image is never copied whole to float32, and each band is padded, filtered,
    combined and mapped while it is in cache, on all threads.
    """
    options = options or FilterOptions()
    output = output or OutputOptions()
    *head, last = _resolve(kernels)
    if options.linear:  # the curve is encoded after the last kernel, before the output mapping
        return _map_pixels(apply_kernels(pixels, [*head, last], options), output, source)
    values = apply_kernels(pixels, head, options) if head else np.asarray(pixels)
    if last.weights is None:
        padding, _ = anchored(last, options)
        kernel_offset = np.float32(last.offset)
        kwargs = {**options.convolve_kwargs(), "padding": padding}

        def with_offset(band: NDArray[np.float32]) -> NDArray[np.float32]:
            if kernel_offset:
                band += kernel_offset
            return band

        def to_pixels(band: NDArray[np.float32]) -> NDArray[np.uint8]:
            return map_to_uint8(with_offset(band), output.mode, scale=output.scale, offset=output.offset,
                                overwrite=True)

        if output.mode in ("clip", "abs") and output.depth == 8:
            return filter_banded(
                values, last.matrices, combine=last.combine, transform=to_pixels, out_dtype=np.uint8, **kwargs
            )
        if values.dtype.kind == "u":  # 8- and 16-bit samples stay integers for the exact integer engine
            banded = filter_banded(values, last.matrices, combine=last.combine, transform=with_offset, **kwargs)
            return _map_pixels(banded, output, source)
    filtered = apply_kernel(values.astype(np.float32, copy=False), last, options)
    return _map_pixels(filtered, output, source)


def _map_pixels(filtered: NDArray[np.float32], output: OutputOptions, source: str) -> OutputPixels:
    """Map float responses to the samples of the file (8 or 16 bits, or float32 with no
    rounding), checking that an image file can hold their channels."""
    if output.depth == "float":
        return map_to_float32(filtered, output.mode, scale=output.scale, offset=output.offset)
    if filtered.ndim == 3 and filtered.shape[2] != 3:
        raise ParameterError(
            f"{source}: the kernels leave {filtered.shape[2]} channels; an image file holds 1 (gray) or 3 (RGB), "
            "an .npy file any number"
        )
    if output.depth == 16:
        return map_to_uint16(filtered, output.mode, scale=output.scale, offset=output.offset)
    return map_to_uint8(filtered, output.mode, scale=output.scale, offset=output.offset)


# An alpha plane on 0..255: uint8 from 8-bit files, float32 from 16-bit ones.
AlphaPlane = NDArray[np.uint8] | NDArray[np.float32]


def alpha_for_output(alpha: AlphaPlane, depth: int | str) -> OutputPixels:
    """An alpha plane on 0..255 (uint8, or float32 from 16-bit files) in the output's sample type:
    uint8 or uint16 rounded from its full precision, or float32 on the same 0..255 scale.

    >>> alpha_for_output(np.array([0.4, 254.6], np.float32), 8).tolist(), alpha_for_output(np.array([1], np.uint8), 16)
    ([0, 255], array([257], dtype=uint16))
    """
    if depth == "float":
        return alpha.astype(np.float32)
    if depth == 16:
        return map_to_uint16(alpha.astype(np.float32))
    return alpha if alpha.dtype == np.uint8 else map_to_uint8(alpha.astype(np.float32))


def carry_alpha(alpha: AlphaPlane, kernels: Sequence[Kernel], options: FilterOptions) -> AlphaPlane:
    """Take the alpha channel through the same geometry as the pixels, unfiltered.

    Each output pixel keeps the alpha of the input pixel under its kernel's centre tap (or
    its anchor, for a kernel that sets one).
    """
    for kernel in kernels:
        padding, (row, col) = anchored(kernel, options)
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
    """``<stem>-<kernel>.<ext>`` beside the input; several kernels are joined with ``+``.

    ``ext`` is the suffix of ``fmt``, else the input's when convcli writes that format, else png.

    >>> str(default_output_path("a/scan.mpo", [load_kernel("box")]))
    'a/scan-box.png'
    """
    path = Path(source)
    slug = "+".join(k.slug for k in kernels)
    if fmt:
        suffix = default_suffix(resolve_format(STDIO, fmt))
    else:
        suffix = path.suffix if path.suffix.lower() in WRITE_SUFFIXES else ".png"
    return path.with_name(f"{path.stem}-{slug}{suffix}")


def _output_shape(shape: tuple[int, int], kernels: Sequence[Kernel], options: FilterOptions) -> tuple[int, int]:
    """The (height, width) the kernels make of an image of ``shape``, known before decoding."""
    for kernel in kernels:
        padding, _ = anchored(kernel, options)
        shape = resolve_geometry(shape, kernel.shape, padding, options.stride, options.dilation).out_shape
    return shape


def output_path(
    source: str | Path, destination: str | Path | None, kernels: Sequence[Kernel], fmt: str | None = None
) -> str | Path:
    """Where ``filter_file`` writes: ``destination``, or the default name where none is given.

    With no destination: :func:`default_output_path`, or standard output when the source is
    standard input. A destination that is a folder (or ends with a separator) receives the
    default name inside it, as ``cp`` and ``mv`` do.

    Raises
    ------
    ParameterError
        An empty destination, or a folder as the destination of standard input, which has no
        name to derive a file name from.
    OutputError
        A destination that ends with a separator but is not an existing folder.
    """
    if destination is None:
        return STDIO if str(source) == STDIO else default_output_path(source, kernels, fmt)
    text = str(destination)
    if text == STDIO:
        return destination
    if not text.strip():  # Path("") is ".", which would quietly mean the current folder
        raise ParameterError("the output path (-o) is empty")
    folder = Path(destination)
    names_folder = text.endswith(os.sep) or (os.altsep is not None and text.endswith(os.altsep))
    if not folder.is_dir():
        if names_folder:
            raise OutputError(f"{text}: no such folder")
        return destination
    if str(source) == STDIO:
        raise ParameterError(
            f"{text} is a folder, and standard input has no name to derive a file name from; give -o FOLDER/NAME"
        )
    return folder / default_output_path(source, kernels, fmt).name


def same_file(a: Path, b: Path) -> bool:
    """Both exist and are one file (through links, or another spelling of the path)."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


_COLOUR_16_BIT_ANIMATION = (
    "{source}: 16-bit colour animations are not written; write a multi-page TIFF, or add --gray or use --depth 8"
)


def check_job(
    kernels: Sequence[Kernel | str] | Kernel | str, job: JobOptions, formats: Iterable[str] = ()
) -> None:
    """Refuse, before any file is read or written, a job that could filter no image at all.

    The one check of a job's options, shared by :func:`filter_file` (``convcli apply``) and
    :func:`convcli.batch.filter_batch` (``convcli batch``): the core's own checks of the filtering
    and mapping options (run on one pixel, so they are the very checks made while filtering) and
    of every kernel's values, and what each output format in ``formats``, and an explicit
    ``format``, can hold: 16-bit samples, and several frames with ``all_frames``.

    >>> check_job(["sobel"], JobOptions.from_values(scale=float("nan")))
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: `scale` must be a finite number within float32's range (+-3.4e+38), got nan

    Raises
    ------
    ParameterError
        Naming the option (or the kernel) and the cause.
    """
    options, output = job.filter, job.output
    check_encoder_settings(output.quality, output.compress_level)
    check_filter_options(options.border, options.border_value, options.method)
    if options.linear and not np.isfinite(srgb_to_linear(np.float32(options.border_value))):
        raise ParameterError(
            f"`border_value` {options.border_value!r} is beyond float32's range once decoded to linear light "
            "(--linear); use a pixel value such as 0..255"
        )
    resolve_pair(options.stride, "stride")
    resolve_pair(options.dilation, "dilation")
    _check_alpha(options.alpha, _resolve(kernels))
    mapping = {16: map_to_uint16, "float": map_to_float32}.get(output.depth, map_to_uint8)
    mapping(np.zeros((1, 1), np.float32), output.mode, scale=output.scale, offset=output.offset)
    for kernel in _resolve(kernels):
        try:
            for matrix in kernel.matrices:
                as_kernel(matrix)
            if kernel.weights is not None:
                as_weights(kernel.weights)
        except ParameterError as exc:
            raise ParameterError(f"kernel {kernel.name!r}: {exc}") from None
    explicit = resolve_format(STDIO, output.format) if output.format else None
    for fmt in {*formats, *([explicit] if explicit else [])}:
        check_output_capability(fmt, depth=output.depth)
    if explicit and job.input.all_frames:
        # Stated by the options, whatever the inputs: every animated input would fail.
        check_output_capability(explicit, frames=True)


def _check_compare(job: JobOptions, fmt: str | None, in_place: bool) -> None:
    """Refuse, before decoding, what a side-by-side picture cannot be."""
    if in_place:
        raise ParameterError("`--compare` writes a new picture; it cannot replace the input (--in-place)")
    if job.output.depth != 8 or fmt == "NPY":
        raise ParameterError("`--compare` writes an 8-bit picture; drop --depth 16/float and .npy output")
    if job.input.all_frames:
        raise ParameterError("`--compare` shows one frame; drop --all-frames")


def filter_file(
    source: str | Path,
    destination: str | Path | None,
    kernels: Sequence[Kernel | str] | Kernel | str,
    job: JobOptions | None = None,
    *,
    in_place: bool = False,
    exclusive: bool = False,
    compare: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> FileResult:
    """Read ``source``, apply ``kernels`` in sequence, map to 8 (or 16) bits and write ``destination``.

    ``job`` holds every option (:class:`~convcli.options.JobOptions`). ``source`` and
    ``destination`` may be ``-`` for stdin/stdout. ``destination=None`` picks
    :func:`default_output_path` (stdout when reading stdin), or the input itself with
    ``in_place``. The input is overwritten only with ``in_place=True``, and then atomically.
    Everything that can be checked without the pixels (formats, depth, the limits) is checked
    before any pixel is decoded. ``exclusive=True`` claims ``destination`` instead of replacing
    it: the write fails if that name exists when the result is ready, as when a concurrent run
    wrote it first. ``compare=True`` writes the input and the output side by side, labelled
    (:mod:`convcli.pictures.compare`), instead of the output alone: 8-bit, one frame, never in place.
    An image larger than the memory limit is filtered in tiles where it can be read and written in
    parts (:mod:`convcli.tiles`); ``progress(rows_done, rows)`` then follows the bands.

    Raises
    ------
    ParameterError
        Bad options, or an output that would overwrite the input without ``in_place``.
    ImageError, LimitError
        The input cannot be read, or exceeds a limit.
    OutputError
        The output cannot be encoded or written; no partial file is left.
    OutputExistsError
        With ``exclusive=True``: the output exists; nothing was written.
    """
    job = job or JobOptions()
    output = job.output
    resolved = _resolve(kernels)
    if in_place:
        if str(source) == STDIO:
            raise ParameterError("`--in-place` needs an input file, not standard input")
        if destination is None:
            destination = source
        elif str(destination) == STDIO or not same_file(Path(source), Path(destination)):
            raise ParameterError(f"`--in-place` writes over {source}; leave out -o, or drop --in-place")
    if not in_place and not compare:
        from convcli.tiles import filter_tiled, tiled_destination

        tiled = tiled_destination(source, destination, resolved, job)
        if tiled is not None:
            return filter_tiled(source, tiled, resolved, job, exclusive=exclusive, progress=progress)
    destination = output_path(source, destination, resolved, output.format)
    # None until the header is read when the name has no suffix: the output takes the input's format,
    # as a file rewritten in place does whatever its suffix (scan.mpo, photo.data).
    keeps_format = in_place and output.format is None and suffix_format(destination) is None
    fmt = None if keeps_format else format_from_name(destination, output.format)
    check_job(resolved, job, [] if fmt is None else [fmt])
    if compare:
        _check_compare(job, fmt, in_place)
    if str(destination) == STDIO:
        check_stdout()
    through_stdio = STDIO in (str(source), str(destination))
    if not in_place and not through_stdio and same_file(Path(source), Path(destination)):
        raise ParameterError(
            f"{destination}: the output would overwrite the input; choose another -o, or use --in-place"
        )

    def guard(header: ImageHeader) -> None:
        nonlocal fmt
        if fmt is None:
            fmt = writable_format(header.format)
            check_output_capability(fmt, depth=output.depth)
        if job.input.all_frames and header.frames > 1:
            check_output_capability(fmt, frames=True)
        height, width = _output_shape((header.height, header.width), resolved, job.filter)
        if compare:
            height, width = compare_shape((header.height, header.width), (height, width))
        problem = size_problem(fmt, width, height)
        if problem:
            raise ParameterError(f"{'<stdout>' if str(destination) == STDIO else destination}: {problem}")
        if (output.depth == 16 and fmt == "PNG" and job.input.all_frames and header.frames > 1
                and header.channels == 3 and not job.input.gray):
            raise ParameterError(_COLOUR_16_BIT_ANIMATION.format(source=header.source))
        _check_channels(header, resolved, job.input.gray)
        check_memory(header, resolved, job.replace(depth="float") if fmt == "NPY" else job)

    start = time.perf_counter()
    gray, max_pixels = job.input.gray, job.limits.max_pixels
    pictures: list[Picture]
    if job.input.all_frames:
        pictures = read_frames(source, gray=gray, max_pixels=max_pixels, before_decode=guard)
    else:
        pictures = [read_image(source, gray=gray, max_pixels=max_pixels, before_decode=guard)]
    decoded = time.perf_counter()
    assert fmt is not None  # set by guard() at the latest
    if fmt == "NPY":  # an array file holds the float32 response (check_job refused --depth 16)
        output = dataclasses.replace(output, depth="float")
    filtering = job.filter
    if filtering.alpha == "auto" and fmt in NO_ALPHA_FORMATS:
        # The alpha is dropped on writing (these formats have none), so the colour is all that
        # is seen: premultiplied, a blurred shape would end in a hard edge where its alpha fades.
        filtering = dataclasses.replace(filtering, alpha="carry")
    frames: list[Frame] = []
    for picture in pictures:
        if picture.alpha is None:
            frames.append((render(picture.pixels, resolved, filtering, output, source=picture.source), None))
        else:
            frames.append(
                render_alpha(picture.pixels, picture.alpha, resolved, filtering, output, source=picture.source)
            )
    computed = time.perf_counter()
    # Each kernel steps by the stride: the output covers the same area in fewer pixels.
    rows, cols = (step ** len(resolved) for step in resolve_pair(job.filter.stride, "stride"))
    metadata = NO_METADATA if output.strip else pictures[0].metadata.scaled((rows, cols))
    if compare:  # the input is shown unscaled: its resolution stands for the picture
        metadata = NO_METADATA if output.strip else pictures[0].metadata
        labels = ("input", " + ".join(k.name for k in resolved))
        frames = [compare_pictures(pictures[0].pixels, pictures[0].alpha, *frames[0], labels)]
    written = write_frames(
        frames,
        destination,
        fmt=fmt,
        quality=output.quality,
        compress_level=output.compress_level,
        durations=[p.duration for p in pictures],
        threads=job.filter.threads,
        exclusive=exclusive,
        metadata=metadata,
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
    """:func:`filter_file` with the option groups given one by one.

    >>> import tempfile
    >>> from convcli.io import write_image
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = write_image(np.zeros((8, 8), np.uint8), None, folder / "in.png")
    >>> process_file(folder / "in.png", folder / "out.png", "sobel", gray=True).output_shape
    (8, 8)
    """
    job = JobOptions.from_groups(options, output, gray=gray, limits=limits, all_frames=all_frames)
    return filter_file(source, destination, kernels, job, in_place=in_place)
