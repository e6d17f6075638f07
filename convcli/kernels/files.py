"""Kernel files: reading a TOML kernel file and building the :class:`Kernel` it describes, key by key."""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.errors import KernelError
from convcli.kernels.families import FAMILIES
from convcli.kernels.kernel import BIAS_UNITS, DEFAULT_BIAS_UNITS, Kernel
from convcli.kernels.names import parse_spec, unknown_name_message
from convcli.kernels.values import parse_anchor, parse_bias, parse_matrix, parse_number, parse_string, parse_weights

COMBINE_RULES: tuple[str, ...] = ("magnitude", "max", "sum")
MAX_KERNEL_FILE_BYTES = 4 * 1024 * 1024

_ALLOWED_KEYS = {
    "name", "description", "reference", "matrix", "matrices", "members", "combine",
    "family", "params", "scale", "divisor", "normalize", "offset", "anchor",
    "weights", "bias", "bias_units",
}
_DEFINERS = ("matrix", "matrices", "members", "family", "weights")


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
            raise KernelError(
                f"{where}: kernel file is {size} bytes, larger than the {MAX_KERNEL_FILE_BYTES}-byte limit"
            )
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
    name = parse_string(data, "name", where, required=True)
    description = parse_string(data, "description", where, required=True)
    reference = parse_string(data, "reference", where, required=False)
    params = dict(params or {})
    definer, combine = _layout(data, name, params, where)
    display = spec or name

    if definer == "family":
        family = data["family"]
        if not isinstance(family, str) or family not in FAMILIES:
            raise KernelError(f"{where}: " + unknown_name_message("family", str(family), list(FAMILIES)))
        file_params = data.get("params", {})
        if not isinstance(file_params, dict):
            raise KernelError(f"{where}: `params` must be a table of key = value")
        kernel = kernel_from_family(family, file_params, params, display, source=where, description=description,
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
                        bias=parse_bias(data, weights.shape[0], where), bias_units=units)
    else:
        matrices = _member_matrices(data["members"], name, where, _seen)
        kernel = Kernel(display, description, matrices, combine, source=where, reference=reference)
    kernel = _apply_scaling(_common_shape(kernel, where), data, where)
    extras: dict[str, Any] = {}
    if "offset" in data:
        extras["offset"] = parse_number(data["offset"], where, "`offset`")
    if "anchor" in data:
        extras["anchor"] = parse_anchor(data["anchor"], kernel.shape, where)
    return dataclasses.replace(kernel, **extras) if extras else kernel


def _layout(data: Mapping[str, Any], name: str, params: Mapping[str, Any], where: str) -> tuple[str, str]:
    """The one key that defines the kernel, and its ``combine`` rule; refuses keys that belong with another."""
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
    combine = parse_string(data, "combine", where, required=False)
    if definer in ("matrices", "members"):
        if not combine:
            raise KernelError(f"{where}: a kernel set needs `combine` ({', '.join(COMBINE_RULES)})")
        if combine not in COMBINE_RULES:
            raise KernelError(f"{where}: `combine` must be one of {', '.join(COMBINE_RULES)}, got {combine!r}")
    elif combine:
        raise KernelError(f"{where}: `combine` applies to `matrices` or `members` only")
    return definer, combine


def _member_matrices(
    members: Any, name: str, where: str, _seen: tuple[str, ...]
) -> tuple[NDArray[np.float64], ...]:
    """The matrices of the kernels a set names in ``members``, each a single 2-D kernel."""
    # Members are found by name in the catalogue, which itself reads files with this module:
    # the import waits until a set is loaded so that neither module needs the other to load first.
    from convcli.kernels.catalogue import load_named

    if not isinstance(members, list) or len(members) < 2 or not all(isinstance(m, str) for m in members):
        raise KernelError(f"{where}: `members` must be a list of at least two kernel names")
    if name in _seen or len(_seen) > 8:
        raise KernelError(f"{where}: `members` refer back to {name!r} (a cycle)")
    matrices: list[NDArray[np.float64]] = []
    for member in members:
        try:
            part = load_named(*parse_spec(member), member, _seen=(*_seen, name))
        except KernelError as exc:
            message = str(exc)
            raise KernelError(message if message.startswith(where) else f"{where}: member: {message}") from None
        if part.is_mixing or len(part.matrices) != 1:
            raise KernelError(f"{where}: member {member!r} is not a single 2-D kernel; members must be")
        if part.offset or part.anchor is not None:
            raise KernelError(f"{where}: member {member!r} has an `offset` or `anchor`, which a set cannot keep")
        matrices.append(part.matrix)
    return tuple(matrices)


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


def kernel_from_family(
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
    """Build family ``family`` into a :class:`Kernel` named ``display``.

    ``params`` (from the command line) override ``file_params`` (a kernel file's ``[params]``).
    ``where`` is the kernel file, if any: a bad value in its table is reported against it.
    """
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
    """Apply the file's ``scale``, ``divisor`` and ``normalize``, and say so in ``normalization``."""
    factor = 1.0
    notes: list[str] = [] if kernel.normalization == "none" else [kernel.normalization]
    if "scale" in data:
        scale = parse_number(data["scale"], where, "`scale`")
        factor *= scale
        notes.append(f"scale {scale:g}")
    if "divisor" in data:
        divisor = parse_number(data["divisor"], where, "`divisor`")
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
