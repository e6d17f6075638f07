"""The public convolution entry point: validation, padding, planning and running an engine."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcli.core.border import BorderMaps, pad_image
from convcli.core.engine import Float32Array, channel_count
from convcli.core.engines import plan_engine
from convcli.core.geometry import Geometry, PaddingSpec, PairSpec, resolve_geometry
from convcli.core.integer import SAMPLE_TYPES, IntegerPlan, plan_integer
from convcli.core.threads import resolve_threads
from convcli.core.validate import as_kernel, check_filter_options, check_image
from convcli.errors import ParameterError


def convolve(
    image: ArrayLike,
    kernel: ArrayLike,
    *,
    padding: PaddingSpec = "same",
    border: str = "reflect",
    border_value: float = 0.0,
    stride: PairSpec = 1,
    dilation: PairSpec = 1,
    flip: bool = False,
    method: str = "auto",
    threads: int | None = None,
) -> NDArray[np.float32]:
    """Filter an image with a 2-D kernel; cross-correlation unless ``flip=True``.

    Parameters
    ----------
    image
        ``(H, W)`` or ``(H, W, C)`` array of any real dtype. Each channel is filtered on its
        own with the same kernel (depthwise).
    kernel
        2-D array ``(kh, kw)``, odd or even sized.
    padding
        ``"same"`` (output ``H x W`` at stride 1; an even kernel's extra row/column is padded
        bottom/right, as in PyTorch), ``"valid"`` (no padding), ``"full"``, an int for every
        side, ``(rows, cols)`` or ``(top, bottom, left, right)``.
    border
        How padded pixels are made up: ``reflect`` (default; ``cb|abc``), ``symmetric``
        (``ba|abc``), ``edge`` (``aa|abc``), ``wrap`` (``bc|abc``), ``zero`` or ``constant``
        (``border_value``).
    stride, dilation
        An int or ``(row, col)`` pair, each >= 1.
    flip
        ``False`` computes cross-correlation, ``out[r, c] = sum(x[r+i, c+j] * k[i, j])``, like
        PyTorch ``conv2d`` and OpenCV ``filter2D``. ``True`` flips the kernel first, which is
        true convolution as in ``scipy.ndimage.convolve``.
    method
        ``"auto"`` (a cost model picks from kernel size, rank, image size and stride) or the
        name of an engine in :data:`convcli.core.engines.ENGINES`: ``"direct"``,
        ``"separable"`` (a kernel that is not low-rank is computed exactly as the sum over its
        full rank; correct but slower than direct) or ``"fft"``. With ``"auto"``, a uint8 or
        uint16 image and a kernel with integer taps (after its own scale) are filtered in exact
        integer arithmetic (:mod:`convcli.core.integer`), with the float engines' results.
    threads
        Maximum worker threads over bands of output rows; ``None`` means ``os.cpu_count()``.
        Small images always use one thread. Results do not depend on the thread count.

    Returns
    -------
    float32 array of shape ``(Ho, Wo)`` or ``(Ho, Wo, C)`` with
    ``Ho = floor((H + pad_top + pad_bottom - dilation * (kh - 1) - 1) / stride) + 1``.

    Examples
    --------
    One bright pixel shows the difference: correlation paints the kernel mirrored, convolution
    paints it as written.

    >>> x = np.zeros((3, 3)); x[1, 1] = 1
    >>> k = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    >>> convolve(x, k, border="zero").astype(int)
    array([[9, 8, 7],
           [6, 5, 4],
           [3, 2, 1]])
    >>> convolve(x, k, border="zero", flip=True).astype(int)
    array([[1, 2, 3],
           [4, 5, 6],
           [7, 8, 9]])
    """
    request = prepare(
        image,
        [kernel],
        {"padding": padding, "border": border, "border_value": border_value, "stride": stride,
         "dilation": dilation, "flip": flip, "method": method, "threads": threads},
    )
    geometry = request.geometry
    pixels = request.pixels
    integer = integer_plan(request, "single")
    if integer is not None:
        out = np.empty((*geometry.out_shape, *pixels.shape[2:]), dtype=np.float32)
        maps = BorderMaps.of(pixels.shape[:2], geometry.pad, request.border, request.border_value)
        integer.run(pixels, geometry, maps, out, threads=request.threads)
        return out
    plan = plan_engine(request.kernels[0], geometry, request.method, channel_count(pixels.shape))
    if not _pads_in_own_type(pixels, request.border, request.border_value):
        with np.errstate(all="ignore"):  # a float64 pixel beyond float32 is infinity, as a response would be
            pixels = pixels.astype(np.float32, copy=False)
    # An 8- or 16-bit image is padded in its own type and the engines convert it to float32 strip
    # by strip, in cache: a whole-image float32 copy would cost more than a small filter itself.
    padded = pad_image(pixels, geometry.pad, request.border, request.border_value)
    # A response beyond float32's range is infinity, clipped by the output mapping; NumPy's
    # overflow warnings about it are not the user's business.
    with np.errstate(all="ignore"):
        return plan.run(padded, geometry, threads=request.threads)


def _pads_in_own_type(pixels: NDArray[Any], border: str, border_value: float) -> bool:
    """Whether an image can be padded in its own sample type: 8 or 16 bits, with a border its
    samples can hold (a ``constant`` border of 0.5 or -1 needs float32)."""
    if pixels.dtype not in (np.uint8, np.uint16) or not pixels.dtype.isnative:
        return False
    if border != "constant":
        return True
    return float(border_value).is_integer() and 0 <= border_value <= np.iinfo(pixels.dtype).max


class ConvolveOptions(TypedDict, total=False):
    """The keyword arguments of :func:`convolve`, for functions that take them as ``**options``."""

    padding: PaddingSpec
    border: str
    border_value: float
    stride: PairSpec
    dilation: PairSpec
    flip: bool
    method: str
    threads: int | None


# Declared once, by convolve's signature.
CONVOLVE_DEFAULTS: dict[str, Any] = {
    name: parameter.default
    for name, parameter in inspect.signature(convolve).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
}


@dataclass(frozen=True)
class Request:
    """A checked convolution: the image (its dtype kept), float32 kernels (flipped if asked), the
    canonical border mode, the geometry, the engine name and the thread count."""

    pixels: NDArray[Any]
    kernels: tuple[Float32Array, ...]
    border: str
    border_value: float
    geometry: Geometry
    method: str
    threads: int


def integer_plan(request: Request, combine: str = "single") -> IntegerPlan | None:
    """The exact integer engine's plan (:mod:`convcli.core.integer`) for ``request``'s kernels
    combined by ``combine``, where ``method="auto"`` finds it cheaper than the float engines; else None.

    The choice depends only on the kernels, the image's sample type and shape, and the options, and
    is remembered for them: filtering many images alike plans once.
    """
    if request.method != "auto" or request.pixels.dtype.type not in SAMPLE_TYPES:
        return None
    kernels = tuple((k.shape, k.tobytes()) for k in request.kernels)
    # Large kernels are planned afresh: their bytes would make a large key to keep, and filtering
    # with them takes far longer than planning.
    large = sum(k.size for k in request.kernels) > _REMEMBERED_TAPS
    choose = _integer_choice.__wrapped__ if large else _integer_choice
    return choose(
        kernels, request.pixels.dtype.str, channel_count(request.pixels.shape), request.border,
        float(request.border_value), request.geometry, combine,
    )


_REMEMBERED_TAPS = 4096


@functools.lru_cache(maxsize=64)
def _integer_choice(
    kernels: tuple[tuple[tuple[int, ...], bytes], ...],
    sample_type: str,
    channels: int,
    border: str,
    border_value: float,
    geometry: Geometry,
    combine: str,
) -> IntegerPlan | None:
    """:func:`integer_plan` for float32 kernels given as ``(shape, bytes)``, hashable."""
    weights = [np.frombuffer(data, dtype=np.float32).reshape(shape) for shape, data in kernels]
    plan = plan_integer(weights, np.dtype(sample_type), border, border_value, combine)
    if plan is None:
        return None
    # Besides their plans' costs, the float engines pay a pass to convert the image to float32 and
    # one per response written out in full (see convcli.core.integer.PASS_COST).
    floats = [plan_engine(k, geometry, "auto", channels) for k in weights]
    return plan if plan.cost <= sum(p.cost + 1 for p in floats) + 1 else None


def prepare(image: ArrayLike, kernels: Sequence[ArrayLike], options: ConvolveOptions) -> Request:
    """Check an image, same-shaped kernels and :func:`convolve`'s options before any computing.

    Options left out take :func:`convolve`'s defaults; an unknown name is refused.

    >>> prepare(np.zeros((4, 5)), [[[1, 2, 3]]], {"padding": "valid"}).geometry.out_shape
    (4, 3)
    """
    unknown = sorted(set(options) - set(CONVOLVE_DEFAULTS))
    if unknown:
        raise ParameterError(f"unknown option `{unknown[0]}`; the options are {', '.join(CONVOLVE_DEFAULTS)}")
    settings: dict[str, Any] = {**CONVOLVE_DEFAULTS, **options}
    pixels = check_image(image)
    weights = [as_kernel(k) for k in kernels]
    if not weights:
        raise ParameterError("`matrices` must hold at least one kernel")
    if len({w.shape for w in weights}) != 1:
        raise ParameterError("`matrices` must all have one shape")
    mode = check_filter_options(settings["border"], settings["border_value"], settings["method"])
    threads = resolve_threads(settings["threads"])
    if settings["flip"]:
        weights = [np.ascontiguousarray(w[::-1, ::-1]) for w in weights]
    geometry = resolve_geometry(
        pixels.shape[:2], weights[0].shape, settings["padding"], settings["stride"], settings["dilation"]
    )
    return Request(pixels, tuple(weights), mode, settings["border_value"], geometry, settings["method"], threads)
