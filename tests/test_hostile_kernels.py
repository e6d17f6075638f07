"""Malformed and hostile kernel files, through the command line: one error line, exit 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcli.cli import main

BIG_ROW = "[" + ", ".join(["1"] * 300) + "]"
KERNEL_FILES = {
    "empty": ("", "missing required key `name`"),
    "ragged": ('name="r"\ndescription="d"\nmatrix=[[1,2,3],[4,5]]', "ragged: row 2 has 2 values"),
    "strings": ('name="s"\ndescription="d"\nmatrix=[["a","b"],["c","d"]]', "must be a number, got 'a'"),
    "booleans": ('name="b"\ndescription="d"\nmatrix=[[true,false]]', "must be a number, got True"),
    "nan": ('name="n"\ndescription="d"\nmatrix=[[1,nan]]', "must be finite, got nan"),
    "inf": ('name="i"\ndescription="d"\nmatrix=[[1,-inf]]', "must be finite, got -inf"),
    "huge-rows": ('name="h"\ndescription="d"\nmatrix=[' + ",".join(["[1]"] * 300) + "]", "more than the 255-row limit"),
    "huge-cols": (f'name="h"\ndescription="d"\nmatrix=[{BIG_ROW}]', "more than the 255 limit"),
    "nested-arrays": ('name="x"\ndescription="d"\nmatrix=' + "[" * 5000 + "1" + "]" * 5000, ""),
    "nested-tables": ('name="x"\ndescription="d"\n[' + ".".join(f"t{i}" for i in range(3000)) + "]\n", ""),
    "zero-normalize": ('name="z"\ndescription="d"\nmatrix=[[1,-1]]\nnormalize=true', "sums to zero"),
    "not-toml": ("matrix = [[1, 2]\n", "not valid TOML"),
    "binary": ("\udcff", "not UTF-8"),
}


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[str]]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err.splitlines()


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "small.png"
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(path)
    return path


@pytest.mark.parametrize("name", list(KERNEL_FILES))
def test_bad_kernel_file(name: str, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, message = KERNEL_FILES[name]
    kernel = tmp_path / f"{name}.toml"
    kernel.write_bytes(text.encode("utf-8", "surrogateescape"))
    out = tmp_path / "out.png"
    code, lines = _run(capsys, "apply", image, "-k", kernel, "-o", out)
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith(f"convcli: error: {kernel}: ")
    assert message in lines[0]
    assert not out.exists()


def test_multi_megabyte_kernel_file(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kernel = tmp_path / "big.toml"
    kernel.write_text('name="b"\ndescription="d"\n# ' + "x" * (5 * 1024 * 1024) + "\nmatrix=[[1]]\n")
    code, lines = _run(capsys, "apply", image, "-k", kernel, "-o", tmp_path / "o.png")
    assert code == 2
    assert len(lines) == 1 and "larger than the 4194304-byte limit" in lines[0]


def test_kernel_larger_than_padded_image(image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kernel = tmp_path / "wide.toml"
    kernel.write_text('name="w"\ndescription="d"\nmatrix=[' + ",".join(["[" + ",".join(["1"] * 21) + "]"] * 21) + "]\n")
    out = tmp_path / "o.png"
    code, lines = _run(capsys, "apply", image, "-k", kernel, "--padding", "valid", "-o", out)
    assert code == 2
    assert len(lines) == 1 and "kernel 21x21 is larger than the padded image 8x8" in lines[0]
    assert not out.exists()


@pytest.mark.parametrize(
    "spec, message",
    [
        ("gaussian:sigma=nan", "must be finite"),
        ("gaussian:sigma=1e308", "gaussian: parameter `sigma`"),
        ("box:size=100000", "box: parameter `size`"),
        ("gaussian:sigma=true", "gaussian: parameter `sigma`"),
        ("nosuchkernel", "unknown kernel 'nosuchkernel'"),
    ],
)
def test_hostile_kernel_specs(
    spec: str, message: str, image: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = _run(capsys, "apply", image, "-k", spec, "-o", tmp_path / "o.png")
    assert code == 2, lines
    assert len(lines) == 1 and message in lines[0]
