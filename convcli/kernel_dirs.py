"""Where kernel files are found: the built-in folder and the folders of ``CONVCLI_KERNEL_PATH``.

Standard library only, so that shell completion can list kernel names without importing numpy;
:mod:`convcli.kernels` loads the files.
"""

from __future__ import annotations

import os
from pathlib import Path

KERNEL_PATH_ENV = "CONVCLI_KERNEL_PATH"


def builtin_dir() -> Path:
    """Where the built-in kernel files are: inside the installed package, or the checkout's ``kernels/``.

    The wheel ships them as ``convcli/builtin_kernels`` (pyproject's ``force-include``); in a
    checkout they are ``kernels/`` beside the ``convcli`` package, not ``convcli/kernels``.
    """
    package = Path(__file__).resolve().parent
    packaged = package / "builtin_kernels"
    return packaged if packaged.is_dir() else package.parent / "kernels"


def user_dirs() -> list[Path]:
    """Directories listed in ``CONVCLI_KERNEL_PATH`` (``os.pathsep``-separated), in order."""
    value = os.environ.get(KERNEL_PATH_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]
