"""Band-by-band filtering equals whole-image filtering, and border index maps equal numpy.pad."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.core import convolve, map_to_uint8
from convcli.core.bands import border_index, combine_responses, filter_banded
from convcli.core.geometry import PaddingSpec, PairSpec
from convcli.errors import ParameterError

NUMPY_MODE: dict[str, Literal["reflect", "symmetric", "edge", "wrap"]] = {
    "reflect": "reflect", "symmetric": "symmetric", "edge": "edge", "wrap": "wrap"
}


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 9), before=st.integers(0, 25), after=st.integers(0, 25),
       mode=st.sampled_from(sorted(NUMPY_MODE)))
def test_border_index_equals_numpy_pad(size: int, before: int, after: int, mode: str) -> None:
    values = np.arange(size) * 10 + 1
    index, inside = border_index(size, before, after, mode)
    assert inside is None
    np.testing.assert_array_equal(values[index], np.pad(values, (before, after), mode=NUMPY_MODE[mode]))


def test_border_index_constant_marks_outside() -> None:
    index, inside = border_index(3, 2, 1, "zero")
    assert inside is not None
    assert inside.tolist() == [False, False, True, True, True, False]
    assert index.tolist() == [0, 0, 0, 1, 2, 2]


@pytest.mark.parametrize("border", ["reflect", "symmetric", "edge", "wrap", "zero", "constant"])
@pytest.mark.parametrize("rows_per_band", [1, 3, 7, 1000])
@pytest.mark.parametrize(
    "padding, stride, dilation", [("same", 1, 1), ("valid", 2, 1), ((3, 0, 1, 2), (3, 2), (2, 1)), ("full", 1, 2)]
)
def test_banded_equals_whole_image(
    border: str, rows_per_band: int, padding: PaddingSpec, stride: PairSpec, dilation: PairSpec,
    rng: np.random.Generator,
) -> None:
    image = rng.integers(0, 256, size=(23, 19, 3), dtype=np.uint8)
    kernel = rng.standard_normal((3, 4))
    want = convolve(image, kernel, padding=padding, border=border, border_value=37.0, stride=stride, dilation=dilation)
    got = filter_banded(
        image, [kernel], rows_per_band=rows_per_band, padding=padding, border=border, border_value=37.0,
        stride=stride, dilation=dilation,
    )
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("combine", ["magnitude", "max", "sum"])
def test_banded_set_with_transform(combine: str, rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, size=(31, 17), dtype=np.uint8)
    kernels = [rng.standard_normal((3, 3)) for _ in range(3)]
    responses = [convolve(image, k, flip=True) for k in kernels]
    want = map_to_uint8(combine_responses(responses, combine), "abs")
    got = filter_banded(image, kernels, combine=combine, flip=True, rows_per_band=4,
                        transform=lambda band: map_to_uint8(band, "abs"), out_dtype=np.uint8)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)


def test_magnitude_by_hand() -> None:
    a = np.array([[3.0]], dtype=np.float32)
    b = np.array([[4.0]], dtype=np.float32)
    assert combine_responses([a, b], "magnitude").item() == 5.0
    assert combine_responses([a, b], "max").item() == 4.0
    assert combine_responses([a, b], "sum").item() == 7.0


def test_banded_errors() -> None:
    with pytest.raises(ParameterError, match="`combine`"):
        filter_banded(np.ones((4, 4)), [np.ones((3, 3))], combine="min")
    with pytest.raises(ParameterError, match="one shape"):
        filter_banded(np.ones((4, 4)), [np.ones((3, 3)), np.ones((1, 3))])
    with pytest.raises(ParameterError, match="larger than the padded image"):
        filter_banded(np.ones((4, 4)), [np.ones((5, 5))], padding="valid")
