"""Filtering a Dask array in tiles: the same pixels as :func:`convcli.pipeline.render`, block by block.

Each kernel step pads the image lazily with convcli's own border index maps
(:func:`convcli.core.bands.border_index`): the rows and columns beyond the edge are gathered from
the image by fancy indexing, never by Dask's ``boundary=`` rules, whose names mean other things
(Dask's ``reflect`` is convcli's ``symmetric``) and whose ``periodic`` across chunks is the rule
other libraries got wrong. The padded array is cut into blocks that start on multiples of the
stride, each block gets the kernel's reach (its dilated extent) of the next blocks as a halo
(:func:`dask.array.map_overlap`, asymmetric, ``boundary="none"``), and each block is filtered
with padding ``valid`` by the very engine plan the in-memory path uses, planned once for the
whole image: a block is the same convolution over fewer output pixels.

Which blocks give the same float32 sums as the whole image depends on the engine:

- shift-and-add plans (the ``direct`` engine's taps, the ``separable`` engine without matrix
  products) compute every output pixel by the same element-wise operations wherever it lies, so
  blocks may split rows and columns;
- matrix products (BLAS) and the FFT may round differently in another layout, so their steps run
  on blocks of whole rows, as the in-memory path's own bands do; the FFT's blocks also start on
  the rows where the in-memory path starts its FFT tiles (or its bands, for the last step of
  :func:`~convcli.pipeline.render`), so that every tile holds the same pixels.

Dask is imported lazily: importing this module needs only NumPy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.cluster.client import INSTALL_HINT, ClusterError
from convcli.core import map_to_float32, map_to_uint8, map_to_uint16
from convcli.core.bands import balanced_rows, band_rows, border_index, combine_responses
from convcli.core.border import resolve_border
from convcli.core.colour import linear_to_srgb, srgb_to_linear
from convcli.core.convolve import integer_plan, prepare
from convcli.core.direct import DirectPlan
from convcli.core.engine import EnginePlan, channel_count
from convcli.core.engines import plan_engine
from convcli.core.fft import FftPlan
from convcli.core.geometry import Geometry
from convcli.core.integer import IntegerPlan
from convcli.core.separable import SeparablePlan
from convcli.errors import ConvcliError, ParameterError
from convcli.kernels import Kernel, load_kernel
from convcli.options import FilterOptions, JobOptions, OutputOptions

# Dask's and distributed's objects, which their type hints only partly describe.
DaskArray = Any
Client = Any

__all__ = [
    "TiledResult",
    "filter_dask",
    "filter_file_dask",
    "import_dask_array",
    "iter_bands",
    "open_dask_source",
    "write_tiff_bands",
]


# Input samples of one block, per axis, when the source's own chunks do not say: a 1024x1024 block
# of float32 is 4 MiB, large enough that Dask's per-task overhead is small next to its filtering,
# and a 40000x40000 image is some 1600 blocks, a graph any scheduler takes.
DEFAULT_BLOCK = 1024


class ClusterRunError(ConvcliError):
    """The cluster could not finish a job: a worker failed to read, compute or write a block."""


def import_dask_array() -> Any:
    """``dask.array``, or a one-line error saying how to install it."""
    return _optional("dask.array")


def _optional(module: str) -> Any:
    """An optional dependency's module, or a one-line error saying how to install it."""
    try:
        return import_module(module)
    except ImportError as exc:
        raise ClusterError(f"filtering in tiles needs {exc.name}, which is not installed: {INSTALL_HINT}") from None


def _resolve(kernels: Sequence[Kernel | str] | Kernel | str) -> list[Kernel]:
    if isinstance(kernels, (Kernel, str)):
        kernels = [kernels]
    resolved = [k if isinstance(k, Kernel) else load_kernel(k) for k in kernels]
    if not resolved:
        raise ParameterError("at least one kernel is needed")
    return resolved


def filter_dask(
    image: DaskArray,
    kernels: Sequence[Kernel | str] | Kernel | str,
    job: JobOptions | None = None,
    *,
    source: str = "image",
    block: int | None = None,
) -> DaskArray:
    """Apply ``kernels`` in sequence to a Dask array and map the result as :func:`~convcli.pipeline.render` does.

    ``image`` is ``(H, W)`` or ``(H, W, C)`` of any real dtype (uint8, uint16, float). The result
    is a lazy Dask array of the samples a file would hold (uint8, uint16 or float32, by
    ``job.output.depth``), equal pixel for pixel to ``render(image.compute(), kernels, ...)``
    for every border mode, padding, stride, dilation, flip, chain, kernel set and output mode.
    ``block`` is the number of input samples per block and axis (default: the image's own
    chunks, at least the kernel's reach). ``job.input`` and ``job.limits`` are not used here:
    the caller reads the image. Transparency is not handled: an alpha channel would be filtered as
    one more channel.

    >>> import dask.array as da
    >>> image = da.from_array(np.arange(48, dtype=np.uint8).reshape(6, 8), chunks=(3, 3))
    >>> from convcli.pipeline import render
    >>> bool((filter_dask(image, "sobel").compute() == render(image.compute(), "sobel")).all())
    True

    Raises
    ------
    ParameterError
        Bad options or kernels (the checks of :func:`~convcli.pipeline.check_job`), or kernels
        that leave a number of channels an image file cannot hold.
    """
    # The padding each kernel's anchor asks for, as the in-memory path resolves it (no public name).
    from convcli.pipeline import anchored, check_job

    job = job or JobOptions()
    resolved = _resolve(kernels)
    check_job(resolved, job)
    if image.ndim not in (2, 3) or 0 in image.shape[:2]:
        raise ParameterError(f"{source}: expected an (H, W) or (H, W, C) image, got shape {image.shape}")
    options, output = job.filter, job.output
    linear = options.linear
    values: DaskArray = image
    if linear:  # decoded once, encoded after the last kernel, as apply_kernels does
        values = values.map_blocks(srgb_to_linear, dtype=np.float32)
        border_value = float(srgb_to_linear(np.float32(options.border_value)))
        options = dataclasses.replace(options, linear=False, border_value=border_value)
    *head, last = resolved
    banded = not linear and last.weights is None and output.mode in ("clip", "abs") and output.depth == 8
    for kernel in head:
        values = _step(values, kernel, options, anchored(kernel, options)[0], block=block)
    if banded:
        # render filters the last step band by band, mapping each band as it is computed.
        transform = partial(_offset_and_map, np.float32(last.offset), output)
        return _step(
            values,
            last,
            options,
            anchored(last, options)[0],
            block=block,
            banded=True,
            transform=transform,
            out_dtype=np.uint8,
        )
    # render filters the last step band by band also when its input is still 8- or 16-bit samples
    # (for the exact integer engine), and maps the bands' float32 afterwards; the FFT then plans its
    # tiles band by band there too.
    integer_input = last.weights is None and values.dtype.kind == "u"
    values = _step(values, last, options, anchored(last, options)[0], block=block, banded=integer_input)
    if linear:
        values = values.map_blocks(linear_to_srgb, dtype=np.float32)
    return _map_output(values, output, source)


def _offset_and_map(offset: np.float32, output: OutputOptions, band: NDArray[np.float32]) -> NDArray[np.uint8]:
    """The last step's transform in :func:`~convcli.pipeline.render`: the kernel's offset, then 8 bits."""
    if offset:
        band += offset
    return map_to_uint8(band, output.mode, scale=output.scale, offset=output.offset, overwrite=True)


# -- one kernel step ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _StepPlan:
    """What every block of one step runs: the engine plans (one per matrix, or per output and
    input channel of a mixing kernel) planned for the whole image, and how to combine them."""

    plans: tuple[EnginePlan, ...]
    geometry: Geometry  # of the whole image
    combine: str
    offset: np.float32
    mixing: tuple[tuple[int, ...], ...] | None  # per output channel: the input channel of each plan
    bias: tuple[float, ...] | None
    produced: int  # output channels of a mixing kernel
    whole_fft_tiles: bool = False  # the FFT runs with the whole image's tiles (not the block's own)
    integer: IntegerPlan | None = None  # the exact integer engine, where the in-memory path takes it
    band_rows: int | None = None  # output rows of the in-memory path's bands, run one by one in a block


def _plan_step(
    shape: tuple[int, ...], kernel: Kernel, options: FilterOptions, padding: Any, dtype: np.dtype[Any]
) -> _StepPlan:
    """Plan every engine of one step as :func:`~convcli.core.convolve.convolve` plans it for the whole image."""
    kwargs = {**options.convolve_kwargs(), "padding": padding}
    offset = np.float32(kernel.offset)
    if kernel.weights is None:
        # A broadcast zero stands for the image: prepare checks shapes and options and needs no pixels.
        dummy = np.broadcast_to(np.zeros((), dtype), shape)
        request = prepare(dummy, list(kernel.matrices), kwargs)  # type: ignore[arg-type]
        channels = channel_count(shape)
        plans = tuple(plan_engine(k, request.geometry, request.method, channels) for k in request.kernels)
        # Where the in-memory path takes the exact integer engine, blocks take it too.
        exact = integer_plan(request, kernel.combine)
        return _StepPlan(plans, request.geometry, kernel.combine, offset, None, None, 0, integer=exact)
    assert kernel.channels is not None and kernel.weights is not None
    wanted, produced = kernel.channels
    have = 1 if len(shape) == 2 else shape[2]
    if have != wanted:
        raise ParameterError(f"kernel {kernel.name!r} mixes {wanted} input channels into {produced}, but got {have}")
    weights = np.asarray(kernel.weights, dtype=np.float64)
    plane = np.broadcast_to(np.zeros((), np.float32), shape[:2])
    plans_list: list[EnginePlan] = []
    mixing: list[tuple[int, ...]] = []
    geometry: Geometry | None = None
    for o in range(produced):
        inputs: list[int] = []
        for i in range(wanted):
            # As mix_convolve: an all-zero kernel after the first adds nothing and is skipped.
            if inputs and not weights[o, i].any():
                continue
            request = prepare(plane, [weights[o, i]], kwargs)  # type: ignore[arg-type]
            geometry = request.geometry
            plans_list.append(plan_engine(request.kernels[0], geometry, request.method, 1))
            inputs.append(i)
        mixing.append(tuple(inputs))
    assert geometry is not None
    bias = kernel.bias_pixels
    offsets = tuple(float(b) for b in (np.zeros(produced) if bias is None else np.asarray(bias).reshape(-1)))
    return _StepPlan(tuple(plans_list), geometry, "single", offset, tuple(mixing), offsets, produced)


def _column_safe(plan: EnginePlan) -> bool:
    """Whether the plan computes each output pixel by the same element-wise operations wherever it lies."""
    if isinstance(plan, DirectPlan):
        return plan.strategy == "taps"
    if isinstance(plan, SeparablePlan):
        return not any(term.vertical_blas for term in plan.term_plans)
    return False


def _axis_chunks(out: int, stride: int, padded: int, halo: int, target: int, align: int = 1) -> tuple[int, ...]:
    """Chunks of one padded axis: each but the last holds a multiple of ``align`` outputs times
    ``stride`` samples, and at least ``halo`` samples (it lends them to the block before); the
    last runs to the end of the axis, lengthened to ``halo`` by :func:`_lengthen` if it is shorter."""
    per_block = max(1, target // stride, math.ceil(halo / stride))
    per_block = math.ceil(per_block / align) * align
    starts = range(0, out, per_block)
    return (*([per_block * stride] * (len(starts) - 1)), padded - starts[-1] * stride)


def _out_chunks(chunks: tuple[int, ...], stride: int, total: int) -> tuple[int, ...]:
    """Output samples of each block of a padded axis cut into ``chunks``."""
    sizes = [n // stride for n in chunks[:-1]]
    return (*sizes, total - sum(sizes))


def _step(
    values: DaskArray,
    kernel: Kernel,
    options: FilterOptions,
    padding: Any,
    *,
    block: int | None,
    banded: bool = False,
    transform: Callable[[NDArray[np.float32]], NDArray[Any]] | None = None,
    out_dtype: type | np.dtype[Any] = np.float32,
) -> DaskArray:
    """One kernel (or kernel set, or channel mixer) over the whole Dask array."""
    dask_array = import_dask_array()
    shape = tuple(int(n) for n in values.shape)
    step = _plan_step(shape, kernel, options, padding, np.dtype(values.dtype))
    geometry = step.geometry
    height, width = shape[:2]
    top, bottom, left, right = geometry.pad
    padded_shape = (height + top + bottom, width + left + right)
    extent = geometry.dilated_kernel_shape
    halo = (max(0, extent[0] - geometry.stride[0]), max(0, extent[1] - geometry.stride[1]))
    targets = [block or (max(values.chunks[axis]) if values.chunks[axis] else DEFAULT_BLOCK) for axis in (0, 1)]
    whole_rows = not all(_column_safe(plan) for plan in step.plans)
    align = 1
    if any(isinstance(plan, FftPlan) for plan in step.plans):
        if banded:
            # render's last step: filter_banded's bands, each with FFT tiles planned for its rows;
            # a block holds whole bands and runs them one by one.
            rows = balanced_rows(geometry, band_rows(geometry, width, channel_count(shape), len(step.plans)))
            step = dataclasses.replace(step, band_rows=rows)
        else:
            # convolve's whole-image tiles: blocks start where a tile starts, and keep its tiles.
            rows = math.lcm(*(plan.tiles.out_per_tile[0] for plan in step.plans if isinstance(plan, FftPlan)))
            step = dataclasses.replace(step, whole_fft_tiles=True)
        align = rows
    row_chunks = _axis_chunks(geometry.out_shape[0], geometry.stride[0], padded_shape[0], halo[0], targets[0], align)
    col_chunks = (
        (padded_shape[1],)
        if whole_rows
        else _axis_chunks(geometry.out_shape[1], geometry.stride[1], padded_shape[1], halo[1], targets[1])
    )
    out_rows = _out_chunks(row_chunks, geometry.stride[0], geometry.out_shape[0])
    out_cols = _out_chunks(col_chunks, geometry.stride[1], geometry.out_shape[1])
    fill = 0.0 if resolve_border(options.border) == "zero" else float(options.border_value)
    padded = _lengthen(_pad(values, geometry.pad, options.border, fill), (row_chunks, col_chunks), halo)
    padded = padded.rechunk(
        (_lengthened(row_chunks, halo[0]), _lengthened(col_chunks, halo[1]), *((-1,) * (values.ndim - 2)))
    )
    if step.mixing is not None:
        trailing: tuple[tuple[int, ...], ...] = () if step.produced == 1 else ((step.produced,),)
    else:
        trailing = tuple((n,) for n in shape[2:])
    depth = {0: (0, halo[0]), 1: (0, halo[1]), **({2: 0} if values.ndim == 3 else {})}
    worker = partial(_filter_block, step, transform)
    meta = np.empty((0,) * (2 + len(trailing)), dtype=out_dtype)
    drop = [2] if values.ndim == 3 and not trailing else None
    new = [2] if values.ndim == 2 and trailing else None
    return dask_array.map_overlap(
        worker,
        padded,
        depth=depth,
        boundary="none",
        trim=False,
        allow_rechunk=False,
        chunks=(out_rows, out_cols, *trailing),
        dtype=out_dtype,
        meta=meta,
        drop_axis=drop,
        new_axis=new,
    )


def _lengthened(chunks: tuple[int, ...], halo: int) -> tuple[int, ...]:
    """``chunks`` with the last one lengthened to ``halo`` samples if it is shorter."""
    if len(chunks) > 1 and chunks[-1] < halo:
        return (*chunks[:-1], halo)
    return chunks


def _lengthen(values: DaskArray, chunks: tuple[tuple[int, ...], tuple[int, ...]], halo: tuple[int, int]) -> DaskArray:
    """Zeros after the image where its last block is shorter than the halo Dask hands to the block
    before it. No output reads them: every block computes its own outputs only."""
    dask_array = import_dask_array()
    for axis in (0, 1):
        extra = _lengthened(chunks[axis], halo[axis])[-1] - chunks[axis][-1]
        if extra:
            shape = list(values.shape)
            shape[axis] = extra
            values = dask_array.concatenate([values, dask_array.zeros(tuple(shape), values.dtype, chunks=-1)], axis)
    return values


def _pad(values: DaskArray, pad: tuple[int, int, int, int], border: str, fill: float) -> DaskArray:
    """``values`` padded by ``(top, bottom, left, right)`` as the in-memory path pads: gathered by
    convcli's border index maps, or filled with ``fill`` for ``zero``/``constant``."""
    dask_array = import_dask_array()
    top, bottom, left, right = pad
    mode = resolve_border(border)
    constant = mode in ("zero", "constant")
    if constant and values.dtype != np.float32:
        # The fill must be exact in the padded array's type; the block converts to float32 anyway.
        if not np.can_cast(np.min_scalar_type(fill), values.dtype) or values.dtype(fill) != fill:
            values = values.astype(np.float32)
    for axis, (before, after) in enumerate(((top, bottom), (left, right))):
        if not before and not after:
            continue
        size = values.shape[axis]
        index, _ = border_index(size, before, after, border)
        pieces: list[DaskArray | None] = []
        for part, count in ((index[:before], before), (index[before + size :], after)):
            if not count:
                pieces.append(None)
                continue
            if constant:
                shape = list(values.shape)
                shape[axis] = count
                pieces.append(dask_array.full(tuple(shape), fill, dtype=values.dtype, chunks=-1))
            else:
                pieces.append(dask_array.take(values, part, axis=axis))
        parts = [p for p in (pieces[0], values, pieces[1]) if p is not None]
        values = dask_array.concatenate(parts, axis=axis)
    return values


def _filter_block(
    step: _StepPlan,
    transform: Callable[[NDArray[np.float32]], NDArray[Any]] | None,
    block: NDArray[Any],
    block_info: dict[Any, Any] | None = None,
) -> NDArray[Any]:
    """Filter one padded block (with its halo) with padding ``valid``: the step's outputs there,
    as many as Dask's output chunk holds (a lengthened last block has rows no output reads)."""
    assert block_info is not None
    out_h, out_w = block_info[None]["chunk-shape"][:2]
    sr = step.geometry.stride[0]
    extent = step.geometry.dilated_kernel_shape[0]
    rows = step.band_rows or out_h
    parts = []
    with np.errstate(all="ignore"):  # beyond float32 is infinity, clipped by the output mapping
        for first in range(0, out_h, rows):
            count = min(rows, out_h - first)
            local = dataclasses.replace(step.geometry, out_shape=(count, out_w))
            band = block[first * sr : (first + count - 1) * sr + extent]
            if step.integer is None:
                band = band.astype(np.float32, copy=False)
            parts.append(_filter_band(step, transform, band, local))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _filter_band(
    step: _StepPlan,
    transform: Callable[[NDArray[np.float32]], NDArray[Any]] | None,
    pixels: NDArray[np.float32],
    local: Geometry,
) -> NDArray[Any]:
    """Run every plan of the step over one band of a block and combine, offset or transform."""
    plans = [_for_block(plan, local, step.whole_fft_tiles) for plan in step.plans]
    if step.integer is not None:  # the block is padded already, in its own samples
        result = np.empty((*local.out_shape, *pixels.shape[2:]), np.float32)
        step.integer.run_padded(pixels, local, result)
    elif step.mixing is None:
        responses = (plan.run(pixels, local, threads=1) for plan in plans)
        result = combine_responses(responses, step.combine, overwrite=True)
    else:
        result = _mix_block(step, plans, pixels, local)
    if transform is not None:
        return transform(result)
    if step.offset:
        result += step.offset
    return result


def _for_block(plan: EnginePlan, local: Geometry, whole_tiles: bool) -> EnginePlan:
    """The plan to run on a block: itself, or for the FFT with the whole image's tiles, which it
    would otherwise plan again for the block's size (and round differently)."""
    if whole_tiles and isinstance(plan, FftPlan):
        return FftPlan(plan.kernel, local, plan.channels, plan.tiles)
    return plan


def _mix_block(step: _StepPlan, plans: list[EnginePlan], pixels: NDArray[np.float32], local: Geometry) -> NDArray[Any]:
    """A channel-mixing kernel on one block, summed in :func:`~convcli.core.mixing.mix_convolve`'s order."""
    assert step.mixing is not None and step.bias is not None
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    runs = iter(plans)
    outputs = []
    for inputs, bias in zip(step.mixing, step.bias, strict=True):
        total: NDArray[np.float32] | None = None
        for i in inputs:
            response = next(runs).run(np.ascontiguousarray(pixels[..., i]), local, threads=1)
            total = response if total is None else np.add(total, response, out=total)
        assert total is not None
        total += np.float32(bias)
        outputs.append(total)
    result = np.stack(outputs, axis=-1)
    return result[..., 0] if step.produced == 1 else result


# -- the output mapping ---------------------------------------------------------------------------


def _map_output(values: DaskArray, output: OutputOptions, source: str) -> DaskArray:
    """Float responses to the file's samples, as :func:`~convcli.pipeline.render` maps them."""
    if output.depth != "float" and values.ndim == 3 and values.shape[2] != 3:
        raise ParameterError(
            f"{source}: the kernels leave {values.shape[2]} channels; an image file holds 1 (gray) or 3 (RGB), "
            "an .npy file any number"
        )
    mapping: Callable[..., NDArray[Any]]
    dtype: np.dtype[Any]
    if output.depth == "float":
        mapping, dtype = map_to_float32, np.dtype(np.float32)
    elif output.depth == 16:
        mapping, dtype = map_to_uint16, np.dtype(np.uint16)
    else:
        mapping, dtype = partial(map_to_uint8, overwrite=True), np.dtype(np.uint8)
    settings = {"mode": output.mode, "scale": output.scale, "offset": output.offset}
    if output.mode != "normalize":
        return values.map_blocks(partial(_map_block, mapping, settings), extremes=None, dtype=dtype)
    extremes = _extremes(values, output)
    return values.map_blocks(partial(_map_block, mapping, settings), extremes=extremes, dtype=dtype)


def _map_block(
    mapping: Callable[..., NDArray[Any]],
    settings: dict[str, Any],
    block: NDArray[np.float32],
    extremes: NDArray[np.float32] | None,
) -> NDArray[Any]:
    """Map one block; for ``normalize``, with the two responses whose mapped values are the whole
    image's extremes appended, so that the mapping stretches the whole image's range, not the block's."""
    if extremes is None:
        return mapping(block, **settings)
    flat = np.concatenate([block.ravel(), extremes])
    return mapping(flat, **settings)[: block.size].reshape(block.shape)


def _extremes(values: DaskArray, output: OutputOptions) -> Any:
    """A lazy (Delayed) pair of responses: those whose ``response * scale + offset`` is the
    smallest and the largest finite value of the whole image (NaN where there are none)."""
    dask = _optional("dask")
    pairs = [dask.delayed(_block_extremes)(output, block) for block in values.to_delayed().ravel()]
    return dask.delayed(_reduce_extremes)(output, pairs)


def _mapped(output: OutputOptions, responses: NDArray[np.float32]) -> NDArray[np.float32]:
    """``responses * scale + offset`` in float32, as the output mapping computes it."""
    with np.errstate(all="ignore"):
        y = responses.astype(np.float32, copy=True)
        if output.scale != 1.0:
            y *= np.float32(output.scale)
        if output.offset != 0.0:
            y += np.float32(output.offset)
    return y


def _block_extremes(output: OutputOptions, block: NDArray[np.float32]) -> NDArray[np.float32]:
    """The responses of one block whose mapped values are its smallest and largest finite ones."""
    flat = block.ravel()
    y = _mapped(output, flat)
    finite = np.flatnonzero(np.isfinite(y))
    if not finite.size:
        return np.full(2, np.nan, np.float32)
    return np.array([flat[finite[np.argmin(y[finite])]], flat[finite[np.argmax(y[finite])]]], np.float32)


def _reduce_extremes(output: OutputOptions, pairs: list[NDArray[np.float32]]) -> NDArray[np.float32]:
    """Of every block's extreme responses, the two whose mapped values are the overall extremes."""
    candidates = np.concatenate(pairs)
    candidates = candidates[np.isfinite(candidates)]
    if not candidates.size:
        return np.full(2, np.nan, np.float32)
    y = _mapped(output, candidates)
    return np.array([candidates[np.argmin(y)], candidates[np.argmax(y)]], np.float32)


# -- files on a cluster -----------------------------------------------------------------------------

# Rows of blocks computed ahead of the one the client writes into a TIFF target.
ROWS_AHEAD = 2

Progress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class TiledResult:
    """What :func:`filter_file_dask` wrote."""

    source: str
    destination: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    blocks: int
    seconds: float


def _kind(path: Path) -> str | None:
    """``tiff`` or ``zarr`` for a name the cluster reads or writes in parts, as the chunked I/O names it."""
    from convcli.io.tiled import chunked_format

    return {"TIFF": "tiff", "ZARR": "zarr"}.get(chunked_format(path) or "")


def _cannot_read_in_parts(source: str) -> ParameterError:
    return ParameterError(
        f"{source}: only TIFF (.tif, .tiff) and Zarr (.zarr) images can be read in parts for --scheduler; "
        "convert it first, e.g. `vips tiffsave INPUT out.tif --tile --bigtiff`"
    )


def open_dask_source(source: str | Path, *, block: int | None = None) -> tuple[DaskArray, tuple[int, int]]:
    """A TIFF or Zarr image as a lazy Dask array of pixels on the 0..255 scale, as convcli reads
    them (8-bit samples as they are, 16-bit ones times 255/65535 in float32, float ones times 255),
    and its natural chunks. Each block is read by whichever worker computes it, from the path.
    """
    dask_array = import_dask_array()
    path = Path(source)
    kind = _kind(path)
    if kind is None:
        raise _cannot_read_in_parts(str(source))
    try:
        if kind == "zarr":
            import zarr

            stored = zarr.open_array(str(path), mode="r")
            shape, dtype, chunks = tuple(stored.shape), np.dtype(stored.dtype), tuple(stored.chunks[:2])
        else:
            shape, dtype, chunks = _tiff_layout(path)
    except ImportError as exc:
        raise ClusterError(f"reading {source} in parts needs {exc.name}: {INSTALL_HINT}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        from convcli.errors import ImageError

        raise ImageError(f"{source}: cannot be read in parts ({exc})") from None
    if len(shape) not in (2, 3) or (len(shape) == 3 and shape[2] not in (1, 3)):
        raise ParameterError(
            f"{source}: expected a gray or RGB image, got samples of shape {shape}; images with alpha are filtered "
            "in memory (leave out --scheduler)"
        )
    if dtype not in (np.uint8, np.uint16, np.float32):
        raise ParameterError(f"{source}: {dtype} samples are not read in parts; 8- and 16-bit and float32 are")
    side = block or DEFAULT_BLOCK
    # Read blocks of whole source chunks, about half a filter block a side: a filter block's halo
    # then reads one more read block of the next row, not a whole filter block's worth.
    block_chunks = tuple(max(1, side // (2 * max(1, c))) * c for c in chunks)
    grid = tuple(_regular(shape[axis], block_chunks[axis]) for axis in (0, 1))
    array_chunks = (*grid, *((s,) for s in shape[2:]))
    out_dtype = np.uint8 if dtype == np.uint8 else np.float32
    meta = np.empty((0,) * len(shape), dtype=out_dtype)
    image = dask_array.map_blocks(
        partial(_read_block, str(path), kind), chunks=array_chunks, dtype=out_dtype, meta=meta
    )
    if len(shape) == 3 and shape[2] == 1:
        image = image[..., 0]
    return image, (int(chunks[0]), int(chunks[1]))


def _regular(size: int, chunk: int) -> tuple[int, ...]:
    count = -(-size // chunk)
    return (*([chunk] * (count - 1)), size - chunk * (count - 1))


def _tiff_layout(path: Path) -> tuple[tuple[int, ...], np.dtype[Any], tuple[int, int]]:
    """Shape, dtype and tile (or strip) size of a TIFF's first image, as its blocks are read."""
    tifffile = _optional("tifffile")
    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages.first
        if page.planarconfig == 2 and page.samplesperpixel > 1:
            raise ValueError("planar (separate) samples are not read in parts; save with contiguous samples")
        orientation = page.tags.get(274)  # the in-memory path turns such an image upright
        if orientation is not None and orientation.value not in (1, None):
            raise ValueError(f"orientation {orientation.value} is not applied in parts; save the image upright")
    stored = _opened(str(path), "tiff", *_identity(str(path)))
    rows, cols = (int(c) for c in stored.chunks[:2])
    return tuple(int(n) for n in stored.shape), np.dtype(stored.dtype), (rows, cols)


def _identity(path: str) -> tuple[int, int]:
    """What tells a changed file from the one opened before: its modification time and size."""
    stat = os.stat(path)
    return stat.st_mtime_ns, stat.st_size


def _read_block(path: str, kind: str, block_info: dict[Any, Any] | None = None) -> NDArray[Any]:
    """One block of a source, read by the worker that computes it, on convcli's 0..255 scale."""
    assert block_info is not None
    (r0, r1), (c0, c1) = block_info[None]["array-location"][:2]
    return _to_pixels(np.asarray(_opened(path, kind, *_identity(path))[r0:r1, c0:c1]))


@functools.lru_cache(maxsize=4)
def _opened(path: str, kind: str, mtime_ns: int, size: int) -> Any:
    """The source as a Zarr array, opened once per process (and again if the file changes): a
    worker reads many blocks of one image, and opening parses the whole TIFF directory."""
    zarr = _optional("zarr")
    if kind == "zarr":
        return zarr.open_array(path, mode="r")
    tifffile = _optional("tifffile")
    return zarr.open_array(tifffile.imread(path, aszarr=True, series=0, level=0), mode="r")


def _to_pixels(samples: NDArray[Any]) -> NDArray[Any]:
    """Samples on convcli's 0..255 scale, as :mod:`convcli.io.modes` reads them from a file."""
    if samples.dtype == np.uint8:
        return samples
    if samples.dtype == np.uint16:
        return samples.astype(np.float32) * np.float32(255.0 / 65535.0)
    return samples.astype(np.float32) * np.float32(255.0)


def filter_file_dask(
    source: str | Path,
    destination: str | Path | None,
    kernels: Sequence[Kernel | str] | Kernel | str,
    job: JobOptions | None = None,
    *,
    scheduler: str | Client,
    progress: Progress | None = None,
    block: int | None = None,
) -> TiledResult:
    """:func:`~convcli.pipeline.filter_file` in tiles on a Dask cluster: read a TIFF or Zarr
    ``source`` in blocks, filter them on ``client``'s workers and write a tiled BigTIFF or a Zarr
    ``destination``, with the same pixels as the in-memory path. ``scheduler`` is an address for
    :func:`convcli.cluster.client.connect` (``tcp://HOST:PORT`` or ``local``), connected to once
    the job, the source and the target have been checked, or a ``distributed.Client``.

    Workers read the source from its path and write a Zarr target themselves, into a temporary
    folder beside it that is renamed into place at the end: the paths must mean the same files on
    every worker (a shared filesystem). A TIFF target is written by the client, block row by
    block row, to a temporary file renamed into place. ``progress(done, total)`` is called as
    blocks complete. Metadata (ICC profile, resolution) is not carried.

    Raises
    ------
    ParameterError
        Options the tiles cannot honour (``--gray`` on colour, ``--all-frames``), an output that would
        overwrite the input, a source or target that is no TIFF or Zarr, or the in-memory path's checks.
    """
    import time

    from convcli.pipeline import output_path, same_file

    start = time.perf_counter()
    job = job or JobOptions()
    resolved = _resolve(kernels)
    target = Path(output_path(source, destination, resolved, job.output.format or "tiff"))
    kind = _kind(target)
    if kind is None or str(target) == "-":
        raise ParameterError(f"{target}: --scheduler writes tiled TIFF (.tif, .tiff) or Zarr (.zarr) only")
    if same_file(Path(source), target):
        raise ParameterError(f"{target}: the output would overwrite the input; choose another -o")
    if job.input.all_frames:
        raise ParameterError("--scheduler filters the first image only; drop --all-frames")
    if job.output.format not in (None, "TIFF") or (kind == "zarr" and job.output.format):
        raise ParameterError(f"{target}: --format {job.output.format} does not match the suffix")
    block = block or DEFAULT_BLOCK
    image, _ = open_dask_source(source, block=block)
    if job.input.gray and image.ndim == 3:
        raise ParameterError(f"{source}: --gray is not applied in tiles; convert the image to gray first")
    result = filter_dask(image, resolved, job, source=str(source), block=block)
    total = int(np.prod(result.numblocks[:2]))
    with contextlib.ExitStack() as stack:
        if isinstance(scheduler, str):
            from convcli.cluster.client import connect

            client = stack.enter_context(connect(scheduler))
        else:
            client = scheduler
        # The run's semaphore and stop event find the scheduler through the current client; connect
        # does not make its client the process-wide default.
        stack.enter_context(client.as_current())
        try:
            if kind == "zarr":
                _write_zarr(result, target, client, progress)
            else:
                _write_tiff(result, target, client, progress, job.output.compress_level)
        except ConvcliError:
            raise
        except Exception as exc:  # a worker's error (a file it cannot read or write, a lost worker), on one line
            message = " ".join(str(exc).split()) or type(exc).__name__
            raise ClusterRunError(f"{source} -> {target}: {message}") from exc
    return TiledResult(
        str(source), str(target), tuple(image.shape), tuple(result.shape), total, time.perf_counter() - start
    )


def _blocks_by_row(result: DaskArray) -> list[list[Any]]:
    """The Delayed output blocks, a list per row of blocks."""
    grid = result.to_delayed()
    if grid.ndim == 3:
        grid = grid[..., 0]
    return [list(row) for row in grid]


def _write_zarr(result: DaskArray, target: Path, client: Client, progress: Progress | None) -> None:
    """Workers write their blocks into a temporary Zarr store beside ``target``; renamed at the end.

    distributed cancels a running task on the scheduler only: the worker finishes it. So a block
    write holds a lease of a semaphore and writes nothing once the run's stop event is set, and a
    stopped run sets the event and takes every lease, waiting for the writes under way, before
    it removes the temporary folder: no write of this run lands after that.
    """
    from convcli.io.atomic import AtomicOutput

    dask, zarr, distributed = _optional("dask"), _optional("zarr"), _optional("distributed")
    output = AtomicOutput(target, folder=True)
    temp = output.temp
    chunks = tuple(c[0] for c in result.chunks)
    name = f"convcli-{temp.name}"
    leases = max(1, sum(client.nthreads().values()))
    guard = distributed.Semaphore(max_leases=leases, name=name)
    stop = distributed.Event(name)
    try:
        zarr.create_array(str(temp), shape=result.shape, chunks=chunks, dtype=result.dtype, fill_value=0)
        starts = [np.cumsum((0, *c[:-1])) for c in result.chunks[:2]]
        writes = [
            dask.delayed(_store_block)(str(temp), block, (int(starts[0][i]), int(starts[1][j])), name, leases)
            for i, row in enumerate(_blocks_by_row(result))
            for j, block in enumerate(row)
        ]
        futures = client.compute(writes)
        done = 0
        try:
            for future in distributed.as_completed(futures):
                future.result()  # raises the block's error here
                done += 1
                if progress is not None:
                    progress(done, len(futures))
        except BaseException:
            stop.set()
            client.cancel(futures)
            taken = sum(bool(guard.acquire(timeout=STOP_TIMEOUT)) for _ in range(leases))
            for _ in range(taken):
                guard.release()
            raise
        # Every write has finished: no worker holds a lease. (A stopped run leaves the semaphore to
        # the scheduler: a writer that started after the stop may still hold a lease, for no write.)
        guard.close()
        output.commit()
    except BaseException:
        output.discard()
        raise
    finally:
        stop.clear()  # the scheduler forgets an event that is clear and awaited by nobody


# How long a stopped run waits for the block writes under way on workers.
STOP_TIMEOUT = 30.0


def _store_block(path: str, block: NDArray[Any], origin: tuple[int, int], name: str, leases: int) -> None:
    """Write one output block into the Zarr store at ``path`` (on a worker), unless the run stopped."""
    zarr, distributed = _optional("zarr"), _optional("distributed")
    with distributed.Semaphore(max_leases=leases, name=name):
        if distributed.Event(name).is_set():
            return
        r0, c0 = origin
        zarr.open_array(path, mode="r+")[r0 : r0 + block.shape[0], c0 : c0 + block.shape[1]] = block


def _write_tiff(
    result: DaskArray, target: Path, client: Client, progress: Progress | None, compress_level: int | None
) -> None:
    """Blocks computed on the cluster, a few rows ahead, and written in order by the client."""
    bands = _computed_bands(result, client, progress)
    write_tiff_bands(target, tuple(result.shape), result.dtype, bands, compress_level=compress_level)


def _computed_bands(result: DaskArray, client: Client, progress: Progress | None) -> Iterator[NDArray[Any]]:
    """Rows of output blocks, each joined into one band, in order; ``ROWS_AHEAD`` rows computed ahead."""
    as_completed = _optional("distributed").as_completed
    rows = _blocks_by_row(result)
    total = sum(len(row) for row in rows)
    pending: dict[int, list[Any]] = {}
    tracker = as_completed()
    submitted = 0
    done = 0
    try:
        for index in range(len(rows)):
            while submitted < len(rows) and submitted <= index + ROWS_AHEAD:
                pending[submitted] = client.compute(rows[submitted])
                tracker.update(pending[submitted])
                submitted += 1
            while not all(f.done() for f in pending[index]):
                next(tracker)
                done += 1
                if progress is not None:
                    progress(done, total)
            blocks = [f.result() for f in pending.pop(index)]
            yield np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
        for _ in tracker:  # the last completions, for the progress count
            done += 1
            if progress is not None:
                progress(done, total)
    finally:
        client.cancel([f for futures in pending.values() for f in futures])


def iter_bands(result: DaskArray, *, scheduler: str = "threads", workers: int | None = None) -> Iterator[NDArray[Any]]:
    """The rows of blocks of ``result``, computed one after another on one machine (Dask's threaded
    scheduler, ``workers`` threads), each joined into one band: memory holds one row of blocks
    and the source rows under it, not the image."""
    dask = _optional("dask")
    for row in _blocks_by_row(result):
        blocks = dask.compute(*row, scheduler=scheduler, num_workers=workers)
        yield np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]


def write_tiff_bands(
    target: Path,
    shape: tuple[int, ...],
    dtype: np.dtype[Any],
    bands: Iterator[NDArray[Any]],
    *,
    compress_level: int | None = None,
) -> None:
    """Write consecutive row bands as a tiled BigTIFF through convcli's chunked TIFF target:
    deflate-compressed at ``compress_level`` 1..9, as ``--compress-level`` does for TIFF, and
    nothing left at ``target`` unless every band was written."""
    from convcli.io.tiled import open_chunked_target

    with open_chunked_target(target, shape, dtype, fmt="TIFF", compress_level=compress_level) as tiff:
        start = 0
        for band in bands:
            tiff.write_rows(start, band)
            start += band.shape[0]
        tiff.commit()
