"""Finding the input files of a batch: folders walked safely, file lists read exactly."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

from convcli.errors import ParameterError
from convcli.io.formats import READ_SUFFIXES
from convcli.io.stdio import not_an_image_file
from convcli.readfile import file_kind

FileKey = tuple[int, int]

# The longest path a list entry may hold, in bytes: Linux's PATH_MAX, the longest path the kernel
# opens. A longer line is no path, but a sign that the list is not a list of paths (/dev/zero).
PATH_MAX = 4096
# The most entries a list may hold; with PATH_MAX, this bounds what reading a list can cost.
MAX_LIST_ENTRIES = 1_000_000


@dataclass(frozen=True)
class SourceFile:
    """An input found by :func:`discover`.

    ``relative`` is where its output goes under the output folder (its folder part is mirrored);
    ``error`` is set for a match that cannot be used (a broken link, an unreadable folder, a FIFO);
    ``walked`` says it was found in a folder rather than named on the command line or in a list.
    """

    path: Path
    relative: PurePath
    error: str | None = None
    walked: bool = False


def file_key(path: Path | os.DirEntry[str], *, follow: bool = True) -> FileKey | None:
    """``(device, inode)``: the identity of a file or folder whatever its name; None if it cannot be read."""
    try:
        if isinstance(path, os.DirEntry):
            st = path.stat(follow_symlinks=follow)
        else:
            st = os.stat(path, follow_symlinks=follow)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _not_regular(path: Path | str, mode: int) -> str | None:
    """The reason a file of this ``mode`` is refused as an input, or None for a regular file.

    A FIFO or a device is never opened: reading one can wait forever, or never end.
    """
    kind = file_kind(mode)
    return None if kind is None else not_an_image_file(path, kind)


def _matcher(pattern: str | None) -> Callable[[str], bool]:
    if pattern is None:
        return lambda name: os.path.splitext(name)[1].lower() in READ_SUFFIXES
    folded = pattern.lower()
    # Case-insensitive, so that *.jpg also finds the PHOTO.JPG cameras write.
    return lambda name: fnmatch.fnmatchcase(name.lower(), folded)


def _walk(
    root: Path,
    recursive: bool,
    matches: Callable[[str], bool],
    visited: set[FileKey],
    excluded: set[FileKey],
) -> Iterator[SourceFile]:
    """Files under ``root`` in name order, skipping folders already visited or excluded."""
    stack: list[tuple[Path, PurePath]] = [(root, PurePath())]
    while stack:
        folder, relative = stack.pop()
        key = file_key(folder)
        # The root itself is walked even when it is the output folder (outputs beside inputs).
        if key is None or key in visited or (key in excluded and folder != root):
            continue
        visited.add(key)  # a folder reached twice (bind mount, SRC given twice) is walked once
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            yield SourceFile(folder, relative, f"{folder}: cannot list the folder: {exc.strerror or exc}")
            continue
        subfolders: list[tuple[Path, PurePath]] = []
        for entry in entries:
            try:
                is_link = entry.is_symlink()
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        subfolders.append((Path(entry.path), relative / entry.name))
                    continue
                if is_link and entry.is_dir():
                    continue  # never descend through a folder link: that is how walks loop
                if not matches(entry.name):
                    continue
                if entry.is_file():
                    yield SourceFile(Path(entry.path), relative / entry.name, walked=True)
                elif is_link and not os.path.exists(entry.path):
                    error = f"{entry.path}: broken symbolic link"
                    yield SourceFile(Path(entry.path), relative / entry.name, error, walked=True)
                else:  # a FIFO, socket or device under an image's name: reported, never opened
                    reason = _not_regular(entry.path, entry.stat().st_mode)
                    yield SourceFile(Path(entry.path), relative / entry.name, reason, walked=True)
            except OSError as exc:
                error = f"{entry.path}: {exc.strerror or exc}"
                yield SourceFile(Path(entry.path), relative / entry.name, error, walked=True)
        stack.extend(reversed(subfolders))


def _listed_relative(path: Path, recursive: bool) -> PurePath:
    # A relative path from a list keeps its folders under OUTDIR with --recursive, as long as it
    # stays below the current folder; anything else goes flat into OUTDIR.
    if recursive and not path.is_absolute() and ".." not in path.parts:
        return PurePath(*[part for part in path.parts if part != "."])
    return PurePath(path.name)


def discover(
    sources: Iterable[str | Path],
    *,
    recursive: bool = False,
    pattern: str | None = None,
    exclude: Iterable[str | Path] = (),
    listed: Iterable[str | Path] = (),
) -> list[SourceFile]:
    """Find the input files of a batch.

    Parameters
    ----------
    sources
        Files and folders. A file is taken whatever its name; a folder gives the files in it
        that match ``pattern`` (with ``recursive``, those in its subfolders too, mirrored by
        their path relative to the folder).
    recursive
        Walk subfolders. Links to files are followed; links to folders are not descended into,
        and no folder is walked twice, so a link loop cannot trap the walk.
    pattern
        A glob on the file name, matched case-insensitively; default: the suffixes convcli reads
        (:data:`~convcli.io.formats.READ_SUFFIXES`).
    exclude
        Folders not walked into: the output folder, when it lies inside a source folder. A
        source folder that is itself excluded is still read (outputs written beside inputs).
    listed
        Paths from a file list (:func:`read_file_list`), taken like ``sources``.

    Returns
    -------
    list of SourceFile
        In the order given, folders in name order, each path once.

    Raises
    ------
    ParameterError
        When a source does not exist.
    """
    matches = _matcher(pattern)
    excluded = {key for key in (file_key(Path(p)) for p in exclude) if key is not None}
    visited: set[FileKey] = set()
    found: list[SourceFile] = []
    seen: set[str] = set()

    def add(item: SourceFile) -> None:
        key = os.path.abspath(item.path)
        if key not in seen:
            seen.add(key)
            found.append(item)

    for from_list, entries in ((False, sources), (True, listed)):
        for entry in entries:
            path = Path(entry)
            if path.is_dir():
                for item in _walk(path, recursive, matches, visited, excluded):
                    add(item)
            elif path.exists():
                relative = _listed_relative(path, recursive) if from_list else PurePath(path.name)
                add(SourceFile(path, relative, _not_regular(path, path.stat().st_mode)))
            elif from_list:
                # One stale line in a list is one failed file, not a reason to refuse the batch.
                add(SourceFile(path, _listed_relative(path, recursive), f"{path}: no such file"))
            else:
                raise ParameterError(f"{path}: no such file or folder")
    return found


def read_file_list(
    stream: BinaryIO,
    *,
    null: bool = False,
    name: str = "the file list",
    max_entries: int = MAX_LIST_ENTRIES,
) -> list[str]:
    """Read paths from a stream: one per line, or NUL-separated with ``null`` (``find -print0``).

    Bytes that are not valid UTF-8 are kept with :func:`os.fsdecode`, so any name the file
    system allows comes through. Empty entries are ignored, and so are blank lines (spaces and
    tabs only); with ``null`` every non-empty entry is a name. The stream is read in bounded
    pieces, and refused as soon as an entry is longer than :data:`PATH_MAX` bytes or there are
    more than ``max_entries`` entries: ``/dev/zero`` or ``yes`` cannot fill the memory.

    >>> import io
    >>> read_file_list(io.BytesIO(b"a.jpg\\nb c.png\\n\\n  \\n"))
    ['a.jpg', 'b c.png']
    >>> read_file_list(io.BytesIO(b"new\\nline.png\\0x.png\\0"), null=True)
    ['new\\nline.png', 'x.png']

    Raises
    ------
    ParameterError
        Naming ``name`` and the cap, or a NUL byte in a line-separated list.
    """
    separator = b"\0" if null else b"\n"
    paths: list[str] = []
    pending = b""
    line = 0

    def take(entry: bytes) -> None:
        nonlocal line
        line += 1  # empty entries count too, or -0 on /dev/zero would read for ever
        if line > max_entries:
            raise ParameterError(f"{name}: more than {max_entries:,} entries; split the list")
        if not null and entry.endswith(b"\r"):
            entry = entry[:-1]
        if len(entry) > PATH_MAX:
            raise ParameterError(f"{name}: entry {line} is longer than {PATH_MAX} bytes, the longest path")
        if not null and b"\0" in entry:
            raise ParameterError(f"{name}: entry {line} holds a NUL byte; for a NUL-separated list add -0")
        if entry if null else entry.strip(b" \t"):
            paths.append(os.fsdecode(entry))

    while True:
        data = stream.read(_READ_SIZE)
        if not data:
            break
        pending += data
        *entries, pending = pending.split(separator)
        for entry in entries:
            take(entry)
        if len(pending) > PATH_MAX + 1:  # the +1 leaves room for a carriage return
            take(pending)  # refused: longer than any path
    if pending:
        take(pending)
    return paths


_READ_SIZE = 1 << 16
