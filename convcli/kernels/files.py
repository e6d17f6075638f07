"""Kernel files: reading a TOML kernel file and building the :class:`Kernel` it describes, key by key."""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from convcli.errors import KernelError
from convcli.kernels.families import FAMILIES
from convcli.kernels.kernel import BIAS_UNITS, DEFAULT_BIAS_UNITS, FLOAT32_MAX, MAX_SET_MATRICES, Kernel
from convcli.kernels.names import find_name, parse_spec, unknown_name_message
from convcli.kernels.values import parse_anchor, parse_bias, parse_matrix, parse_number, parse_string, parse_weights
from convcli.readfile import NotRegularFileError, open_regular, read_bounded

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
    """Read and validate one kernel file; every problem is reported naming the file.

    Only a regular file is read (a FIFO or a device is refused before it is opened, so nothing
    blocks), and never more than :data:`MAX_KERNEL_FILE_BYTES`, whatever ``stat`` reports.
    """
    where = str(path)
    text = ""
    try:
        with open_regular(path) as handle:
            raw = read_bounded(handle, MAX_KERNEL_FILE_BYTES)
        if len(raw) > MAX_KERNEL_FILE_BYTES:
            raise KernelError(f"{where}: kernel file is larger than the {MAX_KERNEL_FILE_BYTES}-byte limit")
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except FileNotFoundError:
        raise KernelError(f"{where}: no such kernel file") from None
    except NotRegularFileError as exc:
        raise KernelError(f"{where}: is {exc.kind}, not a kernel file") from None
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
    except ValueError as exc:
        if not text:  # from the path itself: an embedded NUL byte
            raise KernelError(f"{where}: cannot read: {exc}") from None
        # tomllib converts integers with int(), which refuses thousands of digits.
        raise KernelError(f"{where}: {_long_integer(text)}") from None
    except OSError as exc:
        raise KernelError(f"{where}: cannot read: {exc.strerror or exc}") from None
    return kernel_from_dict(data, where, params=params or {}, spec=spec, _seen=_seen)


def _long_integer(text: str) -> str:
    """Where the integer too long for Python's int() is: its line and, if any, the key it sets."""
    found = re.search(r"[0-9_]{1000,}", text)
    if found is None:
        return "not valid TOML: a number cannot be read"
    line_no = text.count("\n", 0, found.start()) + 1
    line = text.splitlines()[line_no - 1] if text.splitlines() else ""
    key = re.match(r"\s*([A-Za-z0-9_.\"-]+)\s*=", line)
    named = f" (`{key.group(1)}`)" if key else ""
    return f"line {line_no}{named}: an integer of {len(found.group())} digits, too large for any kernel value"


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
    display = spec or name
    definer, combine = _layout(data, display, params, where)

    if definer == "family":
        family = find_name(data["family"], FAMILIES) if isinstance(data["family"], str) else None
        if family is None:
            raise KernelError(f"{where}: " + unknown_name_message("family", str(data["family"]), list(FAMILIES)))
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
        _check_set_size(len(value), "matrices", where)
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
    kernel = dataclasses.replace(kernel, **extras) if extras else kernel
    check_response_range(kernel, where, definer)
    return kernel


def _check_set_size(count: int, key: str, where: str) -> None:
    if count > MAX_SET_MATRICES:
        raise KernelError(
            f"{where}: `{key}` has {count} entries, more than the limit of {MAX_SET_MATRICES} in a kernel set"
        )


def check_response_range(kernel: Kernel, where: str, key: str = "matrix") -> None:
    """Refuse a kernel whose taps or response on 0..255 pixels can overflow float32.

    The worst response of a matrix is 255 times the sum of its absolute taps; a set combines
    its matrices' responses (``magnitude`` squares them first), and ``offset`` and ``bias`` add to it.
    """
    if kernel.weights is not None:
        responses = np.abs(kernel.weights).sum(axis=(1, 2, 3)) * 255.0
        bias = kernel.bias_pixels
        worst = float((responses + (np.abs(bias) if bias is not None else 0.0)).max())
        taps = float(np.abs(kernel.weights).max())
    else:
        sums = [float(np.abs(m).sum()) * 255.0 for m in kernel.matrices]
        taps = max(float(np.abs(m).max()) for m in kernel.matrices)
        if kernel.combine == "magnitude":
            # The squares are summed in float32 before the square root.
            worst = sum(s * s for s in sums)
        elif kernel.combine == "sum":
            worst = sum(sums)
        else:
            worst = max(sums)
    worst += abs(kernel.offset)
    if not taps <= FLOAT32_MAX:
        raise KernelError(
            f"{where}: `{key}` has taps up to {taps:.3g} after scaling, beyond float32's range "
            f"(+-{FLOAT32_MAX:.3g}) in which convcli filters"
        )
    if not worst <= FLOAT32_MAX:
        raise KernelError(
            f"{where}: `{key}` can give responses up to {worst:.3g} on 0..255 pixels, beyond float32's range "
            f"(+-{FLOAT32_MAX:.3g}) in which convcli filters; use smaller taps, `scale` or `divisor`"
        )


def _layout(data: Mapping[str, Any], name: str, params: Mapping[str, Any], where: str) -> tuple[str, str]:
    """The one key that defines the kernel, and its ``combine`` rule; refuses keys that belong with another.

    ``name`` is the kernel as the user named it, for the message about parameters.
    """
    definers = [key for key in _DEFINERS if key in data]
    if len(definers) != 1:
        found = ", ".join(f"`{k}`" for k in definers) or "none"
        wanted = ", ".join(f"`{k}`" for k in _DEFINERS)
        raise KernelError(f"{where}: needs exactly one of {wanted} (found {found})")
    definer = definers[0]
    if params and definer != "family":
        # The spec the user wrote names the kernel; the file behind a name is no business of theirs.
        base = name.partition(":")[0]
        raise KernelError(
            f"kernel {name!r}: {base!r} takes no parameters (got {', '.join(params)}); "
            "parametric kernels are listed by `convcli kernels list` with kind `family`"
        )
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
    _check_set_size(len(members), "members", where)
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
        if not math.isfinite(factor):
            raise KernelError(f"{where}: `divisor` {divisor:g} is too small: dividing by it overflows")
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
