"""The README's ``apply --compare`` picture: the astronaut sample beside its Sobel edges.

``compare_picture(out_dir)`` writes ``out_dir/compare.png``; the script that makes the README's
pictures calls it, and a test checks that the committed picture is what it makes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from convcli.options import JobOptions
from convcli.pipeline import filter_file

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "astronaut.png"


def compare_picture(out_dir: Path) -> Path:
    """Write ``compare.png`` (``convcli apply astronaut.png -k sobel -m abs --compare``) into ``out_dir``."""
    target = Path(out_dir) / "compare.png"
    # Level 9: the picture lives in the repository, so a smaller file is worth the slower encoder.
    job = JobOptions.from_values(mode="abs", compress_level=9, strip=True)
    filter_file(SAMPLE, target, "sobel", job, compare=True)
    return target


if __name__ == "__main__":
    print(compare_picture(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs"))
