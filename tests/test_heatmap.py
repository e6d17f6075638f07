"""Kernel heat maps (``kernels show --plot``) and the coloured matrices of ``kernels show``."""

from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from convcli.kernels import load_kernel
from convcli.pictures import NEGATIVE_RGB, POSITIVE_RGB, heatmap_layout, render_heatmap, tap_colour
from convcli.pictures.heatmap import GRID_RGB, MARGIN

from conftest import main_in_process

Pixels = NDArray[np.uint8]


def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run convcli in this process: exit status, stdout, stderr."""
    monkeypatch.setenv("COLUMNS", "80")
    for name in ("CONVCLI_DEBUG", "NO_COLOR", "FORCE_COLOR", "COLORTERM", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return main_in_process(capsys, *args)


def sample(picture: Pixels, box: tuple[int, int, int, int]) -> NDArray[np.int64]:
    """The colour near a cell's top-left corner, inside its frame and away from the centred value."""
    x0, y0, x1, y1 = box
    pixel: NDArray[np.int64] = picture[y0 + (y1 - y0) // 8 + 1, x0 + (x1 - x0) // 8 + 1].astype(np.int64)
    return pixel


def test_sobel_x_negative_taps_are_blue_positive_red_zero_white() -> None:
    kernel = load_kernel("sobel-x")
    picture = render_heatmap(kernel)
    layout = heatmap_layout(kernel)
    assert picture.shape == (layout.height, layout.width, 3)
    peak = float(np.abs(kernel.matrix).max())
    for (i, j), value in np.ndenumerate(kernel.matrix):
        r, g, b = sample(picture, layout.cell_box(0, i, j))
        if value < 0:
            assert b > r + 60, (i, j, r, g, b)
        elif value > 0:
            assert r > b + 60, (i, j, r, g, b)
        else:
            assert min(r, g, b) >= 250, (i, j, r, g, b)
        # Independently of tap_colour: linear in sRGB from white to the documented end colours.
        end = POSITIVE_RGB if value > 0 else NEGATIVE_RGB
        want = 255 + abs(value) / peak * (np.array(end, dtype=np.float64) - 255)
        assert np.all(np.abs(np.array([r, g, b]) - want) <= 1)
    # The strongest taps (the centre row, +-2) reach the scale's ends.
    assert tuple(sample(picture, layout.cell_box(0, 1, 0))) == NEGATIVE_RGB
    assert tuple(sample(picture, layout.cell_box(0, 1, 2))) == POSITIVE_RGB


def test_cells_are_equal_squares_that_fill_the_matrix_area() -> None:
    kernel = load_kernel("log")  # 11x11
    picture = render_heatmap(kernel, cell=20)
    layout = heatmap_layout(kernel, cell=20)
    kh, kw = kernel.shape
    assert (layout.kh, layout.kw) == (kh, kw)
    # Frames sit exactly where the documented geometry puts them: on each cell's top-left corner,
    # and one cell further the next frame; the colour inside is the tap's colour.
    peak = float(np.abs(kernel.matrix).max())
    for i in range(kh):
        for j in range(kw):
            x0, y0, x1, y1 = layout.cell_box(0, i, j)
            assert (x1 - x0, y1 - y0) == (20, 20)
            assert (x0, y0) == (MARGIN + 20 * j, MARGIN + 20 * i)
            assert tuple(picture[y0, x0]) == GRID_RGB
            assert tuple(picture[y1 - 1, x1 - 1]) == GRID_RGB
            assert tuple(sample(picture, (x0, y0, x1, y1))) == tap_colour(float(kernel.matrix[i, j]), peak)
    # Nothing but background right of and between the margin and the matrix.
    right = MARGIN + 20 * kw
    assert np.all(picture[MARGIN : MARGIN + 20 * kh, right:] == 255)


def legend_rows(picture: Pixels, below: int) -> list[int]:
    """Rows under ``below`` holding the colour bar: saturated red at one end and blue at the other."""
    rows = []
    for y in range(below, picture.shape[0]):
        row = picture[y].astype(np.int64)
        reds = (row[:, 0] - row[:, 2]) > 100
        blues = (row[:, 2] - row[:, 0]) > 100
        if reds.any() and blues.any() and np.argmax(blues) < np.argmax(reds):
            rows.append(y)
    return rows


def test_the_legend_is_below_the_matrices() -> None:
    kernel = load_kernel("sobel-x")
    picture = render_heatmap(kernel)
    layout = heatmap_layout(kernel)
    bottom = layout.cell_box(0, 2, 2)[3]
    rows = legend_rows(picture, bottom)
    assert rows and min(rows) >= layout.legend_top > bottom
    assert len(rows) >= 8  # a bar, not a stray line
    # The bar runs blue -> white -> red from left to right, with white in the middle.
    bar = picture[rows[len(rows) // 2]].astype(np.int64)
    inside = bar[MARGIN + 2 : layout.width - MARGIN - 2]
    assert inside[0, 2] > inside[0, 0] and inside[-1, 0] > inside[-1, 2]
    assert np.all(inside[len(inside) // 2] >= 245)
    # Nothing of the matrix's colours beside it: right of the last cell, only background.
    right = layout.cell_box(0, 0, 2)[2]
    assert np.all(picture[: layout.legend_top, right + 1 :] == 255)


@pytest.mark.parametrize("name", ["kirsch", "sobel"])
def test_a_set_draws_its_matrices_side_by_side_on_one_scale(name: str) -> None:
    kernel = load_kernel(name)
    picture = render_heatmap(kernel, cell=16)
    layout = heatmap_layout(kernel, cell=16)
    count = len(kernel.matrices)
    assert (layout.rows, layout.columns) == (1, count)
    peak = max(float(np.abs(m).max()) for m in kernel.matrices)
    tops = {layout.cell_box(k, 0, 0)[1] for k in range(count)}
    assert len(tops) == 1  # one row
    lefts = [layout.cell_box(k, 0, 0)[0] for k in range(count)]
    assert lefts == sorted(lefts) and len(set(lefts)) == count
    for k, matrix in enumerate(kernel.matrices):
        for (i, j), value in np.ndenumerate(matrix):
            got = sample(picture, layout.cell_box(k, i, j))
            assert tuple(got) == tap_colour(float(value), peak), (k, i, j)
            if value:
                assert (got[0] > got[2]) == (value > 0)
    assert legend_rows(picture, layout.cell_box(0, 2, 2)[3])


def test_a_mixing_kernel_draws_an_out_by_in_grid() -> None:
    kernel = load_kernel("random:out=2,in=3,seed=4")
    assert kernel.weights is not None
    out, inp = kernel.weights.shape[:2]
    picture = render_heatmap(kernel)
    layout = heatmap_layout(kernel)
    assert (layout.rows, layout.columns) == (out, inp)
    peak = float(np.abs(kernel.weights).max())
    for o in range(out):
        for i in range(inp):
            for (y, x), value in np.ndenumerate(kernel.weights[o, i]):
                box = layout.cell_box(o * inp + i, y, x)
                assert tuple(sample(picture, box)) == tap_colour(float(value), peak)
    # Rows of panels are apart: the first panel of row 2 starts below the last cell of row 1.
    assert layout.cell_box(inp, 0, 0)[1] > layout.cell_box(0, 2, 2)[3]


def test_default_size_is_reasonable_and_cell_is_checked() -> None:
    for name in ("sobel-x", "kirsch", "log", "gaussian:sigma=5", "rgb-to-ycbcr", "random:out=3,in=3"):
        layout = heatmap_layout(load_kernel(name))
        assert 320 <= layout.width <= 800 and layout.height <= 900, name
    from convcli.errors import ParameterError

    with pytest.raises(ParameterError, match="`--cell`"):
        heatmap_layout(load_kernel("sobel"), cell=0)
    with pytest.raises(ParameterError, match="smaller --cell"):
        heatmap_layout(load_kernel("random:out=64,in=64,size=31"), cell=200)


def test_values_are_written_in_large_cells_only() -> None:
    kernel = load_kernel("identity")
    big = render_heatmap(kernel, cell=60)
    layout = heatmap_layout(kernel, cell=60)
    x0, y0, x1, y1 = layout.cell_box(0, 1, 1)  # the 1: a red cell with light or dark text
    centre = big[y0 + 10 : y1 - 10, x0 + 10 : x1 - 10].reshape(-1, 3)
    assert len({tuple(p) for p in centre}) > 2  # text pixels as well as the fill
    small = render_heatmap(kernel, cell=8)
    layout = heatmap_layout(kernel, cell=8)
    x0, y0, x1, y1 = layout.cell_box(0, 1, 1)
    inner = small[y0 + 1 : y1 - 1, x0 + 1 : x1 - 1].reshape(-1, 3)
    assert {tuple(p) for p in inner} == {POSITIVE_RGB}  # no room for text: only the colour


# -- the command line -----------------------------------------------------------------------------


def test_plot_writes_the_heat_map(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "k.png"
    code, out, err = cli(monkeypatch, capsys, "kernels", "show", "sobel-x", "--plot", str(target))
    assert (code, out, err) == (0, "", "")
    with Image.open(target) as image:
        assert image.format == "PNG"
        written = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(written, render_heatmap(load_kernel("sobel-x")))
    # The suffix picks the format; --cell sets the cell size.
    code, _, err = cli(
        monkeypatch, capsys, "kernels", "show", "kirsch", "--plot", str(tmp_path / "k.bmp"), "--cell", "12"
    )
    assert code == 0, err
    with Image.open(tmp_path / "k.bmp") as image:
        assert image.format == "BMP"
        assert image.size == (
            heatmap_layout(load_kernel("kirsch"), 12).width,
            heatmap_layout(load_kernel("kirsch"), 12).height,
        )


def test_plot_to_stdout_in_a_pipe(convcli_exe: list[str]) -> None:
    result = subprocess.run(
        [*convcli_exe, "kernels", "show", "log", "--plot", "-"], capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    with Image.open(io.BytesIO(result.stdout)) as image:
        assert image.format == "PNG"
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), render_heatmap(load_kernel("log")))


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nope", "--plot", "{tmp}/k.png"], 2, "unknown kernel 'nope'"),
        (["sobel", "--plot", "{tmp}/k.png", "--cell", "0"], 2, "`--cell` must be 1 to"),
        (["sobel", "--cell", "10"], 2, "`--cell` goes with `--plot`"),
        (["sobel", "--plot", "{tmp}/k.xyz"], 2, "k.xyz"),
        (["sobel", "--plot", "{tmp}/missing/k.png"], 1, "missing"),
    ],
)
def test_plot_errors_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    args: list[str],
    code: int,
    message: str,
) -> None:
    got, out, err = cli(monkeypatch, capsys, "kernels", "show", *[a.format(tmp=tmp_path) for a in args])
    assert got == code, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("convcli: error: ") and message in lines[0], err
    assert "Traceback" not in err and out == ""
    assert not list(tmp_path.iterdir())  # nothing written, not even a temporary file


def test_plot_replaces_a_file_whole(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "k.png"
    target.write_bytes(b"old")
    target.chmod(0o640)
    code, _, err = cli(monkeypatch, capsys, "kernels", "show", "sobel", "--plot", str(target))
    assert code == 0, err
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["k.png"]


# -- colours in the terminal ----------------------------------------------------------------------

SGR = re.compile(r"\x1b\[[0-9;]*m")


def test_kernels_show_colours_cells_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(
        monkeypatch, capsys, "kernels", "show", "sobel-x", env={"FORCE_COLOR": "1", "COLORTERM": "truecolor"}
    )
    assert code == 0, err
    # Background colours of the heat map: blue for -2, red for 2, white for 0.
    assert "48;2;{};{};{}".format(*NEGATIVE_RGB) in out
    assert "48;2;{};{};{}".format(*POSITIVE_RGB) in out
    assert "48;2;255;255;255" in out
    plain = SGR.sub("", out)
    assert re.search(r"^  -1 +0 +1$", plain, re.M) and re.search(r"^  -2 +0 +2$", plain, re.M), plain


@pytest.mark.parametrize("env", [{"NO_COLOR": "1", "FORCE_COLOR": "1", "COLORTERM": "truecolor"}, {}])
def test_kernels_show_without_colour_keeps_the_signs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    code, out, err = cli(monkeypatch, capsys, "kernels", "show", "sobel-x", env=env)
    assert code == 0, err
    assert "\x1b" not in out  # not even bold
    assert re.search(r"^  -1 +0 +1$", out, re.M) and re.search(r"^  -2 +0 +2$", out, re.M), out
    assert "blue negative" in out


# -- the README's pictures ------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_readme_heat_maps_are_made_by_the_script(tmp_path: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_pictures_heatmaps", DOCS / "make_pictures.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    written = script.heatmap_pictures(tmp_path)
    assert [p.name for p in written] == ["heatmap-sobel.png", "heatmap-log.png", "heatmap-kirsch.png"]
    readme = (DOCS.parent / "README.md").read_text()
    for path, name in zip(written, ("sobel", "log", "kirsch"), strict=True):
        with Image.open(path) as image:
            fresh = np.asarray(image.convert("RGB"))
        np.testing.assert_array_equal(fresh, render_heatmap(load_kernel(name)))
        # The committed picture is the script's (cell colours and size; text may differ with the font engine).
        with Image.open(DOCS / path.name) as image:
            committed = np.asarray(image.convert("RGB"))
        assert committed.shape == fresh.shape
        kernel = load_kernel(name)
        layout = heatmap_layout(kernel)
        for k, matrix in enumerate(kernel.matrices):
            for i, j in np.ndindex(*matrix.shape):
                box = layout.cell_box(k, i, j)
                assert tuple(sample(committed, box)) == tuple(sample(fresh, box))
        assert f"](docs/{path.name})" in readme


def test_a_long_kernel_name_widens_the_picture_instead_of_being_cut(tmp_path: Path) -> None:
    from convcli.kernels import kernel_from_dict

    name = "a-kernel-with-a-rather-long-name-" * 3
    kernel = kernel_from_dict({"name": name, "description": "d", "matrix": [[-1, 0, 1]]}, "inline")
    picture = render_heatmap(kernel)
    layout = heatmap_layout(kernel)
    assert layout.width > 400
    # The caption's ink reaches past the middle of the picture and stops before its right margin.
    caption_rows = picture[layout.legend_top + 14 + 2 + 16 :, :, :].astype(np.int64)
    ink = np.nonzero((caption_rows.sum(axis=2) < 400).any(axis=0))[0]
    assert ink.size and ink.max() > layout.width // 2 and ink.max() < layout.width - MARGIN // 2


def test_plot_without_a_suffix_is_png(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = cli(monkeypatch, capsys, "kernels", "show", "sobel-x", "--plot", str(tmp_path / "plain"))
    assert code == 0, err
    assert (tmp_path / "plain").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = cli(monkeypatch, capsys, "kernels", "show", "sobel-x", "--plot", os.devnull)
    assert code == 0, err
    # A folder is refused in one line, and left as it was.
    code, _, err = cli(monkeypatch, capsys, "kernels", "show", "sobel-x", "--plot", str(tmp_path))
    assert code in (1, 2) and len(err.splitlines()) == 1 and err.startswith("convcli: error: "), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain"]
