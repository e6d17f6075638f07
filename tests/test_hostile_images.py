"""Bad and unusual image files: each has a documented behaviour (tests/corpus.py)."""

from __future__ import annotations

import contextlib
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from convcli.errors import ImageError, LimitError, ParameterError
from convcli.io import DEFAULT_MAX_PIXELS, decode_bytes, read_frames, read_header, read_image
from convcli.options import JobOptions
from convcli.pipeline import OutputOptions, process_file

from corpus import BAD_CASES, GOOD_CASES, Case, bomb_png


def run(exe: list[str], *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*exe, *map(str, args)], capture_output=True, text=True, timeout=60, cwd=cwd, check=False)


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.name)
def test_bad_file_gives_one_line_and_no_output(
    case: Case, corpus: dict[str, Path], convcli_exe: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "out.png"
    result = run(convcli_exe, "apply", corpus[case.name], "-k", "box", "-o", out)
    lines = result.stderr.splitlines()
    assert result.returncode == case.exit_code, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"convcli: error: {corpus[case.name]}: ")
    assert case.message in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("case", GOOD_CASES, ids=lambda c: c.name)
def test_unusual_file_is_filtered(case: Case, corpus: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    with pytest.warns() if case.name in ("animated.gif", "multipage.tif") else no_warning():
        result = process_file(corpus[case.name], out, "identity")
    with Image.open(out) as written:
        assert written.mode in ("L", "LA", "RGB", "RGBA")
        assert written.size == result.output_shape[1::-1]


@contextlib.contextmanager
def no_warning() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_every_corpus_case_is_generated(corpus: dict[str, Path]) -> None:
    assert set(corpus) == {c.name for c in BAD_CASES + GOOD_CASES}
    assert corpus["empty.png"].stat().st_size == 0
    assert corpus["bomb.png"].stat().st_size < 1000


# -- decompression bombs --------------------------------------------------------------------------


def test_bomb_refused_before_any_pixel_memory(corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    original = Image.Image.load

    def spy(self: Image.Image) -> Any:
        loaded.append(self.mode)
        return original(self)

    monkeypatch.setattr(Image.Image, "load", spy)
    monkeypatch.setattr("PIL.ImageFile.ImageFile.load", spy)
    with pytest.raises(LimitError, match=r"bomb\.png: refused: .*2,500,000,000 pixels.*limit of 178,956,970"):
        read_image(corpus["bomb.png"])
    assert loaded == []


def test_max_pixels_lowers_and_raises_the_limit(corpus: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(LimitError, match=r"24x32|32x24.*768 pixels, more than the limit of 100 "):
        read_image(corpus["cmyk.jpg"], max_pixels=100)
    assert read_image(corpus["cmyk.jpg"], max_pixels=768).pixels.shape == (24, 32, 3)
    # a limit above Pillow's own still lets a large (but honest) header through to the check
    header = read_header(_write(tmp_path / "wide.png", bomb_png(20_000, 10_000)))
    assert (header.width, header.height) == (20_000, 10_000)
    with pytest.raises(ReachedDecodeError):  # past the size check, stopped before decoding
        read_image(tmp_path / "wide.png", max_pixels=300_000_000, before_decode=_stop)
    with pytest.raises(LimitError, match="limit of 1,000,000"):
        read_image(tmp_path / "wide.png", max_pixels=1_000_000)


class ReachedDecodeError(ParameterError):
    pass


def _stop(header: object) -> None:
    raise ReachedDecodeError("reached the decode step")


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_max_pixels_option_on_the_command_line(corpus: dict[str, Path], convcli_exe: list[str], tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    result = run(convcli_exe, "apply", corpus["gray16.png"], "-k", "box", "-o", out, "--max-pixels", "100")
    assert result.returncode == 1
    assert "more than the limit of 100 (--max-pixels)" in result.stderr
    assert not out.exists()
    assert DEFAULT_MAX_PIXELS == 178_956_970


def test_memory_estimate_refuses_before_decoding(
    corpus: dict[str, Path], convcli_exe: list[str], tmp_path: Path
) -> None:
    out = tmp_path / "o.png"
    result = run(convcli_exe, "apply", corpus["cmyk.jpg"], "-k", "box", "-o", out, "--max-memory", "1K")
    assert result.returncode == 1
    assert "of working memory, more than the 1.0 KiB of --max-memory" in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not out.exists()
    bad = run(convcli_exe, "apply", corpus["cmyk.jpg"], "-k", "box", "-o", out, "--max-memory", "lots")
    assert bad.returncode == 2 and "--max-memory" in bad.stderr


def test_memory_default_is_available_memory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from convcli import memory
    from convcli.io import ImageHeader
    from convcli.kernels import load_kernel

    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 100 kB\nMemAvailable: 1000 kB\n")
    monkeypatch.setattr(memory, "_MEMINFO", meminfo)
    monkeypatch.setattr(memory, "_CGROUP", tmp_path / "no-cgroup")
    assert memory.available_memory() == 1000 * 1024
    header = ImageHeader("big.png", "PNG", "RGB", 2000, 2000, 1)
    with pytest.raises(LimitError, match=r"big\.png: refused: a 2000x2000 image needs about .* of available memory"):
        memory.check_memory(header, [load_kernel("sobel")])
    memory.check_memory(header, [load_kernel("sobel")], JobOptions.from_values(max_memory=2**40))


# -- formats and modes ----------------------------------------------------------------------------


def test_refused_format_never_reaches_a_decoder(corpus: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Pillow was asked to open a refused format")

    monkeypatch.setattr(Image, "open", boom)
    for name in ("document.pdf", "figure.eps", "layers.psd"):
        with pytest.raises(ImageError, match="files are not read by convcli"):
            read_image(corpus[name])


def test_sixteen_bit_gray_keeps_full_precision(corpus: dict[str, Path]) -> None:
    picture = read_image(corpus["gray16.png"])
    ramp = (np.arange(24 * 32).reshape(24, 32) * 85).astype(np.float64)
    assert picture.bits == 16
    np.testing.assert_allclose(picture.pixels, ramp * 255 / 65535, rtol=1e-6)
    assert len(np.unique(picture.pixels)) == 24 * 32  # 768 levels: more than 8 bits could hold


def test_int32_is_read_on_the_16_bit_scale(corpus: dict[str, Path], tmp_path: Path) -> None:
    picture = read_image(corpus["int32.tif"])
    np.testing.assert_allclose(picture.pixels, read_image(corpus["gray16.png"]).pixels, rtol=1e-6)
    loud = tmp_path / "loud.tif"
    Image.fromarray(np.array([[-5, 70000]], dtype=np.int32)).save(loud)
    with pytest.warns(UserWarning, match="span -5..70000"):
        assert read_image(loud).pixels.tolist() == [[0.0, 255.0]]


def test_float_is_read_as_zero_to_one(corpus: dict[str, Path]) -> None:
    picture = read_image(corpus["float32.tif"])
    gray = np.linspace(0, 255, 24)[:, None].repeat(32, axis=1).astype(np.uint8)
    np.testing.assert_allclose(picture.pixels, gray, atol=1e-3)


def test_float_nan_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nan.tif"
    Image.fromarray(np.array([[0.5, np.nan]], dtype=np.float32)).save(path)
    with pytest.raises(ImageError, match=r"nan\.tif: float image holds NaN"):
        read_image(path)


@pytest.mark.parametrize(
    "name, shape, alpha",
    [
        ("cmyk.jpg", (24, 32, 3), False),
        ("palette-transparent.png", (24, 32, 3), True),
        ("transparent.gif", (24, 32, 3), True),
        ("gray-alpha.png", (24, 32), True),
        ("bilevel.png", (24, 32), False),
    ],
)
def test_modes(name: str, shape: tuple[int, ...], alpha: bool, corpus: dict[str, Path]) -> None:
    picture = read_image(corpus[name])
    assert picture.pixels.shape == shape
    assert (picture.alpha is not None) == alpha
    if name == "bilevel.png":
        assert set(np.unique(picture.pixels)) == {0.0, 255.0}
    if name == "gray-alpha.png":
        assert picture.alpha is not None
        assert picture.alpha[:, :16].max() == 0 and picture.alpha[:, 16:].min() == 255


def test_cmyk_colours_survive(corpus: dict[str, Path]) -> None:
    picture = read_image(corpus["cmyk.jpg"])
    # the source's red channel ramps down the rows, green across the columns
    assert picture.pixels[-1, 0, 0] - picture.pixels[0, 0, 0] > 200
    assert picture.pixels[0, -1, 1] - picture.pixels[0, 0, 1] > 200


def test_exif_rotation_gives_upright_output(corpus: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "up.png"
    process_file(corpus["exif-rotated.jpg"], out, "identity")
    upright = np.asarray(Image.open(out))
    assert upright.shape == (20, 10)  # stored 20 wide x 10 tall, orientation 6
    assert upright[:10].mean() > 200 and upright[10:].mean() < 50  # white half now on top


def test_depth_16_keeps_sixteen_bits(corpus: dict[str, Path], tmp_path: Path) -> None:
    out8, out16 = tmp_path / "o8.png", tmp_path / "o16.tif"
    process_file(corpus["gray16.png"], out8, "identity")
    process_file(corpus["gray16.png"], out16, "identity", output=OutputOptions(depth=16))
    with Image.open(out8) as eight, Image.open(out16) as sixteen:
        assert eight.mode == "L"
        assert sixteen.mode == "I;16"
        values = np.asarray(sixteen).astype(np.int64)
    ramp = np.arange(24 * 32).reshape(24, 32) * 85
    assert np.abs(values - ramp).max() <= 1


@pytest.mark.parametrize("fmt", ["jpg", "bmp", "gif", "webp"])
def test_depth_16_refused_where_the_format_cannot_hold_it(fmt: str, corpus: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"`--depth 16` needs PNG or TIFF output"):
        process_file(corpus["gray16.png"], tmp_path / f"o.{fmt}", "identity", output=OutputOptions(depth=16))
    assert list(tmp_path.iterdir()) == []


def test_depth_16_writes_colour_and_gray(corpus: dict[str, Path], tmp_path: Path) -> None:
    process_file(corpus["cmyk.jpg"], tmp_path / "o.png", "identity", output=OutputOptions(depth=16))
    header = (tmp_path / "o.png").read_bytes()[16:26]
    assert (header[8], header[9]) == (16, 2)  # IHDR: bit depth 16, colour type RGB
    process_file(corpus["cmyk.jpg"], tmp_path / "g.png", "identity", output=OutputOptions(depth=16), gray=True)
    assert Image.open(tmp_path / "g.png").mode == "I;16"


# -- frames ---------------------------------------------------------------------------------------


def test_first_frame_with_a_warning(corpus: dict[str, Path], tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"animated\.gif: has 3 frames; only the first is filtered"):
        process_file(corpus["animated.gif"], tmp_path / "one.gif", "identity")
    assert getattr(Image.open(tmp_path / "one.gif"), "n_frames", 1) == 1


@pytest.mark.parametrize("source, frames", [("animated.gif", 3), ("multipage.tif", 2)])
@pytest.mark.parametrize("suffix", ["gif", "png", "tif", "webp"])
def test_all_frames(source: str, frames: int, suffix: str, corpus: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / f"all.{suffix}"
    process_file(corpus[source], out, "box", all_frames=True)
    with Image.open(out) as written:
        assert getattr(written, "n_frames", 1) == frames
        firsts = []
        for index in range(frames):
            written.seek(index)
            firsts.append(np.asarray(written.convert("RGB"), dtype=np.int16))
    assert np.abs(firsts[0] - firsts[1]).max() > 20  # the frames differ: not one frame repeated


def test_all_frames_refused_for_single_frame_formats(corpus: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"`--all-frames` needs an output format .*; JPEG holds one"):
        process_file(corpus["animated.gif"], tmp_path / "o.jpg", "identity", all_frames=True)
    assert list(tmp_path.iterdir()) == []
    process_file(corpus["cmyk.jpg"], tmp_path / "still.jpg", "identity", all_frames=True)  # one frame: fine
    assert read_frames(tmp_path / "still.jpg")[0].pixels.shape == (24, 32, 3)


def test_decode_bytes_names_the_source() -> None:
    with pytest.raises(ImageError, match=r"^upload\.png: not an image"):
        decode_bytes(b"GARBAGE" * 10, "upload.png")
