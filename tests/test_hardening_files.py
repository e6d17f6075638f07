"""Every file convcli writes: reports, exported kernels and images, through the one atomic-write helper.

Modes and owners kept, links followed, device nodes and FIFOs written through, outputs claimed
without overwriting when concurrent runs share a folder, long names, no hang on a FIFO.
"""

from __future__ import annotations

import errno
import json
import os
import re
import resource
import signal
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from convcli.batch import FileWork, WorkItem, sweep_temp_files
from convcli.cli import main
from convcli.errors import OutputError, OutputExistsError
from convcli.io import temp_file_pattern, write_bytes_atomic, write_image
from convcli.kernels import load_kernel
from convcli.options import JobOptions

ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False


def tiny_png(path: Path, seed: int = 1, size: int = 16) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def run(
    exe: list[str], *args: str | Path, cwd: Path | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*exe, *map(str, args)], capture_output=True, cwd=cwd, timeout=60, check=False, **kwargs)


def error_lines(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    return result.stderr.decode().splitlines()


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    for i in range(3):
        tiny_png(folder / f"{'abc'[i]}.png", seed=i)
    return folder


@pytest.fixture
def temp_names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names in the destination folder while each write flushes its data: the temporary files."""
    seen: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            folder = Path(os.readlink(f"/proc/self/fd/{fd}")).parent
            seen.extend(name for name in os.listdir(folder) if name.endswith(".tmp"))
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the open temporary file")
    monkeypatch.setattr(os, "fsync", recording_fsync)
    return seen


# --- batch --report ---------------------------------------------------------------------------


def test_report_refuses_an_input(convcli_exe: list[str], src: Path, tmp_path: Path) -> None:
    before = (src / "a.png").read_bytes()
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", tmp_path / "out", "--report", src / "a.png")
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1 and "a.png" in lines[0] and "input" in lines[0]
    assert (src / "a.png").read_bytes() == before
    assert not (tmp_path / "out").exists()


def test_report_refuses_an_input_through_a_link_the_file_list_or_a_kernel_file(
    convcli_exe: list[str], src: Path, tmp_path: Path
) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(src / "b.png")
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", tmp_path / "out", "--report", link)
    assert result.returncode == 2 and len(error_lines(result)) == 1
    listing = tmp_path / "list.txt"
    listing.write_text(f"{src / 'a.png'}\n")
    result = run(convcli_exe, "batch", "--from", listing, "-k", "box", "-o", tmp_path / "out", "--report", listing)
    assert result.returncode == 2 and len(error_lines(result)) == 1
    assert listing.read_text() == f"{src / 'a.png'}\n"
    kernel = tmp_path / "k.toml"
    kernel.write_text('name = "k"\ndescription = "d"\nmatrix = [[1]]\n')
    result = run(convcli_exe, "batch", src, "-k", kernel, "-o", tmp_path / "out", "--report", kernel)
    assert result.returncode == 2 and len(error_lines(result)) == 1
    assert kernel.read_text().startswith('name = "k"')
    assert not (tmp_path / "out").exists()


def test_report_refuses_an_output_of_the_run(convcli_exe: list[str], src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", out, "--report", out / "b-box.png")
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1 and "b-box.png" in lines[0] and "output" in lines[0]
    assert not out.exists()


def test_report_refuses_a_folder_before_the_work(convcli_exe: list[str], src: Path, tmp_path: Path) -> None:
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", tmp_path / "out", "--report", tmp_path)
    assert result.returncode == 2 and len(error_lines(result)) == 1
    assert not (tmp_path / "out").exists()
    # OUTDIR, which the run would create: the report could only be written there as a folder.
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", tmp_path / "out", "--report", tmp_path / "out")
    assert result.returncode == 2 and len(error_lines(result)) == 1
    assert not (tmp_path / "out").exists()


def test_report_in_a_missing_folder_is_refused_before_the_work(
    convcli_exe: list[str], src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", out, "--report", tmp_path / "nope" / "run.json")
    assert result.returncode == 2
    lines = error_lines(result)
    assert len(lines) == 1 and "does not exist" in lines[0]
    assert not out.exists()


def test_report_in_the_output_folder_is_allowed(convcli_exe: list[str], src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", out / "deep", "--report", out / "run.json", "-q")
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["processed"] == 3


def test_report_dash_is_standard_output(convcli_exe: list[str], src: Path, tmp_path: Path) -> None:
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", tmp_path / "out", "--report", "-", "-v", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # nothing but the JSON on stdout
    assert report["processed"] == 3 and len(report["files"]) == 3
    assert not (tmp_path / "-").exists()
    assert b"processed 3" in result.stderr


def test_report_through_a_symlink_updates_the_target(convcli_exe: list[str], src: Path, tmp_path: Path) -> None:
    real = tmp_path / "reports" / "real.json"
    real.parent.mkdir()
    real.write_text("old")
    real.chmod(0o600)
    link = tmp_path / "run.json"
    link.symlink_to(real)
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", tmp_path / "out", "--report", link, "-q")
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert json.loads(real.read_text())["processed"] == 3
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def test_report_writes_through_a_fifo(convcli_exe: list[str], src: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    # Opened for reading before convcli starts (without waiting for a writer), so the reader is
    # certainly there; the report is far smaller than the pipe's buffer.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        result = run(convcli_exe, "batch", src, "-k", "box", "-o", tmp_path / "out", "--report", fifo, "-q")
        received = os.read(reader, 1 << 20)
    finally:
        os.close(reader)
    assert result.returncode == 0, result.stderr
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert json.loads(received)["processed"] == 3


@pytest.mark.skipif(not ROOT, reason="creating a device node needs root")
def test_report_writes_through_a_device_node(convcli_exe: list[str], src: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    os.mknod(full, stat.S_IFCHR | 0o666, os.makedev(1, 7))  # the device of /dev/full
    result = run(convcli_exe, "batch", src, "-k", "box", "-o", tmp_path / "out", "--report", full, "-q")
    assert result.returncode == 1
    assert error_lines(result) == [f"convcli: error: {full}: cannot write: No space left on device"]
    assert stat.S_ISCHR(os.lstat(full).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "out", "src"]


# --- kernels export -o ------------------------------------------------------------------------


def _file_size_limit(limit: int) -> Callable[[], None]:
    def set_limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return set_limit


def test_export_is_atomic_under_a_file_size_limit(convcli_exe: list[str], tmp_path: Path) -> None:
    target = tmp_path / "p.toml"
    target.write_text("old = 1\n")
    result = run(convcli_exe, "kernels", "export", "gaussian:sigma=20", "-o", target, preexec_fn=_file_size_limit(4096))
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"convcli: error: {target}: cannot write: ")
    assert target.read_text() == "old = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.toml"]


def test_export_keeps_mode_and_follows_links(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    real = tmp_path / "real.toml"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "k.toml"
    link.symlink_to("real.toml")
    assert main(["kernels", "export", "sobel-x", "-o", str(link)]) == 0
    assert link.is_symlink()
    assert load_kernel(str(real)).matrices[0].tolist() == load_kernel("sobel-x").matrices[0].tolist()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert capsys.readouterr().out == ""


# --- modes, owners, links ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o640])
def test_in_place_keeps_the_mode(mode: int, tmp_path: Path) -> None:
    photo = tiny_png(tmp_path / "photo.png")
    before = photo.read_bytes()
    photo.chmod(mode)
    assert main(["apply", str(photo), "-k", "box", "--in-place", "-q"]) == 0
    assert stat.S_IMODE(photo.stat().st_mode) == mode
    assert photo.read_bytes() != before


def test_overwriting_an_output_keeps_its_mode(tmp_path: Path) -> None:
    photo = tiny_png(tmp_path / "photo.png")
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    out.chmod(0o600)
    assert main(["apply", str(photo), "-k", "box", "-o", str(out), "-q"]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.skipif(not ROOT, reason="giving a file away needs root")
def test_overwriting_keeps_the_owner(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(b"old")
    os.chown(out, 4321, 4322)
    write_bytes_atomic(b"new", out)
    assert (out.stat().st_uid, out.stat().st_gid) == (4321, 4322)
    assert out.read_bytes() == b"new"


def test_new_files_follow_the_umask_without_touching_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = os.umask(0o027)
    try:

        def forbidden(mask: int) -> int:
            raise AssertionError("the process-wide umask must not be changed")

        monkeypatch.setattr(os, "umask", forbidden)
        write_bytes_atomic(b"data", tmp_path / "new.bin")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.bin").stat().st_mode) == 0o640


def test_in_place_on_a_symlink_updates_the_target(tmp_path: Path) -> None:
    real = tiny_png(tmp_path / "store" / "photo.png")
    before = real.read_bytes()
    link = tmp_path / "photo.png"
    link.symlink_to(real)
    assert main(["apply", str(link), "-k", "box", "--in-place", "-q"]) == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.png", "store"]
    assert [p.name for p in real.parent.iterdir()] == ["photo.png"]


def test_relative_link_chain_is_followed(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "real.bin").write_bytes(b"old")
    (tmp_path / "d" / "mid.bin").symlink_to("real.bin")
    (tmp_path / "top.bin").symlink_to("d/mid.bin")
    write_bytes_atomic(b"new", tmp_path / "top.bin")
    assert (tmp_path / "d" / "real.bin").read_bytes() == b"new"
    assert (tmp_path / "top.bin").is_symlink() and (tmp_path / "d" / "mid.bin").is_symlink()


def test_dangling_link_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "out.png"
    link.symlink_to("made.png")
    write_bytes_atomic(b"new", link)
    assert link.is_symlink()
    assert (tmp_path / "made.png").read_bytes() == b"new"


def test_link_loop_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OutputError, match=r"/a: .*symbolic links"):
        write_bytes_atomic(b"new", tmp_path / "a")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()


def test_link_into_a_read_only_folder_is_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # sysfs refuses new files to every user, root included.
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs here")
    link = tmp_path / "k.toml"
    link.symlink_to("/sys/kernel/convcli-test.toml")
    assert main(["kernels", "export", "box", "-o", str(link)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"convcli: error: {link}: ")
    assert link.is_symlink() and not Path("/sys/kernel/convcli-test.toml").exists()


def test_folder_as_destination_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a directory"):
        write_bytes_atomic(b"new", tmp_path)
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(OutputError, match="is a directory"):
        write_bytes_atomic(b"new", tmp_path / "link")


def test_folder_is_flushed_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    write_bytes_atomic(b"new", tmp_path / "x.bin")
    assert synced == ["file", "folder"]


# --- special files ----------------------------------------------------------------------------


def test_fifo_without_a_reader_is_one_error_not_a_hang(convcli_exe: list[str], tmp_path: Path) -> None:
    fifo = tmp_path / "k.fifo"
    os.mkfifo(fifo)
    result = run(convcli_exe, "kernels", "export", "box", "-o", fifo)
    assert result.returncode == 1
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith(f"convcli: error: {fifo}: ") and "reads" in lines[0]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_descriptor_path_to_a_regular_file_is_written_through(convcli_exe: list[str], tmp_path: Path) -> None:
    photo = tiny_png(tmp_path / "photo.png")
    with open(tmp_path / "captured.png", "wb") as captured:
        result = subprocess.run(
            [*convcli_exe, "apply", str(photo), "-k", "box", "-o", "/dev/fd/1", "--format", "png"],
            stdout=captured,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "captured.png") as image:
        assert image.size == (16, 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["captured.png", "photo.png"]


# --- outputs claimed, never overwritten -------------------------------------------------------


def test_exclusive_write_refuses_an_existing_name(tmp_path: Path) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"theirs")
    with pytest.raises(OutputExistsError, match="already exists"):
        write_bytes_atomic(b"mine", target, exclusive=True)
    assert target.read_bytes() == b"theirs"
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    write_bytes_atomic(b"mine", tmp_path / "new.png", exclusive=True)
    assert (tmp_path / "new.png").read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.png", "out.png"]


@pytest.mark.parametrize("code", [errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV])
def test_exclusive_write_without_hard_links(code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(*args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "link", no_links)
    write_bytes_atomic(b"mine", tmp_path / "new.png", exclusive=True)
    assert (tmp_path / "new.png").read_bytes() == b"mine"
    with pytest.raises(OutputExistsError):
        write_bytes_atomic(b"again", tmp_path / "new.png", exclusive=True)
    assert (tmp_path / "new.png").read_bytes() == b"mine"
    assert [p.name for p in tmp_path.iterdir()] == ["new.png"]


def test_a_link_made_but_reported_existing_is_ours(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_link = os.link

    def link_with_lost_reply(source: str | Path, destination: str | Path) -> None:
        real_link(source, destination)  # made, but the reply was lost and the retry found the name
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST))

    monkeypatch.setattr(os, "link", link_with_lost_reply)
    write_bytes_atomic(b"mine", tmp_path / "new.png", exclusive=True)
    assert (tmp_path / "new.png").read_bytes() == b"mine"
    assert [p.name for p in tmp_path.iterdir()] == ["new.png"]


@pytest.mark.parametrize("existing, status, content", [("skip", "skipped", b"theirs"), ("refuse", "failed", b"theirs")])
def test_an_output_that_appears_during_the_work_is_not_overwritten(
    existing: str, status: str, content: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import convcli.io.write as write_module

    source = tiny_png(tmp_path / "a.png")
    destination = tmp_path / "out" / "a-box.png"
    destination.parent.mkdir()
    real_encode = write_module.encode_frames

    def racing_encode(*args: Any, **kwargs: Any) -> bytes:
        destination.write_bytes(b"theirs")  # another run wins the name here
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(write_module, "encode_frames", racing_encode)
    work = FileWork((load_kernel("box"),), JobOptions(), existing)  # type: ignore[arg-type]
    result = work(WorkItem(0, str(source), str(destination)))
    assert result.status == status
    if status == "failed":
        assert result.error is not None and "already exists" in result.error
    assert destination.read_bytes() == content
    assert [p.name for p in destination.parent.iterdir()] == ["a-box.png"]


def test_overwrite_replaces_an_output_that_appears_during_the_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import convcli.io.write as write_module

    source = tiny_png(tmp_path / "a.png")
    destination = tmp_path / "a-box.png"
    real_encode = write_module.encode_frames

    def racing_encode(*args: Any, **kwargs: Any) -> bytes:
        destination.write_bytes(b"theirs")
        return real_encode(*args, **kwargs)

    monkeypatch.setattr(write_module, "encode_frames", racing_encode)
    result = FileWork((load_kernel("box"),), JobOptions(), "overwrite")(WorkItem(0, str(source), str(destination)))
    assert result.status == "ok"
    assert destination.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("policy", ["--skip-existing", None])
def test_concurrent_runs_write_each_output_once(policy: str | None, convcli_exe: list[str], tmp_path: Path) -> None:
    count = 60
    src = tmp_path / "src"
    for i in range(count):
        tiny_png(src / f"{i:03d}.png", seed=i, size=48)
    out = tmp_path / "out"
    out.mkdir()
    runs = 3
    processes = [
        subprocess.Popen(
            [
                *convcli_exe,
                "batch",
                str(src),
                "-k",
                "gaussian:sigma=2",
                "-o",
                str(out),
                "-j",
                "1",
                "-q",
                "--report",
                str(tmp_path / f"r{n}.json"),
                *([policy] if policy else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(runs)
    ]
    for process in processes:
        process.communicate(timeout=120)
    reports = [json.loads((tmp_path / f"r{n}.json").read_text()) for n in range(runs)]
    assert sum(r["processed"] for r in reports) == count
    for r in reports:
        assert r["processed"] + r["skipped"] + r["failed"] == count
        if policy:
            assert r["failed"] == 0
        else:
            assert r["skipped"] == 0
            assert all("already exists" in f["error"] for f in r["files"] if f["status"] == "failed")
    written = sorted(p.name for p in out.iterdir())
    assert written == [f"{i:03d}-gaussian-sigma2.png" for i in range(count)]
    # Each output is the one its reporting run wrote: nobody replaced it afterwards.
    owners = [f["output"] for r in reports for f in r["files"] if f["status"] == "ok"]
    assert len(owners) == len(set(owners)) == count


# --- long names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x" * 251 + ".png", "é" * 125 + ".png", "x" * 238 + ".png", "\u20ac" * 83 + ".png"])
def test_long_names_fit_their_temporary_file(name: str, tmp_path: Path, temp_names: list[str]) -> None:
    assert len(os.fsencode(name)) <= 255
    target = tmp_path / name
    write_image(np.zeros((2, 2), np.uint8), None, target)
    assert target.read_bytes().startswith(b"\x89PNG")
    assert len(temp_names) == 1 and len(os.fsencode(temp_names[0])) <= 255
    pattern = temp_file_pattern([name])
    assert pattern.fullmatch(temp_names[0])
    assert not temp_file_pattern(["other.png"]).fullmatch(temp_names[0])
    # A leftover of an interrupted write is found and removed by the batch sweep.
    (tmp_path / temp_names[0]).write_bytes(b"partial")
    assert sweep_temp_files([target]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_batch_writes_a_255_byte_name(convcli_exe: list[str], tmp_path: Path) -> None:
    tiny_png(tmp_path / "src" / "a.png")
    template = "{stem}" + "y" * 250 + ".png"
    result = run(convcli_exe, "batch", tmp_path / "src", "-k", "box", "-o", tmp_path / "out", "--name", template)
    assert result.returncode == 0, result.stderr
    assert [len(p.name) for p in (tmp_path / "out").iterdir()] == [255]


# --- one helper for every file ----------------------------------------------------------------


def test_every_write_goes_through_the_atomic_helper() -> None:
    package = Path(__file__).resolve().parent.parent / "convcli"
    direct = re.compile(r"write_text\(|write_bytes\(|shutil\.|open\([^)]*['\"][wax]b?\+?['\"]|\.save\((?!buffer)")
    offenders = [
        f"{path.relative_to(package)}:{number}: {line.strip()}"
        for path in package.rglob("*.py")
        if path.name != "atomic.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if direct.search(line) and not line.lstrip().startswith((">>>", "#"))
    ]
    assert offenders == []
