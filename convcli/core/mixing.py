"""Convolution that mixes channels, in PyTorch's ``conv2d`` layout and arithmetic.

Every output channel is a sum over all input channels, each filtered with its own 2-D kernel,
plus a bias: ``out[..., o] = bias[o] + sum_i correlate(image[..., i], weights[o, i])``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcli.core.convolve import convolve
from convcli.core.validate import as_weights, check_image
from convcli.errors import ParameterError


def mix_convolve(
    image: ArrayLike,
    weights: ArrayLike,
    bias: ArrayLike | None = None,
    **geometry: Any,
) -> NDArray[np.float32]:
    """Filter an image with a channel-mixing kernel, like ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    image
        ``(H, W, C)`` array, or ``(H, W)`` for one channel.
    weights
        ``(out, in, kh, kw)``, PyTorch's layout; ``in`` must equal ``C``.
    bias
        ``(out,)`` values added to each output channel, in the units of ``image``, or None.
    **geometry
        Keyword arguments of :func:`convcli.core.convolve` (``padding``, ``border``, ``stride``,
        ``dilation``, ``flip``, ``method``), applied to every 2-D kernel alike.

    Returns
    -------
    float32 array ``(Ho, Wo, out)``, always with a channel axis.

    Examples
    --------
    A 1x1 kernel is a matrix applied to every pixel's channel vector:

    >>> image = np.array([[[10.0, 20.0, 30.0]]])
    >>> swap = np.array([[[[0.0]], [[1.0]], [[0.0]]], [[[1.0]], [[0.0]], [[0.0]]]])
    >>> mix_convolve(image, swap, [1.0, 2.0]).tolist()
    [[[21.0, 12.0]]]
    """
    pixels = check_image(image)
    if pixels.ndim == 2:
        pixels = pixels[..., np.newaxis]
    kernel = as_weights(weights)
    out_channels, in_channels = kernel.shape[:2]
    if pixels.shape[2] != in_channels:
        raise ParameterError(
            f"the kernel expects {in_channels} input channel{'s' if in_channels != 1 else ''} "
            f"(weights {out_channels}x{in_channels}x{kernel.shape[2]}x{kernel.shape[3]}), "
            f"but the image has {pixels.shape[2]}"
        )
    if bias is not None and np.iscomplexobj(bias):
        raise ParameterError("`bias` must be real, got complex numbers")
    offsets = np.zeros(out_channels) if bias is None else np.asarray(bias, dtype=np.float64).reshape(-1)
    if offsets.shape != (out_channels,):
        raise ParameterError(f"`bias` must have one value per output channel ({out_channels}), got {offsets.size}")
    if not np.all(np.isfinite(offsets)) or np.abs(offsets).max(initial=0.0) > np.finfo(np.float32).max:
        raise ParameterError("`bias` must hold finite numbers within float32's range only")
    planes = [np.ascontiguousarray(pixels[..., i]) for i in range(in_channels)]
    with np.errstate(all="ignore"):  # overflow is infinity, clipped by the mapping (see convolve)
        return _mix(planes, kernel, offsets, geometry)


def _mix(
    planes: list[NDArray[Any]], kernel: NDArray[np.float64], offsets: NDArray[np.float64], geometry: dict[str, Any]
) -> NDArray[np.float32]:
    out_channels, in_channels = kernel.shape[:2]
    outputs = []
    for o in range(out_channels):
        total: NDArray[np.float32] | None = None
        for i in range(in_channels):
            # An all-zero kernel adds nothing; skipping it makes sparse 1x1 colour transforms cheap.
            if total is not None and not kernel[o, i].any():
                continue
            response = convolve(planes[i], kernel[o, i], **geometry)
            total = response if total is None else np.add(total, response, out=total)
        assert total is not None
        total += np.float32(offsets[o])
        outputs.append(total)
    return np.stack(outputs, axis=-1)
