"""What a batch did: a status per file, the totals, the summary line and the JSON report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from convcli.batch.discover import file_key
from convcli.errors import ParameterError
from convcli.io.atomic import write_bytes_atomic
from convcli.io.formats import STDIO
from convcli.io.stdio import write_stdout

Status = Literal["ok", "skipped", "failed", "cancelled"]


@dataclass
class FileStatus:
    """What happened to one input.

    ``status`` is ``ok``, ``skipped`` (the output existed), ``failed`` (``error`` says why) or
    ``cancelled`` (not run: the batch was interrupted or stopped by ``fail_fast``).
    """

    path: str
    output: str
    status: Status
    error: str | None = None
    seconds: float = 0.0
    megapixels: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """The fields of the JSON report."""
        return {
            "path": self.path,
            "output": self.output,
            "status": self.status,
            "error": self.error,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class BatchReport:
    """The outcome of a batch, one :class:`FileStatus` per task in plan order."""

    files: list[FileStatus]
    seconds: float
    jobs: int
    interrupted: bool = False

    def count(self, status: Status) -> int:
        """How many files ended with ``status``."""
        return sum(1 for f in self.files if f.status == status)

    @property
    def megapixels(self) -> float:
        """Input megapixels of the files processed."""
        return sum(f.megapixels for f in self.files if f.status == "ok")

    @property
    def megapixels_per_second(self) -> float:
        """Throughput over the wall time of the run."""
        return self.megapixels / self.seconds if self.seconds > 0 else 0.0

    def summary_line(self) -> str:
        """``processed 38, skipped 0, failed 2 in 3.41 s, 12.3 megapixels/s``.

        >>> BatchReport([FileStatus("a.png", "o.png", "ok", megapixels=2.0)], 0.5, 1).summary_line()
        'processed 1, skipped 0, failed 0 in 0.50 s, 4.0 megapixels/s'
        """
        parts = [f"processed {self.count('ok')}", f"skipped {self.count('skipped')}", f"failed {self.count('failed')}"]
        if self.count("cancelled"):
            parts.append(f"not run {self.count('cancelled')}")
        return f"{', '.join(parts)} in {self.seconds:.2f} s, {self.megapixels_per_second:.1f} megapixels/s"

    def to_dict(self) -> dict[str, object]:
        """The summary and per-file statuses, ready for :func:`json.dumps`."""
        return {
            "processed": self.count("ok"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "cancelled": self.count("cancelled"),
            "interrupted": self.interrupted,
            "jobs": self.jobs,
            "seconds": round(self.seconds, 4),
            "megapixels": round(self.megapixels, 4),
            "megapixels_per_second": round(self.megapixels_per_second, 4),
            "files": [f.to_dict() for f in self.files],
        }

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_dict` as indented JSON, atomically; ``-`` writes it to standard output.

        See :func:`check_report_path` for the paths to refuse before a run.
        """
        data = json.dumps(self.to_dict(), indent=2, ensure_ascii=False).encode() + b"\n"
        if str(path) == STDIO:
            write_stdout(data)
        else:
            write_bytes_atomic(data, Path(path))


def _where(path: str | Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def check_report_path(path: str | Path, *, inputs: Iterable[str | Path], outputs: Iterable[str | Path]) -> None:
    """Refuse a report path that names an input or an output of the run, or a folder, or whose
    folder does not exist and will not be made by the run (the folder of an output or above it).

    Links are followed and hard links recognised, so ``--report`` through a link to an input is
    refused too. ``-`` (standard output) is always accepted.

    Raises
    ------
    ParameterError
        Naming the report path and the file it would replace.

    >>> check_report_path("photos/a.png", inputs=["photos/a.png"], outputs=[])
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: --report photos/a.png would overwrite the input photos/a.png; choose another file
    """
    if str(path) == STDIO:
        return
    if os.path.isdir(path):
        raise ParameterError(f"--report {path} is a folder; give the name of a file")
    where, key = _where(path), file_key(Path(path))
    outputs = list(outputs)
    for role, paths in (("input", inputs), ("output of this run", outputs)):
        for other in paths:
            if _where(other) == where or (key is not None and file_key(Path(other)) == key):
                raise ParameterError(f"--report {path} would overwrite the {role} {other}; choose another file")
    # The folders the run creates: the report may go in one, but must not be one.
    made = {_where(Path(o).parent).rstrip(os.sep) + os.sep for o in outputs}
    if any(m.startswith(where + os.sep) for m in made):
        raise ParameterError(f"--report {path} is the output folder of this run; give the name of a file")
    folder = os.path.dirname(where).rstrip(os.sep) + os.sep
    if not os.path.isdir(folder) and not any(m.startswith(folder) for m in made):
        raise ParameterError(f"--report {path}: the folder {os.path.dirname(path) or '.'} does not exist")


class BatchInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a batch; ``report`` holds what was finished before."""

    def __init__(self, report: BatchReport) -> None:
        super().__init__("interrupted")
        self.report = report
