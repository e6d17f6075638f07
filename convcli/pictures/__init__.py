"""Pictures convcli draws: kernel heat maps (here), contact sheets (:mod:`.gallery`), side-by-side
comparisons (:mod:`.compare`) and terminal previews (:mod:`.preview`)."""

from convcli.pictures.heatmap import (
    NEGATIVE_RGB,
    POSITIVE_RGB,
    HeatmapLayout,
    heatmap_layout,
    render_heatmap,
    tap_colour,
    text_colour,
)

__all__ = [
    "NEGATIVE_RGB",
    "POSITIVE_RGB",
    "HeatmapLayout",
    "heatmap_layout",
    "render_heatmap",
    "tap_colour",
    "text_colour",
]
