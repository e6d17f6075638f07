"""``convcli batch`` end to end, in a subprocess: exit codes, messages, pipes, interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import SAMPLES


def small_copy(sample: str, destination: Path, size: tuple[int, int] = (48, 32)) -> Path:
    destination.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(SAMPLES / sample) as image:
        image.convert("RGB").resize(size).save(destination)
    return destination


def run(
    exe: list[str], *args: str | Path, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*exe, *map(str, args)], input=stdin, capture_output=True, cwd=cwd, timeout=120, check=False
    )


def valid_image(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except Exception:  # any failure to decode means the file is not a valid image
        return False


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    src = tmp_path / "photos"
    for i, sample in enumerate(["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg"]):
        small_copy(sample, src / f"{i}-{Path(sample).name}")
    small_copy("camera.png", src / "2024" / "camera.png")
    small_copy("brick.png", src / "2024" / "deep" / "brick.png")
    return src


def test_bad_files_are_reported_and_the_rest_written(convcli_exe: list[str], photos: Path, tmp_path: Path) -> None:
    good = (photos / "1-coffee.png").read_bytes()
    (photos / "broken.png").write_bytes(good[:200])
    (photos / "text.jpg").write_text("hello")
    out = tmp_path / "out"
    result = run(convcli_exe, "batch", photos, "-k", "sobel", "-o", out, "-j", "2", "--report", tmp_path / "r.json")
    assert result.returncode == 1
    errors = [line for line in result.stderr.decode().splitlines() if line.startswith("convcli: error:")]
    assert len(errors) == 2
    assert any(str(photos / "broken.png") in line and "truncated" in line for line in errors)
    assert any(str(photos / "text.jpg") in line for line in errors)
    assert "processed 4, skipped 0, failed 2" in result.stderr.decode()
    written = sorted(p.name for p in out.iterdir())
    assert written == ["0-astronaut-sobel.png", "1-coffee-sobel.png", "2-chelsea-sobel.png", "3-rocket-sobel.jpg"]
    assert all(valid_image(out / name) for name in written)
    assert leftovers(out) == []
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["processed"], report["failed"]) == (4, 2)
    assert {f["status"] for f in report["files"]} == {"ok", "failed"}


def test_recursive_mirrors_the_tree_with_a_template(convcli_exe: list[str], photos: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        convcli_exe, "batch", photos, "-r", "-k", "box", "-o", out, "--name", "{parent}_{stem}.{ext}",
        "--format", "bmp", "-j", "1", "-v",
    )
    assert result.returncode == 0, result.stderr
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.bmp"))
    assert made == [
        "2024/2024_camera.bmp", "2024/deep/deep_brick.bmp", "photos_0-astronaut.bmp", "photos_1-coffee.bmp",
        "photos_2-chelsea.bmp", "photos_3-rocket.bmp",
    ]
    with Image.open(out / "photos_3-rocket.bmp") as image:
        assert image.format == "BMP"
    assert result.stderr.decode().count("wrote ") == 6  # --verbose: a line per file


def test_bad_template_is_a_usage_error(convcli_exe: list[str], photos: Path, tmp_path: Path) -> None:
    result = run(convcli_exe, "batch", photos, "-k", "sobel", "-o", tmp_path / "out", "--name", "{stem}/{nope}.png")
    assert result.returncode == 2
    assert "--name" in result.stderr.decode()
    result = run(convcli_exe, "batch", photos, "-k", "sobel", "-o", tmp_path / "out", "--name", "{size}.png")
    assert result.returncode == 2
    assert "unknown field {size}" in result.stderr.decode()
    assert not (tmp_path / "out").exists()


def test_existing_outputs_refused_then_skipped_then_overwritten(
    convcli_exe: list[str], photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args: list[str | Path] = ["batch", photos, "-k", "sobel", "-o", out, "-j", "1"]
    assert run(convcli_exe, *args).returncode == 0
    target = out / "1-coffee-sobel.png"
    before = target.read_bytes()
    target.write_bytes(b"stale")
    refused = run(convcli_exe, *args)
    assert refused.returncode == 1
    assert refused.stderr.decode().count("already exists") == 4
    assert target.read_bytes() == b"stale"
    skipped = run(convcli_exe, *args, "--skip-existing", "--report", tmp_path / "r.json")
    assert skipped.returncode == 0
    assert json.loads((tmp_path / "r.json").read_text())["skipped"] == 4
    assert target.read_bytes() == b"stale"
    assert run(convcli_exe, *args, "--overwrite").returncode == 0
    assert target.read_bytes() == before
    both = run(convcli_exe, *args, "--overwrite", "--skip-existing")
    assert both.returncode == 2


def test_file_list_from_a_pipe_with_odd_names(convcli_exe: list[str], tmp_path: Path) -> None:
    names = ["with space.png", "ünïcødé 写真.jpg", " leading.png"]
    for name in names:
        small_copy("coffee.png", tmp_path / "in" / name)
    listing = "".join(f"in/{name}\n" for name in names).encode()
    args = ["batch", "--from", "-", "-k", "sobel", "-o", "out", "-j", "1"]
    result = run(convcli_exe, *args, stdin=listing, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    made = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert made == sorted(["with space-sobel.png", "ünïcødé 写真-sobel.jpg", " leading-sobel.png"])


def test_nul_separated_list_allows_a_newline_in_a_name(convcli_exe: list[str], tmp_path: Path) -> None:
    odd = tmp_path / "in" / "two\nlines.png"
    plain = small_copy("coffee.png", tmp_path / "in" / "plain.png")
    small_copy("chelsea.png", odd)
    (tmp_path / "list").write_bytes(bytes(odd) + b"\0" + bytes(plain) + b"\0")
    out = tmp_path / "out"
    result = run(convcli_exe, "batch", "--from", tmp_path / "list", "-0", "-k", "sobel", "-o", out, "-j", "2")
    assert result.returncode == 0, result.stderr
    assert valid_image(out / "two\nlines-sobel.png")
    assert valid_image(out / "plain-sobel.png")


def test_name_collision_is_reported_before_any_work(convcli_exe: list[str], photos: Path, tmp_path: Path) -> None:
    small_copy("coffee.png", photos / "2024" / "1-coffee.png")
    listing = f"{photos / '1-coffee.png'}\n{photos / '2024' / '1-coffee.png'}\n{photos / '0-astronaut.png'}\n"
    out = tmp_path / "out"
    result = run(convcli_exe, "batch", "--from", "-", "-k", "sobel", "-o", out, stdin=listing.encode())
    assert result.returncode == 2
    assert "same output" in result.stderr.decode()
    assert not out.exists()


def test_input_is_never_overwritten(convcli_exe: list[str], photos: Path) -> None:
    before = (photos / "1-coffee.png").read_bytes()
    result = run(convcli_exe, "batch", photos, "-k", "sobel", "-o", photos, "--name", "{name}", "--overwrite")
    assert result.returncode == 2
    assert "would overwrite an input" in result.stderr.decode()
    assert (photos / "1-coffee.png").read_bytes() == before


def test_output_folder_inside_source_and_a_link_loop(convcli_exe: list[str], photos: Path) -> None:
    (photos / "2024" / "back").symlink_to(photos, target_is_directory=True)
    out = photos / "edges"
    args: list[str | Path] = ["batch", photos, "-r", "-k", "sobel", "-o", out, "-j", "1"]
    first = run(convcli_exe, *args)
    assert first.returncode == 0, first.stderr
    second = run(convcli_exe, *args, "--skip-existing", "--report", photos.parent / "r.json")
    assert second.returncode == 0
    report = json.loads((photos.parent / "r.json").read_text())
    assert (report["processed"], report["skipped"]) == (0, 6)  # the outputs were not taken as inputs
    assert not list(out.rglob("*-sobel-sobel*"))
    assert not (out / "2024" / "back").exists()


def test_quiet_prints_errors_only(convcli_exe: list[str], photos: Path, tmp_path: Path) -> None:
    (photos / "empty.png").write_bytes(b"")
    result = run(convcli_exe, "batch", photos, "-k", "sobel", "-o", tmp_path / "out", "-q", "-j", "1")
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("convcli: error:") and "empty.png" in lines[0]


def test_interrupted_run_is_finished_by_skip_existing(convcli_exe: list[str], tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(12):
        small_copy(["astronaut.png", "coffee.png"][i % 2], src / f"img{i:02d}.png", size=(192, 192))
    out = tmp_path / "out"
    # About half a second of work per file on one thread, two workers whatever the core count:
    # once two outputs exist, the other ten need seconds more, so Ctrl-C lands mid-run. (OpenBLAS
    # is kept to one thread: it would otherwise start threads of its own in each worker.)
    slow = ["-k", "gaussian:sigma=30", "--method", "direct", "--threads", "1"]
    args = [*convcli_exe, "batch", str(src), *slow, "-o", str(out), "--jobs", "2"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(out.glob("*.png"))) < 2:
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert b"interrupted" in stderr
    done = list(out.glob("*.png"))
    assert 2 <= len(done) < 12
    assert all(valid_image(p) for p in done)
    assert leftovers(out) == []

    resumed = subprocess.run([*args, "--skip-existing"], capture_output=True, timeout=120, check=False, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert f"skipped {len(done)}".encode() in resumed.stderr
    final = list(out.glob("*.png"))
    assert len(final) == 12
    assert all(valid_image(p) for p in final)
    assert leftovers(out) == []


def test_a_convcli_package_in_the_current_folder_does_not_reach_the_workers(
    convcli_exe: list[str], photos: Path, tmp_path: Path
) -> None:
    # Run from a folder holding another package called convcli (a checkout of another version):
    # the worker processes must still run this convcli.
    here = tmp_path / "checkout"
    (here / "convcli").mkdir(parents=True)
    (here / "convcli" / "__init__.py").write_text("raise SystemExit('the wrong convcli was imported')\n")
    result = run(convcli_exe, "batch", photos, "-k", "sobel", "-o", tmp_path / "out", "-j", "2", cwd=here)
    assert result.returncode == 0, result.stderr
    assert b"wrong convcli" not in result.stderr
    assert len(list((tmp_path / "out").iterdir())) == 4
