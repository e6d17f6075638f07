"""The catalogue: built-in and user kernel directories, and loading a kernel by name, spec or path."""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from convcli.errors import KernelError
from convcli.kernel_dirs import KERNEL_PATH_ENV as KERNEL_PATH_ENV  # (as: re-exported)
from convcli.kernel_dirs import builtin_dir as builtin_dir
from convcli.kernel_dirs import user_dirs as user_dirs
from convcli.kernels.families import FAMILIES
from convcli.kernels.files import kernel_from_dict, kernel_from_family, load_kernel_file
from convcli.kernels.kernel import Kernel
from convcli.kernels.names import (
    check_spec_text,
    find_name,
    is_inline,
    looks_like_path,
    parse_inline,
    parse_spec,
    unknown_name_message,
)

# The name of a matrix typed on the command line, in messages and default output names.
INLINE_NAME = "inline"


class KernelWarning(UserWarning):
    """Something about a kernel the user should know, such as a user kernel shadowing a built-in."""


@cache
def _builtin_files() -> dict[str, Path]:
    return {path.stem: path for path in sorted(builtin_dir().glob("*.toml"))}


def _user_files() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory in user_dirs():
        if directory.is_dir():
            for path in sorted(directory.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def catalogue() -> dict[str, Path]:
    """Every kernel name with its file: built-ins, with user kernels on top of them."""
    names = dict(_builtin_files())
    names.update(_user_files())
    return dict(sorted(names.items()))


def builtin_names() -> list[str]:
    """Names of the built-in kernels."""
    return list(_builtin_files())


def iter_kernels(on_error: Callable[[str, KernelError], None] | None = None) -> Iterator[Kernel]:
    """Load every kernel of the catalogue, with its default parameters.

    A kernel that fails to load raises :class:`KernelError`, unless ``on_error(name, error)``
    is given: then it is told and the kernel skipped, so one broken user file does not hide
    the rest of the catalogue.
    """
    for name in catalogue():
        try:
            kernel = load_kernel(name)
        except KernelError as exc:
            if on_error is None:
                raise
            on_error(name, exc)
            continue
        yield kernel


def load_kernel(spec: str | os.PathLike[str]) -> Kernel:
    """Load a kernel by name (``sobel``), with parameters (``gaussian:sigma=2``), from a file, or
    from a matrix typed inline (``[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` or ``[-1 0 1; -2 0 2]``).

    Names ignore case: ``SOBEL-X`` is ``sobel-x``.

    >>> load_kernel("sobel-x").matrix.tolist()
    [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
    >>> load_kernel("[1, 2; 3, 4]").name, load_kernel("[1, 2; 3, 4]").matrix.tolist()
    ('inline', [[1.0, 2.0], [3.0, 4.0]])
    """
    if isinstance(spec, os.PathLike):
        return load_kernel_file(Path(spec))
    if not isinstance(spec, str) or not spec.strip():
        raise KernelError(f"kernel name must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if is_inline(spec):
        check_spec_text(spec)
        document = {"name": INLINE_NAME, "description": f"matrix typed inline: {spec}", "matrix": parse_inline(spec)}
        return dataclasses.replace(kernel_from_dict(document, f"inline kernel {spec!r}"), source=INLINE_NAME)
    if looks_like_path(spec):
        return load_kernel_file(Path(spec))
    name, params = parse_spec(spec)
    return load_named(name, params, spec)


def load_named(name: str, params: Mapping[str, Any], spec: str, _seen: tuple[str, ...] = ()) -> Kernel:
    """Load the kernel of the catalogue called ``name``, or the family of that name, with ``params``.

    ``spec`` is the text the user wrote, for messages; ``_seen`` holds the sets being loaded
    around this one, so that members naming each other are reported as a cycle.
    """
    files = catalogue()
    name = find_name(name, files) or find_name(name, FAMILIES) or name
    canonical = name + (":" + ",".join(f"{k}={v}" for k, v in params.items()) if params else "")
    if spec.casefold() == canonical.casefold():
        # Spelled in another case: the kernel goes by its own name, in messages and output names.
        spec = canonical
    if name in files:
        path = files[name]
        builtins = _builtin_files()
        if name in builtins and path != builtins[name]:
            warnings.warn(f"kernel {name!r} from {path} shadows the built-in kernel", KernelWarning, stacklevel=3)
        return load_kernel_file(path, params=params, spec=spec, _seen=_seen)
    if name in FAMILIES:
        return kernel_from_family(name, {}, params, spec, source="built-in", description="", reference="")
    raise KernelError(unknown_name_message("kernel", name, list(files) + [f for f in FAMILIES if f not in files]))
