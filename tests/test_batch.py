"""convcli.batch: discovery, name templates, planning, running in-process and in a pool."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path, PurePath

import numpy as np
import pytest
from PIL import Image

from convcli.batch import (
    BatchInterrupted,
    FileStatus,
    FileWork,
    InProcessExecutor,
    LocalPoolExecutor,
    SourceFile,
    WorkItem,
    check_template,
    discover,
    filter_batch,
    plan_batch,
    read_file_list,
    render_name,
    run_batch,
    sweep_temp_files,
)
from convcli.batch.executors import Outcomes, WorkFunction
from convcli.core import map_to_uint8
from convcli.errors import ParameterError
from convcli.io import read_image
from convcli.kernels import Kernel, load_kernel
from convcli.options import JobOptions
from convcli.pipeline import apply_kernels

from conftest import SAMPLES

SOBEL = [load_kernel("sobel")]


def small_copy(sample: str, destination: Path, size: tuple[int, int] = (48, 32)) -> Path:
    """A small resized copy of a sample image, saved in the format of ``destination``'s suffix."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLES / sample) as image:
        image.convert("RGB").resize(size).save(destination)
    return destination


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Four good images (PNG, JPEG, one in a subfolder) and two bad ones."""
    src = tmp_path / "src"
    small_copy("astronaut.png", src / "astronaut.png")
    small_copy("rocket.jpg", src / "rocket.jpg")
    small_copy("coffee.png", src / "coffee.png")
    small_copy("camera.png", src / "sub" / "camera.png")
    good = (src / "coffee.png").read_bytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 3])
    (src / "notes.jpg").write_text("not an image\n")
    (src / "readme.txt").write_text("ignored: not an image suffix\n")
    return src


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# -- templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "match"),
    [
        ("{stem}/{kernel}.png", "not a path"),
        ("../{stem}.png", r"'\.\.'"),
        ("{stem}..png", r"'\.\.'"),
        ("{stam}.png", r"unknown field \{stam\}.*stem, name, ext, kernel, parent"),
        ("{}.png", "empty field"),
        ("{stem.upper}.png", "unknown field"),
        ("{stem", "not a valid template"),
        ("", "must not be empty"),
    ],
)
def test_bad_templates_are_refused(template: str, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        check_template(template)


def test_render_name_fills_every_field(tmp_path: Path) -> None:
    source = tmp_path / "2024" / "beach.JPG"
    kernels = [load_kernel("gaussian:sigma=2"), load_kernel("sobel")]
    name = render_name("{parent}_{stem}_{name}_{kernel}.{ext}", source, kernels)
    assert name == "2024_beach_beach.JPG_gaussian-sigma2+sobel.JPG"
    assert render_name("{stem}.{ext}", source, kernels, "png") == "beach.png"
    assert render_name("{stem}.{ext}", tmp_path / "scan.mpo", kernels) == "scan.png"  # MPO is read, not written


# -- discovery ---------------------------------------------------------------------------------


def test_discover_takes_image_suffixes_only_and_recurses_on_request(photos: Path) -> None:
    flat = {f.relative for f in discover([photos])}
    assert flat == {PurePath(n) for n in ("astronaut.png", "coffee.png", "notes.jpg", "rocket.jpg", "truncated.png")}
    deep = {f.relative for f in discover([photos], recursive=True)}
    assert deep == flat | {PurePath("sub/camera.png")}


def test_pattern_is_a_case_insensitive_glob_on_names(photos: Path) -> None:
    (photos / "UPPER.PNG").write_bytes((photos / "coffee.png").read_bytes())
    found = {f.path.name for f in discover([photos], recursive=True, pattern="*.png")}
    assert found == {"astronaut.png", "coffee.png", "truncated.png", "camera.png", "UPPER.PNG"}


def test_output_folder_inside_the_source_is_not_walked(photos: Path) -> None:
    out = photos / "out"
    small_copy("coffee.png", out / "old-output.png")
    found = {f.path.name for f in discover([photos], recursive=True, exclude=[out])}
    assert "old-output.png" not in found
    assert "camera.png" in found


def test_folder_links_are_not_followed_but_file_links_are(photos: Path) -> None:
    (photos / "sub" / "loop").symlink_to(photos, target_is_directory=True)
    (photos / "link.png").symlink_to(photos / "coffee.png")
    (photos / "dangling.png").symlink_to(photos / "missing.png")
    found = discover([photos], recursive=True)
    names = [str(f.relative) for f in found]
    assert len(names) == len(set(names))
    assert not any("loop" in name for name in names)
    assert "link.png" in names
    dangling = [f for f in found if f.path.name == "dangling.png"]
    assert dangling and "broken symbolic link" in (dangling[0].error or "")


def test_missing_source_is_a_parameter_error(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"nothing\.png: no such file or folder"):
        discover([tmp_path / "nothing.png"])


def test_listed_paths_mirror_their_folders_only_with_recursive(photos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(photos.parent)
    listed = ["src/sub/camera.png", "./src/coffee.png", "missing.png"]
    flat = discover([], listed=listed)
    assert [str(f.relative) for f in flat] == ["camera.png", "coffee.png", "missing.png"]
    assert flat[2].error == "missing.png: no such file"
    mirrored = discover([], listed=listed, recursive=True)
    assert [str(f.relative) for f in mirrored][:2] == ["src/sub/camera.png", "src/coffee.png"]


def test_read_file_list_keeps_odd_names() -> None:
    lines = "a b.png\nünïcode.jpg\r\n\nlast.png".encode()
    assert read_file_list(io.BytesIO(lines)) == ["a b.png", "ünïcode.jpg", "last.png"]
    nul = b"new\nline.png\0 lead.png\0\0"
    assert read_file_list(io.BytesIO(nul), null=True) == ["new\nline.png", " lead.png"]
    raw = read_file_list(io.BytesIO(b"bad\xffbyte.png\n"))
    assert os.fsencode(raw[0]) == b"bad\xffbyte.png"


# -- planning ----------------------------------------------------------------------------------


def test_plan_mirrors_folders_and_applies_the_template(photos: Path, tmp_path: Path) -> None:
    tasks = plan_batch(discover([photos], recursive=True), tmp_path / "out", SOBEL, template="{stem}.{ext}", fmt="PNG")
    destinations = {t.destination.relative_to(tmp_path / "out").as_posix() for t in tasks}
    assert "sub/camera.png" in destinations
    assert "rocket.png" in destinations


def test_plan_refuses_two_inputs_with_one_output(photos: Path, tmp_path: Path) -> None:
    small_copy("chelsea.png", photos / "sub" / "coffee.png")
    files = discover([photos, photos / "sub" / "coffee.png"])
    with pytest.raises(ParameterError, match=r"same output.*coffee-sobel.png.*\{parent\}"):
        plan_batch(files, tmp_path / "out", SOBEL)
    # The {parent} field tells them apart.
    tasks = plan_batch(files, tmp_path / "out", SOBEL, template="{parent}-{stem}.{ext}")
    assert {t.destination.name for t in tasks} >= {"src-coffee.png", "sub-coffee.png"}


def test_plan_never_targets_an_input(photos: Path) -> None:
    with pytest.raises(ParameterError, match="would overwrite an input"):
        plan_batch(discover([photos]), photos, SOBEL, template="{name}")
    with pytest.raises(ParameterError, match="would overwrite an input"):
        plan_batch(discover([photos]), photos, SOBEL, template="{stem}.png")  # rocket.png is new, coffee.png is not


def test_plan_refuses_an_output_name_without_format(photos: Path, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="cannot tell the output format"):
        plan_batch(discover([photos]), tmp_path / "out", SOBEL, template="{stem}-out.xyz")
    # A name with no suffix takes each input's format.
    assert plan_batch(discover([photos]), tmp_path / "out", SOBEL, template="{stem}-out")


# -- running -----------------------------------------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_good_files_are_written_and_bad_ones_reported(photos: Path, tmp_path: Path, jobs: int) -> None:
    out = tmp_path / "out"
    tasks = plan_batch(discover([photos], recursive=True), out, SOBEL)
    seen: list[FileStatus] = []
    report = run_batch(tasks, SOBEL, jobs=jobs, on_file=seen.append)
    assert len(seen) == len(tasks) == 6
    failed = {Path(f.path).name: f.error for f in report.files if f.status == "failed"}
    assert set(failed) == {"truncated.png", "notes.jpg"}
    assert "truncated PNG" in (failed["truncated.png"] or "")
    assert all(str(photos / name) in (error or "") for name, error in failed.items())
    assert report.count("ok") == 4
    for status in report.files:
        if status.status == "ok":
            picture = read_image(status.output)
            assert picture.pixels.shape[:2] == (32, 48)
    expected = apply_kernels(read_image(photos / "coffee.png").pixels, SOBEL)
    written = read_image(out / "coffee-sobel.png").pixels
    np.testing.assert_array_equal(written, map_to_uint8(expected, "clip"))
    assert temp_files(out) == []
    assert report.megapixels == pytest.approx(4 * 48 * 32 / 1e6)


def test_pool_and_in_process_runs_write_identical_files(photos: Path, tmp_path: Path) -> None:
    files = [f for f in discover([photos], recursive=True) if f.path.suffix == ".png" and "trunc" not in f.path.name]
    outputs = {}
    for jobs in (1, 2):
        tasks = plan_batch(files, tmp_path / f"out{jobs}", SOBEL)
        assert run_batch(tasks, SOBEL, jobs=jobs).count("ok") == len(files)
        outputs[jobs] = {t.destination.name: t.destination.read_bytes() for t in tasks}
    assert outputs[1] == outputs[2]


def test_workers_use_the_kernel_built_by_the_caller(photos: Path, tmp_path: Path) -> None:
    # A kernel made in memory has no name to load it by: the workers can only have it if it
    # was sent to them.
    shift = Kernel("shift-right", "moves pixels right", (np.array([[1.0, 0.0, 0.0]]),))
    files = [SourceFile(photos / "coffee.png", PurePath("coffee.png"))] * 1
    files.append(SourceFile(photos / "astronaut.png", PurePath("astronaut.png")))
    report = run_batch(plan_batch(files, tmp_path / "out", [shift]), [shift], jobs=2)
    assert report.count("ok") == 2
    original = read_image(photos / "coffee.png").pixels
    shifted = read_image(tmp_path / "out" / "coffee-shift-right.png").pixels
    np.testing.assert_array_equal(shifted[:, 1:], original[:, :-1])


def test_existing_outputs_are_refused_skipped_or_overwritten(photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    tasks = plan_batch([SourceFile(photos / "coffee.png", PurePath("coffee.png"))], out, SOBEL)
    out.mkdir()
    (out / "coffee-sobel.png").write_bytes(b"old")
    refused = run_batch(tasks, SOBEL, jobs=1)
    assert refused.files[0].status == "failed"
    assert "already exists" in (refused.files[0].error or "")
    assert (out / "coffee-sobel.png").read_bytes() == b"old"
    assert run_batch(tasks, SOBEL, jobs=1, existing="skip").files[0].status == "skipped"
    assert (out / "coffee-sobel.png").read_bytes() == b"old"
    assert run_batch(tasks, SOBEL, jobs=1, existing="overwrite").files[0].status == "ok"
    assert read_image(out / "coffee-sobel.png").pixels.shape == (32, 48, 3)


def test_fail_fast_stops_at_the_first_failure(photos: Path, tmp_path: Path) -> None:
    files = discover([photos / "truncated.png", photos / "coffee.png", photos / "rocket.jpg"])
    report = run_batch(plan_batch(files, tmp_path / "out", SOBEL), SOBEL, jobs=1, fail_fast=True)
    assert [f.status for f in report.files] == ["failed", "cancelled", "cancelled"]
    assert not (tmp_path / "out" / "coffee-sobel.png").exists()


@pytest.mark.parametrize("jobs", [1, 2])
def test_interruption_keeps_finished_outputs_and_reports(photos: Path, tmp_path: Path, jobs: int) -> None:
    for i in range(12):
        small_copy("astronaut.png", photos / "many" / f"a{i:02d}.png")
    out = tmp_path / "out"
    tasks = plan_batch(discover([photos / "many"]), out, SOBEL)

    def interrupt(status: FileStatus) -> None:
        raise KeyboardInterrupt

    with pytest.raises(BatchInterrupted) as caught:
        run_batch(tasks, SOBEL, jobs=jobs, on_file=interrupt)
    report = caught.value.report
    assert report.interrupted
    assert report.count("cancelled") >= 1
    assert report.count("ok") + report.count("cancelled") == 12
    assert temp_files(out) == []
    for status in report.files:
        if Path(status.output).exists():
            assert read_image(status.output).pixels.shape == (32, 48, 3)


def test_sweep_removes_only_this_batch_temp_files(tmp_path: Path) -> None:
    ours = tmp_path / ".a-sobel.png.x1y2_z3w.tmp"
    other_output = tmp_path / ".b.png.abcdefgh.tmp"
    unrelated = tmp_path / ".a-sobel.png.tmp"
    for path in (ours, other_output, unrelated):
        path.write_bytes(b"partial")
    assert sweep_temp_files([tmp_path / "a-sobel.png"]) == 1
    assert not ours.exists()
    assert other_output.exists() and unrelated.exists()


def test_report_holds_summary_and_files(photos: Path, tmp_path: Path) -> None:
    files = discover([photos / "coffee.png", photos / "notes.jpg"])
    data = run_batch(plan_batch(files, tmp_path / "out", SOBEL), SOBEL, jobs=1).to_dict()
    assert (data["processed"], data["failed"], data["skipped"]) == (1, 1, 0)
    statuses = data["files"]
    assert isinstance(statuses, list)
    assert [f["status"] for f in statuses] == ["ok", "failed"]
    assert statuses[0]["error"] is None and statuses[1]["error"]
    assert set(statuses[0]) == {"path", "output", "status", "error", "seconds"}


# -- executors ---------------------------------------------------------------------------------


class RecordingExecutor(InProcessExecutor):
    """Runs in this process and remembers what it was given."""

    def __init__(self) -> None:
        self.items: list[WorkItem] = []

    def run(self, work: WorkFunction, items: Sequence[WorkItem]) -> Outcomes:
        self.items.extend(items)
        yield from super().run(work, items)


def test_filter_batch_runs_through_the_executor_it_is_given(photos: Path, tmp_path: Path) -> None:
    tasks = plan_batch(discover([photos / "coffee.png", photos / "astronaut.png"]), tmp_path / "out", SOBEL)
    executor = RecordingExecutor()
    report = filter_batch(tasks, SOBEL, JobOptions.from_values(gray=True), executor=executor)
    assert [item.source for item in executor.items] == [str(t.source) for t in tasks]
    assert report.count("ok") == 2 and report.jobs == 1
    assert read_image(tasks[0].destination).pixels.ndim == 2  # the job's options reached the work


def test_closing_a_pool_run_stops_its_workers_mid_file(tmp_path: Path) -> None:
    import multiprocessing
    import time

    quick, slow = tmp_path / "quick.png", tmp_path / "slow.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(quick)
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (1500, 1500), dtype=np.uint8)).save(slow)
    # Minutes of work per large file on one thread; the small one is done at once.
    kernels = (load_kernel("gaussian:sigma=40"),)
    work = FileWork(kernels, JobOptions.from_values(method="direct", threads=1), "refuse")
    out = tmp_path / "out"
    out.mkdir()
    items = [WorkItem(0, str(quick), str(out / "q.png"))]
    items += [WorkItem(i, str(slow), str(out / f"s{i}.png")) for i in (1, 2)]
    outcomes = LocalPoolExecutor(2).run(work, items)
    first = next(outcomes)
    assert [(index, status.status) for index, status in first] == [(0, "ok")]
    assert len(multiprocessing.active_children()) == 2  # both workers: one idle, one mid-file
    started = time.monotonic()
    outcomes.close()
    assert time.monotonic() - started < 15  # the workers were ended, not waited for
    assert multiprocessing.active_children() == []
    assert sorted(p.name for p in out.iterdir()) == ["q.png"]
