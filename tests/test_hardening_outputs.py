"""Outputs under attack: standard output full or closed, name templates, format limits, output
paths without a suffix or naming a folder, and decoder messages that must stay one line."""

from __future__ import annotations

import io
import os
import re
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
from PIL import Image

from convcli.io import ImageWarning

# One command for each way of writing to standard output: convcli's image writer, Click's echo
# (JSON), Rich (tables, help), a plain write (export), and the --version answered before Typer.
STDOUT_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("apply", "{image}", "-k", "box", "-o", "-"),
    ("kernels", "list", "--json"),
    ("kernels", "show", "sobel"),
    ("kernels", "export", "sobel"),
    ("--help",),
    ("--version",),
)


def _run(exe: Sequence[str], args: Sequence[str], cwd: Path, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [*exe, *args], cwd=cwd, stderr=subprocess.PIPE, timeout=120, check=False, **kwargs
    )


def _one_line(result: subprocess.CompletedProcess[bytes], code: int, *fragments: str) -> str:
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert "Traceback" not in err, err
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("convcli: error:")]
    assert len(errors) == 1 and len([ln for ln in lines if not ln.startswith("convcli: warning:")]) == 1, err
    for fragment in fragments:
        assert fragment in errors[0], err
    return errors[0]


@pytest.fixture
def small_png(tmp_path: Path) -> Path:
    path = tmp_path / "small.png"
    Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8)).save(path)
    return path


# -- standard output full or closed --------------------------------------------------------------


@pytest.mark.parametrize("command", STDOUT_COMMANDS, ids=" ".join)
def test_stdout_full_is_one_line_and_exit_1(
    command: tuple[str, ...], convcli_exe: list[str], small_png: Path, tmp_path: Path
) -> None:
    args = [part.format(image=small_png) for part in command]
    with open(os.devnull.replace("null", "full"), "wb") as full:
        result = _run(convcli_exe, args, tmp_path, stdout=full)
    _one_line(result, 1, "standard output", "No space left on device")


def _close_stdout() -> None:
    os.close(1)


@pytest.mark.parametrize("command", STDOUT_COMMANDS, ids=" ".join)
def test_stdout_closed_is_one_line_and_exit_1(
    command: tuple[str, ...], convcli_exe: list[str], small_png: Path, tmp_path: Path
) -> None:
    args = [part.format(image=small_png) for part in command]
    result = _run(convcli_exe, args, tmp_path, stdout=subprocess.DEVNULL, preexec_fn=_close_stdout)
    _one_line(result, 1, "standard output is closed")


def test_closed_stdout_does_not_matter_when_nothing_goes_there(
    convcli_exe: list[str], small_png: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.png"
    result = _run(
        convcli_exe,
        ["apply", str(small_png), "-k", "box", "-o", str(out)],
        tmp_path,
        stdout=subprocess.DEVNULL,
        preexec_fn=_close_stdout,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert Image.open(out).size == (8, 6)


def test_stdout_broken_pipe_stays_quiet(convcli_exe: list[str], tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = _run(convcli_exe, ["kernels", "list", "--json"], tmp_path, stdout=write_end)
    finally:
        os.close(write_end)
    assert result.returncode == 141
    assert result.stderr == b""


# -- name templates ------------------------------------------------------------------------------

BAD_TEMPLATES = {
    "{stem:%}": "format spec",
    "{stem!x}": "conversion",
    "{stem:{ext}}": "format spec",
    "{stem:>99999999999999}": "255",
    "{stem:>300}.{ext}": "255",
    "{stem:/>9}.{ext}": "'/'",
    "{stem:.0}": "empty",
    "{ext:.0}.": "'.'",
    "{stem:d}": "format spec",
    "{stem:,}": "format spec",
    "{stem:=>5}{stem:.0}" + "x" * 251: "255",
}


@pytest.mark.parametrize("template", list(BAD_TEMPLATES))
def test_bad_templates_are_refused_before_any_work(template: str) -> None:
    from convcli.batch import check_template
    from convcli.errors import ParameterError

    with pytest.raises(ParameterError, match="`--name`") as caught:
        check_template(template)
    assert BAD_TEMPLATES[template] in str(caught.value)


@pytest.mark.parametrize("template", ["{stem:>12}.{ext}", "{stem!s}-{kernel:.5}.{ext}", "{stem:_<8}.{ext}"])
def test_good_templates_with_format_specs_pass(template: str, tmp_path: Path) -> None:
    from convcli.batch import check_template, render_name
    from convcli.kernels import load_kernel

    assert check_template(template) == template
    name = render_name(template, tmp_path / "ab.png", [load_kernel("sobel")])
    assert name.endswith(".png") and len(name) >= 8


@pytest.mark.parametrize("template", ["{stem:>99999999999999}"])
def test_batch_bad_template_exit_2_no_outdir(
    template: str, convcli_exe: list[str], small_png: Path, tmp_path: Path
) -> None:
    outdir = tmp_path / "out"
    result = _run(convcli_exe, ["batch", str(small_png), "-k", "box", "-o", str(outdir), "--name", template], tmp_path)
    _one_line(result, 2, "--name")
    assert not outdir.exists()


# -- output paths: no suffix, a folder, a suffix that disagrees with --format ----------------------


def _apply(exe: list[str], cwd: Path, *args: str, **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return _run(exe, ["apply", *args], cwd, stdout=subprocess.PIPE, **kwargs)


def test_readme_example_dev_full_is_exit_1_no_space(convcli_exe: list[str], small_png: Path, tmp_path: Path) -> None:
    result = _apply(convcli_exe, tmp_path, str(small_png), "-k", "box", "-o", "/dev/full")
    _one_line(result, 1, "/dev/full", "No space left on device")


@pytest.mark.parametrize("fmt, suffix", [("JPEG", ".jpg"), ("TIFF", ".tif"), ("GIF", ".gif"), ("BMP", ".bmp")])
def test_no_suffix_takes_the_input_format(fmt: str, suffix: str, tmp_path: Path) -> None:
    from convcli.pipeline import filter_file

    source = tmp_path / f"in{suffix}"
    Image.fromarray(np.full((6, 8, 3), 90, np.uint8)).save(source)
    filter_file(source, tmp_path / "result", "box")
    assert Image.open(tmp_path / "result").format == fmt


def test_no_suffix_from_stdin_takes_the_sniffed_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.pipeline import filter_file

    data = io.BytesIO()
    Image.fromarray(np.full((6, 8), 90, np.uint8)).save(data, "BMP")
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data.getvalue())))
    filter_file("-", tmp_path / "result", "box")
    assert Image.open(tmp_path / "result").format == "BMP"


def test_no_suffix_format_option_wins(tmp_path: Path, small_png: Path) -> None:
    from convcli.options import JobOptions
    from convcli.pipeline import filter_file

    filter_file(small_png, tmp_path / "result", "box", JobOptions.from_values(format="webp"))
    assert Image.open(tmp_path / "result").format == "WEBP"


def test_mpo_input_without_suffix_writes_jpeg(tmp_path: Path) -> None:
    from convcli.io.formats import writable_format

    assert writable_format("MPO") == "JPEG"
    assert writable_format("PNG") == "PNG"


def test_folder_as_output_takes_the_default_name(small_png: Path, tmp_path: Path) -> None:
    from convcli.pipeline import filter_file

    folder = tmp_path / "edges"
    folder.mkdir()
    result = filter_file(small_png, folder, ["box", "sobel"])
    assert result.destination == str(folder / "small-box+sobel.png")
    assert sorted(p.name for p in folder.iterdir()) == ["small-box+sobel.png"]
    assert Image.open(folder / "small-box+sobel.png").size == (8, 6)


def test_folder_as_output_with_format(tmp_path: Path, small_png: Path) -> None:
    from convcli.options import JobOptions
    from convcli.pipeline import filter_file

    result = filter_file(small_png, tmp_path, "box", JobOptions.from_values(format="jpeg"))
    assert result.destination == str(tmp_path / "small-box.jpg")


def test_folder_as_output_refused_for_stdin(tmp_path: Path) -> None:
    from convcli.errors import ParameterError
    from convcli.pipeline import filter_file

    with pytest.raises(ParameterError, match="standard input has no name"):
        filter_file("-", tmp_path, "box")


def test_missing_folder_with_trailing_slash_is_not_a_file(tmp_path: Path, small_png: Path) -> None:
    from convcli.errors import ConvcliError
    from convcli.pipeline import filter_file

    with pytest.raises(ConvcliError, match="no such folder"):
        filter_file(small_png, f"{tmp_path}/missing/", "box")
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    "name, fmt, ok",
    [
        ("x.jpg", "png", False),
        ("x.tif", "jpeg", False),
        ("x.jpeg", "jpg", True),
        ("x.pgm", "ppm", True),
        ("x.dat", "png", True),
        ("x", "png", True),
        ("-", "tiff", True),
    ],
)
def test_suffix_and_format_must_agree(name: str, fmt: str, ok: bool) -> None:
    from convcli.errors import ParameterError
    from convcli.io.formats import resolve_format

    if ok:
        assert resolve_format(name, fmt)
    else:
        with pytest.raises(ParameterError, match=r"change the suffix or --format"):
            resolve_format(name, fmt)


def test_apply_suffix_format_conflict_exit_2(convcli_exe: list[str], small_png: Path, tmp_path: Path) -> None:
    result = _apply(convcli_exe, tmp_path, str(small_png), "-k", "box", "-o", "x.jpg", "--format", "png")
    _one_line(result, 2, "x.jpg", "JPEG", "PNG")
    assert not (tmp_path / "x.jpg").exists()


def test_batch_template_suffix_format_conflict(tmp_path: Path, small_png: Path) -> None:
    from convcli.batch import discover, plan_batch
    from convcli.errors import ParameterError
    from convcli.kernels import load_kernel

    with pytest.raises(ParameterError, match="change the suffix or --format"):
        plan_batch(discover([small_png]), tmp_path / "out", [load_kernel("box")], template="{stem}.jpg", fmt="PNG")
    assert not (tmp_path / "out").exists()


# -- images too large for the output format --------------------------------------------------------


@pytest.fixture
def wide_png(tmp_path: Path) -> Path:
    path = tmp_path / "wide.png"
    Image.new("L", (70000, 20), 40).save(path)
    return path


def test_too_wide_for_gif_exit_2_before_work(convcli_exe: list[str], wide_png: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.gif"
    result = _apply(convcli_exe, tmp_path, str(wide_png), "-k", "box", "-o", str(out))
    _one_line(result, 2, str(out), "70000x20", "GIF", "65535")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("suffix, fmt, limit", [(".tga", "TGA", "65535"), (".jpg", "JPEG", "65500")])
def test_too_wide_refused_before_decoding(suffix: str, fmt: str, limit: str, wide_png: Path, tmp_path: Path) -> None:
    from convcli.errors import ParameterError
    from convcli.pipeline import filter_file

    out = tmp_path / f"out{suffix}"
    with pytest.raises(ParameterError, match=rf"^{re.escape(str(out))}: 70000x20 is too large for {fmt}.*{limit}"):
        filter_file(wide_png, out, "box")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wide.png"]


@pytest.mark.parametrize(
    "fmt, size, ok",
    [
        ("JPEG", (65500, 2), True),
        ("JPEG", (2, 65501), False),
        ("WEBP", (16383, 2), True),
        ("WEBP", (16384, 2), False),
        ("GIF", (65535, 2), True),
        ("GIF", (2, 65536), False),
        ("TGA", (65536, 2), False),
        ("BMP", (70000, 2), True),
        ("PNG", (70000, 2), True),
    ],
)
def test_format_side_limits_match_pillow(fmt: str, size: tuple[int, int], ok: bool) -> None:
    from convcli.errors import OutputError
    from convcli.io import encode_frames

    pixels = np.zeros(size[::-1], dtype=np.uint8)
    if ok:
        data = encode_frames([(pixels, None)], fmt)
        assert Image.open(io.BytesIO(data)).size == size
    else:
        with pytest.raises(OutputError, match=rf"{size[0]}x{size[1]} is too large for {fmt}"):
            encode_frames([(pixels, None)], fmt)


def test_format_byte_limits() -> None:
    from convcli.io.formats import size_problem

    assert size_problem("BMP", 40000, 40000, 3) is not None  # 4.8 GB: BMP records its size in 32 bits
    assert size_problem("TIFF", 40000, 40000, 3) is not None
    assert size_problem("BMP", 30000, 30000, 3) is None
    assert size_problem("PPM", 40000, 40000, 3) is None
    assert size_problem("PNG", 40000, 40000, 4) is None
    assert size_problem("PNG", 2**31, 1) is not None  # the PNG specification's limit


def test_output_size_counts_the_padding(tmp_path: Path) -> None:
    from convcli.errors import ParameterError
    from convcli.options import JobOptions
    from convcli.pipeline import filter_file

    source = tmp_path / "edge.png"
    Image.new("L", (65530, 2), 9).save(source)
    job = JobOptions.from_values(padding="full")
    with pytest.raises(ParameterError, match="65538x10 is too large for GIF"):
        filter_file(source, tmp_path / "o.gif", "box:size=9", job)
    assert filter_file(source, tmp_path / "o.gif", "box:size=5").output_shape == (2, 65530)


# -- messages that native decoders write straight to descriptor 2 -----------------------------------


def _corrupt_deflate_tiff(path: Path) -> Path:
    rng = np.random.default_rng(20261129)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        buffer, "TIFF", compression="tiff_adobe_deflate"
    )
    data = bytearray(buffer.getvalue())
    for i in range(40, 200):  # the deflate stream starts after the 8-byte header
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    return path


def test_corrupt_deflate_tiff_is_one_line(convcli_exe: list[str], tmp_path: Path) -> None:
    bad = _corrupt_deflate_tiff(tmp_path / "bad.tif")
    result = _apply(convcli_exe, tmp_path, str(bad), "-k", "box", "-o", "out.png")
    line = _one_line(result, 1, "bad.tif", "ZIPDecode", "decoder error")
    assert line.startswith("convcli: error: ")
    assert not (tmp_path / "out.png").exists()


def test_batch_corrupt_deflate_tiff_is_one_line_per_file(
    convcli_exe: list[str], small_png: Path, tmp_path: Path
) -> None:
    bad = _corrupt_deflate_tiff(tmp_path / "bad.tif")
    result = _run(convcli_exe, ["batch", str(bad), str(small_png), "-k", "box", "-o", "out", "-j", "2", "-q"], tmp_path)
    _one_line(result, 1, "bad.tif", "ZIPDecode")


def _fail_after_native_message(message: bytes, *, enabled: bool) -> None:
    from convcli.io import native

    with native.native_messages(enabled=enabled):
        os.write(2, message)
        raise OSError("decoder error -2")


def test_native_capture_restores_descriptor_2_and_keeps_other_output(tmp_path: Path) -> None:
    from convcli.io import native

    before = os.fstat(2)
    with pytest.raises(native.NativeDecoderError, match=r"^libfoo: broken \(decoder error -2\)$"):
        _fail_after_native_message(b"libfoo: broken\n", enabled=True)
    after = os.fstat(2)
    assert (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)
    with pytest.raises(KeyError):  # not a decoder failure: passed on untouched
        with native.native_messages(enabled=True):
            raise KeyError("x")
    assert (os.fstat(2).st_dev, os.fstat(2).st_ino) == (before.st_dev, before.st_ino)


def test_native_capture_replays_text_when_nothing_failed(capfd: pytest.CaptureFixture[str]) -> None:
    from convcli.io import native

    with native.native_messages(enabled=True):
        os.write(2, b"a note from a library\n")
    assert capfd.readouterr().err == "a note from a library\n"
    with pytest.warns(ImageWarning, match=r"^x\.tif: JPEGLib: Unsupported marker type 0xb0$"):
        with native.native_messages("x.tif", enabled=True):
            os.write(2, b"JPEGLib: Unsupported marker type 0xb0.\n")
    with native.native_messages("x.tif", enabled=True):  # not a library's message: passed on as it came
        os.write(2, b"\x1b[2Kfiltering 3/9\r")
    assert capfd.readouterr().err == "\x1b[2Kfiltering 3/9\r"


def test_native_capture_is_off_unless_enabled(capfd: pytest.CaptureFixture[str]) -> None:

    with pytest.raises(OSError, match="decoder error"):
        _fail_after_native_message(b"libfoo: said\n", enabled=False)
    assert capfd.readouterr().err == "libfoo: said\n"


# -- TIFF sample formats and modes that are valid, not corrupt --------------------------------------


def _float_tiff(
    array: np.ndarray,
    *,
    endian: Literal["<", ">"] = "<",
    compression: int = 1,
    rows_per_strip: int = 2,
    sample_format: int = 3,
) -> bytes:
    """A minimal one-channel IEEE-float TIFF of ``array``'s dtype, in strips (uncompressed or deflate)."""
    import struct
    import zlib

    height, width = array.shape[:2]
    samples = 1 if array.ndim == 2 else array.shape[2]
    data = array.astype(array.dtype.newbyteorder(endian)).tobytes()
    row = width * samples * array.dtype.itemsize
    strips = [data[r * row : min(height, r + rows_per_strip) * row] for r in range(0, height, rows_per_strip)]
    if compression == 8:
        strips = [zlib.compress(strip) for strip in strips]
    count = len(strips)
    entries = [
        (256, 3, 1, width), (257, 3, 1, height), (258, 3, 1, array.dtype.itemsize * 8), (259, 3, 1, compression),
        (262, 3, 1, 1 if samples == 1 else 2), (273, 4, count, 0), (277, 3, 1, samples),
        (278, 3, 1, rows_per_strip), (279, 4, count, 0),
        (339, 3, 1, sample_format),
    ]  # fmt: skip
    ifd_size = 2 + 12 * len(entries) + 4
    arrays_at = 8 + ifd_size
    data_at = arrays_at + 8 * count
    offsets, position = [], data_at
    for strip in strips:
        offsets.append(position)
        position += len(strip)
    out = (
        (b"II" if endian == "<" else b"MM")
        + struct.pack(endian + "HI", 42, 8)
        + struct.pack(endian + "H", len(entries))
    )
    for tag, kind, n, declared in entries:
        value = declared
        if tag == 273:
            value = offsets[0] if count == 1 else arrays_at
        if tag == 279:
            value = len(strips[0]) if count == 1 else arrays_at + 4 * count
        if kind == 3:
            out += struct.pack(endian + "HHIHH", tag, kind, n, value, 0)
        else:
            out += struct.pack(endian + "HHII", tag, kind, n, value)
    out += struct.pack(endian + "I", 0)
    out += struct.pack(f"{endian}{count}I", *offsets) + struct.pack(f"{endian}{count}I", *map(len, strips))
    return out + b"".join(strips)


FLOAT_VALUES = np.linspace(0.0, 1.0, 35).reshape(5, 7)


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.float32])
@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("compression", [1, 8])
def test_float_tiffs_read_like_float32(dtype: type, endian: Literal["<", ">"], compression: int) -> None:
    from convcli.io import decode_bytes

    picture = decode_bytes(_float_tiff(FLOAT_VALUES.astype(dtype), endian=endian, compression=compression))
    assert picture.pixels.dtype == np.float32 and picture.bits == 16
    np.testing.assert_allclose(picture.pixels, FLOAT_VALUES * 255, rtol=1e-3)


def test_float64_tiff_filters_like_float32(tmp_path: Path) -> None:
    from convcli.pipeline import filter_file

    (tmp_path / "f64.tif").write_bytes(_float_tiff(FLOAT_VALUES))
    (tmp_path / "f32.tif").write_bytes(_float_tiff(FLOAT_VALUES.astype(np.float32)))
    for name in ("f64", "f32"):
        filter_file(tmp_path / f"{name}.tif", tmp_path / f"{name}.png", "identity")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "f64.png")), np.asarray(Image.open(tmp_path / "f32.png")))


def test_float64_tiff_bomb_is_refused_from_its_header() -> None:
    from convcli.errors import LimitError
    from convcli.io import decode_bytes

    data = _float_tiff(FLOAT_VALUES)
    with pytest.raises(LimitError, match="35 pixels, more than the limit of 10"):
        decode_bytes(data, max_pixels=10)


def test_float64_tiff_truncated_is_truncated_not_a_traceback() -> None:
    from convcli.errors import ImageError
    from convcli.io import decode_bytes

    data = _float_tiff(FLOAT_VALUES, rows_per_strip=5)
    with pytest.raises(ImageError, match="truncated"):
        decode_bytes(data[:-40])


def _lab_tiff(path: Path) -> Path:
    Image.new("LAB", (6, 4), (200, 128, 128)).save(path)
    return path


def test_lab_tiff_gray_is_lightness_not_corrupt(tmp_path: Path) -> None:
    from convcli.io import read_image

    colour = read_image(_lab_tiff(tmp_path / "lab.tif"))
    gray = read_image(tmp_path / "lab.tif", gray=True)
    assert gray.pixels.shape == (4, 6)
    expected = colour.pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    np.testing.assert_allclose(gray.pixels, expected, atol=1.0)
    assert 150 < float(gray.pixels.mean()) < 255  # L=200 of 255 is a light gray


@pytest.mark.parametrize("mode", ["CMYK", "YCbCr", "I;16B", "I;16", "I", "F", "LAB", "RGB", "1", "P", "PA", "LA"])
@pytest.mark.parametrize("gray", [False, True])
def test_tiff_modes_are_read(mode: str, gray: bool, tmp_path: Path) -> None:
    from convcli.io import read_image

    path = tmp_path / "m.tif"
    Image.new(mode, (5, 3)).save(path)
    picture = read_image(path, gray=gray)
    assert picture.pixels.shape[:2] == (3, 5)
    assert picture.pixels.ndim == (2 if gray or mode in ("I;16B", "I;16", "I", "F", "1", "LA") else 3)


def test_float64_tiff_header_without_decoding(tmp_path: Path) -> None:
    from convcli.io import read_header

    path = tmp_path / "f64.tif"
    path.write_bytes(_float_tiff(FLOAT_VALUES, compression=8))
    header = read_header(path)
    assert (header.format, header.mode, header.width, header.height) == ("TIFF", "F", 7, 5)


@pytest.mark.parametrize(
    "array, sample_format, message",
    [
        (np.zeros((3, 4, 3), np.float32), 3, "floating-point TIFF with 3 samples per pixel is not read"),
        (np.zeros((3, 4, 3), np.float64), 3, "floating-point TIFF with 3 samples per pixel is not read"),
        (np.zeros((3, 4), np.uint64), 1, "64-bit integer TIFF samples are not read"),
    ],
)
def test_unread_tiff_layouts_are_named_not_corrupt(array: np.ndarray, sample_format: int, message: str) -> None:
    from convcli.errors import ImageError
    from convcli.io import decode_bytes

    with pytest.raises(ImageError, match=message):
        decode_bytes(_float_tiff(array, sample_format=sample_format))


# -- encoder settings and layouts that escaped as tracebacks or failed after the work ----------------


@pytest.mark.parametrize(
    "values, message",
    [
        ({"compress_level": -1}, "compress_level"),
        ({"compress_level": 10}, "compress_level"),
        ({"quality": 0}, "quality"),
        ({"quality": 101}, "quality"),
    ],
)
def test_encoder_settings_checked_before_work(
    values: dict[str, int], message: str, small_png: Path, tmp_path: Path
) -> None:
    from convcli.errors import ParameterError
    from convcli.io import encode_frames
    from convcli.options import JobOptions
    from convcli.pipeline import filter_file

    out = tmp_path / "o.webp"
    with pytest.raises(ParameterError, match=message):
        filter_file(small_png, out, "box", JobOptions.from_values(**values))
    assert not out.exists()
    with pytest.raises(ParameterError, match=message):
        encode_frames(
            [(np.zeros((2, 2), np.uint8), None)],
            "PNG",
            quality=values.get("quality"),
            compress_level=values.get("compress_level"),
        )


def test_gray_alpha_to_bmp_keeps_alpha(tmp_path: Path) -> None:
    from convcli.pipeline import filter_file

    source = tmp_path / "la.png"
    Image.fromarray(np.dstack([np.full((4, 5), 80, np.uint8), np.full((4, 5), 200, np.uint8)]), "LA").save(source)
    filter_file(source, tmp_path / "o.bmp", "box")
    data = (tmp_path / "o.bmp").read_bytes()
    assert int.from_bytes(data[28:30], "little") == 32  # 32 bits a pixel: BGRA, alpha kept as RGBA input is
    pixels = np.frombuffer(data[int.from_bytes(data[10:14], "little") :], np.uint8).reshape(4, 5, 4)
    assert (pixels[..., 3] == 200).all() and (pixels[..., :3] == 80).all()


@pytest.mark.filterwarnings("ignore:.*cannot store transparency")
@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm", ".gif", ".tga"])
def test_one_pixel_output_in_every_format(suffix: str, tmp_path: Path) -> None:
    from convcli.options import JobOptions
    from convcli.pipeline import filter_file

    source = tmp_path / "in.png"
    Image.fromarray(np.full((3, 3, 4), 120, np.uint8), "RGBA").save(source)
    result = filter_file(source, tmp_path / f"o{suffix}", "box", JobOptions.from_values(padding="valid"))
    assert result.output_shape[:2] == (1, 1)
    assert Image.open(tmp_path / f"o{suffix}").size == (1, 1)


def test_empty_output_path_is_refused_not_the_current_folder(
    small_png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from convcli.errors import ParameterError
    from convcli.pipeline import filter_file

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ParameterError, match="output path"):
        filter_file(small_png, "", "box")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.png"]


def test_in_place_keeps_the_format_whatever_the_suffix(tmp_path: Path) -> None:
    from convcli.pipeline import filter_file

    source = tmp_path / "photo.data"
    Image.fromarray(np.full((4, 5), 50, np.uint8)).save(source, "PNG")
    filter_file(source, None, "box", in_place=True)
    assert Image.open(source).format == "PNG"


def test_float64_tiff_memory_is_checked_before_converting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.errors import LimitError
    from convcli.io import tiff_float
    from convcli.options import JobOptions
    from convcli.pipeline import filter_file

    source = tmp_path / "big.tif"
    source.write_bytes(_float_tiff(np.zeros((1000, 1000)), compression=8, rows_per_strip=1000))

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded before the memory check")

    monkeypatch.setattr(tiff_float, "_strips", no_decoding)
    with pytest.raises(LimitError, match="memory"):
        filter_file(source, tmp_path / "o.png", "box", JobOptions.from_values(max_memory=2**20))


def test_non_blocking_stdout_gets_every_byte(convcli_exe: list[str], tmp_path: Path) -> None:
    import fcntl
    import termios
    import threading

    source = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(20261129).integers(0, 255, (200, 300, 3), dtype=np.uint8)).save(source)
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETFL, fcntl.fcntl(write_end, fcntl.F_GETFL) | os.O_NONBLOCK)
    capacity = fcntl.fcntl(write_end, fcntl.F_GETPIPE_SZ)  # the pipe is full at this many bytes
    process = subprocess.Popen(
        [*convcli_exe, "apply", str(source), "-k", "identity", "-o", "-", "--compress-level", "0"],
        stdout=write_end,
        stderr=subprocess.PIPE,
    )
    os.close(write_end)
    waiting = bytearray(4)
    # Read nothing until the pipe is full, so that the writer meets EAGAIN.
    while process.poll() is None:
        fcntl.ioctl(read_end, termios.FIONREAD, waiting)
        if int.from_bytes(waiting, "little") >= capacity:
            break
        threading.Event().wait(0.001)
    chunks = []
    while chunk := os.read(read_end, 1 << 16):
        chunks.append(chunk)
    os.close(read_end)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(b"".join(chunks)))), np.asarray(Image.open(source)))
