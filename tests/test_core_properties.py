"""Property tests of the convolution core against an independent reference, for every border
mode, padding, stride and dilation, with dense and sparse kernels.

The reference (tests/reference.py) pads by index arithmetic and sums windows in float64;
scipy.ndimage cross-checks the "same" case.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.core import convolve, resolve_padding
from convcli.core.geometry import PaddingSpec
from convcli.errors import ParameterError

from reference import BORDERS, SCIPY_MODES, correlate_reference, source_index

paddings = st.one_of(
    st.sampled_from(["same", "valid", "full"]),
    st.integers(0, 6),
    st.tuples(st.integers(0, 6), st.integers(0, 6)),
    st.tuples(*[st.integers(0, 6)] * 4),
)


@settings(max_examples=2000, deadline=None)
@given(
    data=st.data(),
    h=st.integers(1, 10),
    w=st.integers(1, 10),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    channels=st.sampled_from([0, 1, 3]),
    border=st.sampled_from(BORDERS),
    padding=paddings,
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    flip=st.booleans(),
    sparse=st.booleans(),
)
def test_every_border_padding_stride_dilation(
    data: st.DataObject, h: int, w: int, kh: int, kw: int, channels: int, border: str, padding: PaddingSpec,
    stride: tuple[int, int], dilation: tuple[int, int], flip: bool, sparse: bool,
) -> None:
    seed = data.draw(st.integers(0, 2**32 - 1))
    gen = np.random.default_rng(seed)
    image = gen.uniform(-50, 50, size=(h, w) if channels == 0 else (h, w, channels))
    kernel = gen.standard_normal((kh, kw))
    if sparse:
        kernel[gen.random((kh, kw)) < 0.3] = 0.0  # zero taps are skipped by the engines
    value = float(gen.uniform(-5, 5))
    pad = resolve_padding(padding, (kh, kw), dilation)
    extent = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    kwargs: dict[str, Any] = {
        "padding": padding, "stride": stride, "dilation": dilation, "border": border, "border_value": value,
        "flip": flip,
    }
    if extent[0] > h + pad[0] + pad[1] or extent[1] > w + pad[2] + pad[3]:
        with pytest.raises(ParameterError, match="larger than the padded image"):
            convolve(image, kernel, **kwargs)
        return
    got = convolve(image, kernel, **kwargs)
    taps = kernel[::-1, ::-1] if flip else kernel
    if padding == "same" and stride != (1, 1):
        # "same" with a stride keeps every stride-th output of the stride-1 result
        want = correlate_reference(image, taps, pad, border, (1, 1), dilation, value)[:: stride[0], :: stride[1]]
    else:
        want = correlate_reference(image, taps, pad, border, stride, dilation, value)
    assert got.dtype == np.float32
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)


@settings(max_examples=600, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    border=st.sampled_from(list(SCIPY_MODES)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_same_matches_scipy(
    seed: int, h: int, w: int, kh: int, kw: int, border: str, dilation: tuple[int, int]
) -> None:
    gen = np.random.default_rng(seed)
    image = gen.uniform(0, 255, size=(h, w))
    kernel = gen.standard_normal((kh, kw))
    # a dilated kernel is the kernel with zeros between its taps
    spread = np.zeros((dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1))
    spread[:: dilation[0], :: dilation[1]] = kernel
    origin = [(n - 1) // 2 - n // 2 for n in spread.shape]
    want = ndi.correlate(image, spread, mode=SCIPY_MODES[border], origin=origin)
    got = convolve(image, kernel, border=border, dilation=dilation)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-2)


def test_reference_padding_rules() -> None:
    # the index rules of the reference, written out for a row "a b c" (0 1 2), two pixels each side
    i = np.arange(-2, 5)
    assert source_index(i, 3, "reflect").tolist() == [2, 1, 0, 1, 2, 1, 0]
    assert source_index(i, 3, "symmetric").tolist() == [1, 0, 0, 1, 2, 2, 1]
    assert source_index(i, 3, "edge").tolist() == [0, 0, 0, 1, 2, 2, 2]
    assert source_index(i, 3, "wrap").tolist() == [1, 2, 0, 1, 2, 0, 1]
    assert source_index(i, 3, "zero").tolist() == [-1, -1, 0, 1, 2, -1, -1]
