"""Planning a batch: every input's output name, refused before any work if two collide or an
output would replace an input."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from convcli.batch.discover import SourceFile, file_key
from convcli.errors import ParameterError
from convcli.io.formats import STDIO, WRITE_SUFFIXES, default_suffix, format_from_name, resolve_format
from convcli.kernels import Kernel

DEFAULT_TEMPLATE = "{stem}-{kernel}.{ext}"
# The fields a name template may use, with what each one holds (shown by ``--help``).
NAME_FIELDS: dict[str, str] = {
    "stem": "input file name without its suffix (photo for photo.jpg)",
    "name": "input file name with its suffix (photo.jpg)",
    "ext": "output suffix without the dot: from --format, else the input's (jpg), png if unwritable",
    "kernel": "kernel names joined with + (sobel, gaussian-sigma2+sobel)",
    "parent": "name of the folder holding the input (2024 for photos/2024/photo.jpg)",
}


def check_template(template: str) -> str:
    """Check an output name template and return it.

    A template is a file name with ``{field}`` placeholders (see :data:`NAME_FIELDS`); it may not
    hold a path separator or ``..``, so every output stays inside the output folder.

    Raises
    ------
    ParameterError
        For an empty template, an unknown or positional field, a separator or ``..``.

    Examples
    --------
    >>> check_template("{stem}-{kernel}.{ext}")
    '{stem}-{kernel}.{ext}'
    >>> check_template("{stem}/{ext}")
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: `--name` must be a file name, not a path: '{stem}/{ext}' holds '/'
    """
    if not template or not template.strip():
        raise ParameterError("`--name` must not be empty")
    if ".." in template:
        raise ParameterError(f"`--name` must not contain '..', got {template!r}")
    for separator in filter(None, (os.sep, os.altsep, "/", "\0")):
        if separator in template:
            shown = "a NUL byte" if separator == "\0" else repr(separator)
            raise ParameterError(f"`--name` must be a file name, not a path: {template!r} holds {shown}")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ParameterError(f"`--name` is not a valid template ({exc}): {template!r}") from None
    known = ", ".join(NAME_FIELDS)
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in NAME_FIELDS:
            what = "an empty field {}" if field_name == "" else f"unknown field {{{field_name}}}"
            raise ParameterError(f"`--name` has {what}; the fields are {known}")
        if conversion not in (None, "s", "r", "a"):
            raise ParameterError(
                f"`--name` has an unknown conversion !{conversion} in {{{field_name}}}; use !s, !r or !a"
            )
        if spec and "{" in spec:
            raise ParameterError(f"`--name` has a field inside the format spec of {{{field_name}}}: {template!r}")
        width = _SPEC_WIDTH.match(spec or "")
        if width and width.group(1) and int(width.group(1)) > NAME_MAX:
            raise ParameterError(
                f"`--name` pads {{{field_name}}} to {width.group(1)} characters; "
                f"a file name holds at most {NAME_MAX} bytes"
            )
    try:
        sample = template.format(**_SAMPLE_VALUES)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ParameterError(f"`--name` has a bad format spec ({exc}): {template!r}") from None
    _check_name(sample, template, "")
    return template


# A file name's limit in bytes on common file systems (NAME_MAX on Linux, macOS and Windows).
NAME_MAX = 255
# The width in a format spec: [[fill]align][sign][z][#][0][width]...
_SPEC_WIDTH = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d+)?", re.DOTALL)
# Values that every template is tried with once, before any file is planned: the shortest a
# field can be, so that only a name too long whatever the input is refused here; each file's own
# name is checked again when it is planned.
_SAMPLE_VALUES = {"stem": "a", "name": "a.b", "ext": "b", "kernel": "b", "parent": "a"}


def _check_name(name: str, template: str, source: str) -> None:
    """Refuse a rendered name that cannot be a file name in the output folder."""
    where = f" for {source}" if source else ""
    if name in ("", ".", ".."):
        what = "an empty file name" if not name else f"the file name {name!r}"
        raise ParameterError(f"`--name` {template!r} gives {what}{where}")
    for separator in filter(None, (os.sep, os.altsep, "/", "\0")):
        if separator in name:
            raise ParameterError(f"`--name` {template!r} gives a name holding {separator!r}{where}: {name!r}")
    if len(os.fsencode(name)) > NAME_MAX:
        raise ParameterError(
            f"`--name` {template!r} gives a name longer than {NAME_MAX} bytes{where}, which no file system takes"
        )


def output_suffix(source: str | Path, fmt: str | None) -> str:
    """The ``{ext}`` field: from ``fmt``, else the input's suffix if convcli writes it, else ``png``.

    >>> output_suffix("a/photo.JPG", None), output_suffix("scan.mpo", None), output_suffix("x.jpg", "png")
    ('JPG', 'png', 'png')
    """
    if fmt:
        return default_suffix(resolve_format(STDIO, fmt)).lstrip(".")
    suffix = Path(source).suffix
    return suffix.lstrip(".") if suffix.lower() in WRITE_SUFFIXES else "png"


def render_name(template: str, source: str | Path, kernels: Sequence[Kernel], fmt: str | None = None) -> str:
    """The output file name of ``source`` under ``template`` (checked by :func:`check_template`).

    >>> from convcli.kernels import load_kernel
    >>> render_name("{parent}_{stem}.{ext}", "photos/2024/beach.jpg", [load_kernel("sobel")], "png")
    '2024_beach.png'
    """
    path = Path(source)
    values = {
        "stem": path.stem,
        "name": path.name,
        "ext": output_suffix(path, fmt),
        "kernel": "+".join(k.slug for k in kernels),
        "parent": Path(os.path.abspath(path)).parent.name,
    }
    name = check_template(template).format(**values)
    _check_name(name, template, str(source))
    return name


@dataclass(frozen=True)
class Task:
    """One input and the output it will be written to; ``error`` marks an input known to be bad."""

    source: Path
    destination: Path
    error: str | None = None


def plan_batch(
    files: Sequence[SourceFile],
    outdir: str | Path,
    kernels: Sequence[Kernel],
    *,
    template: str = DEFAULT_TEMPLATE,
    fmt: str | None = None,
    resume: bool = False,
) -> list[Task]:
    """Give every input its output path, and refuse a plan that would lose data.

    The output of ``files[i]`` is ``outdir / relative.parent / render_name(...)``.

    With ``resume`` (``--skip-existing``), a file found in a folder that is itself the output
    of another input of this plan is taken as the output of an earlier run, and left out of the
    inputs: outputs written beside their inputs (``-o`` equal to a source folder) are then
    skipped instead of refused. Without it, and always for a file named on the command line or
    in a list, such a plan is refused: replacing that file could destroy an input.

    Raises
    ------
    ParameterError
        When the template is bad, a name's suffix is unknown or contradicts ``fmt``, two inputs
        map to the same output, or an output would replace an input file.
    """
    check_template(template)
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise ParameterError(f"{outdir}: the output folder is a file")
    tasks: list[Task] = []
    for item in files:
        destination = outdir / item.relative.parent / render_name(template, item.path, kernels, fmt)
        if item.error is None:
            # An unknown suffix, or one that --format contradicts, fails now, not once per file;
            # a name without a suffix takes each input's format.
            format_from_name(destination, fmt)
        tasks.append(Task(item.path, destination, item.error))
    if resume:
        output_of = {os.path.normcase(os.path.abspath(t.destination)): t.source for t in tasks}
        tasks = [
            task for task, item in zip(tasks, files, strict=True)
            if not item.walked
            or output_of.get(os.path.normcase(os.path.abspath(task.source)), task.source) == task.source
        ]

    claimed: dict[str, Path] = {}
    collisions: list[str] = []
    for task in tasks:
        key = os.path.normcase(os.path.abspath(task.destination))
        if key in claimed:
            collisions.append(f"{claimed[key]} and {task.source} -> {task.destination}")
        else:
            claimed[key] = task.source
    if collisions:
        more = f" (and {len(collisions) - 3} more)" if len(collisions) > 3 else ""
        raise ParameterError(
            f"two inputs would be written to the same output: {'; '.join(collisions[:3])}{more}; "
            "add {parent} or {name} to --name, or use --recursive to mirror folders"
        )

    input_paths = {os.path.normcase(os.path.abspath(t.source)) for t in tasks}
    input_keys = {key for key in (file_key(t.source) for t in tasks) if key is not None}
    for task in tasks:
        hits_path = os.path.normcase(os.path.abspath(task.destination)) in input_paths
        if hits_path or file_key(task.destination) in input_keys:
            raise ParameterError(
                f"{task.destination}: the output would overwrite an input file; choose another -o or --name "
                "(or, if it is the output of an earlier run, resume with --skip-existing)"
            )
    return tasks
