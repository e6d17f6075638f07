"""Every option of a filtering job, declared once.

A job is "apply these kernels to this image": how each kernel is applied (:class:`FilterOptions`),
how the image is read (:class:`InputOptions`), how the result becomes a file
(:class:`OutputOptions`) and the safety limits checked before decoding (:class:`Limits`).
:class:`JobOptions` carries all four, from the command line through the pipeline to the batch
workers.

Each field is declared with :func:`option`, which records its help text and how it is spelled and
parsed on the command line. ``convcli apply`` and ``convcli batch`` build their shared options from
these declarations (:mod:`convcli.cli.params`), and the class docstrings below are generated from
the same help text, so the two never drift apart. Adding an option is one field here, plus the code
that uses it.

This module imports the standard library only: ``convcli --help`` reads it.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from convcli.errors import ParameterError

PaddingSpec = str | int | Sequence[int]
PairSpec = int | Sequence[int]

# Largest image decoded unless told otherwise: Pillow's own hard limit (twice its
# MAX_IMAGE_PIXELS warning threshold), about 13,000 x 13,000 pixels.
DEFAULT_MAX_PIXELS = 178_956_970
DEFAULT_JPEG_QUALITY = 92
# AVIF's scale reaches JPEG 92's fidelity lower down, in fewer bytes (measured in the README).
DEFAULT_AVIF_QUALITY = 80
# Level 1 is several times faster than zlib's default 6, for a few per cent more bytes.
DEFAULT_PNG_COMPRESS_LEVEL = 1
# Bits per output sample, or "float": the raw float32 response (TIFF and NPY).
OUTPUT_DEPTHS: tuple[int | str, ...] = (8, 16, "float")
OUTPUT_MODE_CHOICES: tuple[str, ...] = ("clip", "abs", "normalize")
ALPHA_CHOICES: tuple[str, ...] = ("auto", "premultiply", "carry", "filter")
PADDING_WORDS: tuple[str, ...] = ("same", "valid", "full")
MAX_MEMORY_ENV = "CONVCLI_MAX_MEMORY"
MAX_PIXELS_ENV = "CONVCLI_MAX_PIXELS"
# Set by the command line: fold native decoders' stderr messages into the one error line.
NATIVE_MESSAGES_ENV = "CONVCLI_FOLD_NATIVE_MESSAGES"


# -- parsing the command line's text -------------------------------------------------------------


def _ints(text: str) -> list[int]:
    try:
        return [int(part.strip()) for part in text.split(",")]
    except ValueError:
        raise ParameterError(f"expected integers separated by commas, got {text!r}") from None


def parse_padding(text: str) -> PaddingSpec:
    """``same``/``valid``/``full``, ``N``, ``R,C`` or ``T,B,L,R``.

    >>> parse_padding("2,1"), parse_padding(" Same ")
    ((2, 1), 'same')
    """
    word = text.strip().lower()
    if word in PADDING_WORDS:
        return word
    if re.fullmatch(r"[a-z_-]+", word):
        close = difflib.get_close_matches(word, PADDING_WORDS, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ParameterError(f"must be {', '.join(PADDING_WORDS)}, N, R,C or T,B,L,R, got {text!r}{hint}")
    values = _ints(text)
    if len(values) not in (1, 2, 4):
        raise ParameterError(f"give 1, 2 or 4 numbers, got {len(values)} in {text!r}")
    if min(values) < 0:
        raise ParameterError(f"padding must not be negative, got {text!r}")
    return values[0] if len(values) == 1 else tuple(values)


def parse_pair(text: str) -> int | tuple[int, int]:
    """``N`` or ``R,C``, each at least 1.

    >>> parse_pair("2"), parse_pair("1,3")
    (2, (1, 3))
    """
    values = _ints(text)
    if len(values) not in (1, 2):
        raise ParameterError(f"give N or R,C, got {text!r}")
    if min(values) < 1:
        raise ParameterError(f"must be at least 1, got {text!r}")
    return values[0] if len(values) == 1 else (values[0], values[1])


_SIZE_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_size(text: str) -> int:
    """A byte count written as ``1024``, ``512M``, ``4G``, ``1.5GiB`` (binary units).

    >>> parse_size("1.5G")
    1610612736
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not match:
        raise ParameterError(f"expected a size such as 512M, 4G or a number of bytes, got {text!r}")
    value = float(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]
    if value < 1:
        raise ParameterError(f"must be at least 1 byte, got {text!r}")
    return int(value)


# The largest float32: filtering runs in float32, so a value beyond it would become infinity.
FLOAT32_MAX = 3.4028234663852886e38


def parse_float32(value: float) -> float:
    """A finite number that float32 holds, as ``--scale``, ``--offset`` and ``--border-value`` need.

    >>> parse_float32(2.5)
    2.5
    >>> parse_float32(1e300)
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: must be a finite number within float32's range (+-3.4e+38), got 1e+300
    """
    number = float(value)
    if not abs(number) <= FLOAT32_MAX:
        raise ParameterError(f"must be a finite number within float32's range (+-{FLOAT32_MAX:.2g}), got {number!r}")
    return number


def _parse_scheduler(text: str) -> str:
    if not text.strip():
        raise ParameterError("must be tcp://HOST:PORT or local, got an empty address")
    return text.strip()


def _parse_border(text: str) -> str:
    from convcli.core.border import resolve_border

    return resolve_border(text)


def _parse_method(text: str) -> str:
    from convcli.core import METHODS

    if text not in METHODS:
        raise ParameterError(f"must be one of {', '.join(METHODS)}, got {text!r}")
    return text


def _parse_format(text: str | None) -> str | None:
    from convcli.io.formats import resolve_format

    return None if text is None else resolve_format("-", text)


def parse_depth(depth: int | str) -> int | str:
    """``8``, ``16`` or ``float``, as text or as the value itself.

    >>> parse_depth("16"), parse_depth(" Float ")
    (16, 'float')
    """
    text = str(depth).strip().lower()
    value: int | str = int(text) if text.isdigit() else text
    if value not in OUTPUT_DEPTHS:
        raise ParameterError(f"must be 8, 16 or float, got {depth!r}")
    return value


def _no_limit_if_zero(count: int) -> int | None:
    return count or None


# -- declaring options ---------------------------------------------------------------------------


@dataclass(frozen=True)
class OptionSpec:
    """How one option is documented and spelled on the command line.

    ``kind`` is the type the command line parses the value as (default: the type of the field's
    default); ``parse`` turns that value into the field's value and raises
    :class:`~convcli.errors.ParameterError` for a bad one; ``cli_default`` is the command line's
    default where it differs from the field's (the text ``"1"`` for a stride of 1); None: the
    field's own default.
    """

    help: str
    flags: tuple[str, ...] = ()
    metavar: str | None = None
    kind: type | None = None
    parse: Callable[[Any], Any] | None = None
    cli_default: str | None = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    envvar: str | None = None


def option(default: Any, help: str, **spec: Any) -> Any:
    """A dataclass field with its :class:`OptionSpec` (help text and command-line spelling)."""
    return field(default=default, metadata={"option": OptionSpec(help, **spec)})


def option_spec(item: dataclasses.Field[Any]) -> OptionSpec:
    """The :class:`OptionSpec` of a field declared with :func:`option`."""
    spec = item.metadata["option"]
    assert isinstance(spec, OptionSpec)
    return spec


def option_flags(item: dataclasses.Field[Any]) -> tuple[str, ...]:
    """The command-line spellings of an option: its declared flags, else ``--field-name``."""
    return option_spec(item).flags or (f"--{item.name.replace('_', '-')}",)


_Options = TypeVar("_Options")


def _documented(cls: type[_Options]) -> type[_Options]:
    """Append a numpy-style Parameters section written from the fields' help text."""
    lines = [(cls.__doc__ or "").rstrip(), "", "Parameters", "----------"]
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]  # a dataclass, which typing cannot say of a TypeVar
        lines.append(f"{item.name} : default {item.default!r}")
        help_line = f"{option_spec(item).help} Command line: ``{option_flags(item)[0]}``."
        lines.append(textwrap.fill(help_line, 96, initial_indent="    ",
                                   subsequent_indent="    "))
    cls.__doc__ = "\n".join(lines) + "\n"
    return cls


@_documented
@dataclass(frozen=True)
class FilterOptions:
    """How each kernel is applied: the keyword arguments of :func:`convcli.core.convolve`."""

    padding: PaddingSpec = option(
        "same",
        "same (output as large as the input), valid (no padding), full, N (N pixels on every side), "
        "R,C (rows, columns) or T,B,L,R (top, bottom, left, right).",
        kind=str, parse=parse_padding, metavar="MODE|N|R,C|T,B,L,R",
    )
    border: str = option(
        "reflect",
        "How pixels beyond the edge are made up: reflect (cb|abc), symmetric (ba|abc), edge (aa|abc), "
        "wrap (bc|abc), zero, constant (the border value).",
        parse=_parse_border, metavar="MODE",
    )
    border_value: float = option(
        0.0, "Pixel value of the constant border, on the 0..255 scale.", parse=parse_float32
    )
    stride: PairSpec = option(
        1, "Step between output pixels: N or R,C.", kind=str, parse=parse_pair, cli_default="1", metavar="N|R,C"
    )
    dilation: PairSpec = option(
        1, "Spacing between kernel taps: N or R,C.", kind=str, parse=parse_pair, cli_default="1", metavar="N|R,C"
    )
    flip: bool = option(False, "Flip the kernel: true convolution instead of cross-correlation.", flags=("--flip",))
    alpha: str = option(
        "auto",
        "Transparency: premultiply (filter colour weighted by alpha, and alpha itself), carry (alpha kept, "
        "unfiltered), filter (alpha as one more channel), auto (premultiply when every kernel's taps sum to 1, "
        "else carry).",
        choices=ALPHA_CHOICES,
    )
    method: str = option(
        "auto", "Convolution engine: auto (a cost model picks), or one of the engines the core offers.",
        parse=_parse_method, metavar="NAME",
    )
    threads: int | None = option(
        None, "Threads for filtering and PNG and AVIF compression; by default one per CPU (small images use one).",
        kind=int, minimum=1, metavar="N",
    )
    scheduler: str | None = option(
        None,
        "Run on a Dask cluster: tcp://HOST:PORT of a running dask.distributed scheduler, or local to start "
        "one on this machine for the run. apply filters one TIFF or Zarr image there in tiles, into a tiled "
        "TIFF or a .zarr output; batch sends the files to the workers. Workers read and write the paths "
        "given (a shared filesystem). Needs the extra named dask.",
        kind=str, parse=_parse_scheduler, metavar="ADDRESS",
    )
    linear: bool = option(
        False,
        "Filter in linear light: decode the sRGB curve before the kernels and encode it after them "
        "(signed responses keep their sign), so that blurs keep bright detail bright.",
        flags=("--linear",),
    )

    def convolve_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of :func:`convcli.core.convolve`: every field but those
        that act around the convolution (``alpha``, ``linear``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in _AROUND_CONVOLVE}


# FilterOptions fields applied by the pipeline around the convolutions (or saying where they run), not passed to them.
_AROUND_CONVOLVE = frozenset({"alpha", "linear", "scheduler"})


@_documented
@dataclass(frozen=True)
class InputOptions:
    """How the image is read before it is filtered."""

    gray: bool = option(False, "Convert colour input to grayscale (ITU-R 601 luma) first.", flags=("--gray",))
    all_frames: bool = option(
        False,
        "Filter every frame of an animated GIF/PNG/WebP or multi-page TIFF and write them all "
        "(output: gif, png, webp or tiff). Otherwise the first frame only, with a warning.",
        flags=("--all-frames",),
    )


@_documented
@dataclass(frozen=True)
class OutputOptions:
    """How float responses become a file: the mapping to 8 (or 16) bits and the encoder settings."""

    mode: str = option(
        "clip",
        "Mapping to pixels, after scale and offset: clip (round, clip to 0..255), abs (|x|: both edge "
        "polarities), normalize (stretch min..max to 0..255).",
        flags=("--output-mode", "-m"), choices=OUTPUT_MODE_CHOICES,
    )
    scale: float = option(1.0, "Multiply the response before mapping.", parse=parse_float32)
    offset: float = option(
        0.0, "Add to the response before mapping (128 shows signed responses).", parse=parse_float32
    )
    format: str | None = option(
        None,
        "Output format (png, jpeg, bmp, tiff, webp, ppm, gif, tga, avif, npy); otherwise from the suffix, "
        "or the input's format for a name without one. A suffix naming another format is refused.",
        kind=str, parse=_parse_format, metavar="FMT",
    )
    quality: int | None = option(
        None, f"JPEG/WebP/AVIF quality, 1..100 (default {DEFAULT_JPEG_QUALITY}; AVIF {DEFAULT_AVIF_QUALITY}).",
        kind=int, minimum=1, maximum=100,
    )
    compress_level: int | None = option(
        None,
        f"PNG compression level, 0..9 (default {DEFAULT_PNG_COMPRESS_LEVEL}: fast; 0-3 compress on every "
        "thread, 4-9 use Pillow's slower, smaller encoder).",
        kind=int, minimum=0, maximum=9,
    )
    depth: int | str = option(
        8,
        "Bits per output sample: 8, 16 (PNG and TIFF) to keep the precision of 16-bit input, or float: the "
        "response after scale and offset, unrounded and unclipped, as 32-bit float (TIFF and NPY).",
        kind=str, parse=parse_depth, cli_default="8", metavar="8|16|float",
    )
    strip: bool = option(
        False,
        "Write no metadata: drop the ICC profile, EXIF, XMP and resolution that are otherwise carried from "
        "the input (as ImageMagick's -strip).",
        flags=("--strip",),
    )


@_documented
@dataclass(frozen=True)
class Limits:
    """Safety limits, checked before any pixel is decoded.

    ``max_memory=None`` uses the memory available (:func:`convcli.memory.available_memory`); no
    check is made where that is unknown.
    """

    max_pixels: int | None = option(
        DEFAULT_MAX_PIXELS,
        "Refuse images larger than this many pixels (width x height, per frame) before decoding them: "
        "the guard against decompression bombs. 0 (None in Python) means no limit.",
        kind=int, minimum=0, parse=_no_limit_if_zero, envvar=MAX_PIXELS_ENV, metavar="N",
    )
    max_memory: int | None = option(
        None,
        "Refuse jobs whose estimated working memory exceeds this size (512M, 4G, 1.5GiB or bytes). "
        "Otherwise the memory available (MemAvailable in /proc/meminfo, or the container's limit).",
        kind=str, parse=parse_size, envvar=MAX_MEMORY_ENV, metavar="SIZE",
    )


# The groups of a job, with the attribute of JobOptions that holds each and its help panel.
OPTION_GROUPS: tuple[tuple[str, type, str], ...] = (
    ("filter", FilterOptions, "Filtering"),
    ("input", InputOptions, "Input"),
    ("output", OutputOptions, "Output"),
    ("limits", Limits, "Limits"),
)


@dataclass(frozen=True)
class JobOptions:
    """Everything a filtering job needs besides its kernels and files: one value of each group.

    >>> job = JobOptions.from_values(border="edge", gray=True, max_memory=2**30)
    >>> job.filter.border, job.input.gray, job.limits.max_memory
    ('edge', True, 1073741824)
    >>> job.replace(threads=1).filter.threads
    1
    """

    filter: FilterOptions = field(default_factory=FilterOptions)
    input: InputOptions = field(default_factory=InputOptions)
    output: OutputOptions = field(default_factory=OutputOptions)
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_groups(
        cls, options: FilterOptions | None, output: OutputOptions | None, *, gray: bool, limits: Limits | None,
        all_frames: bool,
    ) -> JobOptions:
        """A job from the option groups given one by one, as ``process_file`` and ``run_batch`` take them."""
        return cls(
            options or FilterOptions(), InputOptions(gray=gray, all_frames=all_frames), output or OutputOptions(),
            limits or Limits(),
        )

    @classmethod
    def from_values(cls, **values: Any) -> JobOptions:
        """Build a job from option names (``border="edge"``, ``gray=True``), whatever their group."""
        return cls().replace(**values)

    def replace(self, **changes: Any) -> JobOptions:
        """A copy with the named options changed, whatever their group.

        Raises
        ------
        ParameterError
            For a name that is no option.
        """
        unknown = sorted(set(changes) - set(OPTION_OWNERS))
        if unknown:
            raise ParameterError(f"unknown option `{unknown[0]}`; the options are {', '.join(OPTION_OWNERS)}")
        replaced: dict[str, Any] = {}
        for attribute, _, _ in OPTION_GROUPS:
            mine = {name: value for name, value in changes.items() if OPTION_OWNERS[name] == attribute}
            if mine:
                replaced[attribute] = dataclasses.replace(getattr(self, attribute), **mine)
        return dataclasses.replace(self, **replaced)


# Every option name and the JobOptions attribute (group) it belongs to. Names are unique across
# groups, so a flat name is enough to address an option.
OPTION_OWNERS: dict[str, str] = {}
for _attribute, _group, _ in OPTION_GROUPS:
    for _field in dataclasses.fields(_group):
        assert _field.name not in OPTION_OWNERS, f"option {_field.name!r} is declared twice"
        OPTION_OWNERS[_field.name] = _attribute
