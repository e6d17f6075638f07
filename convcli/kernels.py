"""Kernels: the :class:`Kernel` value type, the built-in catalogue and kernel files (TOML).

A kernel is named as

* ``NAME`` — a built-in kernel (``sobel``) or one found in a directory of ``CONVCLI_KERNEL_PATH``;
* ``NAME:key=value,...`` — a parametric kernel (``gaussian:sigma=2,radius=6``);
* a path to a ``.toml`` file.

A kernel file holds ``name``, ``description`` and exactly one of

* ``matrix = [[...], ...]`` — one 2-D kernel;
* ``matrices = [[[...]], ...]`` with ``combine`` — a set whose responses are combined per pixel;
* ``members = ["sobel-x", "sobel-y"]`` with ``combine`` — a set made of other kernels by name;
* ``family = "gaussian"`` with an optional ``[params]`` table — a generated kernel.

Optional keys: ``scale`` (multiply every tap), ``divisor`` (divide every tap),
``normalize = true`` (divide by the sum; refused for a zero-sum kernel), ``reference``.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.errors import KernelError
from convcli.families import FAMILIES, MAX_KERNEL_SIDE

COMBINE_RULES: tuple[str, ...] = ("magnitude", "max", "sum")
KERNEL_PATH_ENV = "CONVCLI_KERNEL_PATH"
MAX_KERNEL_FILE_BYTES = 4 * 1024 * 1024

_ALLOWED_KEYS = {
    "name", "description", "reference", "matrix", "matrices", "members", "combine",
    "family", "params", "scale", "divisor", "normalize",
}


class KernelWarning(UserWarning):
    """Something about a kernel the user should know, such as a user kernel shadowing a built-in."""


@dataclass(frozen=True)
class Kernel:
    """A named kernel: one matrix, or several whose responses are combined per pixel.

    ``combine`` is ``"single"`` for one matrix, else ``"magnitude"`` (sqrt of the sum of
    squares, as for sobel), ``"max"`` (per-pixel maximum, as for compass sets) or ``"sum"``.
    """

    name: str
    description: str
    matrices: tuple[NDArray[np.float64], ...]
    combine: str = "single"
    source: str = "built-in"
    family: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""

    @property
    def matrix(self) -> NDArray[np.float64]:
        """The only matrix of a single kernel."""
        if len(self.matrices) != 1:
            raise KernelError(f"kernel {self.name!r} is a set of {len(self.matrices)} matrices")
        return self.matrices[0]

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the (largest) matrix."""
        return max((m.shape for m in self.matrices), key=lambda s: s[0] * s[1])  # type: ignore[return-value]

    @property
    def kind(self) -> str:
        """``single``, ``set`` or ``family``: how the kernel is defined."""
        if self.family:
            return "family"
        return "set" if len(self.matrices) > 1 else "single"

    @property
    def slug(self) -> str:
        """The name made safe for a file name: ``gaussian:sigma=2`` gives ``gaussian-sigma2``."""
        text = self.name.replace(":", "-").replace(",", "-").replace("=", "")
        return "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in text)


# -- the catalogue -----------------------------------------------------------------------------


def builtin_dir() -> Path:
    """Where the built-in kernel files are: inside the installed package, or the checkout's ``kernels/``."""
    here = Path(__file__).resolve().parent
    packaged = here / "builtin_kernels"
    return packaged if packaged.is_dir() else here.parent / "kernels"


def user_dirs() -> list[Path]:
    """Directories listed in ``CONVCLI_KERNEL_PATH`` (``os.pathsep``-separated), in order."""
    value = os.environ.get(KERNEL_PATH_ENV, "")
    return [Path(part).expanduser() for part in value.split(os.pathsep) if part.strip()]


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


def iter_kernels() -> Iterator[Kernel]:
    """Load every kernel of the catalogue, with its default parameters."""
    for name in catalogue():
        yield load_kernel(name)


# -- parsing names -----------------------------------------------------------------------------


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


def _looks_like_path(spec: str) -> bool:
    return spec.lower().endswith(".toml") or os.sep in spec or (os.altsep or os.sep) in spec


def load_kernel(spec: str | os.PathLike[str]) -> Kernel:
    """Load a kernel by name (``sobel``), with parameters (``gaussian:sigma=2``), or from a file.

    >>> load_kernel("sobel-x").matrix.tolist()
    [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
    """
    if isinstance(spec, os.PathLike):
        return load_kernel_file(Path(spec))
    if not isinstance(spec, str) or not spec.strip():
        raise KernelError(f"kernel name must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if _looks_like_path(spec):
        return load_kernel_file(Path(spec))
    name, params = parse_spec(spec)
    return _load_named(name, params, spec)


def _load_named(name: str, params: Mapping[str, Any], spec: str, _seen: tuple[str, ...] = ()) -> Kernel:
    files = catalogue()
    if name in files:
        path = files[name]
        builtins = _builtin_files()
        if name in builtins and path != builtins[name]:
            warnings.warn(f"kernel {name!r} from {path} shadows the built-in kernel", KernelWarning, stacklevel=3)
        return load_kernel_file(path, params=params, spec=spec, _seen=_seen)
    if name in FAMILIES:
        return _from_family(name, {}, params, spec, source="built-in", description="", reference="")
    raise KernelError(_unknown_message(name, list(files) + [f for f in FAMILIES if f not in files]))


def _unknown_message(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=4, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `convcli kernels list` shows them all"
    return f"unknown kernel {name!r}{hint}"


# -- kernel files ------------------------------------------------------------------------------


def load_kernel_file(
    path: Path,
    *,
    params: Mapping[str, Any] | None = None,
    spec: str | None = None,
    _seen: tuple[str, ...] = (),
) -> Kernel:
    """Read and validate one kernel file; every problem is reported naming the file."""
    where = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_KERNEL_FILE_BYTES:
            raise KernelError(f"{where}: kernel file is {size} bytes, larger than the {MAX_KERNEL_FILE_BYTES}-byte limit")
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise KernelError(f"{where}: no such kernel file") from None
    except IsADirectoryError:
        raise KernelError(f"{where}: is a directory, not a kernel file") from None
    except PermissionError:
        raise KernelError(f"{where}: permission denied") from None
    except UnicodeDecodeError as exc:
        raise KernelError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise KernelError(f"{where}: not valid TOML: {exc}") from None
    except RecursionError:
        raise KernelError(f"{where}: not valid TOML: nested too deeply") from None
    except OSError as exc:
        raise KernelError(f"{where}: cannot read: {exc.strerror or exc}") from None
    return kernel_from_dict(data, where, params=params or {}, spec=spec, _seen=_seen)


def _check_str(data: Mapping[str, Any], key: str, where: str, required: bool) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise KernelError(f"{where}: missing required key `{key}`")
        return ""
    if not isinstance(value, str):
        raise KernelError(f"{where}: `{key}` must be a string, got {type(value).__name__}")
    return value


def _number(value: Any, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise KernelError(f"{where}: {what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise KernelError(f"{where}: {what} must be finite, got {value!r}")
    return number


def parse_matrix(value: Any, where: str, key: str = "matrix") -> NDArray[np.float64]:
    """Validate rows of numbers: rectangular, finite, 1x1 up to the size limit."""
    if not isinstance(value, list) or not value:
        raise KernelError(f"{where}: `{key}` must be a non-empty list of rows")
    if len(value) > MAX_KERNEL_SIDE:
        raise KernelError(f"{where}: `{key}` has {len(value)} rows, more than the {MAX_KERNEL_SIDE}-row limit")
    width = None
    rows: list[list[float]] = []
    for r, row in enumerate(value):
        if not isinstance(row, list):
            raise KernelError(f"{where}: `{key}` row {r + 1} must be a list of numbers, got {row!r}")
        if not row:
            raise KernelError(f"{where}: `{key}` row {r + 1} is empty")
        if len(row) > MAX_KERNEL_SIDE:
            raise KernelError(f"{where}: `{key}` row {r + 1} has {len(row)} values, more than the {MAX_KERNEL_SIDE} limit")
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise KernelError(f"{where}: `{key}` is ragged: row {r + 1} has {len(row)} values, row 1 has {width}")
        rows.append([_number(v, where, f"`{key}` row {r + 1}, column {c + 1}") for c, v in enumerate(row)])
    return np.array(rows, dtype=np.float64)


def kernel_from_dict(
    data: Mapping[str, Any],
    where: str,
    *,
    params: Mapping[str, Any] | None = None,
    spec: str | None = None,
    _seen: tuple[str, ...] = (),
) -> Kernel:
    """Build a :class:`Kernel` from a parsed kernel document, validating every key."""
    unknown = sorted(set(data) - _ALLOWED_KEYS)
    if unknown:
        raise KernelError(f"{where}: unknown key `{unknown[0]}` (allowed: {', '.join(sorted(_ALLOWED_KEYS))})")
    name = _check_str(data, "name", where, required=True)
    description = _check_str(data, "description", where, required=True)
    reference = _check_str(data, "reference", where, required=False)
    params = dict(params or {})
    definers = [key for key in ("matrix", "matrices", "members", "family") if key in data]
    if len(definers) != 1:
        found = ", ".join(f"`{k}`" for k in definers) or "none"
        raise KernelError(f"{where}: needs exactly one of `matrix`, `matrices`, `members`, `family` (found {found})")
    definer = definers[0]
    if params and definer != "family":
        raise KernelError(f"{where}: kernel {name!r} takes no parameters (got {', '.join(params)})")
    if "params" in data and definer != "family":
        raise KernelError(f"{where}: `params` belongs with `family`")
    combine = _check_str(data, "combine", where, required=False)
    if definer in ("matrices", "members"):
        if not combine:
            raise KernelError(f"{where}: a kernel set needs `combine` ({', '.join(COMBINE_RULES)})")
        if combine not in COMBINE_RULES:
            raise KernelError(f"{where}: `combine` must be one of {', '.join(COMBINE_RULES)}, got {combine!r}")
    elif combine:
        raise KernelError(f"{where}: `combine` applies to `matrices` or `members` only")
    display = spec or name

    if definer == "family":
        family = data["family"]
        if not isinstance(family, str) or family not in FAMILIES:
            raise KernelError(f"{where}: " + _unknown_message(str(family), list(FAMILIES)).replace("kernel", "family", 1))
        file_params = data.get("params", {})
        if not isinstance(file_params, dict):
            raise KernelError(f"{where}: `params` must be a table of key = value")
        kernel = _from_family(family, file_params, params, display, source=where, description=description,
                              reference=reference, name=name)
    elif definer == "matrix":
        kernel = Kernel(display, description, (parse_matrix(data["matrix"], where),), source=where, reference=reference)
    elif definer == "matrices":
        value = data["matrices"]
        if not isinstance(value, list) or len(value) < 2:
            raise KernelError(f"{where}: `matrices` must be a list of at least two matrices")
        matrices = tuple(parse_matrix(m, where, f"matrices[{i}]") for i, m in enumerate(value))
        kernel = Kernel(display, description, matrices, combine, source=where, reference=reference)
    else:
        members = data["members"]
        if not isinstance(members, list) or len(members) < 2 or not all(isinstance(m, str) for m in members):
            raise KernelError(f"{where}: `members` must be a list of at least two kernel names")
        if name in _seen or len(_seen) > 8:
            raise KernelError(f"{where}: `members` refer back to {name!r} (a cycle)")
        matrices_list: list[NDArray[np.float64]] = []
        for member in members:
            part = _load_named(*parse_spec(member), member, _seen=(*_seen, name))
            if part.kind == "set":
                raise KernelError(f"{where}: member {member!r} is itself a set; members must be single kernels")
            matrices_list.append(part.matrix)
        kernel = Kernel(display, description, tuple(matrices_list), combine, source=where, reference=reference)
    return _apply_scaling(_common_shape(kernel, where), data, where)


def _common_shape(kernel: Kernel, where: str) -> Kernel:
    """Zero-pad a set's matrices, centred, to one shape (``[-1 0 1]`` and its transpose: 3x3)."""
    shapes = {m.shape for m in kernel.matrices}
    if len(shapes) == 1:
        return kernel
    height = max(h for h, _ in shapes)
    width = max(w for _, w in shapes)
    if any((height - h) % 2 or (width - w) % 2 for h, w in shapes):
        listed = ", ".join(f"{h}x{w}" for h, w in sorted(shapes))
        raise KernelError(
            f"{where}: the matrices of a set must share one centre; got {listed} "
            "(sizes may differ by an even number of rows/columns only)"
        )
    padded = tuple(
        np.pad(m, (((height - m.shape[0]) // 2,) * 2, ((width - m.shape[1]) // 2,) * 2)) for m in kernel.matrices
    )
    return Kernel(kernel.name, kernel.description, padded, kernel.combine, kernel.source, kernel.family,
                  kernel.params, kernel.reference)


def _from_family(
    family: str,
    file_params: Mapping[str, Any],
    params: Mapping[str, Any],
    display: str,
    *,
    source: str,
    description: str,
    reference: str,
    name: str | None = None,
) -> Kernel:
    fam = FAMILIES[family]
    merged = {**file_params, **params}
    built, values = fam.build(merged)
    return Kernel(
        display,
        description or fam.description,
        tuple(np.asarray(m, dtype=np.float64) for m in built.matrices),
        built.combine,
        source=source,
        family=family,
        params=values,
        reference=reference or fam.reference,
    )


def _apply_scaling(kernel: Kernel, data: Mapping[str, Any], where: str) -> Kernel:
    factor = 1.0
    if "scale" in data:
        factor *= _number(data["scale"], where, "`scale`")
    if "divisor" in data:
        divisor = _number(data["divisor"], where, "`divisor`")
        if divisor == 0:
            raise KernelError(f"{where}: `divisor` must not be zero")
        factor /= divisor
    matrices = kernel.matrices
    if "normalize" in data:
        if not isinstance(data["normalize"], bool):
            raise KernelError(f"{where}: `normalize` must be true or false")
        if data["normalize"]:
            normalised = []
            for m in matrices:
                total = float(m.sum())
                if abs(total) <= 1e-12 * max(1.0, float(np.abs(m).sum())):
                    raise KernelError(
                        f"{where}: `normalize` divides by the sum of the taps, and this kernel sums to zero "
                        "(edge and Laplacian kernels do); remove `normalize` or use `divisor`"
                    )
                normalised.append(m / total)
            matrices = tuple(normalised)
    if factor != 1.0:
        matrices = tuple(m * factor for m in matrices)
    if matrices is kernel.matrices:
        return kernel
    return Kernel(kernel.name, kernel.description, matrices, kernel.combine, kernel.source, kernel.family,
                  kernel.params, kernel.reference)
