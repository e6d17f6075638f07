"""Kernels: the :class:`Kernel` value type, the built-in catalogue and kernel files (TOML).

A kernel is named as

* ``NAME`` — a built-in kernel (``sobel``) or one found in a directory of ``CONVCLI_KERNEL_PATH``;
* ``NAME:key=value,...`` — a parametric kernel (``gaussian:sigma=2,radius=6``);
* a path to a ``.toml`` file.

A kernel file holds ``name``, ``description`` and exactly one of

* ``matrix = [[...], ...]`` — one 2-D kernel;
* ``matrices = [[[...]], ...]`` with ``combine`` — a set whose responses are combined per pixel;
* ``members = ["sobel-x", "sobel-y"]`` with ``combine`` — a set made of other kernels by name;
* ``family = "gaussian"`` with an optional ``[params]`` table — a generated kernel;
* ``weights = [[[[...]]]]`` (``[out][in][kh][kw]``) with an optional ``bias`` — a kernel that
  mixes channels as PyTorch's ``conv2d`` does.

Optional keys: ``scale`` (multiply every tap), ``divisor`` (divide every tap),
``normalize = true`` (divide by the sum; refused for a zero-sum kernel), ``offset`` (added to
the response, 0..255 scale), ``anchor = [row, col]`` (the tap over the output pixel),
``bias_units`` (``"unit"``, the default, or ``"pixel"``), ``reference``.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.core.separable import kernel_rank
from convcli.errors import KernelError
from convcli.families import BIAS_UNITS, DEFAULT_BIAS_UNITS, FAMILIES, MAX_CHANNELS, MAX_KERNEL_SIDE

COMBINE_RULES: tuple[str, ...] = ("magnitude", "max", "sum")
KERNEL_PATH_ENV = "CONVCLI_KERNEL_PATH"
MAX_KERNEL_FILE_BYTES = 4 * 1024 * 1024

_ALLOWED_KEYS = {
    "name", "description", "reference", "matrix", "matrices", "members", "combine",
    "family", "params", "scale", "divisor", "normalize", "offset", "anchor",
    "weights", "bias", "bias_units",
}
_DEFINERS = ("matrix", "matrices", "members", "family", "weights")


class KernelWarning(UserWarning):
    """Something about a kernel the user should know, such as a user kernel shadowing a built-in."""


@dataclass(frozen=True)
class Kernel:
    """A named kernel: one matrix, several whose responses are combined, or a channel mixer.

    ``combine`` is ``"single"`` for one matrix, else ``"magnitude"`` (sqrt of the sum of
    squares, as for sobel), ``"max"`` (per-pixel maximum, as for compass sets) or ``"sum"``.

    A channel-mixing kernel has ``weights`` of shape ``(out, in, kh, kw)`` and ``bias``
    ``(out,)`` in ``bias_units`` (``"unit"``: PyTorch's 0..1 scale; ``"pixel"``: 0..255), and
    no ``matrices``. ``offset`` is added to the final response (0..255 scale). ``anchor`` is the
    ``(row, col)`` of the tap that sits over the output pixel with ``padding="same"``; None
    means the centre, ``(k - 1) // 2`` along each axis.
    """

    name: str
    description: str
    matrices: tuple[NDArray[np.float64], ...]
    combine: str = "single"
    source: str = "built-in"
    family: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    reference: str = ""
    offset: float = 0.0
    anchor: tuple[int, int] | None = None
    weights: NDArray[np.float64] | None = None
    bias: NDArray[np.float64] | None = None
    bias_units: str = DEFAULT_BIAS_UNITS
    normalization: str = "none"

    @property
    def matrix(self) -> NDArray[np.float64]:
        """The only matrix of a single kernel."""
        if self.weights is not None:
            raise KernelError(f"kernel {self.name!r} mixes channels; it has weights, not one matrix")
        if len(self.matrices) != 1:
            raise KernelError(f"kernel {self.name!r} is a set of {len(self.matrices)} matrices")
        return self.matrices[0]

    @property
    def shape(self) -> tuple[int, int]:
        """Shape of the (largest) matrix; for a mixing kernel, of each of its 2-D kernels."""
        if self.weights is not None:
            return (int(self.weights.shape[2]), int(self.weights.shape[3]))
        return max((m.shape for m in self.matrices), key=lambda s: s[0] * s[1])  # type: ignore[return-value]

    @property
    def kind(self) -> str:
        """``single``, ``set``, ``mixing`` or ``family``: how the kernel is defined."""
        if self.family:
            return "family"
        if self.weights is not None:
            return "mixing"
        return "set" if len(self.matrices) > 1 else "single"

    @property
    def is_mixing(self) -> bool:
        """True for a kernel that mixes channels (has ``weights``)."""
        return self.weights is not None

    @property
    def channels(self) -> tuple[int, int] | None:
        """``(in, out)`` channel counts of a mixing kernel, else None."""
        if self.weights is None:
            return None
        return (int(self.weights.shape[1]), int(self.weights.shape[0]))

    @property
    def bias_pixels(self) -> NDArray[np.float64] | None:
        """The bias on the 0..255 pixel scale the pipeline works in (``unit`` bias times 255)."""
        if self.bias is None:
            return None
        return self.bias * BIAS_UNITS[self.bias_units]

    @property
    def anchor_position(self) -> tuple[int, int]:
        """The anchor, or the default centre ``((kh - 1) // 2, (kw - 1) // 2)``."""
        if self.anchor is not None:
            return self.anchor
        kh, kw = self.shape
        return ((kh - 1) // 2, (kw - 1) // 2)

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
    """Validate rows of numbers: rectangular, finite, 1x1 up to the size limit.

    >>> parse_matrix([[1, 2], [3, 4.5]], "example").tolist()
    [[1.0, 2.0], [3.0, 4.5]]
    """
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


def parse_weights(value: Any, where: str) -> NDArray[np.float64]:
    """Validate ``weights[out][in][kh][kw]``: every 2-D kernel valid and all of one shape.

    >>> parse_weights([[[[1]], [[2]], [[3]]]], "example").shape
    (1, 3, 1, 1)
    """
    if not isinstance(value, list) or not value or not all(isinstance(v, list) for v in value):
        raise KernelError(f"{where}: `weights` must be a list (one per output channel) of lists of matrices")
    if len(value) > MAX_CHANNELS:
        raise KernelError(f"{where}: `weights` has {len(value)} output channels, more than the {MAX_CHANNELS} limit")
    in_channels = len(value[0])
    if not 1 <= in_channels <= MAX_CHANNELS:
        raise KernelError(f"{where}: `weights[0]` must hold 1 to {MAX_CHANNELS} matrices, one per input channel")
    kernels: list[list[NDArray[np.float64]]] = []
    for o, per_output in enumerate(value):
        if len(per_output) != in_channels:
            raise KernelError(
                f"{where}: `weights[{o}]` has {len(per_output)} matrices, `weights[0]` has {in_channels}; "
                "every output channel needs one matrix per input channel"
            )
        kernels.append([parse_matrix(m, where, f"weights[{o}][{i}]") for i, m in enumerate(per_output)])
    shape = kernels[0][0].shape
    for o, row in enumerate(kernels):
        for i, m in enumerate(row):
            if m.shape != shape:
                raise KernelError(
                    f"{where}: `weights[{o}][{i}]` is {m.shape[0]}x{m.shape[1]}, `weights[0][0]` is "
                    f"{shape[0]}x{shape[1]}; all matrices of a mixing kernel share one size"
                )
    return np.array(kernels, dtype=np.float64)


def _parse_bias(data: Mapping[str, Any], out_channels: int, where: str) -> NDArray[np.float64] | None:
    if "bias" not in data:
        return None
    value = data["bias"]
    if not isinstance(value, list):
        raise KernelError(f"{where}: `bias` must be a list of numbers, one per output channel")
    if len(value) != out_channels:
        raise KernelError(f"{where}: `bias` has {len(value)} values, but `weights` has {out_channels} output channels")
    return np.array([_number(v, where, f"`bias` value {i + 1}") for i, v in enumerate(value)], dtype=np.float64)


def _parse_anchor(value: Any, shape: tuple[int, int], where: str) -> tuple[int, int]:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise KernelError(f"{where}: `anchor` must be [row, col], two integers counted from 0, got {value!r}")
    row, col = value
    if not (0 <= row < shape[0] and 0 <= col < shape[1]):
        raise KernelError(
            f"{where}: `anchor` {value} is outside the {shape[0]}x{shape[1]} kernel "
            f"(rows 0..{shape[0] - 1}, columns 0..{shape[1] - 1})"
        )
    return (row, col)


def kernel_from_dict(
    data: Mapping[str, Any],
    where: str,
    *,
    params: Mapping[str, Any] | None = None,
    spec: str | None = None,
    _seen: tuple[str, ...] = (),
) -> Kernel:
    """Build a :class:`Kernel` from a parsed kernel document, validating every key.

    >>> kernel_from_dict({"name": "k", "description": "d", "matrix": [[1, 2, 1]], "normalize": True},
    ...                  "example").matrix.tolist()
    [[0.25, 0.5, 0.25]]
    """
    unknown = sorted(set(data) - _ALLOWED_KEYS)
    if unknown:
        raise KernelError(f"{where}: unknown key `{unknown[0]}` (allowed: {', '.join(sorted(_ALLOWED_KEYS))})")
    name = _check_str(data, "name", where, required=True)
    description = _check_str(data, "description", where, required=True)
    reference = _check_str(data, "reference", where, required=False)
    params = dict(params or {})
    definers = [key for key in _DEFINERS if key in data]
    if len(definers) != 1:
        found = ", ".join(f"`{k}`" for k in definers) or "none"
        wanted = ", ".join(f"`{k}`" for k in _DEFINERS)
        raise KernelError(f"{where}: needs exactly one of {wanted} (found {found})")
    definer = definers[0]
    if params and definer != "family":
        raise KernelError(f"{where}: kernel {name!r} takes no parameters (got {', '.join(params)})")
    if "params" in data and definer != "family":
        raise KernelError(f"{where}: `params` belongs with `family`")
    for key in ("bias", "bias_units"):
        if key in data and definer != "weights":
            raise KernelError(f"{where}: `{key}` belongs with `weights` (a channel-mixing kernel)")
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
                              reference=reference, where=where)
    elif definer == "matrix":
        kernel = Kernel(display, description, (parse_matrix(data["matrix"], where),), source=where, reference=reference)
    elif definer == "matrices":
        value = data["matrices"]
        if not isinstance(value, list) or len(value) < 2:
            raise KernelError(f"{where}: `matrices` must be a list of at least two matrices")
        matrices = tuple(parse_matrix(m, where, f"matrices[{i}]") for i, m in enumerate(value))
        kernel = Kernel(display, description, matrices, combine, source=where, reference=reference)
    elif definer == "weights":
        weights = parse_weights(data["weights"], where)
        units = data.get("bias_units", DEFAULT_BIAS_UNITS)
        if units not in BIAS_UNITS:
            raise KernelError(f"{where}: `bias_units` must be one of {', '.join(BIAS_UNITS)}, got {units!r}")
        kernel = Kernel(display, description, (), source=where, reference=reference, weights=weights,
                        bias=_parse_bias(data, weights.shape[0], where), bias_units=units)
    else:
        members = data["members"]
        if not isinstance(members, list) or len(members) < 2 or not all(isinstance(m, str) for m in members):
            raise KernelError(f"{where}: `members` must be a list of at least two kernel names")
        if name in _seen or len(_seen) > 8:
            raise KernelError(f"{where}: `members` refer back to {name!r} (a cycle)")
        matrices_list: list[NDArray[np.float64]] = []
        for member in members:
            try:
                part = _load_named(*parse_spec(member), member, _seen=(*_seen, name))
            except KernelError as exc:
                message = str(exc)
                raise KernelError(message if message.startswith(where) else f"{where}: member: {message}") from None
            if part.is_mixing or len(part.matrices) != 1:
                raise KernelError(f"{where}: member {member!r} is not a single 2-D kernel; members must be")
            if part.offset or part.anchor is not None:
                raise KernelError(f"{where}: member {member!r} has an `offset` or `anchor`, which a set cannot keep")
            matrices_list.append(part.matrix)
        kernel = Kernel(display, description, tuple(matrices_list), combine, source=where, reference=reference)
    kernel = _apply_scaling(_common_shape(kernel, where), data, where)
    extras: dict[str, Any] = {}
    if "offset" in data:
        extras["offset"] = _number(data["offset"], where, "`offset`")
    if "anchor" in data:
        extras["anchor"] = _parse_anchor(data["anchor"], kernel.shape, where)
    return dataclasses.replace(kernel, **extras) if extras else kernel


def _common_shape(kernel: Kernel, where: str) -> Kernel:
    """Zero-pad a set's matrices, centred, to one shape (``[-1 0 1]`` and its transpose: 3x3)."""
    shapes = {m.shape for m in kernel.matrices}
    if len(shapes) <= 1:
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
    return dataclasses.replace(kernel, matrices=padded)


def _from_family(
    family: str,
    file_params: Mapping[str, Any],
    params: Mapping[str, Any],
    display: str,
    *,
    source: str,
    description: str,
    reference: str,
    where: str | None = None,
) -> Kernel:
    fam = FAMILIES[family]
    if where is not None:
        # A bad value in the file's [params] is the file's fault; say so before merging.
        try:
            fam.resolve(file_params)
        except KernelError as exc:
            raise KernelError(f"{where}: {exc}") from None
    try:
        built, values = fam.build({**file_params, **params})
    except KernelError as exc:
        context = f"kernel {display!r}" if params or where is None else where
        raise KernelError(f"{context}: {exc}") from None
    return Kernel(
        display,
        description or fam.description,
        tuple(np.asarray(m, dtype=np.float64) for m in built.matrices),
        built.combine,
        source=source,
        family=family,
        params=values,
        reference=reference or fam.reference,
        weights=built.weights,
        bias=built.bias,
        bias_units=built.bias_units,
        normalization=fam.normalization,
    )


def _apply_scaling(kernel: Kernel, data: Mapping[str, Any], where: str) -> Kernel:
    factor = 1.0
    notes: list[str] = [] if kernel.normalization == "none" else [kernel.normalization]
    if "scale" in data:
        scale = _number(data["scale"], where, "`scale`")
        factor *= scale
        notes.append(f"scale {scale:g}")
    if "divisor" in data:
        divisor = _number(data["divisor"], where, "`divisor`")
        if divisor == 0:
            raise KernelError(f"{where}: `divisor` must not be zero")
        factor /= divisor
        notes.append(f"divided by {divisor:g} (divisor)")
    matrices = kernel.matrices
    if "normalize" in data:
        if not isinstance(data["normalize"], bool):
            raise KernelError(f"{where}: `normalize` must be true or false")
        if data["normalize"] and kernel.is_mixing:
            raise KernelError(f"{where}: `normalize` applies to matrices, not to `weights`; use `scale` or `divisor`")
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
            notes.insert(0, "normalize: divided by its sum")
    weights = kernel.weights
    if factor != 1.0:
        matrices = tuple(m * factor for m in matrices)
        # scale and divisor multiply the weights of a mixing kernel, never its bias.
        weights = None if weights is None else weights * factor
    return dataclasses.replace(kernel, matrices=matrices, weights=weights, normalization="; ".join(notes) or "none")


# -- inspecting and exporting ------------------------------------------------------------------


def is_separable(matrix: NDArray[np.float64]) -> tuple[bool, int]:
    """Whether a 2-D kernel is an outer product of a column and a row, and its rank (SVD).

    >>> is_separable(np.outer([1, 2, 1], [-1, 0, 1]))
    (True, 1)
    >>> is_separable(np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]]))
    (False, 2)
    """
    # The engines' own rank test, so that `kernels show` says what the separable engine will do.
    rank = kernel_rank(np.asarray(matrix, dtype=np.float64))
    return rank <= 1, rank


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string: the same escapes, \uXXXX included.
    return json.dumps(text, ensure_ascii=False)


def _toml_rows(matrix: NDArray[np.float64], indent: str) -> str:
    # repr() writes the shortest text that reads back as the same float64: a bit-identical round trip.
    rows = [f"{indent}    [{', '.join(repr(float(v)) for v in row)}]," for row in matrix]
    return "[\n" + "\n".join(rows) + f"\n{indent}]"


def export_toml(kernel: Kernel) -> str:
    """The kernel as a kernel file, every tap written out, to start a custom kernel from.

    Loading the text gives the same float64 taps bit for bit, so the file filters exactly as the
    kernel does.

    >>> print(export_toml(load_kernel("sobel-x")))  # doctest: +ELLIPSIS
    # Exported from sobel-x (family sobel-x, size=3); the matrix is written out in full.
    name = "sobel-x"
    ...
    matrix = [
        [-1.0, 0.0, 1.0],
        [-2.0, 0.0, 2.0],
        [-1.0, 0.0, 1.0],
    ]
    <BLANKLINE>
    """
    lines: list[str] = []
    origin = f"family {kernel.family}" if kernel.family else f"source {kernel.source}"
    if kernel.params:
        origin += ", " + ", ".join(f"{k}={v}" for k, v in kernel.params.items() if v is not None)
    lines.append(f"# Exported from {kernel.name} ({origin}); the matrix is written out in full.")
    lines.append(f"name = {_toml_string(kernel.name)}")
    lines.append(f"description = {_toml_string(kernel.description)}")
    if kernel.reference:
        lines.append(f"reference = {_toml_string(kernel.reference)}")
    if kernel.weights is not None:
        blocks = []
        for per_output in kernel.weights:
            inner = ",\n".join(f"        {_toml_rows(m, '        ')}" for m in per_output)
            blocks.append(f"    [\n{inner},\n    ],")
        lines.append("# weights[out][in][row][col], PyTorch's Conv2d layout")
        lines.append("weights = [\n" + "\n".join(blocks) + "\n]")
        if kernel.bias is not None:
            lines.append(f"bias = [{', '.join(repr(float(v)) for v in kernel.bias)}]")
            lines.append(f"bias_units = {_toml_string(kernel.bias_units)}")
    elif len(kernel.matrices) == 1:
        lines.append(f"matrix = {_toml_rows(kernel.matrices[0], '')}")
    else:
        lines.append(f"combine = {_toml_string(kernel.combine)}")
        blocks = [f"    {_toml_rows(m, '    ')}," for m in kernel.matrices]
        lines.append("matrices = [\n" + "\n".join(blocks) + "\n]")
    if kernel.offset:
        lines.append(f"offset = {kernel.offset!r}")
    if kernel.anchor is not None:
        lines.append(f"anchor = [{kernel.anchor[0]}, {kernel.anchor[1]}]")
    return "\n".join(lines) + "\n"
