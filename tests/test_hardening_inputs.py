"""What convcli reads, under attack: special files, endless standard input, hostile kernel files
and specs, values beyond float32, caps on sets and frames, and the memory estimate against the
memory really used."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import textwrap
import threading
import tracemalloc
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convcli
from convcli.cli import main
from convcli.errors import KernelError, LimitError, ParameterError
from convcli.io import read_frames, read_header, read_image
from convcli.kernels import load_kernel


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[str]]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err.splitlines()


def _run_bounded(capsys: pytest.CaptureFixture[str], *args: str | Path, timeout: float = 20) -> tuple[int, list[str]]:
    """:func:`_run` in a daemon thread: a call that blocks (on a FIFO) fails the test instead of hanging it."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(main([str(a) for a in args])), daemon=True)
    thread.start()
    thread.join(timeout)
    assert result, f"convcli {' '.join(map(str, args))} still running after {timeout} s"
    return result[0], capsys.readouterr().err.splitlines()


def _kernel_file(path: Path, body: str) -> Path:
    path.write_text('name = "k"\ndescription = "d"\n' + textwrap.dedent(body))
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR: the start of an 8-bit gray PNG of that size."""
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "small.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path)
    return path


# -- special files --------------------------------------------------------------------------------


def _limited_run(command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run with 2 GiB of address space and a timeout: an endless read fails, never fills the machine."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, preexec_fn=limit)


@pytest.mark.parametrize("link", [False, True], ids=["device", "link-to-device"])
def test_kernel_file_device_is_refused(
    link: bool, image: Path, tmp_path: Path, convcli_exe: list[str]
) -> None:
    kernel = "/dev/zero"
    if link:
        (tmp_path / "zero.toml").symlink_to("/dev/zero")
        kernel = str(tmp_path / "zero.toml")
    result = _limited_run([*convcli_exe, "apply", str(image), "-k", kernel, "-o", str(tmp_path / "o.png")])
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"convcli: error: {kernel}: is a character device, not a kernel file"]


def test_kernel_file_fifo_is_refused(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    code, lines = _run_bounded(capsys, "apply", image, "-k", fifo, "-o", tmp_path / "o.png")
    assert code == 2
    assert lines == [f"convcli: error: {fifo}: is a FIFO (named pipe), not a kernel file"]


def test_input_image_fifo_is_refused(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    code, lines = _run_bounded(capsys, "apply", fifo, "-k", "box", "-o", tmp_path / "o.png")
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith(f"convcli: error: {fifo}: is a FIFO (named pipe), not an image file")
    assert not (tmp_path / "o.png").exists()


def test_input_image_device_is_refused() -> None:
    with pytest.raises(convcli.errors.ImageError, match=r"/dev/zero: is a character device, not an image file"):
        read_image("/dev/zero")


def test_kernel_path_with_fifo_and_device(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "kernels"
    folder.mkdir()
    os.mkfifo(folder / "blocked.toml")
    _kernel_file(folder / "mine.toml", "matrix = [[1]]\n")
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", os.pathsep.join(["/dev/zero", str(folder)]))
    code, lines = _run_bounded(capsys, "kernels", "list", "--json")
    assert code == 0
    assert lines == [
        f"convcli: warning: kernel 'blocked' left out: {folder / 'blocked.toml'}: is a FIFO (named pipe), "
        "not a kernel file"
    ]
    code, lines = _run_bounded(capsys, "apply", image, "-k", "mine", "-o", tmp_path / "o.png")
    assert code == 0, lines


# -- standard input -------------------------------------------------------------------------------


def _feed(command: list[str], head: bytes, total: int) -> tuple[int, int, str]:
    """Run ``command`` with ``head`` and then zeros, up to ``total`` bytes, on its standard input.

    Returns the exit status, the bytes it took before it stopped reading, and its stderr.
    """
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stdin is not None and process.stderr is not None
    sent = 0
    try:
        process.stdin.write(head)
        sent = len(head)
        block = bytes(1 << 16)
        while sent < total:
            process.stdin.write(block)
            sent += len(block)
        process.stdin.close()
    except BrokenPipeError:
        pass
    status = process.wait(timeout=60)
    return status, sent, process.stderr.read().decode()


def test_stdin_that_is_no_image_is_not_read(convcli_exe: list[str], tmp_path: Path) -> None:
    status, sent, err = _feed([*convcli_exe, "apply", "-", "-k", "box", "-o", str(tmp_path / "o.png")], b"", 256 << 20)
    assert status == 1
    assert err.startswith("convcli: error: <stdin>: not an image") and len(err.splitlines()) == 1
    assert sent < 8 << 20  # stopped after the first bytes (plus what the pipe buffers)


@pytest.mark.parametrize(
    "options, header, message",
    [
        (["--max-pixels", "1000000"], _png_header(50000, 50000), "more than the limit of 1,000,000 (--max-pixels)"),
        (["--max-memory", "10M"], _png_header(4000, 4000), "of working memory, more than the 10.0 MiB of --max-memory"),
    ],
    ids=["max-pixels", "max-memory"],
)
def test_stdin_limits_are_checked_from_the_header(
    options: list[str], header: bytes, message: str, convcli_exe: list[str], tmp_path: Path
) -> None:
    command = [*convcli_exe, "apply", "-", "-k", "box", "-o", str(tmp_path / "o.png"), *options]
    status, sent, err = _feed(command, header, 256 << 20)
    assert status == 1
    assert len(err.splitlines()) == 1 and message in err
    assert sent < 8 << 20


def test_stdin_is_read_with_a_bound(convcli_exe: list[str], tmp_path: Path) -> None:
    command = [*convcli_exe, "apply", "-", "-k", "box", "-o", str(tmp_path / "o.png"), "--max-pixels", "1000"]
    status, sent, err = _feed(command, _png_header(8, 8), 256 << 20)
    assert status == 1
    assert "standard input holds more than 16,785,216 bytes" in err and len(err.splitlines()) == 1
    assert sent < 32 << 20


def test_stdin_images_still_read(image: Path, convcli_exe: list[str]) -> None:
    result = subprocess.run(
        [*convcli_exe, "apply", "-", "-k", "box", "-o", "-"], input=image.read_bytes(), capture_output=True,
        timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"\x89PNG")


# -- the memory estimate --------------------------------------------------------------------------

_MEASURE = """
import json, sys
from pathlib import Path
from convcli.io import read_header
from convcli.kernels import load_kernel
from convcli.memory import estimate_memory
from convcli.options import JobOptions
from convcli.pipeline import filter_file

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)

path, out, options, *specs = sys.argv[1:]
job = JobOptions.from_values(threads=1, **json.loads(options))
kernels = [load_kernel(spec) for spec in specs]
estimate = estimate_memory(read_header(path), kernels, job)
# getrusage's ru_maxrss would carry the parent's peak across fork and exec; VmHWM is this
# process's own, and writing 5 to clear_refs resets it to the current size.
Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS")
filter_file(path, out, kernels, job)
print(json.dumps({"estimate": estimate, "measured": status("VmHWM") - before}))
"""


def test_memory_estimate_counts_the_channels_of_mixing_kernels(tmp_path: Path) -> None:
    path = tmp_path / "rgb.png"
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (400, 400, 3), dtype=np.uint8)).save(path)
    specs = ["random:out=64", "random:in=64,out=3"]
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(tmp_path / "o.png"), "{}", *specs],
        capture_output=True, text=True, timeout=120, check=True,
    )
    figures = json.loads(result.stdout)
    # The peak above the baseline (92 MB; the estimate says 110 MB) is within the estimate, and
    # the estimate not far above it.
    assert figures["measured"] <= figures["estimate"] <= 2 * figures["measured"], figures


def test_memory_estimate_counts_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "animated.png"
    rng = np.random.default_rng(4)
    frames = [Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)) for _ in range(30)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(tmp_path / "o.png"), '{"all_frames": true}', "sobel"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    figures = json.loads(result.stdout)
    # Every decoded frame and every result is held until the frames are encoded (48 MB measured).
    assert figures["measured"] <= figures["estimate"] <= 2 * figures["measured"], figures


def test_memory_limit_refuses_a_wide_chain(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (2000, 2000)).save(path)
    code, lines = _run(
        capsys, "apply", path, "-k", "random:out=64", "-k", "random:in=64,out=3", "--max-memory", "400M",
        "-o", tmp_path / "o.png",
    )
    assert code == 1
    assert len(lines) == 1 and "more than the 400.0 MiB of --max-memory" in lines[0]


def test_random_family_refuses_huge_weights_before_drawing_them() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(KernelError, match=r"out\*in\*size\*size is 266,342,400 taps, more than the limit"):
            load_kernel("random:in=64,out=64,size=255")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_window_from_a_huge_sigma_is_refused_before_it_is_drawn() -> None:
    with pytest.raises(KernelError, match=r"gaussian: kernel would be 385x385 \(radius ceil\(3\*sigma\) = 192\)"):
        load_kernel("gaussian:sigma=64")


# -- caps on sets and frames ----------------------------------------------------------------------


def test_set_of_too_many_matrices_is_refused(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kernel = _kernel_file(tmp_path / "many.toml", "combine = 'sum'\nmatrices = [" + ",".join(["[[1]]"] * 300) + "]\n")
    code, lines = _run(capsys, "apply", image, "-k", kernel, "-o", tmp_path / "o.png")
    assert code == 2
    assert lines == [
        f"convcli: error: {kernel}: `matrices` has 300 entries, more than the limit of 256 in a kernel set"
    ]


def test_set_of_too_many_members_is_refused(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kernel = _kernel_file(tmp_path / "many.toml", "combine = 'sum'\nmembers = [" + ", ".join(['"box"'] * 300) + "]\n")
    code, lines = _run(capsys, "apply", image, "-k", kernel, "-o", tmp_path / "o.png")
    assert code == 2
    assert lines == [
        f"convcli: error: {kernel}: `members` has 300 entries, more than the limit of 256 in a kernel set"
    ]


def test_sets_up_to_the_cap_load(tmp_path: Path) -> None:
    kernel = _kernel_file(tmp_path / "256.toml", "combine = 'max'\nmembers = [" + ", ".join(['"BOX"'] * 256) + "]\n")
    assert len(load_kernel(str(kernel)).matrices) == 256


@pytest.fixture(scope="module")
def long_gif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("frames") / "long.gif"
    frames = [Image.new("L", (2, 2), i % 250) for i in range(1001)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=10)
    return path


def test_too_many_frames_are_refused_before_decoding(long_gif: Path, tmp_path: Path) -> None:
    with pytest.raises(LimitError, match=r"long\.gif: refused: more than 1,000 frames"):
        read_frames(long_gif)
    assert read_header(long_gif).frames == 1001  # counted up to one past the cap


def test_too_many_frames_first_frame_still_filtered(
    long_gif: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(capsys, "apply", long_gif, "-k", "box", "-o", tmp_path / "o.png")
    assert code == 0
    assert lines[0] == (
        f"convcli: warning: {long_gif}: has more than 1,000 frames; only the first is filtered "
        "(--all-frames filters every one)"
    )
    code, lines = _run(capsys, "apply", long_gif, "-k", "box", "--all-frames", "-o", tmp_path / "all.gif")
    assert code == 1 and len(lines) == 1 and "more than 1,000 frames" in lines[0]


def test_tiff_pages_are_counted_up_to_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.io import read as read_module

    monkeypatch.setattr(read_module, "MAX_FRAMES", 3)
    path = tmp_path / "pages.tif"
    pages = [Image.new("L", (2, 2), i) for i in range(6)]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    assert read_header(path).frames == 4
    with pytest.raises(LimitError, match="more than 3 frames"):
        read_frames(path)
    monkeypatch.setattr(read_module, "MAX_FRAMES", 6)
    assert [float(p.pixels[0, 0]) for p in read_frames(path)] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


# -- huge integers --------------------------------------------------------------------------------

BIG = "1" + "0" * 450
HUGE = "1" * 5000


@pytest.mark.parametrize(
    "body, key",
    [
        (f"matrix = [[1, {BIG}]]\n", "`matrix` row 1, column 2"),
        (f"matrix = [[1]]\nscale = {BIG}\n", "`scale`"),
        (f"matrix = [[1]]\noffset = -{BIG}\n", "`offset`"),
        (f"family = 'gaussian'\n[params]\nsigma = {BIG}\n", "parameter `sigma`"),
        (f"family = 'box'\n[params]\nsize = {BIG}\n", "parameter `size`"),
        (f"matrix = [[{HUGE}]]\n", "line 3 (`matrix`): an integer of 5000 digits"),
        (f"family = 'box'\n[params]\nsize = {HUGE}\n", "line 5 (`size`): an integer of 5000 digits"),
    ],
    ids=["matrix", "scale", "offset", "float-param", "int-param", "5000-digits", "5000-digits-param"],
)
def test_huge_integers_in_kernel_files(
    body: str, key: str, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kernel = _kernel_file(tmp_path / "big.toml", body)
    code, lines = _run(capsys, "apply", image, "-k", kernel, "-o", tmp_path / "o.png")
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith(f"convcli: error: {kernel}: ")
    assert key in lines[0]
    assert len(lines[0]) < 300


def test_kernels_list_reports_a_file_of_huge_integers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _kernel_file(tmp_path / "bad.toml", f"matrix = [[{BIG}]]\n")
    _kernel_file(tmp_path / "worse.toml", f"matrix = [[{HUGE}]]\n")
    _kernel_file(tmp_path / "good.toml", "matrix = [[2]]\n")
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", str(tmp_path))
    code = main(["kernels", "list", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    names = [row["name"] for row in json.loads(captured.out)]
    assert "good" in names and "sobel" in names and "bad" not in names
    warned = captured.err.splitlines()
    assert len(warned) == 2
    assert warned[0].startswith("convcli: warning: kernel 'bad' left out: ") and "`matrix`" in warned[0]
    assert warned[1].startswith("convcli: warning: kernel 'worse' left out: ") and "5000 digits" in warned[1]


# -- float32 overflow -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, message",
    [
        ("matrix = [[1e39]]\n", "`matrix` row 1, column 1 is 1e+39, beyond float32's range"),
        ("matrix = [[1e30]]\nscale = 1e10\n", "`matrix` has taps up to 1e+40 after scaling"),
        ("matrix = [[1e36, 1e36]]\n", "`matrix` can give responses up to 5.1e+38 on 0..255 pixels"),
        ("matrices = [[[1e17]], [[1e17]]]\ncombine = 'magnitude'\n", "`matrices` can give responses"),
        ("matrix = [[1]]\noffset = 1e300\n", "`offset` is 1e+300, beyond float32's range"),
        ("weights = [[[[1e37]]]]\nbias = [1e37]\n", "`weights` can give responses"),
        ("family = 'gaussian'\nscale = 1e300\n", "`scale` is 1e+300"),
        ("matrix = [[1]]\ndivisor = 1e-320\n", "`divisor`"),
    ],
    ids=["tap", "scale-times-tap", "sum", "magnitude", "offset", "weights", "family-scale", "tiny-divisor"],
)
def test_kernel_values_beyond_float32_are_refused(
    body: str, message: str, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kernel = _kernel_file(tmp_path / "big.toml", body)
    code, lines = _run(capsys, "apply", image, "-k", kernel, "-o", tmp_path / "o.png")
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith(f"convcli: error: {kernel}: ") and message in lines[0]
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("flag", ["--scale", "--offset", "--border-value"])
@pytest.mark.parametrize("value", ["1e300", "-1e39", "inf", "nan"])
@pytest.mark.parametrize("command", ["apply", "batch"])
def test_options_beyond_float32_are_usage_errors(
    command: str, flag: str, value: str, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    target: list[str | Path] = ["-o", out / "o.png"] if command == "apply" else ["-o", out]
    code, lines = _run(capsys, command, image, "-k", "box", f"{flag}={value}", *target)
    assert code == 2
    assert len(lines) == 1 and f"invalid value for {flag}: must be a finite number within float32's range" in lines[0]
    assert not out.exists()


def test_overflowing_chains_warn_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gray16 = tmp_path / "g16.png"
    Image.fromarray(np.full((16, 16), 60000, dtype=np.uint16)).save(gray16)
    rgb = tmp_path / "rgb.png"
    Image.new("RGB", (16, 16), (200, 10, 90)).save(rgb)
    big = ["-k", "[[1e35]]", "-k", "[[1e35]]"]
    offset = _kernel_file(tmp_path / "offset.toml", "matrix = [[1]]\noffset = 3e38\n")
    runs: list[list[str | Path]] = [
        [gray16, *big, "--depth", "16"],
        [gray16, *big, "-m", "normalize"],
        [gray16, *big, "-k", "sobel"],
        [rgb, "-k", "random:out=3", *big, "-m", "abs"],
        [rgb, "-k", "[[-1e35]]", "-k", "[[1e35]]", "--scale", "3e38", "--offset", "3e38"],
        [rgb, "-k", "box", "--border", "constant", "--border-value", "3e38", "--scale", "3e38"],
        [rgb, "-k", "[[1e36]]", "-k", offset, "-k", "box"],
        [rgb, "-k", "[[1e36]]", "-k", offset, "-m", "normalize"],
    ]
    for index, args in enumerate(runs):
        out = tmp_path / f"o{index}.png"
        code, lines = _run(capsys, "apply", *args, "-o", out)
        assert code == 0 and len(lines) == 1 and lines[0].startswith("wrote "), (args, lines)
        assert out.exists()
    # Beyond float32 in clip mode is beyond 255: white, not black.
    assert np.asarray(Image.open(tmp_path / "o0.png")).min() == 65535


def test_core_raises_no_float_warnings() -> None:
    image = np.full((64, 64), 255, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = convcli.convolve(image, np.full((5, 5), 3e37), border="constant", border_value=3e38)
        assert np.isinf(out).all()
        assert convcli.map_to_uint8(out, "normalize").max() == 255
        assert (convcli.apply_kernels(image, ["[[1e36]]", "sobel"]) >= 0).all()


# -- seeds ----------------------------------------------------------------------------------------


def test_seeds_are_parsed_exactly() -> None:
    assert load_kernel("random:seed=9223372036854775807").params["seed"] == 2**63 - 1
    a = load_kernel("random:seed=9007199254740993").weights
    b = load_kernel("random:seed=9007199254740992").weights
    assert a is not None and b is not None and not np.array_equal(a, b)
    assert load_kernel("random:seed=1e3").params["seed"] == 1000
    with pytest.raises(KernelError, match=r"must be in \[0, 9223372036854775807\], got 9223372036854775808"):
        load_kernel("random:seed=9223372036854775808")


# -- complex kernels ------------------------------------------------------------------------------


def test_complex_kernels_are_refused() -> None:
    image = np.ones((4, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ParameterError, match="`kernel` must be real, got complex numbers"):
            convcli.convolve(image, np.array([[1 + 2j]]))
        from convcli.core.mixing import mix_convolve

        with pytest.raises(ParameterError, match="`weights` must be real"):
            mix_convolve(image, np.ones((1, 1, 1, 1), dtype=complex))
        with pytest.raises(ParameterError, match="`bias` must be real"):
            mix_convolve(image, np.ones((1, 1, 1, 1)), [1j])
        with pytest.raises(ParameterError, match="`border_value` must be a real number"):
            convcli.convolve(image, [[1]], border="constant", border_value=1j)  # type: ignore[arg-type]


# -- kernel names ignore case ---------------------------------------------------------------------


def test_kernel_names_ignore_case(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for spec in ("SOBEL", "Sobel-X", "GAUSSIAN:SIGMA=2"):
        folder = tmp_path / spec.replace(":", "_")
        folder.mkdir()
        source = folder / "in.png"
        source.write_bytes(image.read_bytes())
        code, lines = _run(capsys, "apply", source, "-k", spec)
        assert code == 0, lines
    assert (tmp_path / "SOBEL" / "in-sobel.png").exists()
    assert (tmp_path / "Sobel-X" / "in-sobel-x.png").exists()
    assert (tmp_path / "GAUSSIAN_SIGMA=2" / "in-gaussian-sigma2.png").exists()
    assert load_kernel("Laplacian").name == "laplacian"
    code, lines = _run(capsys, "kernels", "show", "SOBEL-Y")
    assert code == 0
    code, lines = _run(capsys, "apply", image, "-k", "SOBLE-X", "-o", tmp_path / "o.png")
    assert code == 2 and "did you mean sobel-x" in lines[0]


def test_members_and_families_ignore_case(tmp_path: Path) -> None:
    kernel = _kernel_file(tmp_path / "set.toml", "combine = 'magnitude'\nmembers = ['Sobel-X', 'SOBEL-Y']\n")
    np.testing.assert_array_equal(load_kernel(str(kernel)).matrices[0], load_kernel("sobel-x").matrix)
    family = _kernel_file(tmp_path / "fam.toml", "family = 'Gaussian'\n")
    assert load_kernel(str(family)).family == "gaussian"


def test_batch_takes_names_in_any_case(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(capsys, "batch", image, "-k", "BOX", "-o", tmp_path / "out", "-j", "1", "-q")
    assert code == 0, lines
    assert (tmp_path / "out" / "small-box.png").exists()


# -- inline kernels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec", ["[[-1,0,1],[-2,0,2],[-1,0,1]]", "[-1,0,1; -2,0,2; -1,0,1]", "[-1 0 1; -2 0 2; -1 0 1]"]
)
def test_inline_matrix(spec: str, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    source = folder / "in.png"
    source.write_bytes(image.read_bytes())
    code, lines = _run(capsys, "apply", source, "-k", spec)
    assert code == 0, lines
    code, lines = _run(capsys, "apply", source, "-k", "sobel-x", "-o", folder / "ref.png")
    assert code == 0
    np.testing.assert_array_equal(
        np.asarray(Image.open(folder / "in-inline.png")), np.asarray(Image.open(folder / "ref.png"))
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("[[1,2],[3]]", "`matrix` is ragged: row 2 has 1 values, row 1 has 2"),
        ("[1, 2; 3]", "`matrix` is ragged"),
        ("[[1e39]]", "`matrix` row 1, column 1 is 1e+39, beyond float32's range"),
        ("[[nan]]", "must be finite"),
        ("[[1, 'a']]", "must be a number"),
        ("[1,,2]", "a number missing"),
        ("[[1,2]", "not an inline matrix"),
        ("[" + "; ".join(["1"] * 300) + "]", "more than the 255-row limit"),
        ("[[true]]", "must be a number, got True"),
    ],
)
def test_inline_matrix_is_validated_as_a_file(
    spec: str, message: str, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(capsys, "apply", image, "-k", spec, "-o", tmp_path / "o.png")
    assert code == 2
    assert len(lines) == 1 and message in lines[0], lines


# -- messages -------------------------------------------------------------------------------------


def test_parameters_for_a_plain_kernel_name_no_path(
    image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(capsys, "apply", image, "-k", "laplacian:size=5", "-o", tmp_path / "o.png")
    assert code == 2
    assert lines[0].startswith("convcli: error: kernel 'laplacian:size=5': 'laplacian' takes no parameters (got size)")
    assert "/" not in lines[0] and ".toml" not in lines[0]


@pytest.mark.parametrize("spec", ["sobel,gaussian", "gaussian:sigma=2,sobel"])
def test_comma_separated_kernels_say_to_repeat_k(
    spec: str, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(capsys, "apply", image, "-k", spec, "-o", tmp_path / "o.png")
    assert code == 2
    assert len(lines) == 1 and "repeat" in lines[0]


# -- Pillow's bomb guard --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "read",
    [
        read_header,
        lambda path: read_image(path, max_pixels=None),
        lambda path: read_frames(path, max_pixels=10**12),
    ],
    ids=["read_header", "read_image", "read_frames"],
)
def test_pillow_bomb_guard_is_left_as_found(read: Callable[[Path], object], image: Path) -> None:
    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 89_478_485
        read(image)
        assert Image.MAX_IMAGE_PIXELS == 89_478_485
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def test_pillow_bomb_guard_in_a_fresh_program(image: Path) -> None:
    code = (
        "import sys, convcli.io\nfrom PIL import Image\nbefore = Image.MAX_IMAGE_PIXELS\n"
        "convcli.io.read_header(sys.argv[1]); convcli.io.read_image(sys.argv[1], max_pixels=None)\n"
        "print(before, Image.MAX_IMAGE_PIXELS)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(image)], capture_output=True, text=True, check=True)
    before, after = result.stdout.split()
    assert before == after != "None"


# -- the same class nearby ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, message",
    [
        ("sob\x1bel", "a kernel name holds no control characters"),
        ("sobel\n", ""),
        ("gaussian:sigma=1\x07", "control characters"),
        ("sob\udcffel", "not valid text"),
        ("gaussian:sigma=1e999", "must be finite"),
        ("box:size=1e999", "must be an integer"),
        ("box:size=" + "9" * 5000, "must be an integer"),
        ("gaussian:sigma=" + "9" * 5000, "must be finite"),
        ("random:out=1e3", "must be in [1, 64]"),
    ],
)
def test_hostile_specs(
    spec: str, message: str, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(capsys, "apply", image, "-k", spec, "-o", tmp_path / "o.png")
    if spec == "sobel\n":  # surrounding white space is no part of a name
        assert code == 0
        return
    assert code == 2, lines
    assert len(lines) == 1 and message in lines[0]
    assert "\x1b" not in lines[0] and "\x07" not in lines[0]


def test_huge_exponent_in_a_kernel_file(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kernel = _kernel_file(tmp_path / "e.toml", "family = 'gaussian'\n[params]\nsigma = 1e999\n")
    code, lines = _run(capsys, "apply", image, "-k", kernel, "-o", tmp_path / "o.png")
    assert code == 2 and len(lines) == 1 and "parameter `sigma` must be finite" in lines[0]


def test_kernel_file_bounded_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.kernels import files

    monkeypatch.setattr(files, "MAX_KERNEL_FILE_BYTES", 64)
    kernel = _kernel_file(tmp_path / "long.toml", "matrix = [[1]]\n# " + "x" * 100 + "\n")
    with pytest.raises(KernelError, match="larger than the 64-byte limit"):
        load_kernel(str(kernel))


def test_pillow_bomb_guard_after_reads_on_threads(image: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    saved = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 89_478_485
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: read_image(image, max_pixels=None), range(32)))
        assert Image.MAX_IMAGE_PIXELS == 89_478_485
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def test_paths_with_a_nul_byte() -> None:
    with pytest.raises(KernelError, match="cannot read: embedded null byte"):
        load_kernel("a\x00.toml")
    with pytest.raises(convcli.errors.ImageError, match="cannot open: embedded null byte"):
        read_image("a\x00.png")


@pytest.mark.parametrize("suffix", ["gif", "bmp", "jpg", "png", "tif"])
def test_stdin_early_check_refuses_no_more_than_a_file(
    suffix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    from types import SimpleNamespace

    from convcli.memory import estimate_memory
    from convcli.options import JobOptions
    from convcli.pipeline import filter_file

    path = tmp_path / f"gray.{suffix}"
    Image.fromarray(np.random.default_rng(5).integers(0, 256, (300, 200), dtype=np.uint8)).save(path)
    limit = estimate_memory(read_header(path), [load_kernel("box")]) + 1024
    monkeypatch.setattr(sys, "stdin", SimpleNamespace(buffer=io.BytesIO(path.read_bytes())))
    result = filter_file("-", tmp_path / "o.png", ["box"], JobOptions.from_values(max_memory=limit))
    assert result.output_shape == (300, 200)


def test_core_refuses_taps_beyond_float32_and_clips_pixels_beyond_it() -> None:
    from convcli.core.bands import filter_banded
    from convcli.core.mixing import mix_convolve

    image = np.full((6, 6), 1e39)  # float64 pixels beyond float32: infinity once filtered
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ParameterError, match="`kernel` must hold numbers within float32's range"):
            convcli.convolve(np.ones((4, 4)), [[1e39]])
        with pytest.raises(ParameterError, match="`weights` must hold numbers within float32's range"):
            mix_convolve(np.ones((4, 4)), np.full((1, 1, 1, 1), 1e39))
        with pytest.raises(ParameterError, match="`bias` must hold finite numbers within float32's range"):
            mix_convolve(np.ones((4, 4)), np.ones((1, 1, 1, 1)), [1e39])
        assert np.isinf(convcli.convolve(image, [[1.0]])).all()
        assert np.isinf(filter_banded(image, [np.ones((3, 3))])).all()
        assert (convcli.map_to_uint8(convcli.apply_kernels(image, "box")) == 255).all()


def test_batch_input_fifo_fails_alone(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    code, lines = _run_bounded(capsys, "batch", fifo, image, "-k", "box", "-o", tmp_path / "out", "-j", "1")
    assert code == 1
    assert lines[0].startswith(f"convcli: error: {fifo}: is a FIFO (named pipe), not an image file")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["small-box.png"]
