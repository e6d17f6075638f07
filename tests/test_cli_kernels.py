"""``convcli kernels list/show/export`` and ``apply -k`` with kernel files, end to end in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def run(exe: list[str], *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A wide terminal keeps rich from wrapping; an inherited kernel path must not leak in.
    full_env = {k: v for k, v in os.environ.items() if k != "CONVCLI_KERNEL_PATH"}
    full_env.update({"COLUMNS": "200", **(env or {})})
    return subprocess.run([*exe, *args], capture_output=True, text=True, env=full_env, timeout=120, check=False)


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    rng = np.random.default_rng(5)
    path = tmp_path / "in.png"
    Image.fromarray(rng.integers(0, 256, size=(24, 20, 3), dtype=np.uint8), "RGB").save(path)
    return path


def test_list_json_has_every_builtin(convcli_exe: list[str]) -> None:
    result = run(convcli_exe, "kernels", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"sobel", "kirsch", "gaussian", "random", "rgb-to-ycbcr", "horizontal-edge"} <= set(rows)
    assert rows["gaussian"]["size"] == [7, 7] and rows["gaussian"]["params"]["radius"] == 3
    assert rows["random"]["channels"] == [3, 3]
    assert rows["kirsch"]["combine"] == "max"


def test_list_table(convcli_exe: list[str]) -> None:
    result = run(convcli_exe, "kernels", "list")
    assert result.returncode == 0, result.stderr
    for text in ("name", "size", "kind", "description", "kirsch", "set (8, max)", "mixing 3->1"):
        assert text in result.stdout


def test_show_derived_radius_sum_and_separability(convcli_exe: list[str]) -> None:
    result = run(convcli_exe, "kernels", "show", "gaussian:sigma=2")
    assert result.returncode == 0, result.stderr
    assert "radius=6" in result.stdout and "None" not in result.stdout
    assert "size 13x13" in result.stdout
    assert "sum 1, separable (rank 1)" in result.stdout
    assert "normalisation: divided by its sum" in result.stdout
    lap = run(convcli_exe, "kernels", "show", "laplacian")
    assert "sum 0, not separable (rank 2)" in lap.stdout and "-4" in lap.stdout


def test_show_mixing_kernel_bias(convcli_exe: list[str]) -> None:
    result = run(convcli_exe, "kernels", "show", "random:out=1,seed=0")
    assert result.returncode == 0, result.stderr
    assert "output 1, input 3" in result.stdout and "bias:" in result.stdout and "0..255 scale" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kernels", "show", "gaussian:sigma=-1"], "kernel 'gaussian:sigma=-1': gaussian: parameter `sigma` must be"),
        (["kernels", "show", "gaussian:radius=3,colour=2"], "unknown parameter `colour`"),
        (["kernels", "show", "sobbel"], "did you mean sobel"),
        (["kernels", "export", "nope"], "unknown kernel 'nope'"),
    ],
)
def test_errors_are_one_line_exit_2(convcli_exe: list[str], args: list[str], message: str) -> None:
    result = run(convcli_exe, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_malformed_file_exit_2_naming_the_file(convcli_exe: list[str], tmp_path: Path, picture: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\ndescription = "d"\nmatrix = [[1, 2], [3]]\n')
    result = run(convcli_exe, "apply", str(picture), "-k", str(bad), "-o", str(tmp_path / "out.png"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"convcli: error: {bad}: `matrix` is ragged")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("spec", ["gaussian:sigma=1.3", "kirsch", "random:seed=2"])
def test_export_then_apply_gives_identical_output(
    convcli_exe: list[str], tmp_path: Path, picture: Path, spec: str
) -> None:
    exported = tmp_path / "k.toml"
    result = run(convcli_exe, "kernels", "export", spec, "-o", str(exported))
    assert result.returncode == 0, result.stderr
    by_name = tmp_path / "by-name.png"
    by_file = tmp_path / "by-file.png"
    for kernel, out in ((spec, by_name), (str(exported), by_file)):
        done = run(convcli_exe, "apply", str(picture), "-k", kernel, "-o", str(out), "-m", "abs", "-q")
        assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.asarray(Image.open(by_name)), np.asarray(Image.open(by_file)))


def test_export_to_stdout(convcli_exe: list[str]) -> None:
    result = run(convcli_exe, "kernels", "export", "box:size=2")
    assert result.returncode == 0, result.stderr
    assert "matrix = [\n    [0.25, 0.25],\n    [0.25, 0.25],\n]" in result.stdout


def test_mixing_kernel_changes_channels(convcli_exe: list[str], tmp_path: Path, picture: Path) -> None:
    out = tmp_path / "edges.png"
    result = run(convcli_exe, "apply", str(picture), "-k", "rgb-luma-edges", "-m", "abs", "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert Image.open(out).mode == "L"
    gray = run(convcli_exe, "apply", str(picture), "--gray", "-k", "rgb-luma-edges", "-o", str(out))
    assert gray.returncode == 2
    assert "mixes 3 input channels into 1, but --gray made the image gray (1 channel); drop --gray" in gray.stderr
    many = run(convcli_exe, "apply", str(picture), "-k", "random:out=5", "-o", str(tmp_path / "five.png"))
    assert many.returncode == 2 and "leave 5 channels" in many.stderr


def test_user_kernel_path_and_shadow_warning(convcli_exe: list[str], tmp_path: Path, picture: Path) -> None:
    user = tmp_path / "mine"
    user.mkdir()
    (user / "blur3.toml").write_text('name = "blur3"\ndescription = "mine"\nmatrix = [[1, 1, 1]]\ndivisor = 3\n')
    (user / "sobel.toml").write_text('name = "sobel"\ndescription = "my sobel"\nmatrix = [[1]]\n')
    (user / "broken.toml").write_text('name = "broken"\ndescription = "d"\nmatrix = [[true]]\n')
    env = {"CONVCLI_KERNEL_PATH": str(user)}
    result = run(convcli_exe, "apply", str(picture), "-k", "blur3", "-o", str(tmp_path / "b.png"), env=env)
    assert result.returncode == 0, result.stderr
    shadow = run(convcli_exe, "kernels", "show", "sobel", env=env)
    assert shadow.returncode == 0
    assert "convcli: warning: kernel 'sobel' from" in shadow.stderr and "shadows the built-in kernel" in shadow.stderr
    quiet = run(convcli_exe, "apply", str(picture), "-k", "sobel", "-q", "-o", str(tmp_path / "s.png"), env=env)
    assert quiet.returncode == 0 and quiet.stderr == ""
    listing = run(convcli_exe, "kernels", "list", "--json", env=env)
    assert listing.returncode == 0
    names = [row["name"] for row in json.loads(listing.stdout)]
    assert "blur3" in names and "broken" not in names
    assert "kernel 'broken' left out" in listing.stderr and "broken.toml" in listing.stderr
