"""Kernel files: every validation rule has a malformed file that must be refused, naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convcli.errors import KernelError
from convcli.kernels import load_kernel

HEAD = 'name = "k"\ndescription = "a test kernel"\n'
BIG = "[" + ", ".join("[" + ", ".join(["1"] * 3) + "]" for _ in range(256)) + "]"
WIDE = "[[" + ", ".join(["1"] * 256) + "]]"


def _write(tmp_path: Path, body: str, head: str = HEAD) -> Path:
    """A kernel file of ``body`` after the usual name and description."""
    path = tmp_path / "kernel.toml"
    path.write_text(head + body + "\n", encoding="utf-8")
    return path


def _assert_refused_naming_the_file(path: Path, message: str) -> None:
    with pytest.raises(KernelError, match=message) as info:
        load_kernel(str(path))
    text = str(info.value)
    assert text.startswith(f"{path}: ")
    assert "\n" not in text


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("matrix = [[1, 2], [3]]", "ragged: row 2 has 1 values, row 1 has 2"),
        ('matrix = [[1, "2"]]', r"`matrix` row 1, column 2 must be a number, got '2'"),
        ("matrix = [[1, true]]", "must be a number, got True"),
        ("matrix = [[1, nan]]", "must be finite"),
        ("matrix = [[1, inf]]", "must be finite"),
        ("matrix = []", "`matrix` must be a non-empty list of rows"),
        ("matrix = [[]]", "row 1 is empty"),
        ("matrix = [1, 2]", "row 1 must be a list of numbers"),
        (f"matrix = {BIG}", "256 rows, more than the 255-row limit"),
        (f"matrix = {WIDE}", "256 values, more than the 255 limit"),
        ("matrix = [[1]]\ncolour = 3", "unknown key `colour`"),
        ("", "needs exactly one of `matrix`"),
        ('matrix = [[1]]\nfamily = "box"', r"found `matrix`, `family`"),
        ("matrices = [[[1]], [[2]]]", "a kernel set needs `combine`"),
        ('matrices = [[[1]], [[2]]]\ncombine = "mean"', "`combine` must be one of magnitude, max, sum"),
        ("matrices = [[[1]]]\ncombine = \"max\"", "at least two matrices"),
        ('matrices = [[[1, 2]], [[1], [2]]]\ncombine = "sum"', "must share one centre"),
        ('matrix = [[1]]\ncombine = "max"', "`combine` applies to `matrices` or `members` only"),
        ('members = ["sobel-x"]\ncombine = "sum"', "`members` must be a list of at least two"),
        ('members = ["sobel-x", "kirsch"]\ncombine = "sum"', "member 'kirsch' is not a single 2-D kernel"),
        ('members = ["sobel-x", "nosuch"]\ncombine = "sum"', "unknown kernel 'nosuch'"),
        ('family = "gauss"', "unknown family 'gauss'; did you mean gaussian"),
        ('family = "gaussian"\n[params]\nsigma = -1.0', r"parameter `sigma` must be in \(0, 64\]"),
        ('family = "gaussian"\n[params]\nwidth = 3', "unknown parameter `width`"),
        ('family = "gaussian"\nparams = 3', "`params` must be a table"),
        ("matrix = [[1]]\n[params]\nsigma = 1.0", "`params` belongs with `family`"),
        ("matrix = [[1, -1]]\nnormalize = true", "sums to zero"),
        ('matrix = [[1]]\nnormalize = "yes"', "`normalize` must be true or false"),
        ("matrix = [[1]]\ndivisor = 0", "`divisor` must not be zero"),
        ('matrix = [[1]]\nscale = "2"', "`scale` must be a number"),
        ("matrix = [[1]]\noffset = nan", "`offset` must be finite"),
        ("matrix = [[1, 2]]\nanchor = [0, 2]", "`anchor` \\[0, 2\\] is outside the 1x2 kernel"),
        ("matrix = [[1, 2]]\nanchor = [0]", "`anchor` must be \\[row, col\\]"),
        ("matrix = [[1, 2]]\nanchor = [0, true]", "`anchor` must be \\[row, col\\]"),
        ("weights = [[1, 2, 3]]", "`weights\\[0\\]\\[0\\]` must be a non-empty list of rows"),
        ("weights = [1]", "`weights` must be a list"),
        ("weights = [[[[1]], [[2]]], [[[1]]]]", "`weights\\[1\\]` has 1 matrices, `weights\\[0\\]` has 2"),
        ("weights = [[[[1]], [[2, 3]]]]", "all matrices of a mixing kernel share one size"),
        ("weights = [[[[1]]]]\nbias = [1, 2]", "`bias` has 2 values, but `weights` has 1 output channels"),
        ('weights = [[[[1]]]]\nbias = ["a"]', "`bias` value 1 must be a number"),
        ('weights = [[[[1]]]]\nbias_units = "volts"', "`bias_units` must be one of unit, pixel"),
        ("matrix = [[1]]\nbias = [1]", "`bias` belongs with `weights`"),
        ("weights = [[[[1]]]]\nnormalize = true", "`normalize` applies to matrices, not to `weights`"),
        ("matrix = [[1 2]]", "not valid TOML"),
    ],
)
def test_malformed_file_is_refused_naming_the_file(body: str, message: str, tmp_path: Path) -> None:
    _assert_refused_naming_the_file(_write(tmp_path, body), message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('description = "d"\nmatrix = [[1]]', "missing required key `name`"),
        ('name = "k"\nmatrix = [[1]]', "missing required key `description`"),
        ('name = 3\ndescription = "d"\nmatrix = [[1]]', "`name` must be a string"),
    ],
)
def test_malformed_header_is_refused_naming_the_file(text: str, message: str, tmp_path: Path) -> None:
    _assert_refused_naming_the_file(_write(tmp_path, text, head=""), message)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(KernelError, match="not UTF-8"):
        load_kernel(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(KernelError, match="no such kernel file"):
        load_kernel(str(tmp_path / "absent.toml"))
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    with pytest.raises(KernelError, match="is a directory"):
        load_kernel(str(folder))


def test_member_cycle_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.toml").write_text('name = "a"\ndescription = "d"\nmembers = ["b", "sobel-x"]\ncombine = "sum"\n')
    (tmp_path / "b.toml").write_text('name = "b"\ndescription = "d"\nmembers = ["a", "sobel-y"]\ncombine = "sum"\n')
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", str(tmp_path))
    with pytest.raises(KernelError, match="a cycle"):
        load_kernel("a")


# -- well-formed files ------------------------------------------------------------------------




def test_scale_divisor_normalize(tmp_path: Path) -> None:
    kernel = load_kernel(_write(tmp_path, "matrix = [[1, 2, 1]]\ndivisor = 4\nscale = 2"))
    assert kernel.matrix.tolist() == [[0.5, 1.0, 0.5]]
    assert "divided by 4" in kernel.normalization and "scale 2" in kernel.normalization
    kernel = load_kernel(_write(tmp_path, "matrix = [[1, 2], [3, 4]]\nnormalize = true"))
    np.testing.assert_allclose(kernel.matrix, [[0.1, 0.2], [0.3, 0.4]])
    assert kernel.normalization.startswith("normalize")
    assert load_kernel(_write(tmp_path, "matrix = [[1]]")).normalization == "none"


def test_family_file_with_params_and_command_line_override(tmp_path: Path) -> None:
    path = _write(tmp_path, 'family = "gaussian"\n[params]\nsigma = 2.0')
    kernel = load_kernel(path)
    assert kernel.family == "gaussian" and kernel.shape == (13, 13) and kernel.params["radius"] == 6


def test_set_of_matrices_with_combine(tmp_path: Path) -> None:
    path = _write(tmp_path, 'combine = "sum"\nmatrices = [[[-1, 0, 1]], [[-1], [0], [1]]]')
    kernel = load_kernel(path)
    assert kernel.shape == (3, 3) and len(kernel.matrices) == 2
    np.testing.assert_array_equal(kernel.matrices[0][1], [-1, 0, 1])
    np.testing.assert_array_equal(kernel.matrices[0][0], [0, 0, 0])


def test_mixing_kernel_file_with_pixel_and_unit_bias(tmp_path: Path) -> None:
    pixel = load_kernel(_write(tmp_path, 'weights = [[[[1]], [[0]]]]\nbias = [10]\nbias_units = "pixel"'))
    assert pixel.channels == (2, 1)
    assert pixel.bias_pixels is not None and pixel.bias_pixels.tolist() == [10.0]
    unit = load_kernel(_write(tmp_path, "weights = [[[[1]], [[0]]]]\nbias = [0.5]"))
    assert unit.bias_units == "unit" and unit.bias_pixels is not None and unit.bias_pixels.tolist() == [127.5]


def test_max_side_is_accepted(tmp_path: Path) -> None:
    row = "[" + ", ".join(["1"] * 255) + "]"
    kernel = load_kernel(_write(tmp_path, f"matrix = [{row}]"))
    assert kernel.shape == (1, 255)
