"""The wheel ships the built-in kernels, and an installed copy finds them from any folder."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

pytest.importorskip("hatchling")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("convcli-*.whl")
    return built


def test_wheel_contains_every_builtin_kernel(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {Path(n).name for n in names if n.startswith("convcli/builtin_kernels/")}
    expected = {p.name for p in (ROOT / "kernels").glob("*.toml")}
    assert expected and shipped == expected
    assert "convcli/core/convolve.py" in names
    assert "convcli/py.typed" in names  # type checkers use the package's own annotations


def test_installed_copy_loads_kernels_from_another_folder(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)  # a wheel is laid out as site-packages
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import convcli, convcli.kernels as k\n"
        f"assert convcli.__file__.startswith({str(target)!r}), convcli.__file__\n"
        "print(k.builtin_dir())\n"
        "print(convcli.load_kernel('sobel').name, len(k.catalogue()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=elsewhere,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    builtin, summary = result.stdout.strip().splitlines()
    assert Path(builtin) == target / "convcli" / "builtin_kernels"
    assert summary.split()[0] == "sobel" and int(summary.split()[1]) == len(list((ROOT / "kernels").glob("*.toml")))
