"""Make the pictures the README shows, from the bundled samples.

Run ``python docs/make_pictures.py [OUT_DIR]`` (default: this folder) to regenerate them; the
test suite runs it into a temporary folder. Each entry of :data:`PICTURES` writes one file into
the folder it is given; add a picture by adding a function and its entry.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
# Small enough for the repository: the whole catalogue at 160 px on the gray camera sample is about
# half a megabyte of PNG (a colour photo, three times that).
GALLERY_SIZE = 160
GALLERY_COMMAND = f"convcli gallery samples/camera.png --size {GALLERY_SIZE} --compress-level 9 -o docs/gallery.png"


def gallery(out_dir: Path) -> None:
    """``gallery.png``: the default gallery (the whole catalogue but random and mixing kernels)."""
    from convcli.gallery import gallery_file
    from convcli.options import JobOptions

    job = JobOptions.from_values(compress_level=9)
    gallery_file(SAMPLES / "camera.png", out_dir / "gallery.png", size=GALLERY_SIZE, job=job)


PICTURES: dict[str, Callable[[Path], None]] = {
    "gallery.png": gallery,
}


def main(out_dir: Path | str = ROOT / "docs") -> list[Path]:
    """Write every picture into ``out_dir``; return their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for make in PICTURES.values():
        make(folder)
    return [folder / name for name in PICTURES]


if __name__ == "__main__":
    for path in main(*sys.argv[1:2]):
        print(path)
