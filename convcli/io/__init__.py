"""Everything about image files: which formats, reading, writing, atomic writes, standard streams.

========================== ===========================================================================
module                     owns
========================== ===========================================================================
:mod:`~convcli.io.formats` the allow-list of formats, suffixes, what each can hold, sniffing first bytes
:mod:`~convcli.io.read`    headers and decoding through Pillow, size limits before decoding
:mod:`~convcli.io.modes`   Pillow modes turned into pixels on 0..255 and alpha
:mod:`~convcli.io.write`   encoding frames (Pillow, or the PNG writer) and writing them
:mod:`~convcli.io.png`     the multi-threaded PNG writer and the PNG checksum walk
:mod:`~convcli.io.atomic`  the one atomic-write helper every output goes through
:mod:`~convcli.io.stdio`   standard input and output
:mod:`~convcli.io.native`  native libraries' messages on descriptor 2, folded into the one error line
========================== ===========================================================================

A new image format is added in :mod:`~convcli.io.formats` (allow-list, suffixes, signature) and,
where Pillow does not handle it, in ``read`` and ``write``.

:mod:`~convcli.io.metadata` owns what goes around the pixels: the ICC profile, EXIF, XMP and dpi,
read with them and written as far as each format holds them.

:mod:`~convcli.io.tiff_float` hands Pillow the 64-bit and 16-bit float TIFFs it cannot open as
32-bit ones.
"""

from convcli.io.atomic import temp_file_pattern, write_bytes_atomic
from convcli.io.formats import (
    DEEP_FORMATS,
    FORMAT_ALIASES,
    MULTI_FRAME_FORMATS,
    READ_FORMATS,
    READ_SUFFIXES,
    STDIO,
    WRITE_FORMATS,
    WRITE_SUFFIXES,
    check_encoder_settings,
    check_output_capability,
    default_suffix,
    format_from_name,
    resolve_format,
    size_problem,
    suffix_format,
    writable_format,
)
from convcli.io.metadata import Metadata
from convcli.io.modes import ImageWarning
from convcli.io.png import check_png_chunks, encode_png
from convcli.io.read import ImageHeader, Picture, decode_bytes, read_frames, read_header, read_image
from convcli.io.stdio import check_stdout, describe, open_source, write_stdout
from convcli.io.write import PARALLEL_PNG_MAX_LEVEL, encode_frames, to_pillow, write_frames, write_image
from convcli.options import DEFAULT_JPEG_QUALITY, DEFAULT_MAX_PIXELS, DEFAULT_PNG_COMPRESS_LEVEL

__all__ = [
    "DEEP_FORMATS",
    "DEFAULT_JPEG_QUALITY",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_PNG_COMPRESS_LEVEL",
    "FORMAT_ALIASES",
    "MULTI_FRAME_FORMATS",
    "PARALLEL_PNG_MAX_LEVEL",
    "READ_FORMATS",
    "READ_SUFFIXES",
    "STDIO",
    "WRITE_FORMATS",
    "WRITE_SUFFIXES",
    "ImageHeader",
    "ImageWarning",
    "Metadata",
    "Picture",
    "check_encoder_settings",
    "check_output_capability",
    "check_png_chunks",
    "check_stdout",
    "decode_bytes",
    "default_suffix",
    "describe",
    "encode_frames",
    "encode_png",
    "format_from_name",
    "open_source",
    "read_frames",
    "read_header",
    "read_image",
    "resolve_format",
    "size_problem",
    "suffix_format",
    "temp_file_pattern",
    "to_pillow",
    "writable_format",
    "write_bytes_atomic",
    "write_frames",
    "write_image",
    "write_stdout",
]
