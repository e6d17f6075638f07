"""The command line end to end, in subprocesses, including real shell pipes."""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convcli
from convcli.pipeline import apply_kernels

from conftest import SAMPLES


def run(
    cmd: list[str], *args: str, cwd: Path | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*cmd, *args], capture_output=True, cwd=cwd, input=stdin, timeout=120, check=False)


def load(path: Path | bytes) -> np.ndarray:
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    return np.asarray(Image.open(source))


def test_version(convcli_exe: list[str]) -> None:
    for cmd in (convcli_exe, [sys.executable, "-m", "convcli"]):
        result = run(cmd, "--version")
        assert result.returncode == 0
        assert result.stdout.decode().strip() == f"convcli {convcli.__version__}"


def test_help_lists_commands(convcli_exe: list[str]) -> None:
    result = run(convcli_exe, "--help")
    assert result.returncode == 0
    text = result.stdout.decode()
    assert "apply" in text and "kernels" in text
    apply_help = run(convcli_exe, "apply", "--help").stdout.decode()
    for option in ("--kernel", "--output", "--padding", "--border", "--stride", "--dilation", "--flip", "--gray",
                   "--output-mode", "--scale", "--offset", "--format"):
        assert option in apply_help


def test_apply_writes_default_output_beside_input(convcli_exe: list[str], tmp_path: Path) -> None:
    source = tmp_path / "cam.png"
    source.write_bytes((SAMPLES / "camera.png").read_bytes())
    result = run(convcli_exe, "apply", str(source), "--kernel", "sobel")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "cam-sobel.png"
    assert out.exists()
    want = convcli.map_to_uint8(apply_kernels(load(source).astype(np.float32), "sobel"))
    np.testing.assert_array_equal(load(out), want)
    assert b"wrote" in result.stderr and result.stdout == b""


def test_apply_colour_stays_colour_and_options_reach_the_core(convcli_exe: list[str], tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    result = run(
        convcli_exe, "apply", str(SAMPLES / "chelsea.png"), "-k", "sobel-x", "-o", str(out),
        "--padding", "valid", "--stride", "2,3", "--dilation", "2", "--border", "edge",
        "--output-mode", "abs", "--scale", "0.5", "--offset", "1",
    )
    assert result.returncode == 0, result.stderr
    pixels = load(SAMPLES / "chelsea.png").astype(np.float32)
    response = apply_kernels(pixels, "sobel-x", padding="valid", stride=(2, 3), dilation=2, border="edge")
    want = convcli.map_to_uint8(response, "abs", scale=0.5, offset=1)
    got = load(out)
    assert got.shape == want.shape == ((300 - 5) // 2 + 1, (451 - 5) // 3 + 1, 3)
    np.testing.assert_array_equal(got, want)


def test_flip_and_gray(convcli_exe: list[str], tmp_path: Path) -> None:
    kernel = tmp_path / "shift.toml"
    kernel.write_text('name = "shift"\ndescription = "reads the pixel to the right"\nmatrix = [[0, 0, 1]]\n')
    plain, flipped = tmp_path / "a.png", tmp_path / "b.png"
    for out, extra in ((plain, []), (flipped, ["--flip"])):
        result = run(convcli_exe, "apply", str(SAMPLES / "astronaut.png"), "-k", str(kernel), "-o", str(out),
                     "--gray", "--border", "wrap", *extra)
        assert result.returncode == 0, result.stderr
    gray = np.asarray(Image.open(SAMPLES / "astronaut.png").convert("L")).astype(int)
    a, b = load(plain).astype(int), load(flipped).astype(int)
    assert a.ndim == 2
    assert np.abs(a - np.roll(gray, -1, axis=1)).max() <= 1  # correlation: out[c] = x[c + 1]
    assert np.abs(b - np.roll(gray, 1, axis=1)).max() <= 1  # convolution: out[c] = x[c - 1]


def test_repeated_kernels_apply_in_sequence(convcli_exe: list[str], tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    result = run(convcli_exe, "apply", str(SAMPLES / "camera.png"), "-k", "gaussian:sigma=2", "-k", "laplacian",
                 "-o", str(out), "-m", "normalize")
    assert result.returncode == 0, result.stderr
    response = apply_kernels(load(SAMPLES / "camera.png").astype(np.float32), ["gaussian:sigma=2", "laplacian"])
    np.testing.assert_array_equal(load(out), convcli.map_to_uint8(response, "normalize"))


def test_stdout_and_stdin(convcli_exe: list[str]) -> None:
    data = (SAMPLES / "camera.png").read_bytes()
    result = run(convcli_exe, "apply", "-", "-k", "box", "-o", "-", stdin=data)
    assert result.returncode == 0, result.stderr
    assert result.stdout[:8] == b"\x89PNG\r\n\x1a\n"
    want = convcli.map_to_uint8(apply_kernels(load(data).astype(np.float32), "box"))
    np.testing.assert_array_equal(load(result.stdout), want)
    jpeg = run(convcli_exe, "apply", "-", "-k", "box", "-o", "-", "--format", "jpeg", stdin=data)
    assert jpeg.returncode == 0 and jpeg.stdout[:2] == b"\xff\xd8"


def test_real_shell_pipeline(convcli_exe: list[str], tmp_path: Path) -> None:
    exe = " ".join(shlex.quote(part) for part in convcli_exe)
    sample = shlex.quote(str(SAMPLES / "astronaut.png"))
    command = f"cat {sample} | {exe} apply - -k gaussian -o - | {exe} apply - -k sobel -o edges.png"
    result = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command], cwd=tmp_path, capture_output=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    blurred = convcli.map_to_uint8(apply_kernels(load(SAMPLES / "astronaut.png").astype(np.float32), "gaussian"))
    want = convcli.map_to_uint8(apply_kernels(blurred.astype(np.float32), "sobel"))
    np.testing.assert_array_equal(load(tmp_path / "edges.png"), want)


def _assert_one_line_error(result: subprocess.CompletedProcess[bytes], code: int, *fragments: str) -> None:
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("convcli: error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, code, fragments",
    [
        (["-k", "sobl"], 2, ["unknown kernel 'sobl'", "sobel"]),
        (["-k", "gaussian:sigma=-1"], 2, ["sigma"]),
        (["-k", "gaussian:bogus=1"], 2, ["unknown parameter `bogus`"]),
        (["-k", "sobel", "--padding", "1,2,3"], 2, ["--padding"]),
        (["-k", "sobel", "--stride", "0"], 2, ["--stride"]),
        (["-k", "sobel", "--dilation", "a"], 2, ["--dilation"]),
        (["-k", "sobel", "--border", "mirror"], 2, ["--border"]),
        (["-k", "sobel", "--output-mode", "wrap"], 2, ["--output-mode"]),
        (["-k", "box:size=101", "--padding", "valid", "--dilation", "4"], 2, ["larger than the padded image"]),
    ],
)
def test_usage_errors(convcli_exe: list[str], tmp_path: Path, args: list[str], code: int, fragments: list[str]) -> None:
    out = tmp_path / "o.png"
    result = run(convcli_exe, "apply", str(SAMPLES / "chelsea.png"), *args, "-o", str(out))
    _assert_one_line_error(result, code, *fragments)
    assert list(tmp_path.iterdir()) == []


def test_input_errors(convcli_exe: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"
    _assert_one_line_error(run(convcli_exe, "apply", str(missing), "-k", "sobel"), 1, str(missing), "no such file")
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    _assert_one_line_error(run(convcli_exe, "apply", str(text), "-k", "sobel"), 1, str(text), "not an image")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes((SAMPLES / "camera.png").read_bytes()[:5000])
    _assert_one_line_error(run(convcli_exe, "apply", str(truncated), "-k", "sobel"), 1, str(truncated))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.png", "notes.png"]


def test_malformed_kernel_file(convcli_exe: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ndescription = "ragged"\nmatrix = [[1, 2], [3]]\n')
    result = run(convcli_exe, "apply", str(SAMPLES / "camera.png"), "-k", str(bad), "-o", str(tmp_path / "o.png"))
    _assert_one_line_error(result, 2, str(bad), "ragged")
    assert not (tmp_path / "o.png").exists()


def test_unknown_output_suffix(convcli_exe: list[str], tmp_path: Path) -> None:
    result = run(convcli_exe, "apply", str(SAMPLES / "camera.png"), "-k", "sobel", "-o", str(tmp_path / "o.xyz"))
    _assert_one_line_error(result, 2, "o.xyz", "--format")
    assert list(tmp_path.iterdir()) == []


def test_output_over_input_is_refused(convcli_exe: list[str], tmp_path: Path) -> None:
    source = tmp_path / "in.png"
    source.write_bytes((SAMPLES / "camera.png").read_bytes())
    result = run(convcli_exe, "apply", str(source), "-k", "sobel", "-o", str(source))
    _assert_one_line_error(result, 2, "overwrite the input")
    assert source.read_bytes() == (SAMPLES / "camera.png").read_bytes()


def test_missing_kernel_option(convcli_exe: list[str]) -> None:
    _assert_one_line_error(run(convcli_exe, "apply", str(SAMPLES / "camera.png")), 2, "--kernel")


def test_debug_shows_traceback(convcli_exe: list[str], tmp_path: Path) -> None:
    result = run(convcli_exe, "--debug", "apply", str(tmp_path / "missing.png"), "-k", "sobel")
    assert result.returncode != 0
    assert b"Traceback" in result.stderr


def test_kernels_list_and_show(convcli_exe: list[str]) -> None:
    listing = run(convcli_exe, "kernels", "list")
    assert listing.returncode == 0
    for name in ("sobel", "scharr", "prewitt", "roberts", "laplacian", "gaussian", "log", "gradient", "identity",
                 "box", "sharpen"):
        assert name in listing.stdout.decode()
    rows = json.loads(run(convcli_exe, "kernels", "list", "--json").stdout)
    by_name = {row["name"]: row for row in rows}
    assert by_name["sobel"]["size"] == [3, 3]
    assert by_name["roberts-x"]["size"] == [2, 2]
    shown = run(convcli_exe, "kernels", "show", "sobel-x")
    assert shown.returncode == 0
    text = shown.stdout.decode()
    assert "-2" in text and "sum 0" in text
    _assert_one_line_error(run(convcli_exe, "kernels", "show", "nope"), 2, "unknown kernel 'nope'")
