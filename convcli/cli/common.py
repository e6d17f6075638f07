"""Options shared by the commands that filter images, and their conversion to pipeline options.

Every filtering command takes these options with the same names, so scripts can move between
commands without relearning them.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from convcli.cli.options import PADDING_HELP, checked, parse_pair, parse_padding

if TYPE_CHECKING:
    from convcli.kernels import Kernel
    from convcli.pipeline import FilterOptions, Limits, OutputOptions


class OutputMode(str, Enum):
    """How float responses become 8-bit pixels."""

    clip = "clip"
    abs = "abs"
    normalize = "normalize"


KernelOpt = Annotated[
    list[str],
    typer.Option(
        "--kernel",
        "-k",
        help=(
            "Kernel name (sobel), name with parameters (gaussian:sigma=2) or a .toml file. "
            "Repeat to apply several in sequence (in float, rounded once at the end)."
        ),
        metavar="NAME|FILE",
    ),
]
PaddingOpt = Annotated[str, typer.Option(help=PADDING_HELP, metavar="MODE|N|R,C|T,B,L,R")]
BorderOpt = Annotated[
    str,
    typer.Option(
        help="How pixels beyond the edge are made up: reflect (cb|abc), symmetric (ba|abc), edge (aa|abc), "
        "wrap (bc|abc), zero, constant (--border-value).",
        metavar="MODE",
    ),
]
BorderValueOpt = Annotated[float, typer.Option(help="Pixel value used by --border constant (0..255 scale).")]
StrideOpt = Annotated[str, typer.Option(help="Step between output pixels: N or R,C.", metavar="N|R,C")]
DilationOpt = Annotated[str, typer.Option(help="Spacing between kernel taps: N or R,C.", metavar="N|R,C")]
FlipOpt = Annotated[
    bool, typer.Option("--flip", help="Flip the kernel: true convolution instead of cross-correlation.")
]
GrayOpt = Annotated[bool, typer.Option("--gray", help="Convert colour input to grayscale first.")]
OutputModeOpt = Annotated[
    OutputMode,
    typer.Option(
        "--output-mode",
        "-m",
        help="Mapping to 8 bits, after --scale and --offset: clip (round, clip to 0..255), abs (|x|: both edge "
        "polarities), normalize (stretch min..max to 0..255).",
        case_sensitive=False,
    ),
]
ScaleOpt = Annotated[float, typer.Option(help="Multiply the response before mapping.")]
OffsetOpt = Annotated[float, typer.Option(help="Add to the response before mapping (128 shows signed responses).")]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        help="Output format (png, jpeg, bmp, tiff, webp, ppm, gif, tga); default from the suffix.", metavar="FMT"
    ),
]
QualityOpt = Annotated[int | None, typer.Option(help="JPEG/WebP quality, 1..100 (default 92).", min=1, max=100)]
CompressLevelOpt = Annotated[
    int | None, typer.Option(help="PNG compression level, 0..9 (default 1: fast).", min=0, max=9)
]
MethodOpt = Annotated[
    str, typer.Option(help="Convolution engine: auto, or one of the engines the core offers.", metavar="NAME")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        help="Threads for filtering and PNG compression (default: one per CPU; small images use one).",
        min=1,
        metavar="N",
    ),
]
def _quiet_callback(value: bool) -> bool:
    from convcli.cli import set_quiet

    return set_quiet(value)


# The callback runs while options are parsed, so warnings from loading kernels are silenced too.
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="Print nothing but errors.", callback=_quiet_callback)
]


def _border(value: str) -> str:
    from convcli.core.border import resolve_border

    return checked(resolve_border, value, "--border")


def filter_options(
    padding: str,
    border: str,
    border_value: float,
    stride: str,
    dilation: str,
    flip: bool,
    method: str,
    threads: int | None = None,
) -> FilterOptions:
    """Check the filtering options and build :class:`~convcli.pipeline.FilterOptions`."""
    from convcli.core import METHODS
    from convcli.pipeline import FilterOptions

    if method not in METHODS:
        raise typer.BadParameter(f"must be one of {', '.join(METHODS)}, got {method!r}", param_hint="--method")
    return FilterOptions(
        padding=parse_padding(padding),
        border=_border(border),
        border_value=border_value,
        stride=parse_pair(stride, "--stride"),
        dilation=parse_pair(dilation, "--dilation"),
        flip=flip,
        method=method,
        threads=threads,
    )


def output_options(
    mode: OutputMode,
    scale: float,
    offset: float,
    fmt: str | None,
    quality: int | None,
    compress_level: int | None,
    depth: int = 8,
) -> OutputOptions:
    """Build :class:`~convcli.pipeline.OutputOptions`; the format name is checked here."""
    from convcli.images import resolve_format
    from convcli.pipeline import OutputOptions

    if fmt is not None:
        fmt = checked(lambda f: resolve_format("-", f), fmt, "--format")
    if depth not in (8, 16):
        raise typer.BadParameter(f"must be 8 or 16, got {depth}", param_hint="--depth")
    return OutputOptions(
        mode=mode.value,
        scale=scale,
        offset=offset,
        format=fmt,
        quality=quality,
        compress_level=compress_level,
        depth=depth,
    )


def load_kernels(specs: list[str]) -> list[Kernel]:
    """Load every ``--kernel`` before any file is touched, so a typo fails fast."""
    from convcli.kernels import load_kernel

    return [load_kernel(spec) for spec in specs]


# -- limits, depth, frames, in-place -------------------------------------------------------------

# The documented default of --max-pixels; kept in step with convcli.images.DEFAULT_MAX_PIXELS
# (a test checks) so that --help does not have to import Pillow.
DEFAULT_MAX_PIXELS = 178_956_970

MaxPixelsOpt = Annotated[
    int,
    typer.Option(
        "--max-pixels",
        help="Refuse images larger than this many pixels (width x height, per frame) before decoding them: "
        "the guard against decompression bombs. 0 means no limit.",
        envvar="CONVCLI_MAX_PIXELS",
        min=0,
        metavar="N",
    ),
]
MaxMemoryOpt = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        help="Refuse jobs whose estimated working memory exceeds this size (512M, 4G, 1.5GiB or bytes). "
        "Default: the memory available (MemAvailable in /proc/meminfo, or the container's limit).",
        envvar="CONVCLI_MAX_MEMORY",
        metavar="SIZE",
    ),
]
DepthOpt = Annotated[
    int,
    typer.Option(
        "--depth",
        help="Bits per output sample: 8, or 16 to keep the precision of 16-bit grayscale input (PNG and TIFF only).",
        metavar="8|16",
    ),
]
AllFramesOpt = Annotated[
    bool,
    typer.Option(
        "--all-frames",
        help="Filter every frame of an animated GIF/PNG/WebP or multi-page TIFF and write them all "
        "(output: gif, png, webp or tiff). Default: the first frame only, with a warning.",
    ),
]
InPlaceOpt = Annotated[
    bool, typer.Option("--in-place", help="Overwrite the input file with the result (atomically).")
]

_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str, option: str = "--max-memory") -> int:
    """A byte count written as ``1024``, ``512M``, ``4G``, ``1.5GiB`` (binary units).

    >>> parse_size("1.5G")
    1610612736
    """
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not match:
        raise typer.BadParameter(f"expected a size such as 512M, 4G or a number of bytes, got {text!r}", param_hint=option)
    value = float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]
    if value < 1:
        raise typer.BadParameter(f"must be at least 1 byte, got {text!r}", param_hint=option)
    return int(value)


def limits(max_pixels: int, max_memory: str | None) -> Limits:
    """Build :class:`~convcli.pipeline.Limits` from ``--max-pixels`` and ``--max-memory``."""
    from convcli.pipeline import Limits

    if max_pixels < 0:
        raise typer.BadParameter(f"must not be negative, got {max_pixels}", param_hint="--max-pixels")
    return Limits(
        max_pixels=max_pixels or None,
        max_memory=parse_size(max_memory) if max_memory is not None else None,
    )
