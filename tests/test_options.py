"""convcli.options and the command line built from it: one declaration, both commands, one job."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from typer.core import TyperGroup
from typer.main import get_command

from convcli.cli import main
from convcli.cli.app import app
from convcli.errors import ParameterError
from convcli.options import (
    OPTION_GROUPS,
    FilterOptions,
    JobOptions,
    Limits,
    OutputOptions,
    option_flags,
    option_spec,
    parse_padding,
    parse_pair,
    parse_size,
)

from conftest import ROOT, SAMPLES

FIELDS = [(group, item) for _, group, _ in OPTION_GROUPS for item in dataclasses.fields(group)]


def _flag(item: dataclasses.Field[Any]) -> str:
    return option_flags(item)[0]


@pytest.mark.parametrize("command", ["apply", "batch"])
def test_every_option_is_on_both_commands_with_its_declared_help(command: str) -> None:
    group = get_command(app)
    assert isinstance(group, TyperGroup)
    click_command = group.commands[command]
    by_flag = {opt: param for param in click_command.params for opt in param.opts}
    for _, item in FIELDS:
        param = by_flag[_flag(item)]
        assert getattr(param, "help", None) == option_spec(item).help
        assert param.name == item.name


@pytest.mark.parametrize("group, item", FIELDS, ids=[item.name for _, item in FIELDS])
def test_option_classes_document_each_field_from_the_same_text(group: type, item: dataclasses.Field[Any]) -> None:
    doc = " ".join((group.__doc__ or "").split())
    assert f"{item.name} : default {item.default!r}" in doc
    assert " ".join(option_spec(item).help.split()) in doc
    assert f"``{_flag(item)}``" in doc


def test_readme_documents_every_option() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [_flag(item) for _, item in FIELDS if f"`{_flag(item)}" not in readme]
    assert missing == []


_OPTIONS = [
    "--padding", "2,1", "--border", "replicate", "--border-value", "7", "--stride", "1,2", "--dilation", "2",
    "--flip", "--method", "direct", "--threads", "3", "--gray", "--all-frames", "-m", "ABS", "--scale", "0.5",
    "--offset", "4", "--format", "tif", "--quality", "80", "--compress-level", "6", "--depth", "16",
    "--max-pixels", "0", "--max-memory", "1.5G",
]
_EXPECTED = JobOptions.from_values(
    padding=(2, 1), border="edge", border_value=7.0, stride=(1, 2), dilation=2, flip=True, method="direct",
    threads=3, gray=True, all_frames=True, mode="abs", scale=0.5, offset=4.0, format="TIFF", quality=80,
    compress_level=6, depth=16, max_pixels=None, max_memory=int(1.5 * 2**30),
)


def test_both_commands_hand_the_same_parsed_job_to_the_library(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import convcli.batch
    import convcli.pipeline

    seen: dict[str, JobOptions] = {}

    def fake_filter_file(source: Any, destination: Any, kernels: Any, job: JobOptions, **_: Any) -> Any:
        seen["apply"] = job
        raise ParameterError("stop here")

    def fake_filter_batch(tasks: Any, kernels: Any, job: JobOptions, **_: Any) -> Any:
        seen["batch"] = job
        raise ParameterError("stop here")

    monkeypatch.setattr(convcli.pipeline, "filter_file", fake_filter_file)
    monkeypatch.setattr(convcli.batch, "filter_batch", fake_filter_batch)
    image = SAMPLES / "camera.png"
    assert main(["apply", str(image), "-k", "box", "-o", str(tmp_path / "o.tif"), *_OPTIONS]) == 2
    assert main(["batch", str(image), "-k", "box", "-o", str(tmp_path / "out"), *_OPTIONS]) == 2
    assert seen == {"apply": _EXPECTED, "batch": _EXPECTED}


def test_defaults_on_the_command_line_are_the_library_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import convcli.pipeline

    seen: list[JobOptions] = []

    def fake_filter_file(source: Any, destination: Any, kernels: Any, job: JobOptions, **_: Any) -> Any:
        seen.append(job)
        raise ParameterError("stop here")

    monkeypatch.delenv("CONVCLI_MAX_PIXELS", raising=False)
    monkeypatch.delenv("CONVCLI_MAX_MEMORY", raising=False)
    monkeypatch.setattr(convcli.pipeline, "filter_file", fake_filter_file)
    main(["apply", str(SAMPLES / "camera.png"), "-k", "box", "-o", str(tmp_path / "o.png")])
    assert seen == [JobOptions()]


@pytest.mark.parametrize("command", ["apply", "batch"])
@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--padding", "1,2,3", "give 1, 2 or 4 numbers"),
        ("--stride", "0", "must be at least 1"),
        ("--border", "mirror", "must be one of reflect"),
        ("--method", "winograd", "must be one of auto"),
        ("--format", "heic", "must be one of png"),
        ("--depth", "12", "must be 8, 16 or float"),
        ("--max-memory", "lots", "expected a size"),
    ],
)
def test_bad_values_name_the_flag_on_both_commands(
    command: str, option: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / ("o.png" if command == "apply" else "out")
    assert main([command, str(SAMPLES / "camera.png"), "-k", "box", "-o", str(out), option, value]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert f"invalid value for {option}: {message}" in lines[0]
    assert not out.exists()


def test_job_options_route_names_to_their_group() -> None:
    job = JobOptions.from_values(border="wrap", depth=16, max_pixels=10)
    assert job.filter == FilterOptions(border="wrap")
    assert job.output == OutputOptions(depth=16)
    assert job.limits == Limits(max_pixels=10)
    assert job.replace(gray=True).input.gray and not job.input.gray
    with pytest.raises(ParameterError, match="unknown option `colour`"):
        job.replace(colour=True)


@pytest.mark.parametrize(
    "parse, text, value",
    [
        (parse_padding, "valid", "valid"),
        (parse_padding, "3", 3),
        (parse_padding, "1, 2, 3, 4", (1, 2, 3, 4)),
        (parse_pair, "2,3", (2, 3)),
        (parse_size, "512M", 512 * 2**20),
        (parse_size, "4GiB", 4 * 2**30),
        (parse_size, "100", 100),
    ],
)
def test_parsers(parse: Any, text: str, value: object) -> None:
    assert parse(text) == value


@pytest.mark.parametrize(
    "parse, text", [(parse_padding, "-1"), (parse_padding, "1,2,3"), (parse_pair, "1,2,3"), (parse_size, "0.5")]
)
def test_parsers_refuse(parse: Any, text: str) -> None:
    with pytest.raises(ParameterError):
        parse(text)
