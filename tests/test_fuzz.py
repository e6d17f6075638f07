"""Fuzzing: random and mutated bytes to the image loader, random documents to the kernel
parser. Only convcli's own errors (ConvcliError subclasses) may escape.
"""

from __future__ import annotations

import tomllib
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from convcli.errors import ConvcliError
from convcli.io import ImageWarning, decode_bytes
from convcli.kernels import kernel_from_dict

from corpus import bomb_png, small_samples

SEEDS = small_samples()
# An explicit alphabet: hypothesis' full-unicode text strategy costs seconds to set up.
ALPHABET = "abcxyz019 -_:=.,/\\\"'[]{}#\n\t\x00é✓\U0001f600"
SMALL_LIMIT = 4_000_000  # keeps a mutated header that declares a huge image from costing seconds


def _decode(data: bytes) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageWarning)
        try:
            picture = decode_bytes(data, "fuzz.bin", max_pixels=SMALL_LIMIT)
        except ConvcliError as exc:  # the only failure allowed: one message naming the input
            message = str(exc)
        else:
            assert picture.pixels.ndim in (2, 3)
            return
    assert message.startswith("fuzz.bin: ")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete", "splice"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and data:
            data[position] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF]))
        elif action == "cut":
            del data[position:]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        else:
            data[position : position + 4] = draw(st.binary(min_size=4, max_size=4))
    return bytes(data)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated())
@example(data=bomb_png())
@example(data=SEEDS["png"][:33])
def test_mutated_images(data: bytes) -> None:
    _decode(data)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=256))
def test_random_bytes(data: bytes) -> None:
    _decode(data)


@given(st.sampled_from(sorted(SEEDS)))
@settings(max_examples=10, deadline=None)
def test_seeds_decode(name: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImageWarning)
        assert decode_bytes(SEEDS[name]).pixels.shape[:2] == (12, 16)


# -- kernels --------------------------------------------------------------------------------------

KEYS = ["name", "description", "reference", "matrix", "matrices", "members", "combine", "family", "params",
        "scale", "divisor", "normalize", "other"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(ALPHABET, max_size=12),
    st.sampled_from(["sobel", "gaussian", "box", "magnitude", "max", "sum", "sobel-x", "log", "sigma"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.sampled_from([*KEYS, "sigma", "radius", "size"]), inner, max_size=4),
    max_leaves=10,
)
numbers = st.one_of(st.integers(-5, 5), st.floats(-1e3, 1e3))
matrices = st.lists(st.lists(numbers, min_size=1, max_size=4), min_size=1, max_size=4)
documents = st.fixed_dictionaries(
    {"name": st.text(ALPHABET, max_size=8), "description": st.text(ALPHABET, max_size=8)},
    optional={
        "matrix": matrices | values,
        "matrices": st.lists(matrices, max_size=3) | values,
        "members": st.lists(
            st.sampled_from(["sobel-x", "sobel-y", "sobel", "box", "nope", "gaussian:sigma=2"]), max_size=3
        )
        | values,
        "family": st.sampled_from(["gaussian", "box", "log", "laplacian", "nope"]) | values,
        "params": st.dictionaries(st.sampled_from(["sigma", "radius", "size", "angle", "x"]), scalars, max_size=3)
        | values,
        "combine": st.sampled_from(["magnitude", "max", "sum", "mean"]) | values,
        "scale": values,
        "divisor": values,
        "normalize": values,
    },
) | st.dictionaries(st.sampled_from(KEYS), values, max_size=5)


def _parse(document: dict[str, Any]) -> None:
    try:
        kernel = kernel_from_dict(document, "fuzz.toml")
    except ConvcliError as exc:  # the only failure allowed: a message saying what is wrong
        message = str(exc)
    else:
        assert all(m.ndim == 2 and m.size for m in kernel.matrices)
        return
    assert message


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents)
def test_kernel_documents(document: dict[str, Any]) -> None:
    _parse(document)


toml_pieces = st.sampled_from(
    ['name = "k"\n', 'description = "d"\n', "matrix = [[1, 2], [3, 4]]\n", "matrix = [[1, nan]]\n",
     "[params]\n", "sigma = 2\n", 'family = "gaussian"\n', "normalize = true\n", "matrices = [[[1]], [[2, 3]]]\n",
     'combine = "max"\n', "divisor = 0\n", "scale = inf\n", "[[matrix]]\n", "x = {a = 1}\n", "= =\n", "\x00", "[", "]"]
)


@settings(max_examples=500, deadline=None)
@given(pieces=st.lists(toml_pieces, max_size=10), noise=st.text(ALPHABET, max_size=20))
def test_kernel_toml_text(pieces: list[str], noise: str) -> None:
    text = "".join(pieces) + noise
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # the kernel loader reports this as a KernelError (tests/test_hostile_kernels.py)
    _parse(document)


@pytest.mark.parametrize("size", [(1, 1), (3, 5)])
def test_fuzz_harness_accepts_good_kernels(size: tuple[int, int]) -> None:
    matrix = [[1.0] * size[1] for _ in range(size[0])]
    assert kernel_from_dict({"name": "k", "description": "d", "matrix": matrix}, "k.toml").shape == size
