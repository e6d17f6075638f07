"""convcli batch under hostile conditions: signals, dead workers and parents, process limits,
scripts without a main guard, bad options, resumes in place, file lists and special files."""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from multiprocessing.context import BaseContext
from pathlib import Path
from typing import Any, cast

import pytest
from PIL import Image

from convcli.batch import (
    FileStatus,
    FileWork,
    LocalPoolExecutor,
    WorkItem,
    discover,
    filter_batch,
    plan_batch,
    read_file_list,
)
from convcli.batch.discover import MAX_LIST_ENTRIES, PATH_MAX
from convcli.cli import main
from convcli.errors import ParameterError
from convcli.kernels import load_kernel
from convcli.options import JobOptions

from conftest import SAMPLES

SOBEL = [load_kernel("sobel")]
# About half a second per 192x192 file on one thread: slow enough to be caught mid-run.
SLOW = ["-k", "gaussian:sigma=30", "--method", "direct", "--threads", "1"]
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def small_copy(sample: str, destination: Path, size: tuple[int, int] = (48, 32)) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLES / sample) as image:
        image.convert("RGB").resize(size).save(destination)
    return destination


def run(exe: list[str], *args: str | Path, stdin: bytes | None = None, timeout: float = 60,
        cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*exe, *map(str, args)], input=stdin, capture_output=True, timeout=timeout,
                          check=False, env=ENV, cwd=cwd)


def error_lines(result: subprocess.CompletedProcess[bytes]) -> list[str]:
    return [line for line in result.stderr.decode().splitlines() if line.strip()]


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def session_alive(sid: int) -> list[int]:
    """Processes of session ``sid`` still running (zombies waiting to be reaped do not count)."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getsid(int(entry)) != sid:
                continue
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            alive.append(int(entry))
    return alive


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.fixture
def slow_src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    for i in range(10):
        small_copy(["astronaut.png", "coffee.png"][i % 2], src / f"img{i:02d}.png", size=(192, 192))
    return src


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    src = tmp_path / "photos"
    for i, sample in enumerate(["astronaut.png", "coffee.png", "chelsea.png"]):
        small_copy(sample, src / f"{i}-{Path(sample).stem}.png")
    return src


def start_slow_batch(exe: list[str], src: Path, out: Path, *extra: str | Path) -> subprocess.Popen[bytes]:
    args = [*exe, "batch", str(src), *SLOW, "-o", str(out), "--jobs", "2", *map(str, extra)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=ENV)
    assert wait_for(lambda: len(list(out.glob("*.png"))) >= 1, 60), "no output appeared"
    return process


# -- signals ---------------------------------------------------------------------------------------


# SIGTERM to the batch process (kill PID); SIGHUP as a closing terminal sends it, to every
# process of the job (workers, forkserver, resource tracker).
@pytest.mark.parametrize(("signum", "status", "group"), [(signal.SIGTERM, 143, False), (signal.SIGHUP, 129, True)])
def test_sigterm_and_sighup_stop_the_workers_sweep_and_write_the_report(
    convcli_exe: list[str], slow_src: Path, tmp_path: Path, signum: int, status: int, group: bool
) -> None:
    out, report_path = tmp_path / "out", tmp_path / "run.json"
    process = start_slow_batch(convcli_exe, slow_src, out, "--report", report_path)
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == status, stderr
    assert temporaries(out) == []
    assert b"processed" in stderr  # the summary line
    assert b"Traceback" not in stderr and b"resource_tracker" not in stderr, stderr
    word = b"hung up (SIGHUP)" if signum == signal.SIGHUP else b"terminated"
    assert stderr.splitlines()[-1] == b"convcli: error: " + word + b"; rerun with --skip-existing to finish"
    report = json.loads(report_path.read_text())
    assert report["interrupted"] is True
    written = sorted(p.name for p in out.glob("*.png"))
    assert sorted(Path(f["output"]).name for f in report["files"] if f["status"] == "ok") == written
    assert wait_for(lambda: session_alive(process.pid) == [], 15), "a process of the run survived"


def test_workers_exit_when_the_batch_process_is_killed(
    convcli_exe: list[str], slow_src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    process = start_slow_batch(convcli_exe, slow_src, out)
    process.kill()
    process.wait(timeout=10)
    assert wait_for(lambda: session_alive(process.pid) == [], 15), "workers outlived the batch process"
    written = sorted(out.iterdir())
    assert len(written) < 10  # they stopped, rather than finishing the run alone
    assert temporaries(out) == []  # each worker removed the file it was writing


# -- a dead worker ---------------------------------------------------------------------------------


class RefusingContext:
    """A forkserver context that cannot have more than ``allowed`` processes alive at once, as under
    ``ulimit -u``; ``error`` is what starting one more raises (EOFError: the server process died)."""

    def __init__(self, allowed: int, error: BaseException) -> None:
        self.base = multiprocessing.get_context("forkserver")
        self.allowed = allowed
        self.error = error
        self.processes: list[Any] = []

    def Process(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the context API's name
        if sum(1 for p in self.processes if p.is_alive()) >= self.allowed:
            raise self.error
        process = self.base.Process(*args, **kwargs)
        self.processes.append(process)
        return process

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


class WriteOrDie:
    """Writes a small file per item; the poisoned source kills the worker process filtering it,
    and with ``once`` only the first time (a worker killed from outside)."""

    def __init__(self, poison: str, marker: str | None = None) -> None:
        self.poison = poison
        self.marker = marker

    def __call__(self, item: WorkItem) -> FileStatus:
        if item.source == self.poison:
            if self.marker is None or not os.path.exists(self.marker):
                if self.marker is not None:
                    Path(self.marker).touch()
                os.kill(os.getpid(), signal.SIGKILL)
        Path(item.destination).write_bytes(b"done")
        return FileStatus(item.source, item.destination, "ok")


class KillAfterWrite:
    """convcli's own work of a file, whose worker dies once right after writing one output,
    before it can report it."""

    def __init__(self, work: FileWork, poison: str, marker: str) -> None:
        self.work, self.poison, self.marker = work, poison, marker

    def __call__(self, item: WorkItem) -> FileStatus:
        status = self.work(item)
        if item.source == self.poison and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return status


def test_an_output_written_just_before_its_worker_died_counts_as_written(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    sources = sorted(photos.iterdir())
    items = [WorkItem(i, str(p), str(out / p.name)) for i, p in enumerate(sources)]
    work = KillAfterWrite(FileWork(tuple(SOBEL), JobOptions.from_values(threads=1), "refuse"), items[1].source,
                          str(tmp_path / "killed-once"))
    outcomes = collect(LocalPoolExecutor(2), work, items)
    assert {s.status for s in outcomes.values()} == {"ok"}, outcomes  # not "already exists"
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in sources]


class ExitOn(WriteOrDie):
    """A library that calls sys.exit() on one file, inside the worker."""

    def __call__(self, item: WorkItem) -> FileStatus:
        if item.source == self.poison:
            sys.exit(3)
        return super().__call__(item)


def test_a_worker_exiting_through_systemexit_fails_its_file_only(tmp_path: Path) -> None:
    outcomes = collect(LocalPoolExecutor(2), ExitOn("in1"), items_in(tmp_path, 4))
    assert [i for i, s in outcomes.items() if s.status == "failed"] == [1]
    assert len(list(tmp_path.glob("out*"))) == 3


def arrive(poison: str, home: int) -> WriteOrDie:
    if os.getpid() != home:
        raise ImportError("this worker cannot load the work")
    return WriteOrDie(poison)


class BrokenOnArrival(WriteOrDie):
    """Work that every worker fails to load, as with a module missing on the workers' path."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (arrive, (self.poison, os.getpid()))


def test_workers_that_die_starting_mean_one_warning_and_this_process(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        context = RefusingContext(100, OSError())
        outcomes = collect(LocalPoolExecutor(3, context=cast(BaseContext, context)), BrokenOnArrival("none"),
                           items_in(tmp_path, 4))
    assert {s.status for s in outcomes.values()} == {"ok"} and len(outcomes) == 4
    assert len(caught) == 1 and "in this process" in str(caught[0].message)
    assert len(context.processes) == 3  # one attempt: fewer workers would die the same way
    assert multiprocessing.active_children() == []


def items_in(tmp_path: Path, count: int) -> list[WorkItem]:
    return [WorkItem(i, f"in{i}", str(tmp_path / f"out{i}")) for i in range(count)]


def collect(executor: LocalPoolExecutor, work: Callable[[WorkItem], FileStatus],
            items: Sequence[WorkItem]) -> dict[int, FileStatus]:
    outcomes: dict[int, FileStatus] = {}
    for finished in executor.run(work, items):
        for index, status in finished:
            assert index not in outcomes, f"item {index} reported twice"
            outcomes[index] = status
    return outcomes


def test_a_file_that_kills_its_worker_fails_alone_and_the_rest_is_finished(tmp_path: Path) -> None:
    items = items_in(tmp_path, 7)
    outcomes = collect(LocalPoolExecutor(2), WriteOrDie("in3"), items)
    assert sorted(outcomes) == list(range(7))
    failed = [i for i, s in outcomes.items() if s.status == "failed"]
    assert failed == [3]
    assert "SIGKILL" in (outcomes[3].error or "")
    on_disk = sorted(int(p.name[3:]) for p in tmp_path.glob("out*"))
    assert on_disk == [i for i in range(7) if i != 3]  # the report matches the disk
    assert multiprocessing.active_children() == []


def test_a_worker_killed_once_from_outside_costs_no_file(tmp_path: Path) -> None:
    items = items_in(tmp_path, 8)
    outcomes = collect(LocalPoolExecutor(2), WriteOrDie("in5", str(tmp_path / "killed-once")), items)
    assert {s.status for s in outcomes.values()} == {"ok"}
    assert len(list(tmp_path.glob("out*"))) == 8


# -- process limits and a dead process machinery ----------------------------------------------------


@pytest.mark.parametrize("error", [BlockingIOError(11, "Resource temporarily unavailable"), EOFError()])
@pytest.mark.parametrize("allowed", [0, 1])
def test_too_few_processes_means_fewer_workers_not_a_failure(
    tmp_path: Path, allowed: int, error: BaseException
) -> None:
    items = items_in(tmp_path, 6)
    executor = LocalPoolExecutor(3, context=cast(BaseContext, RefusingContext(allowed, error)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcomes = collect(executor, WriteOrDie("none"), items)
    assert {s.status for s in outcomes.values()} == {"ok"} and len(outcomes) == 6
    assert len(list(tmp_path.glob("out*"))) == 6
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert ("in this process" if allowed == 0 else f"{allowed} worker") in messages[0]
    assert multiprocessing.active_children() == []


class InterruptedStart:
    """A forkserver context in which Ctrl-C arrives in the middle of the first process start."""

    def __init__(self) -> None:
        self.base = multiprocessing.get_context("forkserver")
        self.completed: list[bool] = []

    def Process(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the context API's name
        process = self.base.Process(*args, **kwargs)
        if not self.completed:
            signal.raise_signal(signal.SIGINT)
        self.completed.append(True)  # reached only if the signal did not cut the start in half
        return process

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


def test_ctrl_c_while_the_pool_starts_waits_for_the_start_and_leaves_no_process(tmp_path: Path) -> None:
    context = InterruptedStart()
    executor = LocalPoolExecutor(2, context=cast(BaseContext, context))
    with pytest.raises(KeyboardInterrupt):
        collect(executor, WriteOrDie("none"), items_in(tmp_path, 4))
    assert context.completed == [True, True]
    assert multiprocessing.active_children() == []


# -- a script without the main guard ---------------------------------------------------------------

README_EXAMPLE = """\
from convcli.batch import discover, plan_batch, run_batch
from convcli.kernels import load_kernel

kernels = [load_kernel("sobel")]
tasks = plan_batch(discover(["photos"], recursive=True), "edges", kernels)
report = run_batch(tasks, kernels, jobs=2, existing="skip", on_file=print)
print(report.count("ok"), report.megapixels_per_second)
"""


def readme_batch_example() -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("### From Python", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_batch_example_runs_and_an_unguarded_script_is_told_the_fix(
    photos: Path, tmp_path: Path
) -> None:
    (tmp_path / "unguarded").write_text(README_EXAMPLE)  # a script need not end in .py
    result = subprocess.run([sys.executable, "unguarded"], cwd=photos.parent, capture_output=True,
                            timeout=60, check=False)
    assert result.returncode != 0
    assert 'if __name__ == "__main__":' in result.stderr.decode().strip().splitlines()[-1]
    assert not (photos.parent / "edges").exists()
    # python -m convcli runs the package's __main__, which multiprocessing never runs again.
    module = subprocess.run([sys.executable, "-m", "convcli", "batch", str(photos), "-k", "box", "-o",
                             str(tmp_path / "m"), "-j", "2"], capture_output=True, timeout=60, check=False)
    assert module.returncode == 0, module.stderr

    example = readme_batch_example()
    assert 'if __name__ == "__main__":' in example
    (tmp_path / "guarded.py").write_text(example)
    result = subprocess.run([sys.executable, "guarded.py"], cwd=photos.parent, capture_output=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert len(list((photos.parent / "edges").iterdir())) == 3


# -- options checked before starting -----------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        ["--scale", "nan"],
        ["--offset", "inf"],
        ["--border-value", "inf"],
        ["--depth", "16", "--format", "jpeg"],
        ["--all-frames", "--format", "jpeg"],
        ["-k", "TINY_DIVISOR"],
    ],
)
def test_batch_refuses_bad_options_before_creating_anything(
    photos: Path, tmp_path: Path, options: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    kernel_file = tmp_path / "tiny.toml"
    kernel_file.write_text('name = "tiny"\ndescription = "d"\nmatrix = [[1]]\ndivisor = 1e-320\n')
    options = [str(kernel_file) if o == "TINY_DIVISOR" else o for o in options]
    out = tmp_path / "out"
    assert main(["batch", str(photos), "-k", "box", *options, "-o", str(out), "-j", "2"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcli: error:"), lines
    assert not out.exists()


def test_apply_refuses_all_frames_in_a_one_frame_format_it_was_told(convcli_exe: list[str], photos: Path,
                                                                     tmp_path: Path) -> None:
    # The same check as batch's, whatever the input: --format says every frame cannot be kept.
    applied = run(convcli_exe, "apply", photos / "0-astronaut.png", "-k", "box", "--all-frames", "--format", "jpeg",
                  "-o", tmp_path / "a.jpg")
    assert applied.returncode == 2, applied.stderr
    assert b"--all-frames" in applied.stderr and not (tmp_path / "a.jpg").exists()


def test_filter_batch_checks_the_job_before_creating_folders(photos: Path, tmp_path: Path) -> None:
    tasks = plan_batch(discover([photos]), tmp_path / "out", SOBEL)
    with pytest.raises(ParameterError, match="scale"):
        filter_batch(tasks, SOBEL, JobOptions.from_values(scale=math.nan), jobs=1)
    assert not (tmp_path / "out").exists()


# -- resuming in place -------------------------------------------------------------------------------


def test_resuming_in_place_skips_this_runs_outputs(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", str(photos), "-k", "sobel", "-o", str(photos), "-j", "1"]) == 0
    after_first = sorted(p.name for p in photos.iterdir())
    assert len(after_first) == 6
    capsys.readouterr()
    assert main(["batch", str(photos), "-k", "sobel", "-o", str(photos), "-j", "1", "--skip-existing"]) == 0
    assert "processed 0, skipped 3, failed 0" in capsys.readouterr().err
    assert sorted(p.name for p in photos.iterdir()) == after_first  # no a-sobel-sobel.png
    # Replacing them is still refused: an output of this run might be someone's input.
    assert main(["batch", str(photos), "-k", "sobel", "-o", str(photos), "-j", "1", "--overwrite"]) == 2
    assert "--skip-existing" in capsys.readouterr().err  # the hint to resume
    assert sorted(p.name for p in photos.iterdir()) == after_first


# -- file lists ----------------------------------------------------------------------------------------


def test_a_missing_list_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["batch", "--from", str(tmp_path / "nope.txt"), "-k", "box", "-o", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "nope.txt" in lines[0]


def test_blank_lines_in_a_list_are_skipped(photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"{photos / '0-astronaut.png'}\n\n   \n{photos / '1-coffee.png'}\r\n\r\n".encode())
    assert main(["batch", "--from", str(listing), "-k", "box", "-o", str(tmp_path / "out"), "-j", "1"]) == 0
    assert capsys.readouterr().err.startswith("processed 2, skipped 0, failed 0")


@pytest.mark.parametrize("null", [False, True])
def test_an_endless_list_is_refused_with_one_line(tmp_path: Path, null: bool,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    flags = ["-0"] if null else []
    assert main(["batch", "--from", "/dev/zero", *flags, "-k", "box", "-o", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    # -0: a million empty entries; lines: one line longer than any path.
    assert (f"{MAX_LIST_ENTRIES:,} entries" if null else "longer than") in lines[0]
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "out").exists()


def test_a_list_from_an_endless_pipe_is_refused(convcli_exe: list[str], tmp_path: Path) -> None:
    yes = subprocess.Popen(["yes", "a" * (PATH_MAX + 1)], stdout=subprocess.PIPE)
    try:
        result = subprocess.run([*convcli_exe, "batch", "--from", "-", "-k", "box", "-o", str(tmp_path / "out")],
                                stdin=yes.stdout, capture_output=True, timeout=30, check=False)
    finally:
        yes.kill()
        yes.wait()
    assert result.returncode == 2
    assert len(error_lines(result)) == 1 and f"longer than {PATH_MAX} bytes".encode() in result.stderr


def test_read_file_list_caps_path_length_and_entries() -> None:
    import io

    with pytest.raises(ParameterError, match="4096"):
        read_file_list(io.BytesIO(b"a" * (PATH_MAX + 1) + b"\n"))
    assert read_file_list(io.BytesIO(b"a" * PATH_MAX + b"\n")) == ["a" * PATH_MAX]
    with pytest.raises(ParameterError, match="entries"):
        read_file_list(io.BytesIO(b"x\n" * 11), max_entries=10)
    assert len(read_file_list(io.BytesIO(b"x\n" * 10), max_entries=10)) == 10
    assert read_file_list(io.BytesIO(b"a\n \n\t\nb\n")) == ["a", "b"]
    assert read_file_list(io.BytesIO(b" \0a\0"), null=True) == [" ", "a"]  # -0 keeps any name


# -- special files ---------------------------------------------------------------------------------------


def test_fifos_are_refused_without_being_opened(convcli_exe: list[str], photos: Path, tmp_path: Path) -> None:
    direct, inside = tmp_path / "direct.png", photos / "inside.png"
    os.mkfifo(direct)
    os.mkfifo(inside)
    listed = tmp_path / "listed.png"
    os.mkfifo(listed)
    out = tmp_path / "out"
    result = run(convcli_exe, "batch", photos, direct, "--from", "-", "-k", "box", "-o", out, "-j", "1",
                 stdin=f"{listed}\n".encode(), timeout=30)
    assert result.returncode == 1, result.stderr
    errors = [line for line in error_lines(result) if line.startswith("convcli: error:")]
    assert len(errors) == 3
    for fifo in (direct, inside, listed):
        assert any(str(fifo) in line and "is a FIFO (named pipe), not an image file" in line for line in errors), errors
    assert len(list(out.iterdir())) == 3


# -- the command line's signal handling --------------------------------------------------------------


def test_a_stop_signal_is_one_line_and_a_second_cannot_cut_the_cleanup(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cleanup_finished: list[bool] = []

    def filter_file(*args: Any, **kwargs: Any) -> None:
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            # The cleanup of the first signal: a second one, or Ctrl-C, must not interrupt it.
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)
            cleanup_finished.append(True)

    monkeypatch.setattr("convcli.pipeline.filter_file", filter_file)
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert main(["apply", str(photos / "0-astronaut.png"), "-k", "box", "-o", str(tmp_path / "o.png")]) == 143
    assert cleanup_finished == [True]
    assert capsys.readouterr().err == "convcli: error: terminated\n"
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before  # left as found


def test_ctrl_c_in_the_calling_thread_stops_the_other_bands_at_their_next_strip() -> None:
    from convcli.core.threads import check_abandoned, run_bands

    started = threading.Event()
    strips: list[int] = []
    finished: list[bool] = []

    def worker(r0: int, r1: int) -> None:
        if r0 == 0:  # the calling thread: interrupted once another band runs
            started.wait(10)
            raise KeyboardInterrupt
        started.set()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # strips of a band that would take ten seconds
            check_abandoned()
            strips.append(1)
        finished.append(True)

    begun = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_bands(worker, rows=100, threads=2, work=1e12)
    assert time.monotonic() - begun < 5 and finished == []
    check_abandoned()  # the calling thread is never told to stop by it
