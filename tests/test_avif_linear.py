"""AVIF reading and writing, and filtering in linear light (``--linear``).

AVIF outputs are read back with Pillow's own decoder and compared with the input within the
error of a lossy codec; linear-light results are compared with a float64 reference written from
IEC 61966-2-1 and ``scipy.ndimage.correlate``, independent of convcli's curves and engines.
"""

from __future__ import annotations

import io
import struct
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, features
from scipy import ndimage

import convcli.cli
from convcli.core.colour import linear_to_srgb, srgb_to_linear
from convcli.errors import ImageError, OutputError, ParameterError
from convcli.io import read_header, read_image
from convcli.io.formats import MAX_SIDES, READ_FORMATS, READ_SUFFIXES, WRITE_FORMATS, sniff_format
from convcli.kernels import load_kernel
from convcli.options import FilterOptions, JobOptions
from convcli.pipeline import apply_kernels, filter_file

pytestmark = pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")


def run(cmd: list[str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*cmd, *args], capture_output=True, input=stdin, timeout=120, check=False)


def cli_run(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[bytes]:
    """The command line run in this process (faster than a subprocess), as ``run`` reports it."""
    capsys.readouterr()
    code = convcli.cli.main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out.encode(), captured.err.encode())


def gradient(height: int = 48, width: int = 64) -> NDArray[np.uint8]:
    rows = np.linspace(0, 255, height)[:, None]
    cols = np.linspace(0, 255, width)[None, :]
    return np.stack([rows + 0 * cols, 0 * rows + cols, (rows + cols) / 2], axis=-1).round().astype(np.uint8)


def save(path: Path, array: NDArray[np.uint8], mode: str | None = None) -> Path:
    Image.fromarray(array, mode).save(path)
    return path


def avif_bytes(array: NDArray[np.uint8], mode: str | None = None, **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode).save(buffer, "AVIF", **options)
    return buffer.getvalue()


def pillow_read(source: Path | bytes) -> Image.Image:
    image = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
    image.load()
    return image


# -- AVIF ----------------------------------------------------------------------------------------


def test_avif_is_on_the_allow_lists_and_in_the_format_table() -> None:
    assert "AVIF" in READ_FORMATS
    assert WRITE_FORMATS["AVIF"] == (".avif",)
    assert ".avif" in READ_SUFFIXES
    assert MAX_SIDES["AVIF"] == 32768


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf", "AVIF"),
        (b"\x00\x00\x00\x20ftypavis\x00\x00\x00\x00avisavifmsf1miaf", "AVIF"),
        # major brand mif1, AVIF named among the compatible brands (as some encoders write)
        (b"\x00\x00\x00\x1cftypmif1\x00\x00\x00\x00mif1avifmiaf", "AVIF"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", None),
        (b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", None),
        (b"\x89PNG\r\n\x1a\n", "PNG"),
    ],
)
def test_avif_is_sniffed_from_its_ftyp_box(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected


def test_heif_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    with pytest.raises(ImageError, match="HEIF/HEIC files are not read by convcli"):
        read_image(path)


def test_avif_round_trip_keeps_colour_size_and_alpha(tmp_path: Path) -> None:
    colour = gradient()
    alpha = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))
    source = save(tmp_path / "in.png", np.dstack([colour, alpha]), "RGBA")
    result = filter_file(source, tmp_path / "out.avif", "identity", JobOptions.from_values(quality=95))
    assert result.output_shape == (48, 64, 3)
    image = pillow_read(tmp_path / "out.avif")
    assert (image.format, image.mode, image.size) == ("AVIF", "RGBA", (64, 48))
    back = np.asarray(image).astype(int)
    assert np.abs(back[..., :3] - colour).mean() < 3
    assert np.abs(back[..., 3] - alpha).mean() < 2


def test_avif_input_is_read_by_its_signature_whatever_its_name(tmp_path: Path) -> None:
    colour = gradient()
    path = tmp_path / "photo.dat"
    path.write_bytes(avif_bytes(colour, quality=95, subsampling="4:4:4"))
    header = read_header(path)
    assert (header.format, header.width, header.height) == ("AVIF", 64, 48)
    picture = read_image(path)
    assert picture.format == "AVIF"
    assert np.abs(picture.pixels.astype(int) - colour).mean() < 3


def test_gray_avif_round_trip(tmp_path: Path) -> None:
    gray = gradient()[..., 0]
    source = save(tmp_path / "in.png", gray)
    filter_file(source, tmp_path / "out.avif", "identity", JobOptions.from_values(quality=95))
    back = np.asarray(pillow_read(tmp_path / "out.avif").convert("L")).astype(int)
    assert np.abs(back - gray).mean() < 3


def test_format_avif_and_stdin_to_stdout(tmp_path: Path, convcli_exe: list[str]) -> None:
    colour = gradient()
    source = save(tmp_path / "in.png", colour)
    done = run(convcli_exe, "apply", str(source), "-k", "identity", "--format", "avif", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert sniff_format((tmp_path / "out").read_bytes()[:64]) == "AVIF"
    piped = run(
        convcli_exe,
        "apply",
        "-",
        "-k",
        "identity",
        "-o",
        "-",
        "--format",
        "avif",
        "--quality",
        "95",
        stdin=avif_bytes(colour, quality=95, subsampling="4:4:4"),
    )
    assert piped.returncode == 0, piped.stderr
    image = pillow_read(piped.stdout)
    assert image.format == "AVIF"
    assert np.abs(np.asarray(image).astype(int) - colour).mean() < 4
    # An AVIF on standard input with no format asked for: an output name without a suffix takes AVIF.
    kept = run(convcli_exe, "apply", "-", "-k", "identity", "-o", str(tmp_path / "kept"), stdin=piped.stdout)
    assert kept.returncode == 0, kept.stderr
    assert pillow_read(tmp_path / "kept").format == "AVIF"


def test_batch_reads_and_writes_avif(tmp_path: Path, convcli_exe: list[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    save(folder / "a.png", gradient())
    (folder / "b.avif").write_bytes(avif_bytes(gradient()[::-1], quality=95))
    done = run(
        convcli_exe,
        "batch",
        str(folder),
        "-k",
        "identity",
        "-o",
        str(tmp_path / "out"),
        "--format",
        "avif",
        "--jobs",
        "1",
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-identity.avif", "b-identity.avif"]
    for name, expected in (("a-identity.avif", gradient()), ("b-identity.avif", gradient()[::-1])):
        back = np.asarray(pillow_read(tmp_path / "out" / name)).astype(int)
        assert np.abs(back - expected).mean() < 4


def test_all_frames_writes_an_avif_sequence(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.roll(gradient(), 8 * k, axis=1)) for k in range(3)]
    source = tmp_path / "in.gif"
    frames[0].save(source, save_all=True, append_images=frames[1:], duration=[40, 80, 120], loop=0)
    filter_file(source, tmp_path / "out.avif", "identity", JobOptions.from_values(all_frames=True))
    data = (tmp_path / "out.avif").read_bytes()
    assert data[8:12] == b"avis"
    image = Image.open(tmp_path / "out.avif")
    assert getattr(image, "n_frames", 1) == 3
    durations = []
    for index in range(3):
        image.seek(index)
        image.load()
        durations.append(image.info["duration"])
    assert durations == [40, 80, 120]


def test_depth_16_to_avif_is_refused_before_decoding(tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes(b"not decoded")
    with pytest.raises(Exception, match="`--depth 16` needs PNG or TIFF output; AVIF holds 8 bits"):
        filter_file(source, tmp_path / "out.avif", "identity", JobOptions.from_values(depth=16))


def test_avif_side_limit_is_checked_from_the_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = save(tmp_path / "wide.png", np.zeros((1, 40000), np.uint8))
    done = cli_run(capsys, "apply", str(source), "-k", "identity", "-o", str(tmp_path / "out.avif"))
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        f"convcli: error: {tmp_path / 'out.avif'}: 40000x1 is too large for AVIF, which holds at most "
        "32768x32768 pixels; write PNG or TIFF instead"
    ]
    assert not (tmp_path / "out.avif").exists()


def _ispe_patched(data: bytes, width: int, height: int) -> bytes:
    """The AVIF ``data`` with the size in its image-spatial-extents (``ispe``) box replaced."""
    at = data.index(b"ispe")
    return data[: at + 8] + struct.pack(">II", width, height) + data[at + 16 :]


def test_avif_pixel_limit_is_checked_before_decoding(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bomb.avif"
    path.write_bytes(_ispe_patched(avif_bytes(gradient()[..., 0]), 15000, 15000))
    done = cli_run(capsys, "apply", str(path), "-k", "box", "-o", str(tmp_path / "out.png"))
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1
    assert "refused: the image declares 225,000,000 pixels, more than the limit" in lines[0]
    assert "nothing was decoded" in lines[0]
    small = tmp_path / "small.avif"
    small.write_bytes(avif_bytes(gradient()))
    done = cli_run(capsys, "apply", str(small), "-k", "box", "--max-pixels", "1000", "-o", str(tmp_path / "out.png"))
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        f"convcli: error: {small}: refused: 64x48 is 3,072 pixels, more than the limit of 1,000 (--max-pixels); "
        "nothing was decoded"
    ]
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (lambda data: data[:-5], "truncated"),
        (lambda data: data[:24] + b"garbage!" * 40, "corrupt"),
    ],
    ids=["cut-in-half", "last-bytes-missing", "garbage-after-ftyp"],
)
def test_damaged_avif_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cut: object, message: str
) -> None:
    assert callable(cut)
    path = tmp_path / "bad.avif"
    path.write_bytes(cut(avif_bytes(gradient())))
    done = cli_run(capsys, "apply", str(path), "-k", "box", "-o", str(tmp_path / "out.png"))
    assert done.returncode == 1
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"convcli: error: {path}: {message}")
    assert "AVIF" in lines[0] or "Truncated data" in lines[0]
    assert not (tmp_path / "out.png").exists()


@pytest.fixture
def no_avif(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow as built without libavif: its public feature check says no."""
    real = features.check

    def check(feature: str) -> bool | None:
        return False if feature == "avif" else real(feature)

    monkeypatch.setattr(features, "check", check)


@pytest.mark.usefixtures("no_avif")
def test_reading_avif_without_support_names_the_cause_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "in.avif"
    path.write_bytes(avif_bytes(gradient()))
    with pytest.raises(ImageError, match=r"in.avif: an AVIF file, and this Pillow .* has no AVIF support.*pip"):
        read_image(path)


@pytest.mark.usefixtures("no_avif")
def test_writing_avif_without_support_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.png"  # never opened: the refusal comes first
    with pytest.raises(OutputError, match=r"cannot write AVIF: this Pillow .* has no AVIF support"):
        filter_file(missing, tmp_path / "out.avif", "box")
    code = convcli.cli.main(["apply", str(missing), "-k", "box", "-o", str(tmp_path / "out.avif")])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert len(err) == 1 and "no AVIF support" in err[0]
    assert not (tmp_path / "out.avif").exists()


@pytest.mark.usefixtures("no_avif")
def test_other_formats_still_work_without_avif_support(tmp_path: Path) -> None:
    source = save(tmp_path / "in.png", gradient())
    filter_file(source, tmp_path / "out.png", "identity")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), gradient())


# -- linear light --------------------------------------------------------------------------------


def iec_decode(values: NDArray[np.floating]) -> NDArray[np.float64]:
    """IEC 61966-2-1 sRGB decoding on 0..255, float64, extended to negatives by odd symmetry."""
    c = np.abs(np.asarray(values, np.float64)) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.asarray(np.sign(values) * linear * 255.0, np.float64)


def iec_encode(values: NDArray[np.floating]) -> NDArray[np.float64]:
    """IEC 61966-2-1 sRGB encoding on 0..255, float64, extended to negatives by odd symmetry."""
    c = np.abs(np.asarray(values, np.float64)) / 255.0
    coded = np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)
    return np.asarray(np.sign(values) * coded * 255.0, np.float64)


def reference(pixels: NDArray[np.uint8], matrices: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Decode, correlate each channel with each matrix in turn (reflect border), encode: float64."""
    values = iec_decode(pixels.astype(np.float64))
    for matrix in matrices:
        if values.ndim == 2:
            values = ndimage.correlate(values, matrix, mode="mirror")
        else:
            values = np.stack(
                [ndimage.correlate(values[..., c], matrix, mode="mirror") for c in range(values.shape[2])], axis=-1
            )
    return iec_encode(values)


def checkerboard(size: int = 16) -> NDArray[np.uint8]:
    return (255 * ((np.arange(size)[:, None] + np.arange(size)[None, :]) % 2)).astype(np.uint8)


def test_the_curves_follow_iec_61966_2_1() -> None:
    grid = np.linspace(-300, 300, 60001)
    assert np.abs(srgb_to_linear(grid.astype(np.float32)) - iec_decode(grid)).max() < 2e-4 * 255
    assert np.abs(linear_to_srgb(grid.astype(np.float32)) - iec_encode(grid)).max() < 2e-4 * 255
    every = np.arange(256, dtype=np.uint8)
    assert srgb_to_linear(every).dtype == np.float32
    assert np.abs(srgb_to_linear(every) - iec_decode(every.astype(np.float64))).max() < 1e-4


def test_the_curves_invert_each_other_after_rounding() -> None:
    every = np.arange(256, dtype=np.uint8)
    assert np.array_equal(np.rint(linear_to_srgb(srgb_to_linear(every))), every)


@pytest.mark.parametrize("linear", [False, True])
def test_black_and_white_average_to_188_in_linear_light(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], linear: bool
) -> None:
    source = save(tmp_path / "board.png", checkerboard())
    out = tmp_path / "out.png"
    flags = ["--linear"] if linear else []
    done = cli_run(capsys, "apply", str(source), "-k", "[0.25 0.25; 0.25 0.25]", *flags, "-o", str(out))
    assert done.returncode == 0, done.stderr
    result = np.asarray(Image.open(out)).astype(int)
    expected = 188 if linear else 128
    assert np.abs(result - expected).max() <= 1
    assert round(float(iec_encode(np.array(iec_decode(np.array(255.0)) / 2)))) == 188


def test_colour_blur_matches_the_float64_reference(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    source = save(tmp_path / "in.png", pixels)
    kernel = load_kernel("gaussian:sigma=1.5")
    filter_file(source, tmp_path / "out.png", [kernel], JobOptions.from_values(linear=True))
    result = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    expected = np.clip(np.rint(reference(pixels, list(kernel.matrices))), 0, 255)
    assert np.abs(result - expected).max() <= 1
    filter_file(source, tmp_path / "plain.png", [kernel])
    plain = np.asarray(Image.open(tmp_path / "plain.png"))
    assert np.abs(plain.astype(int) - expected).max() > 10  # the option changes the result


def test_gray_chain_matches_the_float64_reference(tmp_path: Path, rng: np.random.Generator) -> None:
    pixels = rng.integers(0, 256, (30, 30), dtype=np.uint8)
    source = save(tmp_path / "in.png", pixels)
    kernels = [load_kernel("gaussian:sigma=1"), load_kernel("box")]
    filter_file(source, tmp_path / "out.png", kernels, JobOptions.from_values(linear=True))
    result = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    matrices = [np.asarray(k.matrices[0], np.float64) for k in kernels]
    expected = np.clip(np.rint(reference(pixels, matrices)), 0, 255)
    assert np.abs(result - expected).max() <= 1


@pytest.mark.parametrize("colour", [False, True])
def test_identity_in_linear_light_gives_back_every_value(tmp_path: Path, colour: bool) -> None:
    every = np.arange(256, dtype=np.uint8).reshape(16, 16)
    pixels = np.dstack([every, every.T, every[::-1]]) if colour else every
    source = save(tmp_path / "in.png", pixels)
    filter_file(source, tmp_path / "out.png", "identity", JobOptions.from_values(linear=True))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), pixels)


def test_16_bit_input_keeps_its_precision_in_linear_light(tmp_path: Path) -> None:
    values = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    source = tmp_path / "in.png"
    Image.fromarray(values).save(source)
    filter_file(source, tmp_path / "out.png", "identity", JobOptions.from_values(linear=True, depth=16))
    back = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    assert np.abs(back - values).max() <= 2


def test_signed_responses_keep_their_sign(tmp_path: Path) -> None:
    step = np.zeros((8, 12), np.uint8)
    step[:, 6:] = 200
    kernel = load_kernel("sobel-x")
    response = apply_kernels(step, [kernel], FilterOptions(linear=True))
    expected = reference(step, [np.asarray(kernel.matrices[0], np.float64)])
    assert np.abs(response - expected).max() < 0.05
    reversed_response = apply_kernels(step[:, ::-1], [kernel], FilterOptions(linear=True))
    assert reversed_response.min() < -100  # the falling edge is negative, as large as the rising one
    assert np.allclose(reversed_response[:, ::-1], -response, atol=1e-3)


def test_alpha_is_not_decoded(tmp_path: Path) -> None:
    colour = gradient()
    alpha = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (48, 1))
    source = save(tmp_path / "in.png", np.dstack([colour, alpha]), "RGBA")
    filter_file(source, tmp_path / "out.png", "identity", JobOptions.from_values(linear=True, alpha="carry"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), np.dstack([colour, alpha]))
    # Premultiplied (auto, for identity) in linear light: every visible pixel comes back exactly;
    # a fully transparent one keeps no colour.
    filter_file(source, tmp_path / "pm.png", "identity", JobOptions.from_values(linear=True))
    written = np.asarray(Image.open(tmp_path / "pm.png"))
    visible = alpha > 0
    assert np.array_equal(written[..., 3], alpha)
    assert np.array_equal(written[..., :3][visible], colour[visible])
    assert not written[..., :3][~visible].any()


def test_linear_is_off_by_default_and_reaches_batch(tmp_path: Path, convcli_exe: list[str]) -> None:
    assert JobOptions().filter.linear is False
    folder = tmp_path / "in"
    folder.mkdir()
    save(folder / "board.png", checkerboard())
    done = run(
        convcli_exe, "batch", str(folder), "-k", "box:size=2", "--linear", "-o", str(tmp_path / "out"), "--jobs", "1"
    )
    assert done.returncode == 0, done.stderr
    result = np.asarray(Image.open(tmp_path / "out" / "board-box-size2.png")).astype(int)
    assert np.abs(result - 188).max() <= 1


def test_avif_bomb_on_stdin_is_refused_from_its_header(convcli_exe: list[str]) -> None:
    bomb = _ispe_patched(avif_bytes(gradient()[..., 0]), 15000, 15000)
    done = run(
        convcli_exe,
        "apply",
        "-",
        "-k",
        "box",
        "-o",
        "-",
        "--max-pixels",
        "1000000",
        stdin=bomb + b"\x00" * (4 * 1024 * 1024),
    )
    assert done.returncode == 1
    assert done.stdout == b""
    assert done.stderr.decode().splitlines() == [
        "convcli: error: <stdin>: refused: 15000x15000 is 225,000,000 pixels, more than the limit of 1,000,000 "
        "(--max-pixels); nothing was decoded"
    ]


def test_memory_estimate_counts_libavif_buffers() -> None:
    from convcli.io import ImageHeader
    from convcli.memory import estimate_memory

    kernels = [load_kernel("box")]
    png = estimate_memory(ImageHeader("x", "PNG", "RGB", 1000, 1000, 1), kernels)
    avif = estimate_memory(ImageHeader("x", "AVIF", "RGB", 1000, 1000, 1), kernels)
    assert avif - png >= 8 * 1000 * 1000


@pytest.mark.usefixtures("no_avif")
def test_batch_to_avif_without_support_is_refused_before_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    save(folder / "a.png", gradient())
    out = tmp_path / "out"
    code = convcli.cli.main(["batch", str(folder), "-k", "box", "-o", str(out), "--format", "avif", "--jobs", "1"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert len(err) == 1 and "cannot write AVIF: this Pillow" in err[0], err
    assert not out.exists()


def test_constant_border_value_is_a_pixel_value_in_linear_light() -> None:
    flat = np.full((6, 6), 128, np.uint8)
    options = FilterOptions(linear=True, border="constant", border_value=128.0)
    result = apply_kernels(flat, ["box"], options)
    assert np.abs(result - 128).max() < 1e-3  # the border is code 128 too: nothing to mix


def test_a_border_value_too_large_to_decode_is_refused_up_front(tmp_path: Path) -> None:
    missing = tmp_path / "never-read.png"
    job = JobOptions.from_values(linear=True, border="constant", border_value=1e30)
    with pytest.raises(ParameterError, match=r"`border_value` 1e\+30 is beyond float32's range once decoded"):
        filter_file(missing, tmp_path / "out.png", "box", job)


def test_ctrl_c_during_an_avif_encode_is_prompt(rng: np.random.Generator) -> None:
    # libavif encodes a frame in one call of a few seconds here; Python's signal handlers run
    # only between calls, so without care Ctrl-C would wait for the whole encode.
    import signal
    import time

    from convcli.io import encode_frames

    pixels = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    start = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            encode_frames([(pixels, None)], "AVIF")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - start < 1.0


@pytest.mark.usefixtures("no_avif")
def test_avif_on_stdin_without_support_is_refused_from_its_first_bytes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    consumed: list[int] = []

    class Endless(io.RawIOBase):
        """An AVIF header, then 8 MiB of zeros: only the first bytes may be read."""

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            if sum(consumed) >= 8 * 1024 * 1024:
                return 0  # a bound, so that reading it all fails the test rather than hanging it
            head = avif_bytes(gradient())[:64] if not consumed else b"\x00" * len(buffer)
            chunk = head[: len(buffer)]
            buffer[: len(chunk)] = chunk
            consumed.append(len(chunk))
            return len(chunk)

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(Endless())))
    code = convcli.cli.main(["apply", "-", "-k", "box", "-o", "-", "--max-pixels", "0"])
    err = capsys.readouterr().err.splitlines()
    assert code == 1
    assert len(err) == 1 and "<stdin>: an AVIF file, and this Pillow" in err[0], err
    assert sum(consumed) < 1024 * 1024


def test_mutated_avif_files_fail_with_one_convcli_error(rng: np.random.Generator) -> None:
    import warnings

    from convcli.errors import ConvcliError
    from convcli.io import ImageWarning, decode_bytes

    seeds = [
        avif_bytes(gradient(12, 16)),
        avif_bytes(np.dstack([gradient(12, 16), gradient(12, 16)[..., :1]]), "RGBA"),
    ]
    frames = [Image.fromarray(np.roll(gradient(12, 16), k, axis=1)) for k in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "AVIF", save_all=True, append_images=frames[1:], duration=50)
    seeds.append(buffer.getvalue())
    outcomes = {"decoded": 0, "refused": 0}
    for _ in range(300):
        data = bytearray(seeds[int(rng.integers(len(seeds)))])
        for _ in range(int(rng.integers(1, 5))):
            at = int(rng.integers(len(data)))
            kind = int(rng.integers(3))
            if kind == 0:
                data[at] ^= 1 << int(rng.integers(8))
            elif kind == 1:
                del data[at:]
                data += b"\x00" if not data else b""
            else:
                data[at : at + 4] = rng.integers(0, 256, 4, dtype=np.uint8).tobytes()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImageWarning)
            try:
                picture = decode_bytes(bytes(data), "fuzz.avif", max_pixels=4_000_000)
            except ConvcliError as exc:  # the only failure allowed: one line naming the input
                message = str(exc)
            else:
                assert picture.pixels.ndim in (2, 3)
                outcomes["decoded"] += 1
                continue
        assert message.startswith("fuzz.avif: ") and "\n" not in message
        outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and outcomes["decoded"] > 0


def test_run_interruptibly_returns_raises_and_yields_to_signals() -> None:
    import signal
    import time
    import zlib

    from convcli.io.native import run_interruptibly

    assert run_interruptibly(lambda: 6 * 7, "answer") == 42
    with pytest.raises(ZeroDivisionError):
        run_interruptibly(lambda: 1 / 0, "divide")

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    finished = threading.Event()

    # Two bits of entropy a byte at zlib's slowest level: seconds in one call that releases the
    # GIL, as libavif's does, and that no signal interrupts.
    data = np.random.default_rng(1).integers(0, 4, 3_000_000, dtype=np.uint8).tobytes()

    def long_native_call() -> None:
        zlib.compress(data, 9)
        finished.set()

    previous = signal.signal(signal.SIGALRM, interrupt)
    start = time.perf_counter()
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        with pytest.raises(KeyboardInterrupt):
            run_interruptibly(long_native_call, "long")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - start < 0.6
    assert not finished.is_set()


def test_an_avif_sequence_is_read_frame_by_frame(tmp_path: Path) -> None:
    from convcli.io import read_frames

    frames = [Image.fromarray(np.full((20, 30, 3), 60 * k, np.uint8)) for k in range(3)]
    frames[0].save(tmp_path / "anim.avif", save_all=True, append_images=frames[1:], duration=[40, 80, 120])
    pictures = read_frames(tmp_path / "anim.avif")
    assert [p.duration for p in pictures] == [40, 80, 120]
    assert [round(float(p.pixels.mean())) for p in pictures] == [0, 60, 120]
    assert read_header(tmp_path / "anim.avif").frames == 3
