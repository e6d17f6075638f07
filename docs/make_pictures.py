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
    from convcli.options import JobOptions
    from convcli.pictures.gallery import gallery_file

    job = JobOptions.from_values(compress_level=9)
    gallery_file(SAMPLES / "camera.png", out_dir / "gallery.png", size=GALLERY_SIZE, job=job)


def compare_picture(out_dir: Path) -> Path:
    """``compare.png``: ``convcli apply astronaut.png -k sobel -m abs --compare``."""
    from convcli.options import JobOptions
    from convcli.pipeline import filter_file

    target = Path(out_dir) / "compare.png"
    # Level 9: the picture lives in the repository, so a smaller file is worth the slower encoder.
    job = JobOptions.from_values(mode="abs", compress_level=9, strip=True)
    filter_file(SAMPLES / "astronaut.png", target, "sobel", job, compare=True)
    return target


# File stem -> kernel: a gradient pair, a large smooth zero-sum kernel and a compass set of 8.
HEATMAPS = {"heatmap-sobel": "sobel", "heatmap-log": "log", "heatmap-kirsch": "kirsch"}


def heatmap_pictures(out_dir: Path | str) -> list[Path]:
    """``heatmap-*.png``: the heat maps of :data:`HEATMAPS` (``convcli kernels show NAME --plot``)."""
    from convcli.io import write_image
    from convcli.kernels import load_kernel
    from convcli.pictures import render_heatmap

    written = []
    for stem, name in HEATMAPS.items():
        path = Path(out_dir) / f"{stem}.png"
        write_image(render_heatmap(load_kernel(name)), None, path)
        written.append(path)
    return written


PICTURES: dict[str, Callable[[Path], object]] = {
    "gallery.png": gallery,
    "compare.png": compare_picture,
    **{f"{stem}.png": heatmap_pictures for stem in HEATMAPS},
}


def main(out_dir: Path | str = ROOT / "docs") -> list[Path]:
    """Write every picture into ``out_dir``; return their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for make in dict.fromkeys(PICTURES.values()):  # a function that writes several files runs once
        make(folder)
    return [folder / name for name in PICTURES]


if __name__ == "__main__":
    for path in main(*sys.argv[1:2]):
        print(path)
