"""The convolution core against scipy.ndimage, a naive loop and hand-worked values."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi
from numpy.typing import ArrayLike

from convcli.core import convolve, map_to_uint8, output_size, resolve_padding
from convcli.core.geometry import PaddingSpec, PairSpec
from convcli.errors import ParameterError

from reference import SCIPY_MODES, naive_correlate


def _scipy_origin(shape: tuple[int, ...]) -> list[int]:
    # scipy centres a kernel of size n at n // 2; "same" here centres it at (n - 1) // 2,
    # as PyTorch does (the extra padding of an even kernel goes bottom/right).
    return [(n - 1) // 2 - n // 2 for n in shape]


@pytest.mark.parametrize("border", list(SCIPY_MODES))
@pytest.mark.parametrize("kshape", [(3, 3), (5, 5), (2, 2), (4, 3), (1, 7), (6, 1)])
def test_matches_scipy_correlate_gray(border: str, kshape: tuple[int, int], rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(19, 23))
    kernel = rng.standard_normal(kshape)
    got = convolve(image, kernel, border=border)
    want = ndi.correlate(image, kernel, mode=SCIPY_MODES[border], origin=_scipy_origin(kshape))
    assert got.dtype == np.float32
    assert got.shape == image.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("border", list(SCIPY_MODES))
def test_matches_scipy_correlate_colour_depthwise(border: str, rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(16, 21, 3))
    kernel = rng.standard_normal((3, 5))
    got = convolve(image, kernel, border=border)
    for channel in range(3):
        want = ndi.correlate(image[..., channel], kernel, mode=SCIPY_MODES[border], origin=_scipy_origin((3, 5)))
        np.testing.assert_allclose(got[..., channel], want, rtol=1e-5, atol=1e-3)


def test_constant_border_uses_value(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(9, 11))
    kernel = rng.standard_normal((3, 3))
    got = convolve(image, kernel, border="constant", border_value=100.0)
    want = ndi.correlate(image, kernel, mode="constant", cval=100.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert not np.allclose(got, convolve(image, kernel, border="zero"))


@pytest.mark.parametrize("kshape", [(3, 3), (5, 3), (7, 7)])
@pytest.mark.parametrize("border", ["zero", "edge", "wrap"])
def test_flip_matches_scipy_convolve(kshape: tuple[int, int], border: str, rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(15, 17))
    kernel = rng.standard_normal(kshape)
    got = convolve(image, kernel, border=border, flip=True)
    want = ndi.convolve(image, kernel, mode=SCIPY_MODES[border])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_one_pixel_correlation_versus_convolution() -> None:
    image = np.zeros((5, 5))
    image[2, 2] = 1.0
    kernel = np.arange(1, 10, dtype=float).reshape(3, 3)
    corr = convolve(image, kernel, border="zero")
    conv = convolve(image, kernel, border="zero", flip=True)
    np.testing.assert_array_equal(corr[1:4, 1:4], kernel[::-1, ::-1])
    np.testing.assert_array_equal(conv[1:4, 1:4], kernel)


def test_textbook_valid_loop(rng: np.random.Generator) -> None:
    # out[r, c] = sum(image[r:r+kh, c:c+kw] * kernel), the textbook's double loop
    image = rng.integers(0, 256, size=(12, 10)).astype(float)
    kernel = rng.integers(-3, 4, size=(3, 3)).astype(float)
    out = np.zeros((10, 8))
    for r in range(10):
        for c in range(8):
            out[r, c] = np.sum(image[r : r + 3, c : c + 3] * kernel)
    np.testing.assert_allclose(convolve(image, kernel, padding="valid"), out, atol=1e-3)


@pytest.mark.parametrize(
    "padding, stride, dilation",
    [
        ("valid", 1, 1),
        ("valid", 2, 1),
        ("valid", (1, 3), (2, 1)),
        (2, 1, 1),
        ((1, 3), 2, 2),
        ((0, 2, 3, 1), (2, 3), (1, 2)),
        ("full", 1, 1),
        ("full", 3, 2),
    ],
)
@pytest.mark.parametrize("kshape", [(3, 3), (2, 4)])
def test_padding_stride_dilation_against_naive_loop(
    padding: PaddingSpec,
    stride: int | tuple[int, int],
    dilation: int | tuple[int, int],
    kshape: tuple[int, int],
    rng: np.random.Generator,
) -> None:
    image = rng.uniform(0, 255, size=(13, 17, 2))
    kernel = rng.standard_normal(kshape)
    strides = (stride, stride) if isinstance(stride, int) else stride
    dilations = (dilation, dilation) if isinstance(dilation, int) else dilation
    pad = resolve_padding(padding, kshape, dilations)
    got = convolve(image, kernel, padding=padding, stride=stride, dilation=dilation, border="zero")
    want = naive_correlate(image, kernel, pad, strides, dilations)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("size, stride", [(10, 2), (11, 2), (11, 3), (7, 4), (5, 5), (4, 7)])
def test_same_with_stride_keeps_every_stride_th_output(size: int, stride: int, rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(size, size + 1))
    kernel = rng.standard_normal((3, 3))
    full = convolve(image, kernel)
    strided = convolve(image, kernel, stride=stride)
    assert strided.shape == (-(-size // stride), -(-(size + 1) // stride))
    np.testing.assert_allclose(strided, full[::stride, ::stride], rtol=1e-5, atol=1e-4)


def test_even_kernel_same_pads_bottom_right() -> None:
    assert resolve_padding("same", (2, 2), (1, 1)) == (0, 1, 0, 1)
    assert resolve_padding("same", (4, 4), (1, 1)) == (1, 2, 1, 2)
    assert resolve_padding("same", (2, 2), (3, 3)) == (1, 2, 1, 2)  # dilated extent 4
    image = np.arange(16, dtype=float).reshape(4, 4)
    # [[1, 0], [0, 0]] under "same" reads the pixel itself: the anchor is the top-left tap
    np.testing.assert_array_equal(convolve(image, [[1, 0], [0, 0]]), image)


def test_identity_kernel_returns_input(rng: np.random.Generator) -> None:
    image = rng.integers(0, 256, size=(20, 30, 3)).astype(np.uint8)
    for border in SCIPY_MODES:
        np.testing.assert_array_equal(convolve(image, [[0, 0, 0], [0, 1, 0], [0, 0, 0]], border=border), image)


def test_shifted_delta_shifts_the_image(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(12, 14))
    kernel = np.zeros((5, 5))
    kernel[2, 4] = 1.0  # correlation reads the pixel two columns to the right
    got = convolve(image, kernel, border="wrap")
    np.testing.assert_allclose(got, np.roll(image, -2, axis=1), atol=1e-4)
    kernel = np.zeros((5, 5))
    kernel[0, 2] = 1.0  # reads the pixel two rows up
    np.testing.assert_allclose(convolve(image, kernel, border="wrap"), np.roll(image, 2, axis=0), atol=1e-4)


def test_linearity(rng: np.random.Generator) -> None:
    a, b = rng.uniform(0, 1, size=(2, 11, 13))
    k = rng.standard_normal((3, 3))
    np.testing.assert_allclose(convolve(2 * a + 3 * b, k), 2 * convolve(a, k) + 3 * convolve(b, k), atol=1e-4)


def test_output_size_formula() -> None:
    # PyTorch: floor((H + pad_top + pad_bottom - dilation * (kh - 1) - 1) / stride) + 1
    assert output_size(32, 1, 1, 3, 1, 1) == 32
    assert output_size(32, 0, 0, 3, 2, 1) == 15
    assert output_size(32, 2, 2, 3, 2, 2) == 16
    assert output_size(5, 0, 0, 5, 1, 1) == 1
    assert convolve(np.ones((32, 20)), np.ones((3, 3)), padding="valid", stride=(2, 3), dilation=(1, 2)).shape == (
        15,
        6,
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"stride": 0}, "`stride` must be >= 1"),
        ({"stride": (1, 2, 3)}, "`stride` must be an integer or a"),
        ({"dilation": -1}, "`dilation` must be >= 1"),
        ({"dilation": 1.5}, "`dilation` must be an integer"),
        ({"padding": "middle"}, "`padding` must be one of"),
        ({"padding": -1}, "`padding` must not be negative"),
        ({"padding": (1, 2, 3)}, "`padding` must be same, valid"),
        ({"border": "mirror-ish"}, "`border` must be one of"),
        ({"border_value": float("nan")}, "`border_value` must be a finite"),
        ({"method": "gpu"}, "`method` must be one of"),
    ],
)
def test_bad_parameters_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        convolve(np.ones((8, 8)), np.ones((3, 3)), **kwargs)


def test_kernel_larger_than_padded_image() -> None:
    with pytest.raises(ParameterError, match=r"kernel 5x5 is larger than the padded image 4x4"):
        convolve(np.ones((4, 4)), np.ones((5, 5)), padding="valid")
    with pytest.raises(ParameterError, match=r"dilated to 9x9"):
        convolve(np.ones((6, 6)), np.ones((3, 3)), padding="valid", dilation=4)
    # "same" pads enough for any kernel
    assert convolve(np.ones((4, 4)), np.ones((9, 9)), border="edge").shape == (4, 4)


@pytest.mark.parametrize(
    "image, kernel, message",
    [
        (np.ones(5), np.ones((3, 3)), "`image` must be a 2-D"),
        (np.ones((0, 5)), np.ones((3, 3)), "`image` must not be empty"),
        (np.array([["a"]]), np.ones((1, 1)), "`image` must hold numbers"),
        (np.ones((5, 5)), np.ones(3), "`kernel` must be a non-empty 2-D"),
        (np.ones((5, 5)), [[1.0, float("inf")]], "`kernel` must hold finite"),
        (np.ones((5, 5)), [["x"]], "`kernel` must be a 2-D array of numbers"),
    ],
)
def test_bad_arrays(image: ArrayLike, kernel: ArrayLike, message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        convolve(image, kernel)


def test_parameter_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="`stride` must be >= 1"):
        convolve(np.ones((4, 4)), np.ones((3, 3)), stride=0)


# -- output mapping ------------------------------------------------------------------------------


def test_clip_rounds_and_never_wraps() -> None:
    values = np.array([-300.0, -1.0, -0.4, 0.5, 1.5, 2.49, 254.6, 255.4, 256.0, 1e6])
    assert map_to_uint8(values).tolist() == [0, 0, 0, 0, 2, 2, 255, 255, 255, 255]
    # what np.uint8 would have done to -1 and 256: wrap around
    assert np.array([-1, 256]).astype(np.uint8).tolist() == [255, 0]


def test_abs_shows_both_polarities() -> None:
    assert map_to_uint8(np.array([-40.0, 40.0, -300.0]), "abs").tolist() == [40, 40, 255]


def test_scale_and_offset_apply_before_mode() -> None:
    values = np.array([-100.0, 0.0, 100.0])
    assert map_to_uint8(values, scale=0.5, offset=128).tolist() == [78, 128, 178]
    assert map_to_uint8(values, "abs", scale=2.0).tolist() == [200, 0, 200]


def test_normalize_stretches_min_to_max() -> None:
    values = np.array([[-50.0, 0.0], [25.0, 50.0]])
    assert map_to_uint8(values, "normalize").tolist() == [[0, 128], [191, 255]]
    flat = np.full((2, 2), 300.0)
    assert map_to_uint8(flat, "normalize").tolist() == [[255, 255], [255, 255]]


def test_bad_output_mode() -> None:
    with pytest.raises(ParameterError, match="`output_mode` must be one of clip, abs, normalize"):
        map_to_uint8(np.zeros(3), "wrap")


def test_core_imports_numpy_only() -> None:
    code = (
        "import sys, convcli.core, convcli.core.bands, convcli.core.engines, convcli.core.mixing\n"
        "import convcli.core.validate\n"
        "bad = [m for m in ('PIL', 'typer', 'rich', 'scipy', 'click', 'cv2') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


@pytest.mark.parametrize("kshape", [(3, 3), (2, 2), (4, 3), (5, 2)])
@pytest.mark.parametrize("dilation", [1, 2, (1, 3)])
def test_same_padding_matches_pytorch(kshape: tuple[int, int], dilation: PairSpec, rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    image = rng.uniform(0, 255, size=(13, 16))
    kernel = rng.standard_normal(kshape)
    want = torch.nn.functional.conv2d(
        torch.tensor(image)[None, None], torch.tensor(kernel)[None, None], padding="same", dilation=dilation
    )[0, 0].numpy()
    got = convolve(image, kernel, padding="same", border="zero", dilation=dilation)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("padding, stride, dilation", [(0, 1, 1), (1, 2, 1), ((2, 1), (2, 3), (1, 2)), (3, 3, 2)])
def test_numeric_padding_stride_dilation_match_pytorch(
    padding: PaddingSpec, stride: PairSpec, dilation: PairSpec, rng: np.random.Generator
) -> None:
    torch = pytest.importorskip("torch")
    image = rng.uniform(0, 255, size=(3, 17, 19))  # channels first, as torch wants
    kernel = rng.standard_normal((3, 4))
    weight = torch.tensor(np.stack([kernel] * 3))[:, None]  # depthwise: groups=3
    want = torch.nn.functional.conv2d(
        torch.tensor(image)[None], weight, padding=padding, stride=stride, dilation=dilation, groups=3
    )[0].numpy()
    got = convolve(np.moveaxis(image, 0, -1), kernel, padding=padding, border="zero", stride=stride, dilation=dilation)
    np.testing.assert_allclose(np.moveaxis(got, -1, 0), want, rtol=1e-5, atol=1e-3)
