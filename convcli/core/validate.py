"""Checks of the arrays and options every core entry point takes, made before any computing.

Every message names the parameter at fault and the cause, as :class:`~convcli.errors.ParameterError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcli.core.border import resolve_border
from convcli.core.engines import check_method
from convcli.errors import ParameterError

# Filtering runs in float32: a border value or a scale beyond this would become infinity.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_image(image: ArrayLike) -> NDArray[Any]:
    """Validate an image array without converting its dtype.

    >>> check_image(np.zeros((2, 3, 4), np.uint8)).dtype
    dtype('uint8')
    """
    array = np.asarray(image)
    if array.ndim not in (2, 3):
        raise ParameterError(f"`image` must be a 2-D (H, W) or 3-D (H, W, C) array, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ParameterError(f"`image` must not be empty, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ParameterError(f"`image` must hold numbers, got dtype {array.dtype}")
    if np.iscomplexobj(array):
        raise ParameterError("`image` must be real, got a complex array")
    return array


def _finite_array(value: ArrayLike, name: str, ndim: int, layout: str = "") -> NDArray[np.float64]:
    """``value`` as a non-empty float64 array of ``ndim`` axes holding finite numbers only.

    Complex numbers are refused, as for images: converting them would drop the imaginary part.
    """
    if np.iscomplexobj(value):
        raise ParameterError(f"`{name}` must be real, got complex numbers")
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"`{name}` must be a {ndim}-D array of numbers: {exc}") from exc
    if array.ndim != ndim or 0 in array.shape:
        raise ParameterError(f"`{name}` must be a non-empty {ndim}-D array{layout}, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ParameterError(f"`{name}` must hold finite numbers only (no NaN or infinity)")
    if np.abs(array).max() > FLOAT32_MAX:
        # Filtering runs in float32, where such a tap would be infinity.
        raise ParameterError(f"`{name}` must hold numbers within float32's range (+-{FLOAT32_MAX:.2g})")
    return array


def as_kernel(kernel: ArrayLike) -> NDArray[np.float32]:
    """Validate a 2-D kernel and convert it to float32.

    >>> as_kernel([[1, 2]])
    array([[1., 2.]], dtype=float32)
    """
    return _finite_array(kernel, "kernel", 2).astype(np.float32)


def as_weights(weights: ArrayLike) -> NDArray[np.float64]:
    """Validate a channel-mixing kernel ``(out, in, kh, kw)``, PyTorch's layout, as float64."""
    return _finite_array(weights, "weights", 4, " (out, in, kh, kw)")


def check_filter_options(border: str, border_value: float, method: str) -> str:
    """Validate the options every entry point shares; return the canonical border name.

    >>> check_filter_options("replicate", 0.0, "auto")
    'edge'
    """
    mode = resolve_border(border)
    real = (int, float, np.integer, np.floating)
    if isinstance(border_value, (bool, np.bool_)) or not isinstance(border_value, real):
        raise ParameterError(f"`border_value` must be a real number, got {border_value!r}")
    if not abs(float(border_value)) <= FLOAT32_MAX:
        raise ParameterError(
            f"`border_value` must be a finite number within float32's range (+-{FLOAT32_MAX:.2g}), got {border_value!r}"
        )
    check_method(method)
    return mode
