"""Shared fixtures and reference implementations for the test suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

# Property tests draw the same examples on every run, seeded from each test function, so a
# failure reproduces exactly; HYPOTHESIS_PROFILE=explore draws fresh examples on every run.
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def main_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run convcli's ``main`` in this process (much faster than a subprocess): exit status, stdout, stderr."""
    from convcli.cli import main

    try:
        code = main(list(args))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def convcli_exe() -> list[str]:
    """The command that runs convcli: the console script beside this Python, else ``python -m convcli``."""
    script = Path(sys.executable).parent / "convcli"
    return [str(script)] if script.exists() else [sys.executable, "-m", "convcli"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261129)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The generated corpus of bad and unusual image files (tests/corpus.py), name -> path."""
    from corpus import write_corpus

    return write_corpus(tmp_path_factory.mktemp("corpus"))
