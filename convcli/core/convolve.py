"""The public convolution entry point: validation, padding, planning and running an engine."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from convcli.core.border import pad_image
from convcli.core.engine import channel_count
from convcli.core.engines import plan_engine
from convcli.core.geometry import PaddingSpec, PairSpec, resolve_geometry
from convcli.core.threads import resolve_threads
from convcli.core.validate import as_image, as_kernel, check_filter_options


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
        full rank; correct but slower than direct) or ``"fft"``.
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
    pixels = as_image(image)
    weights = as_kernel(kernel)
    mode = check_filter_options(border, border_value, method)
    workers = resolve_threads(threads)
    if flip:
        weights = np.ascontiguousarray(weights[::-1, ::-1])
    geometry = resolve_geometry(pixels.shape[:2], weights.shape, padding, stride, dilation)
    padded = pad_image(pixels, geometry.pad, mode, border_value)
    plan = plan_engine(weights, geometry, method, channel_count(pixels.shape))
    return plan.run(padded, geometry, threads=workers)
