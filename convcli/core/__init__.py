"""convcli's pure-NumPy core: padding, border modes, stride, dilation, the convolution
engines and the mapping of float responses to 8-bit pixels.

This package imports numpy only (never PIL, typer or rich).
"""

from convcli.core.border import BORDER_ALIASES, BORDER_MODES, pad_image, resolve_border
from convcli.core.convolve import convolve
from convcli.core.engines import METHODS
from convcli.core.geometry import Geometry, centre_indices, output_size, resolve_geometry, resolve_padding, resolve_pair
from convcli.core.mapping import OUTPUT_MODES, map_to_float32, map_to_uint8, map_to_uint16

__all__ = [
    "BORDER_ALIASES",
    "BORDER_MODES",
    "METHODS",
    "OUTPUT_MODES",
    "Geometry",
    "centre_indices",
    "convolve",
    "map_to_float32",
    "map_to_uint8",
    "map_to_uint16",
    "output_size",
    "pad_image",
    "resolve_border",
    "resolve_geometry",
    "resolve_padding",
    "resolve_pair",
]
