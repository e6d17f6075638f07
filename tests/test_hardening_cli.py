"""How the command line greets a user: --debug, help, completion, tables, hints and names on a terminal."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcli.cli import main
from convcli.errors import ImageError, KernelError
from convcli.kernels import load_kernel

from conftest import SAMPLES, main_in_process


def run(
    cmd: list[str], *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    full_env = {**os.environ, **(env or {})}
    if "CONVCLI_DEBUG" not in (env or {}):
        full_env.pop("CONVCLI_DEBUG", None)
    return subprocess.run(
        [*cmd, *args], capture_output=True, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, timeout=60, check=False
    )


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str,
        columns: int = 80) -> tuple[int, str, str]:
    """Run convcli in this process (much faster than a subprocess): exit status, stdout, stderr."""
    monkeypatch.setenv("COLUMNS", str(columns))
    monkeypatch.delenv("CONVCLI_DEBUG", raising=False)
    return main_in_process(capsys, *args)


def one_line(code: int, err: str, want: int) -> str:
    assert code == want, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("convcli: error: "), err
    return lines[0]


def one_error_line(result: subprocess.CompletedProcess[bytes], code: int) -> str:
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("convcli: error: "), err
    return lines[0]


# -- --debug, before or after the command ---------------------------------------------------------


@pytest.mark.parametrize(
    "args, error",
    [
        (["apply", "missing.png", "-k", "sobel", "--debug"], ImageError),
        (["apply", "--debug", "missing.png", "-k", "sobel"], ImageError),
        (["kernels", "show", "no-such-kernel", "--debug"], KernelError),
        (["kernels", "--debug", "show", "no-such-kernel"], KernelError),
        (["batch", "missing.png", "-k", "nope", "-o", "out", "--debug"], KernelError),
    ],
)
def test_debug_is_accepted_after_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], error: type[Exception]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVCLI_DEBUG", raising=False)
    with pytest.raises(error):  # --debug lets the error through, for its traceback
        main(args)


def test_debug_after_a_command_that_succeeds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(monkeypatch, capsys, "kernels", "list", "--debug", "--json")
    assert code == 0 and err == "" and '"sobel"' in out


def test_debug_environment_variable_and_plain_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], convcli_exe: list[str], tmp_path: Path
) -> None:
    result = run(convcli_exe, "apply", "missing.png", "-k", "sobel", "--debug", cwd=tmp_path)
    assert result.returncode == 1 and b"Traceback" in result.stderr and b"ImageError" in result.stderr
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONVCLI_DEBUG", "1")
    with pytest.raises(ImageError):
        main(["apply", "missing.png", "-k", "sobel"])
    one_line(*cli(monkeypatch, capsys, "apply", "missing.png", "-k", "sobel")[::2], 1)
    # After `--`, --debug is a file name, not the flag.
    line = one_line(*cli(monkeypatch, capsys, "apply", "-k", "sobel", "--", "--debug")[::2], 1)
    assert "--debug" in line


# -- no command, missing arguments, usage lines -----------------------------------------------------


@pytest.mark.parametrize("args", [[], ["kernels"], ["--debug"]])
def test_a_group_without_a_command_shows_its_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert err == ""
    assert "Usage: convcli" in out and "Commands" in out


@pytest.mark.parametrize(
    "args, missing",
    [
        (["kernels", "show"], "missing argument NAME"),
        (["kernels", "export"], "missing argument NAME"),
        (["apply"], "missing argument INPUT"),
        (["apply", "x.png"], "missing option --kernel/-k"),
        (["batch", "x.png", "-k", "sobel"], "missing option --output/-o"),
    ],
)
def test_a_missing_argument_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], missing: str
) -> None:
    code, out, err = cli(monkeypatch, capsys, *args)
    line = one_line(code, err, 2)
    assert missing in line, line
    command = " ".join(a for a in args if a in ("kernels", "show", "export", "apply", "batch"))
    assert f"(see 'convcli {command} --help')" in line
    assert out == ""


@pytest.mark.parametrize("command, argument", [("apply", "INPUT"), ("batch", "[SRC...]"), ("kernels show", "NAME")])
def test_usage_lines_have_no_braces(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str, argument: str
) -> None:
    _, out, _ = cli(monkeypatch, capsys, *command.split(), "--help")
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage
    assert argument in usage, usage


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--padding", "sam"], ["--padding", "same", "valid", "full", "'sam'; did you mean same?"]),
        (["--border", "reflct"], ["--border", "'reflct'; did you mean reflect?"]),
        (["-m", "normalise"], ["--output-mode/-m", "'normalise'; did you mean normalize?"]),
        (["--border", "sam"], ["--border", "reflect", "constant", "'sam'"]),
        (["--output-mode", "foo"], ["--output-mode/-m", "must be one of clip, abs, normalize", "'foo'"]),
        (["-m", "Foo"], ["--output-mode/-m", "clip, abs, normalize"]),
        (["--format", "pgn"], ["--format", "png", "jpeg", "'pgn'"]),
        (["--method", "fast"], ["--method", "auto", "'fast'"]),
        (["--depth", "12"], ["--depth", "8, 16 or float"]),
        (["--threads", "x"], ["--threads", "'x' is not a whole number"]),
        (["--threads", "0"], ["--threads", "must be at least 1, got 0"]),
        (["--quality", "500"], ["--quality", "must be from 1 to 100, got 500"]),
        (["--scale", "big"], ["--scale", "'big' is not a number"]),
        (["--gray=3"], ["--gray", "takes no value"]),
        (["-k"], ["-k", "needs a value"]),
        (["--outputmode", "abs"], ["no such option --outputmode", "--output-mode"]),
        (["extra.png"], ["unexpected extra argument extra.png"]),
    ],
)
def test_option_errors_share_one_format(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], fragments: list[str]
) -> None:
    kernel = [] if args == ["-k"] else ["-k", "box"]
    line = one_line(*cli(monkeypatch, capsys, "apply", "in.png", *kernel, *args)[::2], 2)
    message = line.removeprefix("convcli: error: ")
    assert message[0].islower(), line
    assert "(see 'convcli apply --help')" in line
    assert not re.search(r"\.\s*\(see", line), line  # no sentence period before the hint
    assert "' / '" not in line
    for fragment in fragments:
        assert fragment in line, line


def test_unknown_commands_are_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line(*cli(monkeypatch, capsys, "aply")[::2], 2)
    assert "no such command 'aply'" in line and "apply" in line and "(see 'convcli --help')" in line
    line = one_line(*cli(monkeypatch, capsys, "kernels", "shw")[::2], 2)
    assert "no such command 'shw'" in line and "show" in line


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["--debug", "--version"], ["--version", "apply"]])
def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    import convcli

    code, out, err = cli(monkeypatch, capsys, *args)
    assert code == 0, err
    assert out == f"convcli {convcli.__version__}\n"
    assert err == ""


@pytest.mark.parametrize("command", ["", "apply", "batch", "kernels", "kernels list", "kernels show", "kernels export"])
def test_help_reads_at_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    from convcli.cli.apply_cmd import apply
    from convcli.cli.batch_cmd import batch
    from convcli.cli.kernels_cmd import export_kernel, show_kernel

    code, out, err = cli(monkeypatch, capsys, *command.split(), "--help")
    assert code == 0, err
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
    # Every example command line of the docstring is printed whole, on one line.
    doc = {"apply": apply, "batch": batch, "kernels show": show_kernel, "kernels export": export_kernel}.get(command)
    examples = [
        " ".join(re.sub(r"\[/?\w+\]", "", line).split())
        for line in (doc.__doc__ or "").splitlines()
        if line.strip().startswith(("convcli ", "cat ", "find "))
    ] if doc else []
    printed = {" ".join(line.split()) for line in out.splitlines()}
    for example in examples:
        assert example in printed, (example, out)
    if command in ("apply", "batch"):
        assert len(examples) >= 3 and "--debug" in out


# -- shell completion -------------------------------------------------------------------------------


def _completion_env(shell: str, words: str) -> dict[str, str]:
    """The variables a shell's completion script sets before calling convcli."""
    env = {"_CONVCLI_COMPLETE": f"complete_{shell}"}
    if shell == "bash":
        env.update(COMP_WORDS=words, COMP_CWORD=str(len(words.split(" ")) - 1))
    else:
        env["_TYPER_COMPLETE_ARGS"] = words
        if shell == "fish":
            env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    return env


def complete(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], shell: str, words: str,
             env: dict[str, str] | None = None) -> str:
    """The candidates convcli prints for a completion request (in this process; see the tests in a shell below)."""
    for name, value in {**_completion_env(shell, words), **(env or {})}.items():
        monkeypatch.setenv(name, value)
    code, out, err = cli(monkeypatch, capsys)
    assert code == 0, err
    assert err == ""
    return out


def test_completion_of_kernel_names_in_bash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "my-edges.toml").write_text('name = "e"\ndescription = "d"\nmatrix = [[1]]\n')
    (tmp_path / "my-notes.txt").write_text("")
    monkeypatch.chdir(tmp_path)
    words = set(complete(monkeypatch, capsys, "bash", "convcli apply x.png -k sob").split())
    assert {"sobel", "sobel-x", "sobel-y", "sobel-5x5", "sobel-7x7"} <= words
    assert all(word.startswith("sob") for word in words), words
    words = set(complete(monkeypatch, capsys, "bash", "convcli apply x.png --kernel my").split())
    assert words == {"my-edges.toml"}
    words = set(complete(monkeypatch, capsys, "bash", "convcli batch src -o out -k ").split())
    assert {"gaussian", "sobel", "rgb-to-ycbcr", "my-edges.toml"} <= words and "my-notes.txt" not in words


def test_completion_of_user_kernels_and_kernels_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "mykernel.toml").write_text('name = "mykernel"\ndescription = "d"\nmatrix = [[1]]\n')
    os.mkfifo(user / "myfifo.toml")  # listed by name, never opened: completion cannot hang on it
    monkeypatch.chdir(tmp_path)
    env = {"CONVCLI_KERNEL_PATH": str(user)}
    for words in ("convcli kernels show my", "convcli kernels export my", "convcli apply a.png -k my"):
        assert set(complete(monkeypatch, capsys, "bash", words, env).split()) == {"mykernel", "myfifo"}


def test_completion_of_parameters_in_zsh_and_fish(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = complete(monkeypatch, capsys, "zsh", "convcli apply x.png -k gaussian:")
    for param in ("sigma", "radius", "size"):
        assert f"gaussian\\\\:{param}=" in out, out
    lines = complete(monkeypatch, capsys, "fish", "convcli kernels show gaussian:sigma=2,r").splitlines()
    assert [line.split("\t")[0] for line in lines] == ["gaussian:sigma=2,radius="]
    assert "\t" in lines[0]  # with the parameter's help
    lines = complete(monkeypatch, capsys, "fish", "convcli kernels show lap").splitlines()
    assert [line.split("\t")[0] for line in lines] == ["laplacian", "laplacian-8"]


def test_completion_of_choices_and_commands(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert complete(monkeypatch, capsys, "bash", "convcli apply x.png -m n").split() == ["normalize"]
    assert complete(monkeypatch, capsys, "bash", "convcli ke").split() == ["kernels"]


def test_completion_in_a_subprocess(convcli_exe: list[str], tmp_path: Path) -> None:
    result = run(convcli_exe, cwd=tmp_path, env=_completion_env("bash", "convcli apply x.png -k sob"))
    assert result.returncode == 0 and result.stderr == b"", result.stderr
    assert set(result.stdout.decode().split()) == {"sobel", "sobel-x", "sobel-y", "sobel-5x5", "sobel-7x7"}


def test_completion_is_light_and_quiet(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from convcli.cli import main\n"
        "try:\n"
        "    main([])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('numpy', 'PIL') if m in sys.modules)\n"
        "sys.stderr.write('heavy=' + ','.join(heavy))\n"
    )
    env = {"_CONVCLI_COMPLETE": "complete_bash", "COMP_WORDS": "convcli apply x.png -k gau", "COMP_CWORD": "4"}
    result = run([sys.executable, "-c", script], cwd=tmp_path, env=env)
    assert result.stderr.decode() == "heavy=", result.stderr
    assert result.stdout.decode().split() == ["gaussian"]


@pytest.mark.parametrize(
    "env",
    [
        {"_CONVCLI_COMPLETE": "complete_bash", "COMP_WORDS": "convcli apply x.png -k", "COMP_CWORD": "nine"},
        {"_CONVCLI_COMPLETE": "complete_bash", "COMP_WORDS": "convcli apply 'x.png -k", "COMP_CWORD": "3"},
        {"_CONVCLI_COMPLETE": "complete_bash", "COMP_WORDS": "convcli -V apply", "COMP_CWORD": "2"},
        {"_CONVCLI_COMPLETE": "complete_tcsh", "COMP_WORDS": "convcli ", "COMP_CWORD": "1"},
        {"_CONVCLI_COMPLETE": "complete_bash", "COMP_WORDS": "convcli apply x.png -k sob", "COMP_CWORD": "4",
         "CONVCLI_KERNEL_PATH": "/proc/self/mem:/nonexistent"},
    ],
)
def test_completion_never_prints_a_traceback(convcli_exe: list[str], tmp_path: Path, env: dict[str, str]) -> None:
    result = run(convcli_exe, cwd=tmp_path, env=env)
    assert b"Traceback" not in result.stderr
    assert b"convcli " not in result.stdout  # not the version, not the help


def test_completion_scripts_and_install_options(convcli_exe: list[str], tmp_path: Path) -> None:
    assert b"--install-completion" in run(convcli_exe, "--help").stdout
    for shell in ("zsh", "fish"):
        result = run(convcli_exe, env={"_CONVCLI_COMPLETE": f"source_{shell}"})
        assert result.returncode == 0, result.stderr
        assert b"_CONVCLI_COMPLETE" in result.stdout
    if shutil.which("bash") is None or len(convcli_exe) != 1:
        return
    # The bash script, sourced into a real bash, completes a kernel name through the shell's own variables.
    script = (
        f'eval "$(_CONVCLI_COMPLETE=source_bash {shlex.quote(convcli_exe[0])})"\n'
        "COMP_WORDS=(convcli apply x.png -k scharr-); COMP_CWORD=4\n"
        f"_convcli_completion {shlex.quote(convcli_exe[0])}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, timeout=60, check=False,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split() == ["scharr-x", "scharr-y"]
    # Installing into a home that cannot be written: one line, no traceback.
    home = tmp_path / "home"
    home.write_text("a file, not a folder")
    result = subprocess.run(["bash", "--norc", "-c", f"{shlex.quote(convcli_exe[0])} --install-completion"],
                            capture_output=True, timeout=60, check=False, env={**os.environ, "HOME": str(home)})
    assert result.returncode == 1
    assert b"Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


# -- kernels show and list fit the terminal ---------------------------------------------------------

_SCALE = re.compile(r"values are x 1e([+-]\d+)")


def _printed_matrices(text: str) -> tuple[list[np.ndarray], list[float], list[int]]:
    """The matrices printed by `kernels show` as numbers, the quantum of their cells and their power of ten."""
    lines = text.splitlines()
    matrices: list[np.ndarray] = []
    quanta: list[float] = []
    scales: list[int] = []
    i = 0
    while i < len(lines):
        if re.match(r"\s+(matrix|output \d+).*: sum ", lines[i]):
            rows: dict[int, list[str]] = {}
            i += 1
            row = 0
            while i < len(lines) and lines[i].strip() and not _SCALE.search(lines[i]):
                if re.match(r"\s+columns \d+-\d+ of \d+", lines[i]):
                    row = 0
                else:
                    rows.setdefault(row, []).extend(lines[i].split())
                    row += 1
                i += 1
            exponent = 0
            if i < len(lines) and (scale := _SCALE.search(lines[i])):
                exponent = int(scale.group(1))
            cells = [rows[r] for r in sorted(rows)]
            decimals = max((len(c.split(".")[1]) if "." in c else 0) for r in cells for c in r)
            matrices.append(np.array([[float(c) for c in r] for r in cells]))
            quanta.append(10.0 ** (exponent - decimals))
            scales.append(exponent)
        i += 1
    return matrices, quanta, scales


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize(
    "spec",
    ["gaussian:sigma=2", "gaussian", "log", "dog", "unsharp", "box:size=5", "sobel-7x7", "kirsch", "sobel",
     "motion:length=15,angle=30", "rgb-to-ycbcr", "random:out=2,in=2", "gaussian:sigma=4", "sobel-x:size=15"],
)
def test_kernels_show_fits_the_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], spec: str, columns: int
) -> None:
    code, out, err = cli(monkeypatch, capsys, "kernels", "show", spec, columns=columns)
    assert code == 0, err
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= columns, out
    kernel = load_kernel(spec)
    if kernel.weights is not None:
        want = [kernel.weights[o, i] for o in range(kernel.weights.shape[0]) for i in range(kernel.weights.shape[1])]
    else:
        want = list(kernel.matrices)
    printed, quanta, exponents = _printed_matrices(out)
    assert len(printed) == len(want), out
    if (spec, columns) == ("gaussian:sigma=4", 80):
        assert "columns 1-" in out  # 25 columns do not fit 80 with two digits: printed in blocks
    for got, quantum, exponent, matrix in zip(printed, quanta, exponents, want, strict=True):
        assert got.shape == matrix.shape, out
        # The printed value times the printed scale is the tap, to half the last printed digit.
        assert np.all(np.abs(got * 10.0**exponent - matrix) <= quantum / 2 * 1.0001), (spec, out)
        # Enough digits to be worth printing: exact, or at least two significant digits of the largest tap.
        exact = np.allclose(got * 10.0**exponent, matrix, rtol=0, atol=1e-12)
        assert exact or quantum <= np.abs(matrix).max() / 10 * 1.0001, (spec, out)


def test_kernels_show_large_kernels_are_summarised(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = cli(monkeypatch, capsys, "kernels", "show", "gaussian:sigma=5")
    assert code == 0, err
    assert "31x31" in out and "convcli kernels export gaussian:sigma=5" in out
    assert "…" not in out


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_kernels_list_is_never_cut(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], columns: int
) -> None:
    code, out, err = cli(monkeypatch, capsys, "kernels", "list", columns=columns)
    assert code == 0, err
    assert "…" not in out
    assert max(len(line) for line in out.splitlines()) <= columns
    # Descriptions are wrapped, never cut: every word of each description is there.
    flat = " ".join(re.sub(r"[│┃]", " ", out).split())
    assert "three standard deviations" not in flat  # (not a description: guards the join below)
    for word in ("Marr-Hildreth", "counter-clockwise", "+-1/sqrt(in*size*size))"):
        assert word.replace("-", "") in flat.replace("-", "").replace(" ", "") or word in flat


# -- hints that match what the user did -------------------------------------------------------------


def test_mixing_kernel_hint_matches_the_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = str(tmp_path / "o.png")
    line = one_line(*cli(monkeypatch, capsys, "apply", str(SAMPLES / "camera.png"), "-k", "rgb-to-ycbcr",
                         "-o", out)[::2], 2)
    assert "--gray" not in line and "camera.png is a gray image" in line
    line = one_line(*cli(monkeypatch, capsys, "apply", str(SAMPLES / "camera.png"), "--gray", "-k", "rgb-to-ycbcr",
                         "-o", out)[::2], 2)
    assert "--gray" not in line and "camera.png is a gray image" in line
    line = one_line(*cli(monkeypatch, capsys, "apply", str(SAMPLES / "astronaut.png"), "--gray", "-k",
                         "rgb-to-ycbcr", "-o", out)[::2], 2)
    assert "--gray made the image gray (1 channel); drop --gray" in line
    line = one_line(*cli(monkeypatch, capsys, "apply", str(SAMPLES / "astronaut.png"), "-k", "random:in=1",
                         "-o", out)[::2], 2)
    assert "astronaut.png is a colour image (3 channels); add --gray" in line
    line = one_line(*cli(monkeypatch, capsys, "apply", str(SAMPLES / "astronaut.png"), "-k", "rgb-luma-edges",
                         "-k", "rgb-to-ycbcr", "-o", out)[::2], 2)
    assert "kernel 'rgb-luma-edges' before it leaves 1 channel" in line and "--gray" not in line
    assert list(tmp_path.iterdir()) == []


def test_quality_with_png_output_warns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    camera = str(SAMPLES / "camera.png")

    def warnings_of(*args: str) -> list[str]:
        code, _, err = cli(monkeypatch, capsys, *args)
        assert code == 0, err
        return [line for line in err.splitlines() if line.startswith("convcli: warning:")]

    (warning,) = warnings_of("apply", camera, "-k", "box", "-o", str(tmp_path / "o.png"), "--quality", "50")
    assert "--quality" in warning and "ignored for PNG" in warning
    assert warnings_of("apply", camera, "-k", "box", "-o", str(tmp_path / "q.png"), "--quality", "50", "-q") == []
    assert warnings_of("apply", camera, "-k", "box", "-o", str(tmp_path / "o.jpg"), "--quality", "50") == []
    assert warnings_of("apply", camera, "-k", "box", "--quality", "50", "-o", str(tmp_path / "w.webp")) == []
    (warning,) = warnings_of("apply", camera, "-k", "box", "-o", str(tmp_path / "l.jpg"), "--compress-level", "9")
    assert "--compress-level" in warning and "ignored for JPEG" in warning
    (warning,) = warnings_of("batch", camera, str(SAMPLES / "astronaut.png"), "-k", "box", "-o",
                             str(tmp_path / "out"), "--quality", "50", "-j", "1")
    assert "--quality" in warning


# -- control characters are escaped on the terminal -------------------------------------------------

_NASTY = "a\x1b[31mred\nline\x07\x9b.png"


def _assert_escaped(data: bytes) -> str:
    text = data.decode()
    for raw in ("\x1b", "\x07", "\x9b", "\nline"):
        assert raw not in text, text
    return text


def test_file_names_are_escaped_in_messages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], convcli_exe: list[str], tmp_path: Path
) -> None:
    bad = tmp_path / _NASTY
    bad.write_bytes(b"not an image")
    # End to end once, as a terminal would receive it.
    line = one_error_line(run(convcli_exe, "apply", str(bad), "-k", "box", "-o", str(tmp_path / "o.png")), 1)
    _assert_escaped(line.encode())
    assert "a\\x1b[31mred\\nline\\x07\\x9b.png" in line
    good = tmp_path / "src" / ("b\x1b]0;title\x07.png")
    good.parent.mkdir()
    Image.open(SAMPLES / "camera.png").save(good)
    code, _, err = cli(monkeypatch, capsys, "apply", str(good), "-k", "box")
    assert code == 0, err
    assert "\\x1b]0;title\\x07" in _assert_escaped(err.encode())
    code, _, err = cli(monkeypatch, capsys, "batch", str(good), str(bad), "-k", "box", "-o", str(tmp_path / "out"),
                       "-v", "-j", "1")
    assert code == 1
    text = _assert_escaped(err.encode())
    assert "\\x1b]0;title\\x07" in text and "a\\x1b[31mred\\nline" in text
    assert len(text.splitlines()) == 3  # wrote, error, summary


def test_kernel_descriptions_are_escaped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "evil.toml").write_text(
        'name = "evil"\ndescription = "clear \\u001b[2J screen [bold]x[/bold]"\nmatrix = [[1]]\n'
        'reference = "bell \\u0007"\n'
    )
    (user / "broken\x1b[5m.toml").write_text("matrix = ")
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", str(user))
    code, out, err = cli(monkeypatch, capsys, "kernels", "show", "evil")
    assert code == 0, err
    text = _assert_escaped(out.encode())
    assert "clear \\x1b[2J screen [bold]x[/bold]" in text and "bell \\x07" in text
    code, out, err = cli(monkeypatch, capsys, "kernels", "list", columns=200)
    assert code == 0, err
    assert "\\x1b[2J" in _assert_escaped(out.encode())
    warning = _assert_escaped(err.encode())
    assert "broken\\x1b[5m" in warning and len(warning.splitlines()) == 1


def test_kernels_export_keeps_names_on_one_comment_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import tomllib

    folder = tmp_path / 'x\nname = "evil"\x1b[31m'
    folder.mkdir()
    (folder / "k.toml").write_text('name = "k"\ndescription = "d \\u001b[2J \\u009b1m \\u202e"\nmatrix = [[1, 2]]\n')
    code, out, err = cli(monkeypatch, capsys, "kernels", "export", str(folder / "k.toml"))
    assert code == 0, err
    _assert_escaped(out.encode())
    for raw in ("\u009b", "\u202e"):
        assert raw not in out
    data = tomllib.loads(out)
    assert data["name"] == "k" and data["matrix"] == [[1.0, 2.0]]
    assert data["description"] == "d \x1b[2J \x9b1m \u202e"  # the same text, written as escapes
    assert out.splitlines()[0].startswith("# Exported from k (source ") and "\\x1b[31m" in out.splitlines()[0]
