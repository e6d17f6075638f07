"""The README's kernel heat maps: sobel, Laplacian of Gaussian and kirsch.

Run ``python docs/pictures_heatmaps.py`` from the repository's root to draw them again into
``docs/``; :func:`heatmap_pictures` is what the pictures script and the tests call.
"""

from __future__ import annotations

import sys
from pathlib import Path

from convcli.io import write_image
from convcli.kernels import load_kernel
from convcli.pictures import render_heatmap

# File stem -> kernel: a gradient pair, a large smooth zero-sum kernel and a compass set of 8.
HEATMAPS = {"heatmap-sobel": "sobel", "heatmap-log": "log", "heatmap-kirsch": "kirsch"}


def heatmap_pictures(out_dir: str | Path) -> list[Path]:
    """Write the heat maps as PNG files into ``out_dir``; return their paths."""
    written = []
    for stem, name in HEATMAPS.items():
        path = Path(out_dir) / f"{stem}.png"
        write_image(render_heatmap(load_kernel(name)), None, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in heatmap_pictures(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent):
        print(path)
