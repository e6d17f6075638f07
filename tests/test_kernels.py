"""The kernel catalogue, the parametric families and channel-mixing kernels: known values."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from convcli.core import convolve
from convcli.core.mixing import mix_convolve
from convcli.errors import KernelError, ParameterError
from convcli.kernels import (
    FAMILIES,
    KernelWarning,
    builtin_dir,
    builtin_names,
    catalogue,
    emboss_matrix,
    export_toml,
    is_separable,
    iter_kernels,
    kernel_from_dict,
    load_kernel,
    motion_matrix,
    parse_spec,
    random_weights,
    sobel_pair,
)
from convcli.pipeline import FilterOptions, apply_kernel, apply_kernels, carry_alpha

from reference import naive_correlate


def textbook_gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """The textbook's definition, verbatim: ``size`` is a radius."""
    x, y = np.mgrid[-size : size + 1, -size : size + 1]
    g = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    normalised: np.ndarray = g / g.sum()
    return normalised


# -- the catalogue -----------------------------------------------------------------------------


def test_every_builtin_file_loads_and_is_named_after_its_file() -> None:
    for name in builtin_names():
        kernel = load_kernel(name)
        assert kernel.name == name
        assert kernel.description
        assert all(np.all(np.isfinite(m)) for m in kernel.matrices)


def test_every_family_has_a_builtin_file_naming_it() -> None:
    import tomllib

    named = set()
    for path in builtin_dir().glob("*.toml"):
        data = tomllib.loads(path.read_text())
        if "family" in data:
            named.add(data["family"])
    assert named == set(FAMILIES)


def test_the_kernels_package_loads_no_image_or_command_line_library() -> None:
    code = "import sys, convcli.kernels; print(*sorted(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(result.stdout.split())
    assert "convcli.kernels.files" in loaded
    assert not loaded & {"PIL", "typer", "rich", "click", "scipy", "convcli.io", "convcli.pipeline", "convcli.cli"}


@pytest.mark.parametrize(
    ("spec", "radius", "widest"),
    [
        ("gaussian:sigma=1.5", 5, "sigma"),
        ("log:sigma=1.5", 5, "sigma"),
        ("unsharp:sigma=1.5", 5, "sigma"),
        ("dog:sigma1=2,sigma2=0.5", 6, "max(sigma1, sigma2)"),
        ("dog:sigma1=0.5,sigma2=2", 6, "max(sigma1, sigma2)"),
    ],
)
def test_gaussian_window_families_default_to_three_of_the_widest_sigma(spec: str, radius: int, widest: str) -> None:
    kernel = load_kernel(spec)
    assert (kernel.params["radius"], kernel.params["size"]) == (radius, 2 * radius + 1)
    assert kernel.shape == (2 * radius + 1,) * 2
    family = FAMILIES[spec.partition(":")[0]]
    assert family.defaults_doc == {"radius": f"ceil(3*{widest})", "size": "2*radius+1"}
    assert [p.name for p in family.params][-2:] == ["radius", "size"]


@pytest.mark.parametrize(
    "name",
    [
        "sobel", "sobel-x", "sobel-y", "sobel-5x5", "sobel-7x7", "scharr", "scharr-x", "scharr-y",
        "prewitt", "prewitt-x", "prewitt-y", "roberts", "roberts-x", "roberts-y", "kirsch", "robinson",
        "gradient", "gradient-x", "gradient-y", "horizontal-edge", "laplacian", "laplacian-8", "log",
        "dog", "gaussian", "box", "mean", "motion", "sharpen", "unsharp", "emboss", "identity",
        "random", "rgb-luma-edges", "rgb-to-ycbcr",
    ],
)
def test_the_issue_catalogue_is_present(name: str) -> None:
    assert name in catalogue()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sobel-x", [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
        ("sobel-y", [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
        ("scharr-x", [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]),
        ("prewitt-y", [[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
        ("roberts-x", [[1, 0], [0, -1]]),
        ("roberts-y", [[0, 1], [-1, 0]]),
        ("gradient-x", [[-1, 0, 1]]),
        ("gradient-y", [[-1], [0], [1]]),
        ("horizontal-edge", [[1, 1, 1], [0, 0, 0], [-1, -1, -1]]),
        ("laplacian", [[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
        ("laplacian-8", [[1, 1, 1], [1, -8, 1], [1, 1, 1]]),
        ("sharpen", [[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
        ("identity", [[0, 0, 0], [0, 1, 0], [0, 0, 0]]),
        ("emboss", [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
        ("emboss:direction=n", [[1, 2, 1], [0, 1, 0], [-1, -2, -1]]),
        ("box:size=2", [[0.25, 0.25], [0.25, 0.25]]),
        ("mean", [[1 / 9] * 3] * 3),
        ("motion:length=3", [[0, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 0]]),
        ("motion:length=3,angle=90", [[0, 1 / 3, 0], [0, 1 / 3, 0], [0, 1 / 3, 0]]),
    ],
)
def test_known_matrices(name: str, expected: list[list[float]]) -> None:
    np.testing.assert_allclose(load_kernel(name).matrix, expected, rtol=1e-12, atol=1e-15)


def test_horizontal_edge_is_prewitt_y_negated_and_flipped() -> None:
    edge = load_kernel("horizontal-edge").matrix
    prewitt_y = load_kernel("prewitt-y").matrix
    np.testing.assert_array_equal(edge, -prewitt_y)
    np.testing.assert_array_equal(edge, prewitt_y[::-1])


def test_sobel_5x5_and_7x7_match_opencv_values() -> None:
    # cv2.getDerivKernels(1, 0, 5): derivative [-1 -2 0 2 1], smoothing [1 4 6 4 1]
    x5 = load_kernel("sobel-x:size=5").matrix
    np.testing.assert_array_equal(x5, np.outer([1, 4, 6, 4, 1], [-1, -2, 0, 2, 1]))
    x7, y7 = load_kernel("sobel-7x7").matrices
    # 7 taps: smoothing [1 6 15 20 15 6 1], derivative [1 4 6 4 1] * [-1 0 1] = [-1 -4 -5 0 5 4 1]
    np.testing.assert_array_equal(x7[3], np.array([-1, -4, -5, 0, 5, 4, 1]) * 20)
    np.testing.assert_array_equal(x7[0], [-1, -4, -5, 0, 5, 4, 1])
    np.testing.assert_array_equal(y7, x7.T)
    assert load_kernel("sobel-5x5").combine == "magnitude"
    np.testing.assert_array_equal(sobel_pair(3)[0], load_kernel("sobel-x").matrix)


def test_kirsch_and_robinson_are_eight_rotations_combined_by_max() -> None:
    kirsch = load_kernel("kirsch")
    assert kirsch.combine == "max" and len(kirsch.matrices) == 8
    np.testing.assert_array_equal(kirsch.matrices[0], [[5, 5, 5], [-3, 0, -3], [-3, -3, -3]])
    np.testing.assert_array_equal(kirsch.matrices[2], [[-3, -3, 5], [-3, 0, 5], [-3, -3, 5]])  # east
    robinson = load_kernel("robinson")
    np.testing.assert_array_equal(robinson.matrices[0], [[1, 2, 1], [0, 0, 0], [-1, -2, -1]])
    # Eight distinct directions, and opposite directions are negatives of each other.
    for matrices in (kirsch.matrices, robinson.matrices):
        assert len({m.tobytes() for m in matrices}) == 8
    for k in range(4):
        np.testing.assert_array_equal(robinson.matrices[k], -robinson.matrices[k + 4])


def test_compass_set_responds_with_the_strongest_direction() -> None:
    step = np.zeros((5, 5))
    step[:, 3:] = 100.0  # bright on the right: the east kernel responds most
    out = apply_kernel(step, "kirsch", FilterOptions(border="edge"))
    east = convolve(step, load_kernel("kirsch").matrices[2], border="edge")
    np.testing.assert_allclose(out[2, 2], east[2, 2])
    assert out[2, 2] == pytest.approx(1500.0)


def test_laplacian_zero_on_ramps_and_log_dog_zero_sum() -> None:
    ramp = np.add.outer(np.arange(7.0), 2 * np.arange(7.0))
    for name in ("laplacian", "laplacian-8"):
        assert np.abs(apply_kernel(ramp, name, FilterOptions(padding="valid"))).max() == 0
    for name in ("log", "dog", "log:sigma=3,size=9", "dog:sigma1=2,sigma2=1"):
        assert abs(load_kernel(name).matrix.sum()) < 1e-12
    assert load_kernel("log").matrix[5, 5] < 0 < load_kernel("dog").matrix[5, 5]


def test_unsharp_sums_to_one_and_is_identity_plus_amount_times_detail() -> None:
    kernel = load_kernel("unsharp:amount=2,sigma=1,radius=2").matrix
    gauss = load_kernel("gaussian:sigma=1,radius=2").matrix
    delta = np.zeros((5, 5))
    delta[2, 2] = 1
    np.testing.assert_allclose(kernel, delta + 2 * (delta - gauss), atol=1e-15)
    assert kernel.sum() == pytest.approx(1.0)


def test_emboss_directions_rotate_and_sum_to_one() -> None:
    for direction in ("n", "ne", "e", "se", "s", "sw", "w", "nw"):
        m = emboss_matrix(direction)
        assert m.sum() == 1.0
    np.testing.assert_array_equal(emboss_matrix("nw"), emboss_matrix("se")[::-1, ::-1])
    np.testing.assert_array_equal(emboss_matrix("e"), [[-1, 0, 1], [-2, 1, 2], [-1, 0, 1]])


def test_motion_blur_sums_to_one_and_is_symmetric_through_the_centre() -> None:
    for length, angle in ((9, 0), (7, 30), (4, 45), (15, 123.4)):
        m = motion_matrix(length, angle)
        assert m.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(m, m[::-1, ::-1], atol=1e-12)
    diagonal = motion_matrix(3, 45)  # up and to the right
    assert diagonal[0, 2] > 0 and diagonal[2, 0] > 0 and diagonal[0, 0] == 0


# -- gaussian ----------------------------------------------------------------------------------


def test_gaussian_equals_the_textbook_matrix() -> None:
    ours = load_kernel("gaussian:radius=3,sigma=1.5").matrix
    assert ours.shape == (7, 7)
    np.testing.assert_array_equal(ours, textbook_gaussian_kernel(3, 1.5))


@pytest.mark.parametrize(("sigma", "radius"), [(0.3, 1), (1.0, 3), (1.5, 5), (2.0, 6), (2.1, 7)])
def test_gaussian_default_radius_is_ceil_3_sigma(sigma: float, radius: int) -> None:
    kernel = load_kernel(f"gaussian:sigma={sigma}")
    assert kernel.params["radius"] == radius == max(1, math.ceil(3 * sigma))
    assert kernel.shape == (2 * radius + 1,) * 2


def test_gaussian_size_is_the_full_width() -> None:
    kernel = load_kernel("gaussian:sigma=1,size=5")
    assert kernel.shape == (5, 5)
    np.testing.assert_array_equal(kernel.matrix, textbook_gaussian_kernel(2, 1.0))
    assert kernel.matrix.sum() == pytest.approx(1.0)
    assert is_separable(kernel.matrix) == (True, 1)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gaussian:sigma=0", r"`sigma` must be in \(0, 64\]"),
        ("gaussian:sigma=abc", "`sigma` must be a number"),
        ("gaussian:sigma=nan", "`sigma` must be finite"),
        ("gaussian:radius=1.5", "`radius` must be an integer"),
        ("gaussian:radius=200", r"`radius` must be in \[0, 127\]"),
        ("gaussian:size=4", "`size` must be odd"),
        ("gaussian:radius=2,size=5", "give `radius` or `size`, not both"),
        ("gaussian:bogus=1", "unknown parameter `bogus`"),
        ("sobel:size=4", "`size` must be odd"),
        ("sobel-x:size=17", r"`size` must be in \[3, 15\]"),
        ("emboss:direction=up", "`direction` must be one of n, ne"),
        ("dog:sigma1=2,sigma2=2", "must differ"),
        ("random:out=0", r"`out` must be in \[1, 64\]"),
        ("sobel-x:size=3", None),
        ("laplacian:size=3", "takes no parameters"),
        ("gaussian:sigma=1,sigma=2", "given twice"),
        ("gaussian:sigma", "key=value"),
        ("gaussian:", "nothing after ':'"),
        ("gausian", "did you mean gaussian"),
    ],
)
def test_parameter_errors_are_clear(spec: str, message: str | None) -> None:
    if message is None:
        load_kernel(spec)
        return
    with pytest.raises(KernelError, match=message):
        load_kernel(spec)


def test_command_line_parameter_errors_name_the_spec() -> None:
    with pytest.raises(KernelError, match=r"^kernel 'gaussian:sigma=-1': gaussian: parameter `sigma`"):
        load_kernel("gaussian:sigma=-1")


def test_parse_spec() -> None:
    assert parse_spec("gaussian:sigma=2,radius=6") == ("gaussian", {"sigma": "2", "radius": "6"})
    assert parse_spec(" sobel ") == ("sobel", {})


# -- separability and export -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "separable"),
    [("sobel-x", True), ("gaussian", True), ("box", True), ("laplacian", False), ("log", False), ("sharpen", False)],
)
def test_separability(name: str, separable: bool) -> None:
    assert is_separable(load_kernel(name).matrix)[0] is separable


@pytest.mark.parametrize(
    "spec",
    ["gaussian:sigma=1.7", "sobel", "kirsch", "log", "motion:length=7,angle=33", "unsharp", "random:seed=4",
     "rgb-to-ycbcr", "roberts", "dog:sigma1=0.7,sigma2=1.9"],
)
def test_export_round_trip_is_bit_identical(spec: str, tmp_path: Path, rng: np.random.Generator) -> None:
    kernel = load_kernel(spec)
    path = tmp_path / "exported.toml"
    path.write_text(export_toml(kernel))
    again = load_kernel(str(path))
    for a, b in zip(kernel.matrices, again.matrices, strict=True):
        assert a.tobytes() == b.tobytes()
    if kernel.weights is not None:
        assert again.weights is not None and kernel.weights.tobytes() == again.weights.tobytes()
        np.testing.assert_array_equal(kernel.bias_pixels, again.bias_pixels)
    assert again.combine == kernel.combine
    image = rng.uniform(0, 255, size=(13, 17, 3))
    np.testing.assert_array_equal(apply_kernel(image, kernel), apply_kernel(image, again))


def test_export_keeps_offset_and_anchor(tmp_path: Path) -> None:
    kernel = kernel_from_dict(
        {"name": "k", "description": "d", "matrix": [[0.1, 0.2], [0.3, 1e-300]], "offset": 128, "anchor": [1, 1]},
        "inline",
    )
    path = tmp_path / "k.toml"
    path.write_text(export_toml(kernel))
    again = load_kernel(path)
    assert (again.offset, again.anchor) == (128.0, (1, 1))
    assert again.matrix.tobytes() == kernel.matrix.tobytes()


# -- offset and anchor in the pipeline ---------------------------------------------------------


def test_offset_is_added_after_the_combination(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(9, 9))
    plain = kernel_from_dict({"name": "p", "description": "d", "members": ["sobel-x", "sobel-y"],
                              "combine": "magnitude"}, "inline")
    shifted = kernel_from_dict({"name": "p", "description": "d", "members": ["sobel-x", "sobel-y"],
                                "combine": "magnitude", "offset": -10}, "inline")
    np.testing.assert_allclose(apply_kernel(image, shifted), apply_kernel(image, plain) - 10, atol=1e-4)


def test_anchor_moves_the_output(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(8, 10))
    delta = {"name": "d", "description": "d", "matrix": [[0, 0, 0], [0, 1, 0], [0, 0, 0]]}
    at_centre = apply_kernel(image, kernel_from_dict(delta, "inline"), FilterOptions(border="zero"))
    np.testing.assert_array_equal(at_centre, image.astype(np.float32))
    # With the anchor on the top-left tap, output (r, c) reads input (r + 1, c + 1).
    corner = kernel_from_dict({**delta, "anchor": [0, 0]}, "inline")
    shifted = apply_kernel(image, corner, FilterOptions(border="zero"))
    np.testing.assert_array_equal(shifted[:-1, :-1], image[1:, 1:].astype(np.float32))
    np.testing.assert_array_equal(shifted[-1], 0)


def test_default_anchor_of_an_even_kernel_is_the_pytorch_same_centre(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(7, 7))
    explicit = kernel_from_dict({"name": "r", "description": "d", "matrix": [[1, 0], [0, -1]], "anchor": [0, 0]},
                                "inline")
    np.testing.assert_array_equal(apply_kernel(image, explicit), apply_kernel(image, "roberts-x"))
    assert load_kernel("roberts-x").anchor_position == (0, 0)


def test_anchor_with_dilation_and_against_the_naive_loop(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(11, 12))
    matrix = rng.standard_normal((3, 4))
    kernel = kernel_from_dict({"name": "a", "description": "d", "matrix": matrix.tolist(), "anchor": [2, 1]},
                              "inline")
    got = apply_kernel(image, kernel, FilterOptions(border="zero", dilation=2))
    # top = 2 rows * dilation 2, bottom = extent 5 - 1 - 4; left = 1 * 2, right = 7 - 1 - 2
    want = naive_correlate(image, matrix, pad=(4, 0, 2, 4), dilation=(2, 2))
    assert got.shape == image.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)


def test_carry_alpha_follows_the_anchor() -> None:
    alpha = np.arange(30, dtype=np.uint8).reshape(5, 6)
    corner = kernel_from_dict({"name": "c", "description": "d", "matrix": [[1, 0, 0], [0, 0, 0], [0, 0, 0]],
                               "anchor": [0, 0]}, "inline")
    np.testing.assert_array_equal(carry_alpha(alpha, [corner], FilterOptions()), alpha)
    np.testing.assert_array_equal(carry_alpha(alpha, [load_kernel("sobel")], FilterOptions(stride=2)),
                                  alpha[::2, ::2])


# -- channel mixing ----------------------------------------------------------------------------


def naive_mix(image: np.ndarray, weights: np.ndarray, bias: np.ndarray, pad: tuple[int, int, int, int]) -> np.ndarray:
    """PyTorch's conv2d written as loops: zero padding, stride 1, float64."""
    padded = np.pad(image, [(pad[0], pad[1]), (pad[2], pad[3]), (0, 0)])
    out_c, in_c, kh, kw = weights.shape
    height, width = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    out = np.zeros((height, width, out_c))
    for o in range(out_c):
        for r in range(height):
            for c in range(width):
                total = bias[o]
                for i in range(in_c):
                    for u in range(kh):
                        for v in range(kw):
                            total += padded[r + u, c + v, i] * weights[o, i, u, v]
                out[r, c, o] = total
    return out


@pytest.mark.parametrize(("out_c", "in_c", "k"), [(1, 3, 3), (3, 3, 3), (2, 3, 1), (3, 1, 5), (4, 2, 2)])
def test_mix_convolve_matches_the_naive_loop(out_c: int, in_c: int, k: int, rng: np.random.Generator) -> None:
    image = rng.uniform(0, 1, size=(9, 11, in_c))
    weights = rng.standard_normal((out_c, in_c, k, k))
    bias = rng.standard_normal(out_c)
    got = mix_convolve(image, weights, bias, padding="same", border="zero")
    total = k - 1
    want = naive_mix(image, weights, bias, (total // 2, total - total // 2, total // 2, total - total // 2))
    assert got.shape == (9, 11, out_c)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_mix_convolve_valid_padding_and_stride(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 1, size=(10, 9, 3))
    weights = rng.standard_normal((2, 3, 3, 3))
    got = mix_convolve(image, weights, None, padding="valid", stride=2)
    want = naive_mix(image, weights, np.zeros(2), (0, 0, 0, 0))[::2, ::2]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_mix_convolve_rejects_a_channel_mismatch() -> None:
    with pytest.raises(ParameterError, match=r"expects 3 input channels.*image has 1"):
        mix_convolve(np.zeros((4, 4)), np.zeros((1, 3, 3, 3)))


def test_gray_image_with_an_rgb_kernel_is_a_clear_error() -> None:
    with pytest.raises(ParameterError, match=r"'rgb-luma-edges' mixes 3 input channels into 1, but got a gray image"):
        apply_kernel(np.zeros((5, 5)), "rgb-luma-edges")


def test_unit_bias_is_scaled_to_pixels_like_to_tensor(rng: np.random.Generator) -> None:
    # PyTorch: y = conv(x / 255, W) + b. convcli keeps pixels on 0..255, so y * 255 must come out.
    image = rng.uniform(0, 255, size=(6, 7, 3))
    kernel = load_kernel("random:out=2,size=3,seed=7")
    assert kernel.bias is not None and kernel.weights is not None and kernel.bias_units == "unit"
    got = apply_kernel(image, kernel, FilterOptions(border="zero"))
    torch_like = naive_mix(image / 255.0, kernel.weights, kernel.bias, (1, 1, 1, 1))
    np.testing.assert_allclose(got, torch_like * 255.0, rtol=1e-5, atol=1e-3)


def test_rgb_to_ycbcr_known_values() -> None:
    pixels = np.array([[[255.0, 255.0, 255.0], [255.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    out = apply_kernel(pixels, "rgb-to-ycbcr")
    np.testing.assert_allclose(out[0, 0], [255.0, 128.0, 128.0], atol=1e-3)
    np.testing.assert_allclose(out[0, 1], [76.245, 84.972, 255.5], atol=1e-3)
    np.testing.assert_allclose(out[0, 2], [0.0, 128.0, 128.0], atol=1e-4)


def test_rgb_luma_edges_equals_laplacian_of_luma(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(12, 10, 3))
    luma = image @ np.array([0.299, 0.587, 0.114])
    got = apply_kernel(image, "rgb-luma-edges")
    assert got.shape == (12, 10)
    np.testing.assert_allclose(got, apply_kernel(luma, "laplacian-8"), rtol=1e-4, atol=1e-2)


def test_random_family_is_seeded_and_follows_pytorch_bounds() -> None:
    a = load_kernel("random:out=3,seed=0")
    b = load_kernel("random:seed=0")
    c = load_kernel("random:seed=1")
    assert a.weights is not None and b.weights is not None and c.weights is not None
    np.testing.assert_array_equal(a.weights, b.weights)
    assert not np.array_equal(a.weights, c.weights)
    assert a.channels == (3, 3) and a.weights.shape == (3, 3, 3, 3)
    weights, bias = random_weights(64, 4, 5, 3)
    bound = 1 / math.sqrt(4 * 5 * 5)
    assert np.abs(weights).max() <= bound and np.abs(bias).max() <= bound
    # Uniform on [-b, b): the spread fills the interval rather than clustering.
    assert np.abs(weights).max() > 0.95 * bound and abs(weights.mean()) < 0.05 * bound
    gray = load_kernel("random:in=1,out=1,size=5")
    out = apply_kernel(np.ones((6, 6)), gray)
    assert out.shape == (6, 6)


def test_chained_mixing_kernels() -> None:
    image = np.full((5, 5, 3), 100.0)
    out = apply_kernels(image, ["rgb-to-ycbcr", "random:in=3,out=1"])
    assert out.shape == (5, 5)


def test_torch_conv2d_agrees(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    image = rng.uniform(0, 255, size=(3, 15, 12, 3))[0]
    for spec in ("random:out=1,seed=0", "random:out=3,seed=0", "random:out=2,size=5,seed=3", "rgb-luma-edges",
                 "rgb-to-ycbcr"):
        kernel = load_kernel(spec)
        assert kernel.weights is not None
        bias = kernel.bias if kernel.bias is not None else np.zeros(kernel.weights.shape[0])
        x = torch.from_numpy(image.transpose(2, 0, 1)[None] / 255.0)  # ToTensor: CHW on 0..1
        units = 1.0 if kernel.bias_units == "unit" else 1.0 / 255.0
        y = f.conv2d(x, torch.from_numpy(kernel.weights), torch.from_numpy(bias * units), padding="same")
        want = y[0].numpy().transpose(1, 2, 0) * 255.0
        got = apply_kernel(image, kernel, FilterOptions(border="zero"))
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-4, atol=1e-2)
    # Stride and valid padding follow the same output-size formula.
    kernel = load_kernel("random:out=2,size=3,seed=9")
    x = torch.from_numpy(image.transpose(2, 0, 1)[None].copy())
    assert kernel.weights is not None
    y = f.conv2d(x, torch.from_numpy(kernel.weights), None, stride=2).numpy()[0].transpose(1, 2, 0)
    got = mix_convolve(image, kernel.weights, None, padding="valid", stride=2)
    np.testing.assert_allclose(got, y, rtol=1e-4, atol=1e-2)


# -- user kernels ------------------------------------------------------------------------------


def test_user_kernel_path_and_shadowing_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.toml").write_text('name = "mine"\ndescription = "d"\nmatrix = [[1, 2, 3]]\n')
    (tmp_path / "sobel.toml").write_text('name = "sobel"\ndescription = "mine"\nmatrix = [[1]]\n')
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", str(tmp_path))
    assert load_kernel("mine").matrix.tolist() == [[1.0, 2.0, 3.0]]
    with pytest.warns(KernelWarning, match="shadows the built-in kernel"):
        assert load_kernel("sobel").matrix.tolist() == [[1.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_kernel("mine")  # no warning for a name that is not a built-in
    with pytest.warns(KernelWarning):
        names = [k.name for k in iter_kernels()]
    assert "mine" in names and names == sorted(names)


def test_iter_kernels_reports_a_broken_user_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken.toml").write_text('name = "broken"\ndescription = "d"\nmatrix = [[1, true]]\n')
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", str(tmp_path))
    seen: list[str] = []
    names = [k.name for k in iter_kernels(on_error=lambda name, exc: seen.append(f"{name}: {exc}"))]
    assert "broken" not in names and "sobel" in names
    assert len(seen) == 1 and "broken.toml" in seen[0] and "must be a number" in seen[0]
    with pytest.raises(KernelError):
        list(iter_kernels())


def test_readme_catalogue_matches_the_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every built-in kernel has its row in the README's catalogue, with its true size, parameters
    (defaults as Param.describe_default documents them) and description."""
    from convcli.kernels import FAMILIES, iter_kernels

    from conftest import ROOT

    monkeypatch.delenv("CONVCLI_KERNEL_PATH", raising=False)
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### The catalogue", 1)[1].split("\n### ", 1)[0]
    rows = {
        cells[0].strip("`"): cells
        for cells in ([c.strip() for c in line.strip("|").split("|")] for line in section.splitlines())
        if len(cells) == 5 and cells[0].startswith("`")
    }
    kernels = list(iter_kernels())
    assert sorted(rows) == sorted(k.name for k in kernels)
    for kernel in kernels:
        name, size, _, params, description = rows[kernel.name]
        assert size == f"{kernel.shape[0]}x{kernel.shape[1]}", name
        family = FAMILIES.get(kernel.family or "")
        # A derived default is shown as its formula; a kernel file's own [params] as its value.
        expected = "-" if family is None else ", ".join(
            f"`{p.name}` ({p.describe_default(family.defaults_doc) if p.default is None else kernel.params[p.name]})"
            for p in family.params
        )
        assert params == expected, name
        assert description.startswith(kernel.description.split(";")[0].rstrip(".")), name
