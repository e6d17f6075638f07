"""Process faults: closed pipes, full disks, read-only folders, overwriting the input, signals."""

from __future__ import annotations

import errno
import os
import shlex
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcli.cli import main
from convcli.errors import OutputError, ParameterError
from convcli.io import write_bytes_atomic
from convcli.pipeline import process_file


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 400x400 noise image: its filtered PNG is far larger than a 64 KiB pipe buffer."""
    path = tmp_path_factory.mktemp("noise") / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (400, 400, 3), dtype=np.uint8)).save(path)
    return path


def test_closed_pipe_ends_quietly(noise: Path, convcli_exe: list[str]) -> None:
    command = " ".join(map(shlex.quote, [*convcli_exe, "apply", str(noise), "-k", "sobel", "-o", "-"]))
    script = f'{command} | head -c 100 > /dev/null; echo "status=${{PIPESTATUS[0]}}"'
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.stderr == ""
    assert result.stdout.strip() == "status=141"


def test_full_pipe_is_read_whole(noise: Path, convcli_exe: list[str]) -> None:
    command = [*convcli_exe, "apply", str(noise), "-k", "sobel", "-o", "-"]
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    assert result.returncode == 0
    assert len(result.stdout) > 65536 and result.stdout.endswith(b"IEND\xaeB`\x82")


def test_full_disk_device(noise: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["apply", str(noise), "-k", "box", "-o", "/dev/full", "--format", "png"])
    lines = capsys.readouterr().err.splitlines()
    assert code == 1
    assert lines == ["convcli: error: /dev/full: cannot write: No space left on device"]


def test_full_disk_leaves_old_file_and_no_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"old")

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match=r"out\.png: cannot write: No space left on device"):
        write_bytes_atomic(b"new image", target)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


def test_read_only_folder_even_for_root(noise: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # sysfs refuses new files to every user, root included; a chmod'ed folder would not stop root.
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs here")
    code = main(["apply", str(noise), "-k", "box", "-o", "/sys/kernel/convcli-test.png"])
    lines = capsys.readouterr().err.splitlines()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("convcli: error: /sys/kernel/convcli-test.png: ")
    assert not Path("/sys/kernel/convcli-test.png").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_folder_for_users(noise: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code = main(["apply", str(noise), "-k", "box", "-o", str(folder / "o.png")])
    finally:
        folder.chmod(0o700)
    assert code == 1
    assert "permission denied" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


def test_output_equal_to_input_is_refused(noise: Path, tmp_path: Path) -> None:
    copy = tmp_path / "photo.png"
    copy.write_bytes(noise.read_bytes())
    before = copy.read_bytes()
    with pytest.raises(ParameterError, match="would overwrite the input; choose another -o, or use --in-place"):
        process_file(copy, tmp_path / "." / "photo.png", "box")
    assert copy.read_bytes() == before


def test_in_place_is_atomic(noise: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = tmp_path / "photo.png"
    copy.write_bytes(noise.read_bytes())
    inode = copy.stat().st_ino
    assert main(["apply", str(copy), "-k", "box", "--in-place", "-q"]) == 0
    assert copy.stat().st_ino != inode  # renamed into place, not rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["photo.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(copy)), np.asarray(Image.open(tmp_path / "photo.png")))
    assert not np.array_equal(np.asarray(Image.open(copy)), np.asarray(Image.open(noise)))
    assert main(["apply", str(copy), "-k", "box", "--in-place", "-o", str(tmp_path / "other.png")]) == 2
    assert "--in-place` writes over" in capsys.readouterr().err


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_during_a_long_run(signum: int, status: int, tmp_path: Path, convcli_exe: list[str]) -> None:
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (2000, 2000), dtype=np.uint8)).save(big)
    data = big.read_bytes()
    out = tmp_path / "out.png"
    # A 241x241 Gaussian forced onto the direct engine on one thread: minutes of work on any
    # machine, whatever its core count. The image arrives on standard input, so once the test has
    # written all of it the process is certainly inside convcli (reading it), and still far from
    # done: the signal lands mid-run without any guess at how long start-up takes.
    process = subprocess.Popen(
        [*convcli_exe, "apply", "-", "-k", "gaussian:sigma=40", "--method", "direct", "--threads", "1", "-o", str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stdin is not None and process.stderr is not None
    process.stdin.write(data)  # returns once convcli has read all but the last pipe buffer's worth
    process.stdin.close()
    assert process.poll() is None
    process.send_signal(signum)
    process.wait(timeout=60)
    err = process.stderr.read().decode()
    assert process.returncode == status, err
    assert "Traceback" not in err
    if signum == signal.SIGINT:
        assert err.strip().splitlines() == ["convcli: error: interrupted; no output was written"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png"]
