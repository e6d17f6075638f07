"""Shell completion of kernel names for ``-k/--kernel`` and ``kernels show/export NAME``.

Completion runs on every Tab press, so it reads only what it must: the names of the built-in
kernel files (and their one-line descriptions, which zsh and fish show), the names of the files in
``CONVCLI_KERNEL_PATH`` (never opened: one might be a FIFO), and ``*.toml`` files beside the
word being completed. The family parameters after ``NAME:`` need the kernel package (and numpy),
which is imported only then. Any failure completes nothing, so the shell falls back to file names.
"""

from __future__ import annotations

import os
import tomllib

from convcli.kernel_dirs import builtin_dir, user_dirs

# The most a kernel file worth describing can hold; the built-ins are a few hundred bytes.
_MAX_DESCRIBED_FILE = 64 * 1024
# zsh and fish show a candidate's help beside it, on one line.
_MAX_HELP = 56


def _short(text: str) -> str:
    """The first clause of a description, on one short line."""
    clause = " ".join(text.split(":")[0].split())
    return clause if len(clause) <= _MAX_HELP else clause[: _MAX_HELP - 3].rsplit(" ", 1)[0] + "..."


def _builtin_kernels() -> dict[str, dict[str, object]]:
    """Each built-in kernel's file contents (description, family), by name."""
    found: dict[str, dict[str, object]] = {}
    for path in sorted(builtin_dir().glob("*.toml")):
        try:
            with path.open("rb") as handle:
                found[path.stem] = tomllib.loads(handle.read(_MAX_DESCRIBED_FILE).decode("utf-8"))
        except (OSError, ValueError):
            found[path.stem] = {}
    return found


def _user_names() -> list[str]:
    names: list[str] = []
    for directory in user_dirs():
        try:
            names += [entry.name[: -len(".toml")] for entry in os.scandir(directory) if entry.name.endswith(".toml")]
        except OSError:
            continue
    return names


def _toml_files(incomplete: str) -> list[str]:
    """``*.toml`` files (regular files only) whose path starts with ``incomplete``."""
    folder, prefix = os.path.split(incomplete)
    try:
        entries = list(os.scandir(os.path.expanduser(folder) or "."))
    except OSError:
        return []
    return sorted(
        os.path.join(folder, entry.name)
        for entry in entries
        if entry.name.startswith(prefix) and entry.name.lower().endswith(".toml") and entry.is_file()
    )


def _parameters(incomplete: str, builtins: dict[str, dict[str, object]]) -> list[tuple[str, str]]:
    """``NAME:key=`` candidates for the family parameters not given yet."""
    name, _, given = incomplete.partition(":")
    family_name = builtins.get(name, {}).get("family", name)
    *done, typing = given.split(",")
    if "=" in typing:
        return []  # a value: nothing to offer
    from convcli.kernels.families import FAMILIES

    family = FAMILIES.get(str(family_name))
    if family is None:
        return []
    used = {part.partition("=")[0].strip() for part in done}
    return [
        (f"{name}:{','.join([*done, param.name])}=", _short(param.help))
        for param in family.params
        if param.name.startswith(typing) and param.name not in used
    ]


def kernel_candidates(incomplete: str) -> list[tuple[str, str]]:
    """Completions of a kernel argument, each with its description (empty where unknown).

    >>> [name for name, _ in kernel_candidates("sobel-")]
    ['sobel-5x5', 'sobel-7x7', 'sobel-x', 'sobel-y']
    """
    builtins = _builtin_kernels()
    if ":" in incomplete and "/" not in incomplete:
        return _parameters(incomplete, builtins)
    described = {name: _short(str(data.get("description", ""))) for name, data in builtins.items()}
    for name in _user_names():
        described[name] = ""  # a user kernel takes the place of a built-in of the same name
    wanted = incomplete.lower()
    names = [(name, text) for name, text in sorted(described.items()) if name.lower().startswith(wanted)]
    return names + [(path, "kernel file") for path in _toml_files(incomplete)]


def complete_kernel(incomplete: str) -> list[tuple[str, str]]:
    """Typer's autocompletion callback for kernel arguments: never raises."""
    try:
        return kernel_candidates(incomplete)
    except Exception:  # completion must never print a traceback over the user's command line
        return []


__all__ = ["complete_kernel", "kernel_candidates"]

