"""convcli batch on a real Dask cluster (``--scheduler``): the same bytes as a local batch, a worker
killed mid-run, a worker dying right after it wrote its output, an unreachable scheduler, a local
cluster started through the command line, and no Dask at all without ``--scheduler``.

The cluster is a ``LocalCluster`` of worker processes on 127.0.0.1, started once for the module.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("distributed")

from distributed import Client, LocalCluster  # after the skip: an optional dependency

from convcli.batch import BatchInterrupted, FileStatus, WorkItem, discover, filter_batch, plan_batch
from convcli.batch.executors import Outcomes, WorkFunction
from convcli.cluster import ClusterError, connect
from convcli.cluster.batch import DaskExecutor
from convcli.kernels import load_kernel
from convcli.options import JobOptions

from conftest import main_in_process

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
# A few tenths of a second per 480x480 file on one thread: slow enough for a kill to land mid-file.
SLOW = ["-k", "gaussian:sigma=8", "--method", "direct"]


@dataclass
class Cluster:
    client: Client
    address: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
            silence_logs=logging.CRITICAL,
        ) as local,
        Client(local, set_as_default=False) as client,
    ):
        yield Cluster(client, local.scheduler_address)


@pytest.fixture
def ready(cluster: Cluster) -> Cluster:
    """The module's cluster with both workers up (one may be restarting after a test killed it)."""
    cluster.client.wait_for_workers(2, timeout=30)
    return cluster


def photos(folder: Path, count: int, size: int, *, corrupt: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261129)
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3) if i % 2 else (size, size), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i:02d}.png")
    if corrupt:
        (folder / "cut.png").write_bytes((folder / "p00.png").read_bytes()[:200])
    return folder


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def lost_tasks(client: Client) -> set[str]:
    """The tasks the scheduler found on workers that died."""
    return {
        str(key)
        for _, event in client.get_events("all")
        if isinstance(event, dict) and event.get("action") == "remove-worker"
        for key in event.get("processing-tasks", ())
    }


def test_a_cluster_batch_writes_the_bytes_and_report_of_a_local_batch(
    ready: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = photos(tmp_path / "src", 6, 64, corrupt=True)
    args = ["batch", str(src), "-k", "sobel", "-k", "gaussian:sigma=1"]
    code, _, local_err = main_in_process(
        capsys, *args, "-o", str(tmp_path / "local"), "--jobs", "1", "--report", str(tmp_path / "local.json")
    )
    assert code == 1
    code, _, cluster_err = main_in_process(
        capsys,
        *args,
        "-o",
        str(tmp_path / "cluster"),
        "--scheduler",
        ready.address,
        "--report",
        str(tmp_path / "cluster.json"),
    )
    assert code == 1  # the corrupt file fails, as locally
    assert outputs(tmp_path / "cluster") == outputs(tmp_path / "local")
    assert len(outputs(tmp_path / "cluster")) == 6 and leftovers(tmp_path / "cluster") == []
    # The same error line for the corrupt file, and the same summary counts.
    assert cluster_err.splitlines()[0] == local_err.splitlines()[0]
    assert "cut.png" in cluster_err.splitlines()[0]
    assert cluster_err.splitlines()[1].split(" in ")[0] == "processed 6, skipped 0, failed 1"

    def statuses(report: Path) -> list[tuple[str, str, str | None]]:
        data = json.loads(report.read_text())
        return [(Path(f["output"]).name, f["status"], f["error"]) for f in data["files"]]

    assert statuses(tmp_path / "cluster.json") == statuses(tmp_path / "local.json")
    assert json.loads((tmp_path / "cluster.json").read_text())["jobs"] == 2  # the cluster's worker threads
    # The workers survived the corrupt file.
    assert len(ready.client.scheduler_info()["workers"]) == 2


def test_skip_existing_and_fail_fast_work_on_a_cluster(
    ready: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = photos(tmp_path / "src", 4, 32)
    out = tmp_path / "out"
    out.mkdir()
    (out / "p01-sobel.png").write_bytes(b"kept")
    code, _, err = main_in_process(
        capsys, "batch", str(src), "-k", "sobel", "-o", str(out), "--scheduler", ready.address, "--skip-existing"
    )
    assert code == 0, err
    assert (out / "p01-sobel.png").read_bytes() == b"kept"
    assert "processed 3, skipped 1, failed 0" in err
    code, _, err = main_in_process(
        capsys, "batch", str(src), "-k", "sobel", "-o", str(out), "--scheduler", ready.address, "--fail-fast"
    )
    assert code == 1  # every output exists: the first one refused stops the run
    assert "already exists" in err and leftovers(out) == []


def test_a_worker_killed_mid_batch_loses_no_file(
    ready: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = photos(tmp_path / "src", 6, 480)
    pids = ready.client.run(os.getpid)
    lost_before = lost_tasks(ready.client)
    killed: list[str] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not killed:
            for address, keys in ready.client.processing().items():
                if any(str(k).startswith("convcli-file-") for k in keys) and address in pids:
                    os.kill(pids[address], signal.SIGKILL)
                    killed.append(address)
                    return
            time.sleep(0.01)  # polling the scheduler's state, which has no wait of its own

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    code, _, err = main_in_process(
        capsys, "batch", str(src), *SLOW, "-o", str(tmp_path / "cluster"), "--scheduler", ready.address
    )
    killer.join()
    assert killed, "no worker was caught filtering a file"
    assert code == 0, err
    assert "processed 6, skipped 0, failed 0" in err
    assert "Traceback" not in err and "distributed" not in err
    assert any(k.startswith("convcli-file-") for k in lost_tasks(ready.client) - lost_before)  # killed mid-file
    code, _, _ = main_in_process(capsys, "batch", str(src), *SLOW, "-o", str(tmp_path / "local"), "--jobs", "1")
    assert code == 0
    assert outputs(tmp_path / "cluster") == outputs(tmp_path / "local")
    assert leftovers(tmp_path / "cluster") == []


@dataclass(frozen=True)
class DieAfterWriting:
    """The work of a file, whose worker dies at once after writing ``victim`` the first time,
    leaving behind a temporary file as a write cut short would."""

    work: WorkFunction
    victim: str

    def __call__(self, item: WorkItem) -> FileStatus:
        first = not os.path.lexists(item.destination)
        status = self.work(item)
        destination = Path(item.destination)
        if first and destination.name == self.victim:
            (destination.parent / f".{destination.name}.cutshort.tmp").write_bytes(b"partial")
            os.kill(os.getpid(), signal.SIGKILL)
        return status


class DyingExecutor(DaskExecutor):
    def __init__(self, client: Client, address: str, victim: str) -> None:
        super().__init__(client, address)
        self.victim = victim

    def run(self, work: WorkFunction, items: Sequence[WorkItem]) -> Outcomes:
        return super().run(DieAfterWriting(work, self.victim), items)


def test_an_output_written_before_its_worker_died_counts_as_written(ready: Cluster, tmp_path: Path) -> None:
    # Without --overwrite or --skip-existing: a second run that took the output for another
    # run's would fail the file.
    src = photos(tmp_path / "src", 4, 32)
    kernels = [load_kernel("sobel")]
    tasks = plan_batch(discover([src]), tmp_path / "out", kernels)
    lost_before = lost_tasks(ready.client)
    report = filter_batch(
        tasks,
        kernels,
        JobOptions(),
        existing="refuse",
        executor=DyingExecutor(ready.client, ready.address, "p02-sobel.png"),
    )
    assert [f.status for f in report.files] == ["ok"] * 4, report.files
    # It was run twice: its first worker died after writing it.
    assert any(k.endswith("-2") for k in lost_tasks(ready.client) - lost_before)
    reference = plan_batch(discover([src]), tmp_path / "reference", kernels)
    filter_batch(reference, kernels, JobOptions(), jobs=1)
    assert outputs(tmp_path / "out") == outputs(tmp_path / "reference")
    assert leftovers(tmp_path / "out") == []  # the dead write's temporary file was swept


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_scheduler_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = photos(tmp_path / "src", 2, 16)
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.monotonic()
    code, out, err = main_in_process(
        capsys, "batch", str(src), "-k", "sobel", "-o", str(tmp_path / "out"), "--scheduler", address
    )
    assert time.monotonic() - start < 5
    assert code == 2 and out == ""
    assert err.splitlines() == [f"convcli: error: {address}: cannot reach the Dask scheduler: Connection refused"]
    assert not (tmp_path / "out").exists()


def test_a_server_that_never_answers_is_not_waited_for_beyond_the_timeout() -> None:
    # A port that accepts connections but says nothing (a web server, a dashboard) is not a scheduler.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"tcp://127.0.0.1:{listener.getsockname()[1]}"
        start = time.monotonic()
        with (
            pytest.raises(ClusterError, match=f"{address}: no Dask scheduler answered within 0.5 s"),
            connect(address, timeout=0.5),
        ):
            pass
        assert time.monotonic() - start < 3


def test_missing_distributed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ClusterError, match=r"pip install 'convcli\[dask\]'") as caught, connect("local"):
        pass
    assert caught.value.exit_code == 2 and "\n" not in str(caught.value)


def test_scheduler_local_runs_end_to_end(tmp_path: Path, convcli_exe: list[str]) -> None:
    src = photos(tmp_path / "src", 4, 48)
    result = subprocess.run(
        [
            *convcli_exe,
            "batch",
            str(src),
            "-k",
            "sobel",
            "-o",
            str(tmp_path / "out"),
            "--scheduler",
            "local",
            "--jobs",
            "1",
            "--report",
            "-",
        ],
        capture_output=True,
        timeout=120,
        check=False,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["processed"] == 4 and report["jobs"] == 1
    # Nothing from distributed's logs: the summary line only.
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("processed 4, skipped 0, failed 0"), lines
    reference = tmp_path / "reference"
    kernels = [load_kernel("sobel")]
    filter_batch(plan_batch(discover([src]), reference, kernels), kernels, jobs=1)
    assert outputs(tmp_path / "out") == outputs(reference)


def test_a_batch_without_scheduler_imports_no_dask(tmp_path: Path) -> None:
    src = photos(tmp_path / "src", 2, 16)
    script = (
        "import sys\n"
        "from convcli.cli import main\n"
        f"code = main(['batch', {str(src)!r}, '-k', 'sobel', '-o', {str(tmp_path / 'out')!r}, '-j', '1', '-q'])\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'zarr'))\n"
        "print(code, loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=False, env=ENV)
    assert result.stdout.decode().split() == ["0", "[]"], result.stderr


def test_an_interrupted_cluster_batch_reports_what_is_on_disk(ready: Cluster, tmp_path: Path) -> None:
    src = photos(tmp_path / "src", 6, 480)
    kernels = [load_kernel("gaussian:sigma=8")]
    tasks = plan_batch(discover([src]), tmp_path / "out", kernels)

    def interrupt(status: FileStatus) -> None:
        raise KeyboardInterrupt  # as Ctrl-C would, once the first file is known

    with pytest.raises(BatchInterrupted) as caught:
        filter_batch(
            tasks,
            kernels,
            JobOptions.from_values(method="direct"),
            on_file=interrupt,
            executor=DaskExecutor(ready.client, ready.address),
        )
    report = caught.value.report
    written = {Path(f.output).name for f in report.files if f.status == "ok"}
    assert written == set(outputs(tmp_path / "out"))  # the files running at the stop were finished
    assert report.count("cancelled") == 6 - len(written) > 0
    assert leftovers(tmp_path / "out") == []
    assert not ready.client.processing() or not any(ready.client.processing().values())


def test_a_scheduler_that_dies_mid_batch_fails_the_files_left_without_a_hang(tmp_path: Path) -> None:
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler = subprocess.Popen(
        [*dask, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], stderr=subprocess.DEVNULL, env=ENV
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-nanny"],
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    try:
        with Client(address, timeout=20, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=20)
        src = photos(tmp_path / "src", 6, 480)
        kernels = [load_kernel("gaussian:sigma=8")]
        tasks = plan_batch(discover([src]), tmp_path / "out", kernels)

        def kill_the_scheduler(status: FileStatus) -> None:
            if scheduler.poll() is None:
                scheduler.kill()  # once the first file is known

        # A short timeout: the client gives up reconnecting after it.
        with Client(address, timeout=1, set_as_default=False) as client:
            start = time.monotonic()
            report = filter_batch(
                tasks,
                kernels,
                JobOptions.from_values(method="direct"),
                on_file=kill_the_scheduler,
                executor=DaskExecutor(client, address),
            )
            assert time.monotonic() - start < 20
        failed = [f for f in report.files if f.status == "failed"]
        assert failed and all(
            f"the connection to the Dask scheduler at {address} was lost" in (f.error or "") for f in failed
        )
        assert report.count("ok") + len(failed) == 6
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait(10)
