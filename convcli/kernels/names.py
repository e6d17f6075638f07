"""How kernels are named: ``NAME:key=value,...`` specs, paths, and the message for an unknown name."""

from __future__ import annotations

import difflib
import os

from convcli.errors import KernelError


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``NAME:key=value,...`` into the name and its raw parameters.

    >>> parse_spec("gaussian:sigma=2,radius=6")
    ('gaussian', {'sigma': '2', 'radius': '6'})
    """
    name, _, rest = spec.partition(":")
    name = name.strip()
    params: dict[str, str] = {}
    if rest.strip():
        for item in rest.split(","):
            key, eq, value = item.partition("=")
            key, value = key.strip(), value.strip()
            if not eq or not key or not value:
                raise KernelError(f"kernel {spec!r}: parameters are written key=value,key=value; got {item!r}")
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
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `convcli kernels list` shows them all"
    return f"unknown {what} {name!r}{hint}"
