"""How kernels are named: ``NAME:key=value,...`` specs, paths, and the message for an unknown name."""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Iterable
from typing import Any

from convcli.errors import KernelError


def check_spec_text(spec: str) -> None:
    r"""Refuse a spec holding control characters (an escape sequence, a newline) or bytes that are
    not text (a non-UTF-8 argument arrives as lone surrogates): no kernel is named so.

    >>> check_spec_text("sob\x1bel")
    Traceback (most recent call last):
    ...
    convcli.errors.KernelError: kernel 'sob\x1bel': a kernel name holds no control characters
    """
    for char in spec:
        if char.isprintable() or char == " ":
            continue
        if "\ud800" <= char <= "\udfff":
            raise KernelError(f"kernel {spec!r}: not valid text (bytes that are not UTF-8)")
        raise KernelError(f"kernel {spec!r}: a kernel name holds no control characters")


def find_name(name: str, known: Iterable[str]) -> str | None:
    """The known name ``name`` refers to, ignoring case (as ImageMagick's kernel names do); None if none.

    An exact match wins over one that differs in case only.

    >>> find_name("SOBEL-X", ["sobel", "sobel-x"]), find_name("nope", ["sobel"])
    ('sobel-x', None)
    """
    names = list(known)
    if name in names:
        return name
    folded = name.casefold()
    return next((candidate for candidate in names if candidate.casefold() == folded), None)


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``NAME:key=value,...`` into the name and its raw parameters.

    >>> parse_spec("gaussian:sigma=2,radius=6")
    ('gaussian', {'sigma': '2', 'radius': '6'})
    """
    check_spec_text(spec)
    name, _, rest = spec.partition(":")
    name = name.strip()
    if "," in name:
        first = name.split(",")[0].strip() or "A"
        raise KernelError(
            f"kernel {spec!r}: one kernel per --kernel; to apply several in sequence, repeat it "
            f"(-k {first} -k ...); a comma separates parameters, after a colon (NAME:key=value,key=value)"
        )
    params: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            # Parameter names are lower case; accept them in any case, as kernel names.
            key, value = key.strip().lower(), value.strip()
            if not eq or not key or not value:
                hint = "; to apply several kernels in sequence, repeat --kernel" if not eq and item.strip() else ""
                raise KernelError(
                    f"kernel {spec!r}: parameters are written key=value,key=value; got {item!r}{hint}"
                )
            if key in params:
                raise KernelError(f"kernel {spec!r}: parameter `{key}` is given twice")
            params[key] = value
    elif ":" in spec:
        raise KernelError(f"kernel {spec!r}: nothing after ':'; write NAME:key=value")
    if not name:
        raise KernelError(f"kernel {spec!r}: the name is empty")
    return name, params


def looks_like_path(spec: str) -> bool:
    """Whether a spec names a kernel file rather than a kernel: it ends in ``.toml`` or has a separator.

    >>> looks_like_path("edges/mine.toml"), looks_like_path("gaussian:sigma=2")
    (True, False)
    """
    return spec.lower().endswith(".toml") or os.sep in spec or (os.altsep or os.sep) in spec


def unknown_name_message(what: str, name: str, known: list[str]) -> str:
    """``unknown kernel 'x'`` (or family) with the closest known names, or where to find them all.

    >>> unknown_name_message("kernel", "gausian", ["gaussian", "sobel"])
    "unknown kernel 'gausian'; did you mean gaussian?"
    """
    folded = {k.casefold(): k for k in reversed(known)}
    close = [folded[c] for c in difflib.get_close_matches(name.casefold(), list(folded), n=4, cutoff=0.5)]
    hint = f"; did you mean {', '.join(close)}?" if close else "; `convcli kernels list` shows them all"
    return f"unknown {what} {name!r}{hint}"


def is_inline(spec: str) -> bool:
    """Whether a spec is a matrix typed inline: it starts with ``[``.

    >>> is_inline("[[1, 2], [3, 4]]"), is_inline("sobel")
    (True, False)
    """
    return spec.lstrip().startswith("[")


_SEPARATOR = re.compile(r"\s*,\s*|\s+")


def _row(text: str, spec: str) -> str:
    """One row of numbers separated by commas or spaces, as a TOML array."""
    numbers = _SEPARATOR.split(text.strip())
    if not all(numbers):
        raise KernelError(f"kernel {spec!r}: an inline matrix has an empty row or a number missing between commas")
    return "[" + ", ".join(numbers) + "]"


def parse_inline(spec: str) -> Any:
    """The rows of an inline matrix, as a kernel file's ``matrix`` would hold them (unchecked).

    Rows are TOML arrays (``[[-1,0,1],[-2,0,2]]``), or separated by ``;`` inside one pair of
    brackets with numbers separated by commas or spaces (``[-1 0 1; -2 0 2]``). One flat list
    is one row. Numbers are read as TOML reads them, so an inline matrix means what the same
    text means in a kernel file.

    >>> parse_inline("[1, 2; 3, 4]"), parse_inline("[[1, 2], [3, 4]]"), parse_inline("[1 2 1]")
    ([[1, 2], [3, 4]], [[1, 2], [3, 4]], [[1, 2, 1]])
    """
    text = spec.strip()
    if text.count("[") == 1 and text.endswith("]") and text.count("]") == 1:
        # One pair of brackets: rows separated by `;`, numbers by commas or spaces.
        text = "[" + ", ".join(_row(row, spec) for row in text[1:-1].split(";")) + "]"
    elif ";" in text:
        raise KernelError(f"kernel {spec!r}: write an inline matrix as [a, b, c; d, e, f] or [[a, b, c], [d, e, f]]")
    try:
        value = tomllib.loads(f"matrix = {text}")["matrix"]
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        cause = str(exc).split(" (at ")[0] if isinstance(exc, tomllib.TOMLDecodeError) else "numbers cannot be read"
        raise KernelError(
            f"kernel {spec!r}: not an inline matrix ({cause}); write [[a, b, c], [d, e, f]] or [a, b, c; d, e, f]"
        ) from None
    return value
