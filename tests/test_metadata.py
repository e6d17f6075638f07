"""Metadata carried from input to output: ICC profile, EXIF, XMP and dpi, and ``--strip``.

Outputs are read back with readers other than the writer: a small chunk and marker walk written
here (ICC, XMP, pHYs), exifread for EXIF tags, tifffile for TIFF tags, and Pillow's ImageCms for
the profile's description.
"""

from __future__ import annotations

import io
import struct
import subprocess
import warnings
import zlib
from pathlib import Path
from typing import Any

import exifread
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms, PngImagePlugin

from convcli.io import ImageWarning, check_png_chunks
from convcli.options import JobOptions, OutputOptions
from convcli.pipeline import filter_file, process_file

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
LAB = ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes()
# A profile that is not sRGB: sRGB's curves under another name (its ID field is zero, so the
# bytes may change), and one with a gray colour space for gray images.
WIDE = SRGB.replace("sRGB built-in".encode("utf-16-be"), "Wide RGB test".encode("utf-16-be"))
GRAY = SRGB[:16] + b"GRAY" + SRGB[20:]
XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    b'tiff:Orientation="6" dc:format="image/jpeg"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>'
)
XMP_UPRIGHT = XMP.replace(b'tiff:Orientation="6"', b'tiff:Orientation="1"')
THUMBNAIL = b"\xff\xd8\xff\xd9"  # what a thumbnail holds does not matter, only that it goes

# -- an EXIF block written by hand: IFD0, an Exif IFD and an IFD1 with a thumbnail ---------------


def _ifd(entries: list[tuple[int, int, int, bytes]], at: int, following: int) -> tuple[bytes, bytes]:
    """A little-endian IFD at offset ``at`` (entries: tag, type, count, value bytes) and its data area."""
    head = struct.pack("<H", len(entries))
    data = b""
    data_at = at + 2 + 12 * len(entries) + 4
    for tag, kind, count, value in sorted(entries):
        if len(value) <= 4:
            head += struct.pack("<HHI", tag, kind, count) + value.ljust(4, b"\0")
        else:
            head += struct.pack("<HHII", tag, kind, count, data_at + len(data))
            data += value + b"\0" * (len(value) % 2)
    return head + struct.pack("<I", following), data


def _ascii(tag: int, text: str) -> tuple[int, int, int, bytes]:
    value = text.encode() + b"\0"
    return tag, 2, len(value), value


def exif_block(orientation: int = 6, description: str = "") -> bytes:
    """EXIF (with the ``Exif\\0\\0`` header) with Make, Model, DateTime, Orientation, an Exif IFD
    holding DateTimeOriginal, and an IFD1 with a JPEG thumbnail."""
    exif_entries = [_ascii(0x9003, "2024:05:06 07:08:09")]
    exif_size = 2 + 12 + 4 + 20
    ifd0 = [
        _ascii(0x010F, "ConvcliCam"),
        _ascii(0x0110, "Model One"),
        _ascii(0x0132, "2024:05:06 07:08:09"),
        (0x0112, 3, 1, struct.pack("<H", orientation)),
        (0x8769, 4, 1, b""),
    ]
    if description:
        ifd0.append(_ascii(0x010E, description))
    # Lay out: header (8), IFD0 and its data, the Exif IFD, IFD1, the thumbnail.
    probe, probe_data = _ifd(ifd0, 8, 0)
    exif_at = 8 + len(probe) + len(probe_data)
    ifd1_at = exif_at + exif_size
    ifd1_size = 2 + 3 * 12 + 4
    thumb_at = ifd1_at + ifd1_size
    ifd0[-1 if not description else -2] = (0x8769, 4, 1, struct.pack("<I", exif_at))
    ifd0_bytes, ifd0_data = _ifd(ifd0, 8, ifd1_at)
    exif_bytes, exif_data = _ifd(exif_entries, exif_at, 0)
    ifd1 = [
        (0x0103, 3, 1, struct.pack("<H", 6)),
        (0x0201, 4, 1, struct.pack("<I", thumb_at)),
        (0x0202, 4, 1, struct.pack("<I", len(THUMBNAIL))),
    ]
    ifd1_bytes, _ = _ifd(ifd1, ifd1_at, 0)
    tiff = b"II*\0" + struct.pack("<I", 8) + ifd0_bytes + ifd0_data + exif_bytes + exif_data + ifd1_bytes + THUMBNAIL
    assert len(exif_bytes + exif_data) == exif_size
    return b"Exif\0\0" + tiff


def make_input(
    path: Path,
    fmt: str,
    *,
    icc: bytes = SRGB,
    exif: bytes | None = None,
    size: tuple[int, int] = (20, 10),
    **extra: Any,
) -> Path:
    """An RGB gradient carrying ``icc``, EXIF, XMP and 300 dpi."""
    width, height = size
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[..., 0] = np.arange(width)[None, :] * 10
    pixels[..., 1] = np.arange(height)[:, None] * 20
    image = Image.fromarray(pixels, "RGB")
    options: dict[str, Any] = {"icc_profile": icc, "exif": exif_block() if exif is None else exif, "dpi": (300, 300)}
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", XMP.decode(), zip=False)
        options["pnginfo"] = info
    else:
        options["xmp"] = XMP
    image.save(path, fmt, **{**options, **extra})
    return path


# -- independent readers: ICC, XMP and dpi by walking the file's own structure -------------------


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    at, chunks = 8, []
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at : at + 8])
        body = data[at + 8 : at + 8 + length]
        assert struct.unpack(">I", data[at + 8 + length : at + 12 + length])[0] == zlib.crc32(kind + body)
        chunks.append((kind, body))
        at += 12 + length
    return chunks


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    at, segments = 2, []
    while data[at] == 0xFF and data[at + 1] != 0xDA:
        length = struct.unpack(">H", data[at + 2 : at + 4])[0]
        segments.append((data[at + 1], data[at + 4 : at + 2 + length]))
        at += 2 + length
    return segments


def webp_chunks(data: bytes) -> dict[bytes, bytes]:
    at, chunks = 12, {}
    while at + 8 <= len(data):
        kind, length = struct.unpack("<4sI", data[at : at + 8])
        chunks[kind] = data[at + 8 : at + 8 + length]
        at += 8 + length + (length & 1)
    return chunks


def carried(path: Path) -> dict[str, Any]:
    """ICC, XMP and dpi of a PNG, JPEG, WebP or TIFF, read without Pillow."""
    data = path.read_bytes()
    found: dict[str, Any] = {"icc": None, "xmp": None, "dpi": None}
    if data.startswith(b"\x89PNG"):
        for kind, body in png_chunks(data):
            if kind == b"iCCP":
                name, rest = body.split(b"\0", 1)
                assert 1 <= len(name) <= 79 and rest[0] == 0
                found["icc"] = zlib.decompress(rest[1:])
            elif kind == b"iTXt" and body.startswith(b"XML:com.adobe.xmp\0"):
                found["xmp"] = body.split(b"\0", 5)[5][0:] if body[18:20] == b"\0\0" else None
            elif kind == b"pHYs":
                x, y, unit = struct.unpack(">IIB", body)
                assert unit == 1
                found["dpi"] = (round(x * 0.0254, 1), round(y * 0.0254, 1))
    elif data.startswith(b"\xff\xd8"):
        parts = []
        for marker, body in jpeg_segments(data):
            if marker == 0xE2 and body.startswith(b"ICC_PROFILE\0"):
                parts.append((body[12], body[14:]))
            elif marker == 0xE1 and body.startswith(b"http://ns.adobe.com/xap/1.0/\0"):
                found["xmp"] = body[29:]
            elif marker == 0xE0 and body.startswith(b"JFIF\0") and body[7] == 1:
                found["dpi"] = struct.unpack(">HH", body[8:12])
        found["icc"] = b"".join(p for _, p in sorted(parts)) or None
    elif data.startswith(b"RIFF"):
        chunks = webp_chunks(data)
        found["icc"], found["xmp"] = chunks.get(b"ICCP"), chunks.get(b"XMP ")
    else:
        with tifffile.TiffFile(path) as tiff:
            tags = tiff.pages[0].tags  # type: ignore[union-attr]
            found["icc"] = tags[34675].value if 34675 in tags else None
            found["xmp"] = tags[700].value if 700 in tags else None
            if 282 in tags:
                assert tags[296].value == 2
                found["dpi"] = tuple(round(tags[t].value[0] / tags[t].value[1], 1) for t in (282, 283))
    return found


def exif_tags(path: Path) -> dict[str, Any]:
    """EXIF tags as exifread reads them: name -> list of values.

    WebP's EXIF chunk holds the TIFF structure alone (the container's specification); exifread
    looks for an Exif header there, so it is handed the chunk as the TIFF structure it is.
    """
    data = path.read_bytes()
    if data.startswith(b"RIFF"):
        data = webp_chunks(data).get(b"EXIF", b"")
        if not data:
            return {}
    tags = exifread.process_file(io.BytesIO(data), details=False)
    return {name: tag.values for name, tag in tags.items()}


def run(convcli_exe: list[str], *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*convcli_exe, *args], input=stdin, capture_output=True, timeout=60, check=False)


def apply(source: Path, out: Path, **options: Any) -> list[str]:
    """Filter ``source`` with a box blur in this process; return the warnings' messages."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filter_file(source, out, "box", JobOptions.from_values(**options))
    return [str(w.message) for w in caught if issubclass(w.category, ImageWarning)]


# -- carried to every format that holds it --------------------------------------------------------


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A JPEG stored 20x10 with orientation 6, an sRGB profile, EXIF with a thumbnail, XMP, 300 dpi."""
    return make_input(tmp_path_factory.mktemp("meta") / "photo.jpg", "JPEG")


def check_exif(path: Path, *, sub_ifd: bool = True) -> None:
    tags = exif_tags(path)
    assert tags["Image Make"] == "ConvcliCam"
    assert tags["Image Model"] == "Model One"
    assert tags["Image DateTime"] == "2024:05:06 07:08:09"
    assert tags["Image Orientation"] == [1]
    assert not [name for name in tags if name.startswith("Thumbnail")]
    if sub_ifd:
        assert tags["EXIF DateTimeOriginal"] == "2024:05:06 07:08:09"


@pytest.mark.parametrize(
    "suffix, level, cli",
    [
        ("png", None, True),
        ("png", 6, False),
        ("jpg", None, False),
        ("tif", None, False),
        ("webp", None, False),
        ("tif", 6, False),
    ],
)
def test_metadata_carried_to_each_format(
    convcli_exe: list[str], photo: Path, tmp_path: Path, suffix: str, level: int | None, cli: bool
) -> None:
    out = tmp_path / f"out.{suffix}"
    if cli:
        result = run(convcli_exe, "apply", str(photo), "-k", "box", "-o", str(out))
        assert result.returncode == 0 and b"warning" not in result.stderr, result.stderr
    else:
        warned = apply(photo, out, compress_level=level)
        # libtiff takes no sub-directory: compressed TIFF keeps EXIF's main tags, and says so.
        assert len(warned) == (suffix == "tif" and level is not None), warned
    found = carried(out)
    assert found["icc"] == SRGB
    assert ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(found["icc"]))).strip() == "sRGB built-in"
    assert found["xmp"] == XMP_UPRIGHT  # the orientation is the pixels' own: upright
    if suffix != "webp":  # WebP has no resolution field
        assert found["dpi"] == (300, 300)
    check_exif(out, sub_ifd=suffix != "tif" or level is None)
    with Image.open(out) as back:
        assert back.size == (10, 20)  # turned upright, and not turned again by a reader
        assert back.getexif().get(0x0112) == 1


@pytest.mark.parametrize("level", range(10))
def test_every_png_level_carries_a_non_srgb_profile(tmp_path: Path, level: int) -> None:
    source = make_input(tmp_path / "in.png", "PNG", icc=WIDE)
    out = tmp_path / "out.png"
    process_file(source, out, "box", output=OutputOptions(compress_level=level))
    data = out.read_bytes()
    kinds = [kind for kind, _ in png_chunks(data)]
    first_idat = kinds.index(b"IDAT")
    for kind in (b"iCCP", b"pHYs", b"eXIf", b"iTXt"):
        assert kinds.index(kind) < first_idat, kinds
    with io.BytesIO(data) as handle:
        check_png_chunks(handle, "out.png")
    found = carried(out)
    assert found["icc"] == WIDE and found["xmp"] == XMP_UPRIGHT and found["dpi"] == (300, 300)
    description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(found["icc"])))
    assert description.strip() == "Wide RGB test"
    check_exif(out)
    with Image.open(out) as back:  # Pillow reads what the writer wrote
        assert back.info["icc_profile"] == WIDE and back.info["dpi"] == pytest.approx((300, 300), abs=0.01)
        assert back.getexif()[0x010F] == "ConvcliCam" and back.info["xmp"] == XMP_UPRIGHT


def test_bmp_keeps_the_dpi(photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.bmp"
    assert apply(photo, out) == []
    pixels_per_metre = struct.unpack("<ii", out.read_bytes()[38:46])
    assert pixels_per_metre == (11811, 11811)


# -- --strip ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["png", "jpg", "tif", "webp", "bmp"])
def test_strip_drops_everything(convcli_exe: list[str], photo: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"out.{suffix}"
    if suffix == "png":
        result = run(convcli_exe, "apply", str(photo), "-k", "box", "-o", str(out), "--strip")
        assert result.returncode == 0, result.stderr
    else:
        assert apply(photo, out, strip=True) == []
    if suffix != "bmp":
        found = carried(out)
        assert found["icc"] is None and found["xmp"] is None
        assert found["dpi"] in (None, (1, 1))  # JFIF without --strip's dpi says 1:1 pixels with no unit
        assert not {"Image Make", "Image Model", "Image DateTime", "EXIF DateTimeOriginal"} & set(exif_tags(out))
    else:
        assert struct.unpack("<ii", out.read_bytes()[38:46]) != (11811, 11811)
    with Image.open(out) as back:
        assert not {"icc_profile", "exif", "xmp"} & set(back.info)
        assert back.info.get("dpi") != pytest.approx((300, 300), abs=0.01)


def test_strip_in_python_and_default_keeps(tmp_path: Path, photo: Path) -> None:
    process_file(photo, tmp_path / "kept.png", "box")
    process_file(photo, tmp_path / "stripped.png", "box", output=OutputOptions(strip=True))
    assert carried(tmp_path / "kept.png")["icc"] == SRGB
    assert carried(tmp_path / "stripped.png") == {"icc": None, "xmp": None, "dpi": None}
    kinds = {kind for kind, _ in png_chunks((tmp_path / "stripped.png").read_bytes())}
    assert kinds == {b"IHDR", b"IDAT", b"IEND"}


# -- batch, standard streams, frames ------------------------------------------------------------


def test_batch_carries_and_strips(convcli_exe: list[str], photo: Path, tmp_path: Path) -> None:
    for flags, expected in (([], SRGB), (["--strip"], None)):
        outdir = tmp_path / f"out{len(flags)}"
        result = run(convcli_exe, "batch", str(photo), "-k", "box", "-o", str(outdir), "--format", "png", *flags)
        assert result.returncode == 0, result.stderr
        (out,) = outdir.iterdir()
        assert carried(out)["icc"] == expected
        assert ("Image Make" in exif_tags(out)) == (not flags)


def test_stdin_to_stdout_carries(convcli_exe: list[str], tmp_path: Path) -> None:
    source = make_input(tmp_path / "in.png", "PNG", icc=WIDE)
    result = run(convcli_exe, "apply", "-", "-k", "box", stdin=source.read_bytes())
    assert result.returncode == 0, result.stderr
    (tmp_path / "out.png").write_bytes(result.stdout)
    found = carried(tmp_path / "out.png")
    assert found["icc"] == WIDE and found["dpi"] == (300, 300) and found["xmp"] == XMP_UPRIGHT
    check_exif(tmp_path / "out.png")


def test_all_frames_keep_the_first_frames_metadata(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (6, 4), (i * 50, 0, 0)) for i in range(3)]
    source = tmp_path / "anim.png"
    frames[0].save(source, "PNG", save_all=True, append_images=frames[1:], icc_profile=WIDE, dpi=(150, 150))
    for suffix in ("png", "tif", "webp"):
        out = tmp_path / f"out.{suffix}"
        process_file(source, out, "box", all_frames=True)
        with Image.open(out) as back:
            assert getattr(back, "n_frames", 1) == 3
            assert back.info["icc_profile"] == WIDE
        assert carried(out)["icc"] == WIDE


@pytest.mark.parametrize("suffix", ["png", "tif"])
def test_a_profile_goes_only_where_its_colour_space_is_the_outputs(tmp_path: Path, photo: Path, suffix: str) -> None:
    gray_out = tmp_path / f"gray.{suffix}"
    process_file(photo, gray_out, "box", gray=True)  # an RGB profile does not describe gray samples
    found = carried(gray_out)
    assert found["icc"] is None and found["dpi"] == (300, 300) and found["xmp"] == XMP_UPRIGHT
    check_exif(gray_out)
    gray_in = tmp_path / "gray-in.png"
    Image.new("L", (4, 4), 9).save(gray_in, icc_profile=GRAY)
    process_file(gray_in, tmp_path / f"kept.{suffix}", "box")
    assert carried(tmp_path / f"kept.{suffix}")["icc"] == GRAY
    lab_in = make_input(tmp_path / "lab-in.png", "PNG", icc=LAB)
    process_file(lab_in, tmp_path / f"lab.{suffix}", "box")
    assert carried(tmp_path / f"lab.{suffix}")["icc"] is None


def test_stride_scales_the_dpi(tmp_path: Path, photo: Path) -> None:
    from convcli.options import FilterOptions

    process_file(photo, tmp_path / "half.png", "box", FilterOptions(stride=(1, 2)))
    # photo is turned upright: its columns are the stored rows. A step of 2 along x halves the x dpi.
    assert carried(tmp_path / "half.png")["dpi"] == (150, 300)


# -- hostile metadata ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fmt, exif",
    [
        ("PNG", b"Exif\0\0II*\0\xff\xff\xff\x7f" + b"\x07" * 40),  # its directory lies past its end
        ("PNG", b"Exif\0\0" + b"\x96\x803Iw_\xe7\xb1" * 4),  # not a TIFF structure at all
        ("JPEG", b"Exif\0\0" + b"\x96\x803Iw_\xe7\xb1" * 4),
        ("WEBP", b"Exif\0\0II*\xca\x08\0\0\0" + bytes(30)),
    ],
)
def test_corrupt_exif_is_dropped_with_a_warning(convcli_exe: list[str], tmp_path: Path, fmt: str, exif: bytes) -> None:
    source = make_input(tmp_path / f"in.{fmt.lower()}", fmt, exif=exif)
    out = tmp_path / "out.jpg"
    result = run(convcli_exe, "apply", str(source), "-k", "box", "-o", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.decode().splitlines()
    assert any("EXIF" in line and "warning" in line for line in lines), lines
    assert "Traceback" not in result.stderr.decode()
    assert not exif_tags(out)
    assert carried(out)["icc"] == SRGB  # the rest is kept


def test_exif_too_large_for_jpeg_is_dropped_with_one_line(tmp_path: Path) -> None:
    source = make_input(tmp_path / "in.png", "PNG", exif=exif_block(description="x" * 70_000))
    for suffix, kept in (("jpg", False), ("png", True), ("webp", True)):
        out = tmp_path / f"out.{suffix}"
        warned = apply(source, out)
        assert len(warned) == (0 if kept else 1) and all("EXIF" in w for w in warned), warned
        assert ("Image Make" in exif_tags(out)) == kept
        assert carried(out)["icc"] == SRGB


def test_large_profile_is_split_over_jpeg_markers(tmp_path: Path) -> None:
    # A valid-looking profile of 200 KiB: the header's size field says so; the rest is padding.
    large = bytearray(SRGB + b"\0" * (200 * 1024 - len(SRGB)))
    large[0:4] = struct.pack(">I", len(large))
    source = make_input(tmp_path / "in.png", "PNG", icc=bytes(large))
    process_file(source, tmp_path / "out.jpg", "box")
    assert carried(tmp_path / "out.jpg")["icc"] == bytes(large)


def test_profile_over_the_cap_is_dropped_when_read(tmp_path: Path) -> None:
    huge = SRGB + bytes(16 * 1024 * 1024)
    source = tmp_path / "in.tif"
    Image.new("RGB", (4, 4)).save(source, icc_profile=huge, dpi=(200, 200))
    (warning,) = apply(source, tmp_path / "out.tif")
    assert "ICC profile" in warning and "dropped" in warning
    found = carried(tmp_path / "out.tif")
    assert found["icc"] is None and found["dpi"] == (200, 200)


def test_profile_too_large_for_png_readers_goes_to_jpeg_only(tmp_path: Path) -> None:
    large = SRGB + bytes(2 * 1024 * 1024)  # more than the 1 MiB Pillow decompresses from iCCP
    source = tmp_path / "in.tif"
    Image.new("RGB", (4, 4)).save(source, icc_profile=large)
    for suffix, level in (("png", 1), ("png", 9), ("jpg", None)):
        out = tmp_path / f"out-{level}.{suffix}"
        warned = apply(source, out, compress_level=level)
        assert carried(out)["icc"] == (large if suffix == "jpg" else None)
        assert [w for w in warned if "too large for PNG" in w] == ([] if suffix == "jpg" else warned), warned
        with Image.open(out) as back:  # the output reads back
            back.load()


def test_a_tiff_inputs_layout_tags_stay_behind(tmp_path: Path) -> None:
    # A TIFF's EXIF is its own directory: the camera tags go on, its strips and sizes do not.
    source = tmp_path / "in.tif"
    exif = Image.Exif()
    exif.load(exif_block())
    Image.new("RGB", (6, 4)).save(source, exif=exif, icc_profile=SRGB)
    out = tmp_path / "out.jpg"
    assert apply(source, out) == []
    tags = exif_tags(out)
    assert tags["Image Make"] == "ConvcliCam" and tags["EXIF DateTimeOriginal"] == "2024:05:06 07:08:09"
    assert not {"Image ImageWidth", "Image StripOffsets", "Image BitsPerSample", "Image Compression"} & set(tags)
    with Image.open(out) as back:
        assert back.size == (4, 6)  # orientation 6, applied once


def test_a_tiff_without_resolution_gives_none(tmp_path: Path) -> None:
    source = tmp_path / "in.tif"
    Image.new("RGB", (6, 4)).save(source)  # no resolution tag: Pillow itself reports 1 dpi
    for suffix in ("png", "jpg"):
        apply(source, tmp_path / f"out.{suffix}")
        assert carried(tmp_path / f"out.{suffix}")["dpi"] is None


def test_python_api_reads_and_writes_metadata(tmp_path: Path, photo: Path) -> None:
    from convcli.io import read_image, write_image

    picture = read_image(photo)
    assert picture.metadata.icc == SRGB and picture.metadata.dpi == (300, 300)
    assert picture.metadata.xmp == XMP_UPRIGHT
    write_image(picture.pixels.astype(np.uint8), None, tmp_path / "out.webp", metadata=picture.metadata)
    assert carried(tmp_path / "out.webp")["icc"] == SRGB
    check_exif(tmp_path / "out.webp")


@pytest.mark.parametrize("suffix", ["tif", "png", "jpg"])
def test_metadata_made_by_hand_never_fails_a_write(tmp_path: Path, suffix: str) -> None:
    from convcli.io import write_image
    from convcli.io.metadata import Metadata

    garbage = Metadata(icc=SRGB, exif=b"\x96\x803Iw_\xe7\xb1" * 4, xmp=b"\xff\xfe", dpi=(1e12, 0.5))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        write_image(np.zeros((4, 5, 3), np.uint8), None, tmp_path / f"out.{suffix}", metadata=garbage)
    with Image.open(tmp_path / f"out.{suffix}") as back:
        assert back.size == (5, 4) and back.info["icc_profile"] == SRGB
    assert any("resolution" in str(w.message) for w in caught)
