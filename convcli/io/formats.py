"""The formats convcli reads and writes: the allow-list, suffixes, what each format can hold, and
recognising a file by its first bytes.

This module imports the standard library (and the option declarations) only, so options can be
checked without loading Pillow.
"""

from __future__ import annotations

from pathlib import Path

from convcli.errors import OutputError, ParameterError
from convcli.options import OUTPUT_DEPTHS

STDIO = "-"

# Formats convcli decodes. Anything else (EPS, PDF, PSD, ...) is refused before a decoder runs.
# (Multi-picture JPEGs, MPO, are opened by the JPEG decoder.) AVIF is read and written only where
# Pillow was built with libavif: see avif_problem().
READ_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM", "TGA", "AVIF")
# Formats convcli encodes, with the suffixes that select them.
WRITE_FORMATS: dict[str, tuple[str, ...]] = {
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
    "WEBP": (".webp",),
    "PPM": (".ppm", ".pgm", ".pnm"),
    "GIF": (".gif",),
    "TGA": (".tga",),
    # The float32 response as a NumPy array: written, never read.
    "NPY": (".npy",),
    "AVIF": (".avif",),
}
FORMAT_ALIASES = {"JPG": "JPEG", "TIF": "TIFF", "PGM": "PPM", "PNM": "PPM"}
# Suffixes of files convcli reads that it never writes: MPO (multi-picture JPEG).
READ_ONLY_SUFFIXES: tuple[str, ...] = (".mpo",)
# Suffixes of the formats convcli reads: what a folder walk picks up by default.
READ_SUFFIXES: tuple[str, ...] = tuple(
    sorted(
        {s for fmt, suffixes in WRITE_FORMATS.items() if fmt in READ_FORMATS for s in suffixes}
        | set(READ_ONLY_SUFFIXES)
    )
)
WRITE_SUFFIXES: frozenset[str] = frozenset(s for suffixes in WRITE_FORMATS.values() for s in suffixes)

# What each format can hold, as Pillow writes it.
NO_ALPHA_FORMATS: frozenset[str] = frozenset({"JPEG", "PPM", "GIF"})
DEEP_FORMATS: tuple[str, ...] = ("PNG", "TIFF")  # 16-bit samples
FLOAT_FORMATS: tuple[str, ...] = ("TIFF", "NPY")  # 32-bit float samples (--depth float)
MULTI_FRAME_FORMATS: tuple[str, ...] = ("GIF", "PNG", "TIFF", "WEBP", "AVIF")

# The largest width and height each format holds, as Pillow writes it (checked against Pillow 13):
# GIF and TGA store them in 16-bit header fields, libjpeg stops at its JPEG_MAX_DIMENSION and
# libwebp at WEBP_MAX_DIMENSION; PNG's specification allows 2**31 - 1. TIFF, BMP and PPM hold any
# side convcli can make. AV1 encodes sides up to 65536, but libavif's decoder refuses sides above
# 32768 and images above 16384 x 16384 pixels by default (AVIF_DEFAULT_IMAGE_DIMENSION_LIMIT and
# AVIF_DEFAULT_IMAGE_SIZE_LIMIT): convcli writes no AVIF that it, and Pillow, could not read back.
MAX_SIDES: dict[str, int] = {
    "GIF": 65535, "TGA": 65535, "JPEG": 65500, "WEBP": 16383, "PNG": 2**31 - 1, "AVIF": 32768,
}
MAX_FORMAT_PIXELS: dict[str, int] = {"AVIF": 16384 * 16384}
# Formats whose headers record the file size (BMP) or offsets into it (classic TIFF) in 32 bits.
# The header and tables take a few KiB, kept free here.
MAX_DATA_BYTES: dict[str, int] = {"BMP": 2**32 - 2**16, "TIFF": 2**32 - 2**16}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Leading bytes of formats convcli refuses, so that the message can name what the file is
# without handing it to the matching decoder.
REFUSED_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF"),
    (b"%!PS", "PostScript/EPS"),
    (b"\xc5\xd0\xd3\xc6", "EPS"),
    (b"8BPS", "PSD"),
    (b"<svg", "SVG"),
    (b"<?xml", "XML/SVG"),
    (b"\x00\x00\x01\x00", "ICO"),
    (b"icns", "ICNS"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
)
# Leading bytes of the formats convcli reads: a file that starts like one of these but that
# Pillow cannot identify has a corrupt header, not an unknown format.
READ_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (PNG_SIGNATURE, "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


# ISO base media files (AVIF, HEIF, MP4) start with an `ftyp` box: its size, `ftyp`, the major
# brand, a version, then compatible brands. A file is AVIF when AVIF is among its brands.
AVIF_BRANDS = frozenset({b"avif", b"avis"})
HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})


def ftyp_brands(head: bytes) -> frozenset[bytes]:
    r"""The brands an ISO base media file's leading ``ftyp`` box names (empty for other files).

    >>> sorted(ftyp_brands(b"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1miaf"))
    [b'avif', b'miaf', b'mif1']
    """
    if len(head) < 12 or head[4:8] != b"ftyp":
        return frozenset()
    end = min(len(head), max(16, int.from_bytes(head[:4], "big")))
    return frozenset({head[8:12], *(head[at : at + 4] for at in range(16, end - 3, 4))})


def sniff_format(head: bytes) -> str | None:
    r"""The format convcli reads that the first bytes announce, where a signature tells it.

    >>> sniff_format(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"), sniff_format(b"GIF89a")
    ('AVIF', 'GIF')
    """
    if ftyp_brands(head) & AVIF_BRANDS:
        return "AVIF"
    return sniff(head, READ_SIGNATURES)


def refused_format(head: bytes) -> str | None:
    r"""The name of a format convcli refuses that the first bytes announce, or None.

    >>> refused_format(b"%PDF-1.7"), refused_format(b"\x00\x00\x00\x14ftypheic\x00\x00\x00\x00mif1")
    ('PDF', 'HEIF/HEIC')
    """
    brands = ftyp_brands(head)
    if brands & HEIF_BRANDS and not brands & AVIF_BRANDS:
        return "HEIF/HEIC"
    return sniff(head, REFUSED_SIGNATURES)


def avif_problem() -> str | None:
    """Why this Python cannot read or write AVIF, or None when its Pillow can.

    Pillow reads and writes AVIF from 11.2.1 on when built with libavif, which its wheels include
    from 11.3 on; ``PIL.features.check("avif")`` says so. Pillow is imported here, not at the
    top, so that the rest of this module stays cheap to import.
    """
    from PIL import __version__, features

    # Pillow before 11.2.1 knows no "avif" feature, and warns when asked about an unknown one.
    if "avif" in features.modules and features.check("avif"):
        return None
    return (
        f"this Pillow ({__version__}) has no AVIF support; install a Pillow built with libavif "
        "(pip install -U 'pillow>=11.3': its wheels include it)"
    )


def check_format_available(fmt: str) -> None:
    """Refuse, before any work, to write a format this Python's Pillow cannot encode (AVIF).

    >>> check_format_available("PNG")
    """
    if fmt == "AVIF":
        problem = avif_problem()
        if problem:
            raise OutputError(f"cannot write AVIF: {problem}")


def sniff(head: bytes, table: tuple[tuple[bytes, str], ...]) -> str | None:
    """The name of the first format in ``table`` whose signature ``head`` starts with.

    Text formats (those whose signature starts with ``<``) may follow leading white space.

    >>> sniff(b"%PDF-1.7 ...", REFUSED_SIGNATURES), sniff(b"  <svg>", REFUSED_SIGNATURES)
    ('PDF', 'SVG')
    """
    stripped = head.lstrip()
    for magic, name in table:
        if head.startswith(magic) or (magic[:1] == b"<" and stripped.startswith(magic)):
            return name
    return None


def _format_name(explicit: str) -> str:
    name = explicit.strip().upper().lstrip(".")
    name = FORMAT_ALIASES.get(name, name)
    if name not in WRITE_FORMATS:
        known = ", ".join(f.lower() for f in WRITE_FORMATS)
        raise ParameterError(f"`--format` must be one of {known}, got {explicit!r}")
    return name


def suffix_format(destination: str | Path) -> str | None:
    """The format a file name's suffix selects, or None when the name has no suffix convcli writes.

    >>> suffix_format("out.JPG"), suffix_format("out"), suffix_format("out.dat")
    ('JPEG', None, None)
    """
    suffix = Path(destination).suffix.lower()
    for fmt, suffixes in WRITE_FORMATS.items():
        if suffix in suffixes:
            return fmt
    return None


def writable_format(source_format: str | None) -> str:
    """The format to write an output in when it takes its input's format: the input's own, JPEG
    for a multi-picture JPEG (MPO), PNG for anything convcli does not write.

    >>> writable_format("MPO"), writable_format("TGA"), writable_format(None)
    ('JPEG', 'TGA', 'PNG')
    """
    name = {"MPO": "JPEG"}.get(source_format or "", source_format or "")
    return name if name in WRITE_FORMATS else "PNG"


def format_from_name(destination: str | Path, explicit: str | None) -> str | None:
    """The output format as far as the options and the name tell it; None when it is the input's.

    ``explicit`` (``--format``) wins, but a suffix that names another format is refused rather
    than written over: ``x.jpg`` holding PNG bytes misleads every program that trusts suffixes.
    An unknown suffix is fine with ``explicit`` and refused without it; a name with no suffix
    takes the input's format (None here), and standard output is PNG.

    >>> format_from_name("out.png", None), format_from_name("out", None), format_from_name("out.dat", "tif")
    ('PNG', None, 'TIFF')
    """
    by_suffix = None if str(destination) == STDIO else suffix_format(destination)
    if explicit:
        name = _format_name(explicit)
        if by_suffix is not None and by_suffix != name:
            suffix = Path(destination).suffix
            raise ParameterError(
                f"{destination}: the suffix {suffix} means {by_suffix} but --format says {name}; "
                f"change the suffix or --format"
            )
        return name
    if str(destination) == STDIO:
        return "PNG"
    if by_suffix is not None:
        return by_suffix
    suffix = Path(destination).suffix
    if suffix:
        raise ParameterError(
            f"{destination}: cannot tell the output format from suffix {suffix.lower()!r}; "
            "use a suffix convcli writes or --format"
        )
    return None


def resolve_format(destination: str | Path, explicit: str | None, source_format: str | None = None) -> str:
    """The output format: ``explicit`` if given, else from the suffix; PNG for stdout; with no
    suffix, the input's format ``source_format`` (see :func:`format_from_name`).

    >>> resolve_format("out.JPG", None), resolve_format("-", "tif"), resolve_format("out", None, "BMP")
    ('JPEG', 'TIFF', 'BMP')
    """
    fmt = format_from_name(destination, explicit)
    if fmt is not None:
        return fmt
    if source_format is not None:
        return writable_format(source_format)
    raise ParameterError(f"{destination}: cannot tell the output format from no suffix; add a suffix or use --format")


def check_output_capability(fmt: str, *, depth: int | str = 8, frames: bool = False) -> None:
    """Refuse, before any work, an output the format cannot hold.

    NPY always holds the float32 response, whatever ``depth`` but 16 says.

    >>> check_output_capability("JPEG", depth=16)
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: `--depth 16` needs PNG or TIFF output; JPEG holds 8 bits per sample
    """
    if depth not in OUTPUT_DEPTHS:
        raise ParameterError(f"`--depth` must be 8, 16 or float, got {depth!r}")
    check_format_available(fmt)
    if depth == "float" and fmt not in FLOAT_FORMATS:
        raise ParameterError(f"`--depth float` needs TIFF or NPY output; {fmt} holds integer samples")
    if depth == 16 and fmt == "NPY":
        raise ParameterError("`--depth 16` does not apply to NPY output, which holds the float32 response; drop it")
    if depth == 16 and fmt not in DEEP_FORMATS:
        raise ParameterError(f"`--depth 16` needs PNG or TIFF output; {fmt} holds 8 bits per sample")
    if frames and fmt not in MULTI_FRAME_FORMATS:
        raise ParameterError(
            f"`--all-frames` needs an output format that holds several frames "
            f"({', '.join(f.lower() for f in MULTI_FRAME_FORMATS)}); {fmt} holds one"
        )


def size_problem(fmt: str, width: int, height: int, bytes_per_pixel: int = 1, frames: int = 1) -> str | None:
    """Why an image of this size cannot be written as ``fmt``, or None when it can.

    >>> size_problem("GIF", 70000, 20)
    '70000x20 is too large for GIF, which holds at most 65535x65535 pixels; write PNG or TIFF instead'
    >>> size_problem("PNG", 70000, 20) is None
    True
    """
    side = MAX_SIDES.get(fmt)
    if side is not None and max(width, height) > side:
        return (
            f"{width}x{height} is too large for {fmt}, which holds at most {side}x{side} pixels; "
            "write PNG or TIFF instead"
        )
    most = MAX_FORMAT_PIXELS.get(fmt)
    if most is not None and width * height > most:
        return (
            f"{width}x{height} ({width * height:,} pixels) is too large for {fmt}, whose decoders read at most "
            f"{most:,} pixels; write PNG or TIFF instead"
        )
    limit = MAX_DATA_BYTES.get(fmt)
    if limit is not None:
        row = width * bytes_per_pixel
        if fmt == "BMP":
            row = (row + 3) & ~3  # BMP pads every row to 4 bytes
        total = row * height * frames
        if total > limit:
            return (
                f"{width}x{height} ({total:,} bytes) is too large for {fmt}, whose files hold at most 4 GiB; "
                "write PNG instead"
            )
    return None


def check_encoder_settings(quality: int | None = None, compress_level: int | None = None) -> None:
    """Refuse, before any work, encoder settings outside what the command line accepts.

    >>> check_encoder_settings(quality=0)
    Traceback (most recent call last):
    ...
    convcli.errors.ParameterError: `quality` must be an integer in 1..100, got 0
    """
    for name, value, low, high in (("quality", quality, 1, 100), ("compress_level", compress_level, 0, 9)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high):
            raise ParameterError(f"`{name}` must be an integer in {low}..{high}, got {value!r}")


def default_suffix(fmt: str) -> str:
    """The usual suffix of a format.

    >>> default_suffix("JPEG")
    '.jpg'
    """
    return WRITE_FORMATS[fmt][0]
