"""The parallel PNG writer: every output decodes, with Pillow and zlib, to the exact pixels."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from convcli.io.formats import PNG_SIGNATURE
from convcli.io.png import encode_png, filtered_rows

from conftest import SAMPLES


def _decode(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.load()
    return np.asarray(image)


@pytest.mark.parametrize("channels, mode", [(0, "L"), (1, "L"), (2, "LA"), (3, "RGB"), (4, "RGBA")])
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_round_trip_every_colour_type(channels: int, mode: str, level: int, rng: np.random.Generator) -> None:
    shape = (37, 29) if channels == 0 else (37, 29, channels)
    pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
    data = encode_png(pixels, level=level)
    assert Image.open(io.BytesIO(data)).mode == mode
    np.testing.assert_array_equal(_decode(data), pixels.reshape(_decode(data).shape))


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_many_bands_on_many_threads_give_identical_bytes(threads: int) -> None:
    # a real photo, tall enough for many 1 MiB bands
    photo = np.asarray(Image.open(SAMPLES / "astronaut.png"))
    tall = np.concatenate([photo] * 6, axis=0)  # 3072 x 512 x 3: 4.5 MiB of scanlines, 5 bands
    single = encode_png(tall, threads=1)
    data = encode_png(tall, threads=threads)
    assert data == single
    np.testing.assert_array_equal(_decode(data), tall)


def test_chunks_and_checksums_are_valid() -> None:
    pixels = np.asarray(Image.open(SAMPLES / "camera.png"))
    data = encode_png(np.concatenate([pixels] * 12), level=0)  # stored blocks: > 1 MiB of IDAT
    assert data.startswith(PNG_SIGNATURE)
    position, kinds, stream = 8, [], b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + body)
        kinds.append(kind)
        if kind == b"IDAT":
            stream += body
        position += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and kinds.count(b"IDAT") >= 2
    raw = zlib.decompress(stream)  # checks the Adler-32 of the whole stream too
    assert raw == filtered_rows(np.concatenate([pixels] * 12)).tobytes()


def test_up_filter_by_hand() -> None:
    rows = filtered_rows(np.array([[[10, 20, 30]], [[5, 25, 30]]], dtype=np.uint8))
    assert rows.tolist() == [[2, 10, 20, 30], [2, 251, 5, 0]]


def test_fast_level_is_not_larger_than_pillow_by_much() -> None:
    photo = np.asarray(Image.open(SAMPLES / "coffee.png"))
    ours = len(encode_png(photo, level=1))
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, format="PNG", compress_level=1)
    assert ours < 1.15 * len(buffer.getvalue())


@pytest.mark.parametrize("shape", [(0, 4), (4, 4, 5), (2, 2, 2, 2)])
def test_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="cannot encode"):
        encode_png(np.zeros(shape, dtype=np.uint8))
