"""Filter many files at once: discovery, output names, executors, per-file errors, reports.

The work is split in steps so that everything that can be wrong with the request is found
before the first pixel is computed:

1. :func:`discover` walks folders (and takes file lists from :func:`read_file_list`);
2. :func:`plan_batch` gives every input its output path from a name template and refuses
   collisions and outputs that would replace an input;
3. :func:`filter_batch` (or :func:`run_batch`, the same with the options given one by one)
   runs the files through an executor, in this process or in a pool of worker processes that
   receive the kernels once, and returns a :class:`BatchReport`.

======================================= ===========================================================
module                                  owns
======================================= ===========================================================
:mod:`~convcli.batch.discover`          walking folders, reading file lists
:mod:`~convcli.batch.plan`              name templates, output paths, collisions
:mod:`~convcli.batch.executors`         where files are filtered: this process, a process pool
:mod:`~convcli.batch.run`               the work of one file, running a plan, sweeping temp files
:mod:`~convcli.batch.report`            per-file statuses, totals, summary line, JSON report
======================================= ===========================================================

Nothing here prints: per-file results go to a callback and into the report.
"""

from convcli.batch.discover import SourceFile, discover, read_file_list
from convcli.batch.executors import Executor, InProcessExecutor, LocalPoolExecutor, WorkItem
from convcli.batch.plan import (
    DEFAULT_TEMPLATE,
    NAME_FIELDS,
    Task,
    check_template,
    output_suffix,
    plan_batch,
    render_name,
)
from convcli.batch.report import BatchInterrupted, BatchReport, FileStatus, Status
from convcli.batch.run import (
    BatchTerminated,
    Existing,
    FileWork,
    default_jobs,
    filter_batch,
    run_batch,
    sweep_temp_files,
)
from convcli.io.formats import READ_SUFFIXES

__all__ = [
    "DEFAULT_TEMPLATE",
    "NAME_FIELDS",
    "READ_SUFFIXES",
    "BatchInterrupted",
    "BatchReport",
    "BatchTerminated",
    "Executor",
    "Existing",
    "FileStatus",
    "FileWork",
    "InProcessExecutor",
    "LocalPoolExecutor",
    "SourceFile",
    "Status",
    "Task",
    "WorkItem",
    "check_template",
    "default_jobs",
    "discover",
    "filter_batch",
    "output_suffix",
    "plan_batch",
    "read_file_list",
    "render_name",
    "run_batch",
    "sweep_temp_files",
]
