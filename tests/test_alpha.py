"""Transparency: --alpha premultiply, carry, filter and auto, against a float64 reference."""

from __future__ import annotations

import struct
import subprocess
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi
from numpy.typing import ArrayLike, NDArray
from PIL import Image

from convcli.core.alpha import sums_to_one
from convcli.errors import ParameterError
from convcli.kernels import Kernel, load_kernel
from convcli.options import JobOptions
from convcli.pipeline import (
    FilterOptions,
    OutputOptions,
    apply_kernels,
    apply_kernels_alpha,
    check_job,
    filter_file,
    process_file,
    render,
    render_alpha,
    resolve_alpha,
)

Float = NDArray[np.float64]
_NUMPY_PAD = {"reflect": "reflect", "symmetric": "symmetric", "edge": "edge", "wrap": "wrap"}


# -- the independent reference: numpy.pad + scipy.ndimage.correlate in float64 --------------------


def _pads(extent: int, padding: str) -> tuple[int, int]:
    if padding == "valid":
        return 0, 0
    if padding == "full":
        return extent - 1, extent - 1
    return (extent - 1) // 2, extent - 1 - (extent - 1) // 2  # same: the extra row below


def _dilated(matrix: Float, dilation: int) -> Float:
    kh, kw = matrix.shape
    out = np.zeros((dilation * (kh - 1) + 1, dilation * (kw - 1) + 1))
    out[::dilation, ::dilation] = matrix
    return out


def ref_plane(
    plane: Float, matrix: Float, border: str, padding: str, stride: int, dilation: int, value: float = 0.0
) -> Float:
    """One kernel step on one plane, in float64; ``value`` is the constant border's."""
    kernel = _dilated(np.asarray(matrix, dtype=np.float64), dilation)
    kh, kw = kernel.shape
    (top, bottom), (left, right) = _pads(kh, padding), _pads(kw, padding)
    widths = ((top, bottom), (left, right))
    if border in ("zero", "constant"):
        padded = np.pad(plane, widths, mode="constant", constant_values=value if border == "constant" else 0.0)
    else:
        padded = np.pad(plane, widths, mode=_NUMPY_PAD[border])  # type: ignore[call-overload]
    full = ndi.correlate(padded, kernel, mode="constant")
    rows, cols = padded.shape[0] - kh + 1, padded.shape[1] - kw + 1
    valid = full[kh // 2 : kh // 2 + rows, kw // 2 : kw // 2 + cols]
    return np.asarray(valid[::stride, ::stride], dtype=np.float64)


def ref_carry(alpha: Float, matrix: Float, padding: str, stride: int, dilation: int) -> Float:
    """The input alpha under the kernel's centre tap of each output pixel."""
    out_shape = ref_plane(np.zeros_like(alpha), matrix, "edge", padding, stride, dilation).shape
    index = []
    for axis in (0, 1):
        before, _ = _pads(dilation * (matrix.shape[axis] - 1) + 1, padding)
        centre = ((matrix.shape[axis] - 1) // 2) * dilation
        index.append(np.clip(np.arange(out_shape[axis]) * stride - before + centre, 0, alpha.shape[axis] - 1))
    return alpha[np.ix_(*index)]


def ref_alpha(
    colour: ArrayLike,
    alpha: ArrayLike,
    matrices: Sequence[Float],
    mode: str,
    border: str = "reflect",
    padding: str = "same",
    stride: int = 1,
    dilation: int = 1,
    value: float = 0.0,
) -> tuple[Float, Float]:
    """Float64 colour (H, W, C) and alpha after the chain, before any rounding."""
    colours = np.asarray(colour, dtype=np.float64)
    alphas = np.asarray(alpha, dtype=np.float64)
    planes = [colours[..., c] for c in range(colours.shape[2])]
    if mode == "premultiply":
        planes = [p * alphas / 255.0 for p in planes]
    # Premultiplied, a constant border is the opaque colour `value`: alpha 255 beyond the edge.
    alpha_value = 255.0 if mode == "premultiply" else value
    for matrix in matrices:
        args = (border, padding, stride, dilation)
        planes = [ref_plane(p, matrix, *args, value) for p in planes]
        if mode == "carry":
            alphas = ref_carry(alphas, matrix, padding, stride, dilation)
        else:
            alphas = ref_plane(alphas, matrix, *args, alpha_value)
    out = np.stack(planes, axis=-1)
    if mode == "premultiply":
        safe = np.where(alphas > 0, alphas, 1.0)
        out = np.where(alphas[..., None] > 0, out / safe[..., None] * 255.0, 0.0)
    return out, alphas


def to8(values: Float) -> NDArray[np.int64]:
    return np.clip(np.rint(values), 0, 255).astype(np.int64)


def assert_matches(colour8: NDArray[Any], alpha8: NDArray[Any], ref_colour: Float, ref_a: Float, mode: str) -> None:
    """Alpha within 1 everywhere; colour within 1 wherever alpha is clearly visible."""
    colour8 = colour8.astype(np.int64).reshape(ref_colour.shape)
    alpha8 = alpha8.astype(np.int64)
    assert alpha8.shape == ref_a.shape
    assert np.abs(alpha8 - to8(ref_a)).max() <= 1
    visible = (ref_a >= 1.0) if mode == "premultiply" else np.ones(ref_a.shape, bool)
    assert visible.any()
    assert np.abs(colour8 - to8(ref_colour))[visible].max() <= 1
    if mode == "premultiply":  # nothing is left of a colour where the written alpha is 0
        assert np.all(colour8[alpha8 == 0] == 0)


# -- images ---------------------------------------------------------------------------------------


def red_disc(size: int = 41, radius: float = 12.0, hidden: tuple[int, int, int] = (0, 0, 0)) -> NDArray[np.uint8]:
    """An opaque red disc on a transparent background whose hidden colour is ``hidden``."""
    yy, xx = np.mgrid[:size, :size]
    inside = (yy - size // 2) ** 2 + (xx - size // 2) ** 2 <= radius**2
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., :3] = hidden
    rgba[inside] = (255, 0, 0, 255)
    return rgba


def random_rgba(rng: np.random.Generator, shape: tuple[int, int] = (23, 29)) -> NDArray[np.uint8]:
    rgba = rng.integers(0, 256, size=(*shape, 4), dtype=np.uint8)
    rgba[rng.random(shape) < 0.3, 3] = 0  # transparent holes with hidden colour
    rgba[rng.random(shape) < 0.3, 3] = 255
    return rgba


def save(array: NDArray[np.uint8], path: Path, mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path)
    return path


def read(path: Path) -> NDArray[np.uint8]:
    return np.asarray(Image.open(path))


GAUSS3 = load_kernel("gaussian:sigma=3")


# -- the example --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "premultiply"])
def test_blurred_red_disc_keeps_its_red_and_gets_a_soft_edge(tmp_path: Path, mode: str) -> None:
    source = save(red_disc(), tmp_path / "logo.png")
    process_file(source, tmp_path / "out.png", "gaussian:sigma=3", FilterOptions(alpha=mode))
    out = read(tmp_path / "out.png").astype(int)
    alpha = out[..., 3]
    # A soft edge: many partial alpha values, rising from the outside in.
    partial = (alpha > 0) & (alpha < 255)
    assert partial.sum() > 100
    row = alpha[20]
    assert row[0] < row[5] < row[8] < row[12] <= row[20] == 255
    # No dark fringe: every visible pixel is still (255, 0, 0), within 1.
    visible = alpha > 0
    assert np.abs(out[..., :3][visible] - [255, 0, 0]).max() <= 1
    assert np.all(out[..., :3][~visible] == 0)
    # The alpha is the float64 blur of the disc's alpha, rounded.
    _, ref_a = ref_alpha(red_disc()[..., :3], red_disc()[..., 3], [GAUSS3.matrix], "premultiply")
    assert np.abs(alpha - to8(ref_a)).max() <= 1


def test_carry_keeps_the_hard_edge_and_the_dark_fringe(tmp_path: Path) -> None:
    disc = red_disc()
    source = save(disc, tmp_path / "logo.png")
    process_file(source, tmp_path / "out.png", "gaussian:sigma=3", FilterOptions(alpha="carry"))
    out = read(tmp_path / "out.png").astype(int)
    np.testing.assert_array_equal(out[..., 3], disc[..., 3])
    red = out[..., 0][disc[..., 3] == 255]
    assert red.min() < 160  # the black background bled in: the old dark fringe
    ref_colour, _ = ref_alpha(disc[..., :3], disc[..., 3], [GAUSS3.matrix], "carry")
    assert_matches(out[..., :3], out[..., 3], ref_colour, disc[..., 3].astype(float), "carry")


def test_hidden_colour_under_transparency_does_not_bleed(tmp_path: Path) -> None:
    black = save(red_disc(hidden=(0, 0, 0)), tmp_path / "black.png")
    green = save(red_disc(hidden=(0, 255, 0)), tmp_path / "green.png")
    for name, mode in (("p", "premultiply"), ("c", "carry")):
        for source in (black, green):
            process_file(source, tmp_path / f"{source.stem}-{name}.png", "gaussian:sigma=3", FilterOptions(alpha=mode))
    assert (tmp_path / "black-p.png").read_bytes() == (tmp_path / "green-p.png").read_bytes()
    # With carry the hidden colour does show, which is what premultiplying prevents.
    assert not np.array_equal(read(tmp_path / "black-c.png"), read(tmp_path / "green-c.png"))


# -- every mode against the float64 reference -----------------------------------------------------


GEOMETRIES = [
    ("reflect", "same", 1, 1),
    ("symmetric", "valid", 1, 1),
    ("edge", "full", 1, 1),
    ("wrap", "same", 2, 1),
    ("zero", "same", 1, 2),
    ("reflect", "valid", 2, 2),
]


@pytest.mark.parametrize("mode", ["premultiply", "carry", "filter"])
@pytest.mark.parametrize("border, padding, stride, dilation", GEOMETRIES)
def test_each_mode_matches_the_reference(
    rng: np.random.Generator, mode: str, border: str, padding: str, stride: int, dilation: int
) -> None:
    rgba = random_rgba(rng)
    kernel = load_kernel("gaussian:sigma=1")
    options = FilterOptions(alpha=mode, border=border, padding=padding, stride=stride, dilation=dilation)
    colour8, alpha8 = render_alpha(rgba[..., :3], rgba[..., 3], [kernel], options)
    ref_colour, ref_a = ref_alpha(rgba[..., :3], rgba[..., 3], [kernel.matrix], mode, border, padding, stride, dilation)
    assert_matches(colour8, alpha8, ref_colour, ref_a, mode)


@pytest.mark.parametrize("method", ["direct", "separable", "fft"])
def test_a_chain_is_premultiplied_once(rng: np.random.Generator, method: str) -> None:
    """gaussian then sharpen: the chain runs on colour x alpha and alpha, divided once at the end."""
    rgba = random_rgba(rng)
    kernels = [load_kernel("gaussian:sigma=1.5"), load_kernel("sharpen")]
    assert resolve_alpha("auto", kernels) == "premultiply"
    colour8, alpha8 = render_alpha(rgba[..., :3], rgba[..., 3], kernels, FilterOptions(method=method))
    ref_colour, ref_a = ref_alpha(rgba[..., :3], rgba[..., 3], [k.matrix for k in kernels], "premultiply")
    assert_matches(colour8, alpha8, ref_colour, ref_a, "premultiply")
    # Sharpening a hard edge overshoots alpha: it is clipped to 255 (and 0), never wrapped.
    disc = red_disc()
    colour8, alpha8 = render_alpha(disc[..., :3], disc[..., 3], kernels[1:], FilterOptions(method=method))
    ref_colour, ref_a = ref_alpha(disc[..., :3], disc[..., 3], [kernels[1].matrix], "premultiply")
    assert ref_a.max() > 255 and ref_a.min() < 0
    assert_matches(colour8, alpha8, ref_colour, ref_a, "premultiply")
    np.testing.assert_array_equal(alpha8, disc[..., 3])


def test_float_results_from_python(rng: np.random.Generator) -> None:
    rgba = random_rgba(rng)
    colour, alpha = apply_kernels_alpha(rgba[..., :3], rgba[..., 3], ["box", "gaussian:sigma=1"], border="edge")
    assert colour.dtype == np.float32 and alpha.dtype == np.float32
    matrices = [load_kernel("box").matrix, load_kernel("gaussian:sigma=1").matrix]
    ref_colour, ref_a = ref_alpha(rgba[..., :3], rgba[..., 3], matrices, "premultiply", border="edge")
    np.testing.assert_allclose(alpha, ref_a, atol=1e-3)
    visible = ref_a >= 1
    np.testing.assert_allclose(colour[visible], ref_colour[visible], atol=2e-2)
    # carry gives apply_kernels' colour and the alpha as it was
    colour, alpha = apply_kernels_alpha(rgba[..., :3], rgba[..., 3], "sobel")
    np.testing.assert_array_equal(colour, apply_kernels(rgba[..., :3], "sobel"))
    np.testing.assert_array_equal(alpha, rgba[..., 3])


def _srgb_to_linear64(values: Float) -> Float:
    """IEC 61966-2-1 on the 0..255 scale, in float64: the reference's own curve."""
    c = values / 255.0
    return 255.0 * np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb64(values: Float) -> Float:
    c = np.clip(values / 255.0, 0.0, None)
    return 255.0 * np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def test_premultiplied_in_linear_light(rng: np.random.Generator) -> None:
    """With --linear, colour is decoded, premultiplied, filtered, divided and encoded, in that order."""
    rgba = random_rgba(rng)
    kernel = "gaussian:sigma=1.5"
    colour, alpha = apply_kernels_alpha(rgba[..., :3], rgba[..., 3], kernel, border="edge", linear=True)
    linear = _srgb_to_linear64(rgba[..., :3].astype(np.float64))
    ref_colour, ref_a = ref_alpha(linear, rgba[..., 3], [load_kernel(kernel).matrix], "premultiply", border="edge")
    np.testing.assert_allclose(alpha, ref_a, atol=1e-3)
    visible = ref_a >= 1
    np.testing.assert_allclose(colour[visible], _linear_to_srgb64(ref_colour)[visible], atol=5e-2)
    # and the file path gives the same numbers, rounded
    written, alpha8 = render_alpha(rgba[..., :3], rgba[..., 3], kernel, FilterOptions(border="edge", linear=True))
    shown = np.asarray(alpha8, np.float64) > 0
    assert np.abs(np.asarray(written, np.float64)[shown] - _linear_to_srgb64(ref_colour)[shown]).max() <= 1


# -- the auto rule -----------------------------------------------------------------------------


def test_auto_premultiplies_weighted_means_and_carries_the_rest() -> None:
    def kernels(*names: str) -> list[Kernel]:
        return [load_kernel(n) for n in names]

    assert resolve_alpha("auto", kernels("gaussian")) == "premultiply"
    assert resolve_alpha("auto", kernels("box", "sharpen", "unsharp", "motion")) == "premultiply"
    assert resolve_alpha("auto", kernels("sobel-x")) == "carry"
    assert resolve_alpha("auto", kernels("gaussian", "laplacian")) == "carry"  # every step must sum to 1
    assert resolve_alpha("auto", kernels("sobel")) == "carry"  # a set
    assert resolve_alpha("auto", kernels("rgb-to-ycbcr")) == "carry"  # a channel mixer
    blur_set = Kernel("blurs", "", (np.full((3, 3), 1 / 9), np.full((3, 3), 1 / 9)), combine="max")
    assert resolve_alpha("auto", [blur_set]) == "carry"
    shifted = Kernel("shifted", "", (np.full((3, 3), 1 / 9),), offset=10.0)
    assert resolve_alpha("auto", [shifted]) == "carry"
    assert resolve_alpha("filter", kernels("sobel")) == "filter"
    with pytest.raises(ParameterError, match="`alpha` must be one of auto, premultiply, carry, filter"):
        resolve_alpha("multiply", kernels("box"))
    assert sums_to_one(load_kernel("gaussian:sigma=5").matrix)
    assert not sums_to_one(load_kernel("laplacian").matrix)


def test_auto_carries_for_an_edge_detector(tmp_path: Path) -> None:
    """sobel on a transparent logo: premultiplying would leave no alpha; auto keeps it."""
    disc = red_disc()
    source = save(disc, tmp_path / "logo.png")
    process_file(source, tmp_path / "auto.png", "sobel-x")
    process_file(source, tmp_path / "carry.png", "sobel-x", FilterOptions(alpha="carry"))
    assert (tmp_path / "auto.png").read_bytes() == (tmp_path / "carry.png").read_bytes()
    process_file(source, tmp_path / "filter.png", "sobel-x", FilterOptions(alpha="filter"))
    assert read(tmp_path / "filter.png")[20, 20, 3] == 0  # alpha filtered by sobel vanishes inside


def test_a_kernel_offset_goes_to_the_colour_not_the_alpha(rng: np.random.Generator) -> None:
    rgba = random_rgba(rng)
    shifted = Kernel("shifted", "", (np.full((3, 3), 1 / 9),), offset=20.0)
    colour8, alpha8 = render_alpha(rgba[..., :3], rgba[..., 3], [shifted], FilterOptions(alpha="premultiply"))
    ref_colour, ref_a = ref_alpha(rgba[..., :3], rgba[..., 3], [shifted.matrix], "premultiply")
    assert_matches(colour8, alpha8, ref_colour + np.where(ref_a > 0, 20.0, 0.0)[..., None], ref_a, "premultiply")


def test_mixing_kernels_refuse_premultiply_and_filter() -> None:
    for mode in ("premultiply", "filter"):
        with pytest.raises(ParameterError, match=r"--alpha .*mixes channels"):
            check_job(["rgb-to-ycbcr"], JobOptions.from_values(alpha=mode))
    check_job(["rgb-to-ycbcr"], JobOptions.from_values(alpha="auto"))


# -- the output mapping -------------------------------------------------------------------------


def test_scale_offset_and_output_mode_apply_to_colour_only(rng: np.random.Generator) -> None:
    rgba = random_rgba(rng)
    options = FilterOptions(alpha="premultiply")
    _, plain = render_alpha(rgba[..., :3], rgba[..., 3], ["box"], options)
    for output in (OutputOptions(scale=0.5, offset=-40), OutputOptions(mode="normalize"), OutputOptions(mode="abs")):
        colour8, alpha8 = render_alpha(rgba[..., :3], rgba[..., 3], ["box"], options, output)
        np.testing.assert_array_equal(alpha8, plain)
    colour8, _ = render_alpha(rgba[..., :3], rgba[..., 3], ["box"], options, OutputOptions(mode="normalize"))
    visible = plain > 0
    assert colour8[visible].min() == 0 and colour8[visible].max() == 255  # stretched over the colour alone


# -- file kinds ---------------------------------------------------------------------------------


def test_gray_alpha_image(tmp_path: Path, rng: np.random.Generator) -> None:
    la = random_rgba(rng)[..., 2:]
    source = save(np.ascontiguousarray(la), tmp_path / "la.png", "LA")
    process_file(source, tmp_path / "out.png", "gaussian:sigma=1", FilterOptions(border="symmetric"))
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "LA"
    array = np.asarray(out)
    kernel = load_kernel("gaussian:sigma=1").matrix
    ref_colour, ref_a = ref_alpha(la[..., :1], la[..., 1], [kernel], "premultiply", "symmetric")
    assert_matches(array[..., 0], array[..., 1], ref_colour, ref_a, "premultiply")


def test_gray_option_with_alpha(tmp_path: Path) -> None:
    source = save(red_disc(), tmp_path / "logo.png")
    process_file(source, tmp_path / "out.png", "gaussian:sigma=3", gray=True)
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "LA"
    array = np.asarray(out).astype(int)
    visible = array[..., 1] > 0
    luma = round(0.299 * 255)
    assert np.abs(array[..., 0][visible] - luma).max() <= 1
    assert ((array[..., 1] > 0) & (array[..., 1] < 255)).sum() > 100


@pytest.mark.parametrize("suffix", ["png", "gif"])
def test_palette_image_with_a_transparent_index(tmp_path: Path, suffix: str) -> None:
    disc = red_disc()
    indices = np.where(disc[..., 3] == 255, 1, 0).astype(np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)  # index 0: blue, but transparent
    source = tmp_path / f"logo.{suffix}"
    image.save(source, transparency=0)
    assert "transparency" in Image.open(source).info
    process_file(source, tmp_path / "out.png", "gaussian:sigma=3")
    out = read(tmp_path / "out.png").astype(int)
    assert out.shape[2] == 4
    visible = out[..., 3] > 0
    assert np.abs(out[..., :3][visible] - [255, 0, 0]).max() <= 1  # no blue bleeds in
    _, ref_a = ref_alpha(disc[..., :3], disc[..., 3], [GAUSS3.matrix], "premultiply")
    assert np.abs(out[..., 3] - to8(ref_a)).max() <= 1


def _png(width: int, height: int, bits: int, colour_type: int, rows: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bits, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def test_sixteen_bit_gray_alpha_png(tmp_path: Path) -> None:
    """A 16-bit gray+alpha PNG: the disc of gray 40000/65535 keeps its gray, its alpha softens."""
    disc = red_disc()
    samples = np.zeros((*disc.shape[:2], 2), ">u2")
    samples[..., 0] = np.where(disc[..., 3] == 255, 40000, 3000)  # hidden gray 3000 under transparency
    samples[..., 1] = disc[..., 3].astype(np.uint16) * 257
    rows = b"".join(b"\x00" + samples[r].tobytes() for r in range(samples.shape[0]))
    source = tmp_path / "la16.png"
    source.write_bytes(_png(disc.shape[1], disc.shape[0], 16, 4, rows))
    process_file(source, tmp_path / "out.png", "gaussian:sigma=3")
    out = np.asarray(Image.open(tmp_path / "out.png").convert("RGBA")).astype(int)
    visible = out[..., 3] > 0
    assert np.abs(out[..., :3][visible] - 40000 / 257).max() <= 1.5
    _, ref_a = ref_alpha(disc[..., :3], disc[..., 3], [GAUSS3.matrix], "premultiply")
    assert np.abs(out[..., 3] - to8(ref_a)).max() <= 1


def test_premultiply_without_alpha_does_nothing(tmp_path: Path, rng: np.random.Generator) -> None:
    source = save(rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8), tmp_path / "rgb.png")
    process_file(source, tmp_path / "p.png", "gaussian", FilterOptions(alpha="premultiply"))
    process_file(source, tmp_path / "c.png", "gaussian", FilterOptions(alpha="carry"))
    assert (tmp_path / "p.png").read_bytes() == (tmp_path / "c.png").read_bytes()
    np.testing.assert_array_equal(read(tmp_path / "p.png"), render(read(source), "gaussian"))


def test_all_frames_with_alpha(tmp_path: Path) -> None:
    frames = [Image.fromarray(red_disc(), "RGBA"), Image.fromarray(red_disc(radius=8), "RGBA")]
    source = tmp_path / "anim.png"
    frames[0].save(source, save_all=True, append_images=frames[1:])
    job = JobOptions.from_values(all_frames=True)
    filter_file(source, tmp_path / "out.png", "gaussian:sigma=3", job)
    out = Image.open(tmp_path / "out.png")
    assert getattr(out, "n_frames", 1) == 2
    for index in range(2):
        out.seek(index)
        array = np.asarray(out.convert("RGBA")).astype(int)
        visible = array[..., 3] > 0
        assert np.abs(array[..., :3][visible] - [255, 0, 0]).max() <= 1


# -- command line: apply and batch --------------------------------------------------------------


def test_command_line_apply_and_batch(tmp_path: Path, convcli_exe: list[str]) -> None:
    (tmp_path / "in").mkdir()
    source = save(red_disc(), tmp_path / "in" / "logo.png")
    runs = {
        "apply-auto": [*convcli_exe, "apply", str(source), "-k", "gaussian:sigma=3", "-o", str(tmp_path / "a.png")],
        "apply-carry": [
            *convcli_exe,
            "apply",
            str(source),
            "-k",
            "gaussian:sigma=3",
            "--alpha",
            "carry",
            "-o",
            str(tmp_path / "c.png"),
        ],
        "batch": [
            *convcli_exe,
            "batch",
            str(tmp_path / "in"),
            "-k",
            "gaussian:sigma=3",
            "--alpha",
            "premultiply",
            "-o",
            str(tmp_path / "out"),
            "-q",
        ],
    }
    for name, command in runs.items():
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (name, done.stderr)
    batch_out = tmp_path / "out" / "logo-gaussian-sigma3.png"
    assert read(batch_out).tolist() == read(tmp_path / "a.png").tolist()
    ours = read(tmp_path / "a.png").astype(int)
    assert np.abs(ours[..., :3][ours[..., 3] > 0] - [255, 0, 0]).max() <= 1
    assert read(tmp_path / "c.png")[..., 0][red_disc()[..., 3] == 255].min() < 160
    bad = subprocess.run(
        [*convcli_exe, "apply", str(source), "-k", "rgb-to-ycbcr", "--alpha", "filter", "-o", str(tmp_path / "x.png")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("convcli: error: ")
    assert not (tmp_path / "x.png").exists()
    bad = subprocess.run(
        [*convcli_exe, "batch", str(source), "-k", "rgb-to-ycbcr", "--alpha", "premultiply", "-o", str(tmp_path / "b")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "mixes channels" in bad.stderr
    assert not (tmp_path / "b").exists()  # refused before any folder is made


# -- the paths behind render_alpha ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["premultiply", "filter"])
def test_banded_rendering_equals_the_float_result_mapped(rng: np.random.Generator, mode: str) -> None:
    rgba = random_rgba(rng, (40, 33))
    kernels: list[Kernel | str] = ["gaussian:sigma=1", Kernel("shifted", "", (np.full((3, 3), 1 / 9),), offset=-30.0)]
    options = FilterOptions(alpha=mode, stride=(1, 2))
    colour8, alpha8 = render_alpha(rgba[..., :3], rgba[..., 3], kernels, options, OutputOptions(mode="abs"))
    colour, alpha = apply_kernels_alpha(rgba[..., :3], rgba[..., 3], kernels, options)
    want_alpha = np.clip(np.rint(alpha), 0, 255).astype(np.uint8)
    want_colour = np.clip(np.rint(np.abs(colour)), 0, 255).astype(np.uint8)
    if mode == "premultiply":
        want_colour[want_alpha == 0] = 0
    np.testing.assert_array_equal(alpha8, want_alpha)
    np.testing.assert_array_equal(colour8, want_colour)


def test_memory_estimate_counts_a_filtered_alpha() -> None:
    from convcli.io import ImageHeader
    from convcli.memory import estimate_memory

    rgba, rgb = ImageHeader("x", "PNG", "RGBA", 1000, 1000, 1), ImageHeader("x", "PNG", "RGB", 1000, 1000, 1)
    blur = [load_kernel("gaussian")]
    carried = estimate_memory(rgba, blur, JobOptions.from_values(alpha="carry"))
    assert estimate_memory(rgba, blur, JobOptions()) > carried == estimate_memory(rgb, blur, JobOptions())
    edges = [load_kernel("sobel")]
    assert estimate_memory(rgba, edges, JobOptions()) == estimate_memory(rgb, edges, JobOptions())


def test_normalize_stretches_the_visible_colour(tmp_path: Path) -> None:
    """Premultiplied, the pixels written fully transparent have no colour to stretch."""
    gray = np.tile(np.linspace(50, 200, 32), (24, 1)).astype(np.uint8)
    alpha = np.zeros((24, 32), np.uint8)
    alpha[6:18, 6:26] = 255
    colour8, alpha8 = render_alpha(
        gray, alpha, ["box"], FilterOptions(alpha="premultiply"), OutputOptions(mode="normalize")
    )
    visible = alpha8 > 0
    assert colour8[visible].min() == 0 and colour8[visible].max() == 255
    assert np.all(colour8[~visible] == 0)
    assert alpha8[0, 0] == 0 and alpha8[12, 12] == 255


def test_auto_carries_into_a_format_without_alpha(tmp_path: Path) -> None:
    """JPEG drops the alpha: premultiplied colour alone would be a hard-edged, larger disc."""
    source = save(red_disc(), tmp_path / "logo.png")
    outputs = {}
    for mode in ("auto", "carry", "premultiply"):
        with pytest.warns(UserWarning, match="alpha channel is dropped"):
            process_file(source, tmp_path / f"{mode}.jpg", "gaussian:sigma=3", FilterOptions(alpha=mode))
        outputs[mode] = (tmp_path / f"{mode}.jpg").read_bytes()
    assert outputs["auto"] == outputs["carry"] != outputs["premultiply"]
    # 16-bit output keeps a 16-bit alpha, so auto premultiplies there: a soft edge, no dark rim.
    for mode in ("auto", "carry", "premultiply"):
        process_file(
            source, tmp_path / f"{mode}16.png", "gaussian:sigma=3", FilterOptions(alpha=mode), OutputOptions(depth=16)
        )
    assert (tmp_path / "auto16.png").read_bytes() == (tmp_path / "premultiply16.png").read_bytes()
    assert (tmp_path / "auto16.png").read_bytes() != (tmp_path / "carry16.png").read_bytes()
    cv2 = pytest.importorskip("cv2")
    written = cv2.imread(str(tmp_path / "auto16.png"), cv2.IMREAD_UNCHANGED)  # BGRA, a reader we did not write
    assert written.dtype == np.uint16 and written.shape[2] == 4
    alpha16 = written[..., 3]
    assert ((alpha16 > 0) & (alpha16 < 65535)).sum() > 50  # a soft edge
    red = written[..., 2][alpha16 > 0]
    assert red.min() >= 65535 - 257  # the colour keeps its red where anything is seen


@pytest.mark.parametrize("mode", ["premultiply", "filter", "carry"])
def test_asymmetric_flipped_and_even_kernels(rng: np.random.Generator, mode: str) -> None:
    rgba = random_rgba(rng)
    motion = load_kernel("motion:length=5,angle=30")
    even = Kernel("even", "", (np.array([[0.1, 0.2], [0.3, 0.4]]),))
    for kernel, flip in ((motion, True), (even, False)):
        options = FilterOptions(alpha=mode, flip=flip, border="symmetric")
        colour8, alpha8 = render_alpha(rgba[..., :3], rgba[..., 3], [kernel], options)
        matrix = kernel.matrix[::-1, ::-1] if flip else kernel.matrix
        ref_colour, ref_a = ref_alpha(rgba[..., :3], rgba[..., 3], [matrix], mode, "symmetric")
        assert_matches(colour8, alpha8, ref_colour, ref_a, mode)


@pytest.mark.parametrize("mode", ["premultiply", "filter", "carry"])
def test_constant_border_is_an_opaque_colour(rng: np.random.Generator, mode: str) -> None:
    """Premultiplied, ``--border constant`` surrounds the image with the opaque colour, not white."""
    rgba = random_rgba(rng)
    kernels = [load_kernel("gaussian:sigma=1"), load_kernel("box:size=5")]
    options = FilterOptions(alpha=mode, border="constant", border_value=100.0, padding="full")
    colour8, alpha8 = render_alpha(rgba[..., :3], rgba[..., 3], kernels, options)
    matrices = [k.matrix for k in kernels]
    ref_colour, ref_a = ref_alpha(rgba[..., :3], rgba[..., 3], matrices, mode, "constant", "full", value=100.0)
    assert_matches(colour8, alpha8, ref_colour, ref_a, mode)
    if mode == "premultiply":
        assert alpha8[0, 0] == 255 and np.abs(colour8[0, 0].astype(int) - 100).max() <= 1
