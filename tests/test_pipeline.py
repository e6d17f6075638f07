"""Applying kernels to pixels and files: sets, sequences, alpha, default names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image

import convcli
from convcli.errors import ParameterError
from convcli.kernels import load_kernel
from convcli.pipeline import FilterOptions, OutputOptions, apply_kernels, default_output_path, process_file, render

from conftest import SAMPLES

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=float)


def test_sobel_is_the_gradient_magnitude(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(20, 24))
    gx = ndi.correlate(image, SOBEL_X, mode="mirror")
    gy = ndi.correlate(image, SOBEL_X.T, mode="mirror")
    np.testing.assert_allclose(apply_kernels(image, "sobel"), np.hypot(gx, gy), rtol=1e-5, atol=1e-3)


def test_sobel_on_a_step_edge_by_hand() -> None:
    image = np.zeros((5, 6))
    image[:, 3:] = 10.0  # dark | bright, boundary between columns 2 and 3
    response = apply_kernels(image, "sobel-x")
    # each column next to the step sees (1 + 2 + 1) * 10 = 40; elsewhere 0
    assert response[:, 2].tolist() == [40.0] * 5
    assert response[:, 3].tolist() == [40.0] * 5
    assert not response[:, [0, 1, 4, 5]].any()
    np.testing.assert_array_equal(apply_kernels(image, "sobel"), np.abs(response))


def test_roberts_magnitude(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(8, 9))
    padded = np.pad(image, ((0, 1), (0, 1)), mode="reflect")
    d1 = padded[:-1, :-1] - padded[1:, 1:]
    d2 = padded[:-1, 1:] - padded[1:, :-1]
    np.testing.assert_allclose(apply_kernels(image, "roberts"), np.hypot(d1, d2), rtol=1e-5, atol=1e-3)


def test_kernels_in_sequence_round_once(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(16, 16))
    once = apply_kernels(image, ["gaussian", "laplacian"])
    manual = convcli.convolve(convcli.convolve(image, load_kernel("gaussian").matrix), load_kernel("laplacian").matrix)
    np.testing.assert_allclose(once, manual, atol=1e-4)
    assert not np.allclose(once, np.rint(once))  # still float: nothing was rounded in between


def test_options_override_by_keyword(rng: np.random.Generator) -> None:
    image = rng.uniform(0, 255, size=(10, 10))
    got = apply_kernels(image, "box", padding="valid", stride=2)
    assert got.shape == (4, 4)
    np.testing.assert_allclose(got[0, 0], image[:3, :3].mean(), rtol=1e-5)


def test_no_kernel_is_an_error() -> None:
    with pytest.raises(ParameterError, match="at least one kernel"):
        apply_kernels(np.ones((4, 4)), [])


def test_process_file_matches_library_call(tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    result = process_file(SAMPLES / "camera.png", out, ["sobel"])
    assert result.output_shape == (512, 512)
    pixels = np.asarray(Image.open(SAMPLES / "camera.png"), dtype=np.float32)
    want = convcli.map_to_uint8(apply_kernels(pixels, "sobel"))
    np.testing.assert_array_equal(np.asarray(Image.open(out)), want)


def test_alpha_follows_stride_and_valid_padding(tmp_path: Path, rng: np.random.Generator) -> None:
    rgba = rng.integers(0, 256, size=(9, 11, 4), dtype=np.uint8)
    source = tmp_path / "in.png"
    Image.fromarray(rgba, "RGBA").save(source)
    out = tmp_path / "out.png"
    process_file(source, out, ["box"], FilterOptions(padding="valid", stride=2, alpha="carry"))
    saved = np.asarray(Image.open(out))
    assert saved.shape == (4, 5, 4)
    # each output pixel keeps the alpha under its kernel's centre: rows/cols 1, 3, 5, ...
    np.testing.assert_array_equal(saved[..., 3], rgba[1:9:2, 1:11:2, 3])


def test_carried_alpha_is_not_filtered(tmp_path: Path, rng: np.random.Generator) -> None:
    rgba = rng.integers(0, 256, size=(12, 12, 4), dtype=np.uint8)
    source = tmp_path / "in.png"
    Image.fromarray(rgba, "RGBA").save(source)
    process_file(source, tmp_path / "o.png", ["gaussian:sigma=2"], FilterOptions(alpha="carry"))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png"))[..., 3], rgba[..., 3])


def test_default_output_path() -> None:
    kernels = [load_kernel("gaussian:sigma=2"), load_kernel("sobel")]
    assert default_output_path("photos/cat.jpg", kernels) == Path("photos/cat-gaussian-sigma2+sobel.jpg")
    assert default_output_path("cat.jpg", [load_kernel("sobel")], "png") == Path("cat-sobel.png")


def test_refuses_to_overwrite_input(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    Image.new("L", (4, 4)).save(source)
    before = source.read_bytes()
    with pytest.raises(ParameterError, match="would overwrite the input"):
        process_file(source, source, ["sobel"])
    with pytest.raises(ParameterError, match="would overwrite the input"):
        process_file(source, tmp_path / "." / "in.png", ["sobel"])
    assert source.read_bytes() == before


def test_output_modes_through_process_file(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    image = np.zeros((6, 6), dtype=np.uint8)
    image[:, 3:] = 200
    Image.fromarray(image).save(source)
    process_file(source, tmp_path / "a.png", ["sobel-x"], output=OutputOptions(mode="clip", scale=-1.0))
    process_file(source, tmp_path / "b.png", ["sobel-x"], output=OutputOptions(mode="abs", scale=-1.0))
    process_file(source, tmp_path / "c.png", ["sobel-x"], output=OutputOptions(offset=128, scale=0.1))
    assert np.asarray(Image.open(tmp_path / "a.png")).max() == 0  # negative responses clip to 0
    assert np.asarray(Image.open(tmp_path / "b.png")).max() == 255  # |-800| clips to 255
    assert np.asarray(Image.open(tmp_path / "c.png"))[0, 2] == 208  # 800 * 0.1 + 128


@pytest.mark.parametrize("kernels", [["sobel"], ["kirsch"], ["emboss"], ["gaussian", "sobel"], ["roberts"],
                                     ["laplacian-8"]])
@pytest.mark.parametrize("mode", ["clip", "abs"])
@pytest.mark.parametrize(
    "geometry", [{}, {"padding": "valid", "stride": 2}, {"dilation": (2, 1), "border": "wrap"}, {"flip": True}]
)
def test_banded_render_equals_the_float_path(
    kernels: list[str], mode: str, geometry: dict[str, Any], monkeypatch: pytest.MonkeyPatch, rng: np.random.Generator
) -> None:
    # Small bands, so that the image is cut into many of them, shared by two threads.
    monkeypatch.setattr("convcli.core.bands._BAND_BYTES", 4096)
    monkeypatch.setattr("convcli.core.threads.MIN_WORK_PER_THREAD", 1)
    image = rng.integers(0, 256, size=(41, 37, 3), dtype=np.uint8)
    options = FilterOptions(threads=2, **geometry)
    output = OutputOptions(mode=mode, scale=0.7, offset=3.0)
    want = convcli.map_to_uint8(apply_kernels(image, kernels, options), mode, scale=0.7, offset=3.0)
    got = render(image, kernels, options, output)
    assert got.dtype == np.uint8 and got.shape == want.shape
    # float32 sums in another order may round a value that sits on .5 the other way
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert np.mean(got != want) < 0.001


def test_render_with_kernel_offset_and_anchor(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "k.toml"
    path.write_text('name = "k"\ndescription = "anchored"\nmatrix = [[1, 2], [3, 4]]\nanchor = [1, 1]\noffset = -40\n')
    kernel = load_kernel(str(path))
    image = rng.integers(0, 256, size=(17, 19), dtype=np.uint8)
    want = convcli.map_to_uint8(apply_kernels(image, [kernel]) / 10)
    got = render(image, [kernel], output=OutputOptions(scale=0.1))
    np.testing.assert_array_equal(got, want)
