"""Writing a file so that it is never seen half-written: the one helper every output goes through.

Images, batch reports and exported kernels are written to a temporary file in the target's
folder, flushed to disk and renamed into place: a crash, a full disk or an interruption leaves
either the old file or the complete new one.

- A file that is replaced keeps its permission bits, and its owner and group where the process
  may set them.
- A symbolic link is followed: the file it points to is replaced and the link stays a link. A
  dangling link gets its target created, as a shell redirection (``>``) does.
- Device nodes and FIFOs (``/dev/null``, a named pipe) cannot be replaced by a rename and are
  written through instead; so are the names of open descriptors (``/dev/stdout``,
  ``/dev/fd/N``). A FIFO that no process reads is an error, not a wait.
- With ``exclusive=True`` the output is claimed rather than replaced: it is hard-linked into
  place, which fails if the name exists, so concurrent writers never overwrite each other.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
import zlib
from collections.abc import Iterable
from pathlib import Path

from convcli.errors import OutputError, OutputExistsError

_TEMP_SUFFIX = ".tmp"
_TEMP_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789_"  # tempfile.mkstemp's, safe on every filesystem
_TEMP_RANDOM = 8
# Output names longer than this many bytes appear shortened in their temporary file's name, so
# that it fits every common filesystem's name limit (255 bytes on most, 143 on eCryptfs).
_TEMP_NAME_BYTES = 100
_MAX_LINKS = 40  # as Linux's limit on a chain of symbolic links (ELOOP)
_DESCRIPTOR_FOLDER = re.compile(r"/proc/\d+(?:/task/\d+)?/fd")
# link(2) errors meaning "this filesystem has no hard links", not "this name is taken".
_NO_HARD_LINKS = frozenset(
    code
    for code in (
        errno.EPERM,
        errno.EACCES,
        errno.EXDEV,
        errno.EMLINK,
        errno.ENOSYS,
        getattr(errno, "EOPNOTSUPP", None),
        getattr(errno, "ENOTSUP", None),
    )
    if code is not None
)
_OPEN_FLAGS = getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _temp_stem(name: str) -> str:
    """The start of the temporary file names of output ``name``: ``.NAME``, or for a name longer
    than 100 bytes its first bytes (whole characters), ``~`` and the CRC-32 of the whole name."""
    if len(os.fsencode(name)) <= _TEMP_NAME_BYTES:
        return f".{name}"
    kept, size = [], 0
    for char in name:
        size += len(os.fsencode(char))
        if size > _TEMP_NAME_BYTES - 9:
            break
        kept.append(char)
    return f".{''.join(kept)}~{zlib.crc32(os.fsencode(name)):08x}"


def temp_file_pattern(names: Iterable[str]) -> re.Pattern[str]:
    """The names :func:`write_bytes_atomic` gives the temporary files of outputs called ``names``:
    ``.NAME.XXXXXXXX.tmp``, eight characters of ``[a-z0-9_]``; a name longer than 100 bytes is
    shortened in it (its first bytes, ``~`` and a checksum of the whole name), so that the
    temporary name always fits the filesystem's limit on a name.

    >>> bool(temp_file_pattern(["a.png"]).fullmatch(".a.png.k2_9xq0z.tmp"))
    True
    """
    alternatives = "|".join(re.escape(_temp_stem(name)) for name in names)
    return re.compile(rf"(?:{alternatives})\.[a-z0-9_]{{{_TEMP_RANDOM}}}{re.escape(_TEMP_SUFFIX)}")


def _cannot_write(shown: Path, exc: OSError) -> OutputError:
    return OutputError(f"{shown}: cannot write: {exc.strerror or exc}")


def _names_a_descriptor(path: Path) -> bool:
    """``/proc/self/fd/N`` and the links to it (``/dev/stdout``, ``/dev/fd/N``): an open file, not a name."""
    try:
        return _DESCRIPTOR_FOLDER.fullmatch(os.path.realpath(path.parent)) is not None
    except (OSError, ValueError):
        return False


def _follow_links(path: Path, shown: Path) -> tuple[Path, bool]:
    """The path a chain of symbolic links ends at (it may not exist yet), and whether it names
    an open descriptor, which is written through."""
    for _ in range(_MAX_LINKS):
        if _names_a_descriptor(path):
            return path, True
        try:
            target = os.readlink(path)
        except OSError:  # not a link, or missing: this is the file to write
            return path, False
        # A relative target is relative to the link's folder; ".." is left to the system, which
        # resolves it after any linked folder, as it does when opening the link.
        path = path.parent / target
    raise OutputError(f"{shown}: too many levels of symbolic links")


def write_bytes_atomic(data: bytes, destination: str | Path, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``destination`` atomically: a temporary file beside it, renamed into place.

    The temporary file is created with mode ``0o666`` less the umask (the system applies it),
    flushed to disk, and removed on any failure or interruption; the folder is flushed after the
    rename, so that the new name survives a power cut. A file that is replaced keeps its
    permission bits and, where allowed, its owner and group; a symbolic link is followed and its
    target replaced (a dangling link's target is created). A device node, FIFO or the name of an
    open descriptor (``/dev/stdout``) is written through instead of being replaced; a FIFO that
    no process reads is an error at once rather than a wait.

    With ``exclusive=True`` nothing is replaced: the finished file is hard-linked to
    ``destination``, which fails if that name exists (even as a link), so that concurrent
    writers of one output cannot overwrite each other. On a filesystem without hard links the
    name is claimed by creating it exclusively, and the finished file is renamed over that
    claim at once.

    Raises
    ------
    OutputExistsError
        With ``exclusive=True``: ``destination`` exists, or appeared during the write. Nothing
        was changed.
    OutputError
        Naming the destination and the cause (missing folder, permission denied, disk full).

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> write_bytes_atomic(b"first", target)
    >>> write_bytes_atomic(b"second", target, exclusive=True)
    Traceback (most recent call last):
    ...
    convcli.errors.OutputExistsError: ...out.txt: already exists
    >>> target.read_bytes()
    b'first'
    """
    shown = Path(destination)
    if exclusive:
        target = shown
        if os.path.lexists(target):
            raise OutputExistsError(f"{shown}: already exists")
    else:
        target, descriptor = _follow_links(shown, shown)
        try:
            mode = os.stat(target).st_mode
        except OSError:
            mode = None
        if mode is not None and stat.S_ISDIR(mode):
            raise OutputError(f"{shown}: is a directory")
        if descriptor or (mode is not None and not stat.S_ISREG(mode)):
            _write_through(data, target, shown, regular=mode is not None and stat.S_ISREG(mode))
            return
    folder = target.parent
    if not folder.is_dir():
        raise OutputError(f"{shown}: the folder {folder} does not exist")
    fd, temp = _create_temp(target, shown)
    try:
        try:
            previous = None if exclusive else os.stat(target)
        except FileNotFoundError:
            previous = None
        if previous is not None:
            _take_over(fd, previous, shown)
        _write_all(fd, data)
        os.fsync(fd)
        closing, fd = fd, -1
        os.close(closing)
        if exclusive:
            _claim(temp, target, shown)
        else:
            os.replace(temp, target)
        _sync_folder(folder)
    except BaseException as exc:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(temp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _cannot_write(shown, exc) from exc
        raise


def _create_temp(target: Path, shown: Path) -> tuple[int, Path]:
    """Create the temporary file beside ``target``, mode 0o666 less the umask, never an existing one."""
    stem = _temp_stem(target.name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS
    for _ in range(100):
        random = "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(_TEMP_RANDOM))
        temp = target.parent / f"{stem}.{random}{_TEMP_SUFFIX}"
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
        except PermissionError as exc:
            raise OutputError(f"{shown}: permission denied (cannot create files in {target.parent})") from exc
        except OSError as exc:
            raise _cannot_write(shown, exc) from exc
    raise OutputError(f"{shown}: cannot write: no free temporary file name in {target.parent}")


def _take_over(fd: int, previous: os.stat_result, shown: Path) -> None:
    """Give the temporary file the owner, group and permission bits of the file it replaces,
    before any data is in it, so that a private file is never readable by others."""
    current = os.fstat(fd)
    if hasattr(os, "fchown") and (current.st_uid, current.st_gid) != (previous.st_uid, previous.st_gid):
        # Only root may give a file away; a user may still keep a group they belong to.
        for uid, gid in ((previous.st_uid, previous.st_gid), (-1, previous.st_gid)):
            try:
                os.fchown(fd, uid, gid)
                break
            except OSError:
                continue
    wanted = stat.S_IMODE(previous.st_mode) & 0o777
    if not hasattr(os, "fchmod"):  # Windows before Python 3.13 has permission bits only for read-only
        return
    try:
        os.fchmod(fd, wanted)
    except OSError as exc:
        # Some filesystems (FAT, some network mounts) have fixed modes: fine unless the new file
        # would be readable or writable by more people than the old one.
        if stat.S_IMODE(os.fstat(fd).st_mode) & ~wanted & 0o777:
            raise OutputError(f"{shown}: cannot keep the file's permissions: {exc.strerror or exc}") from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        view = view[written:]


def _claim(temp: Path, target: Path, shown: Path) -> None:
    """Link the finished ``temp`` to ``target`` unless that name exists, then drop ``temp``."""
    try:
        os.link(temp, target)
    except FileExistsError as exc:
        # Over NFS a link whose reply was lost is retried and reports EEXIST although it was
        # made: the temporary file then has a second name, and it is the target.
        if not _same_file(temp, target):
            raise OutputExistsError(f"{shown}: already exists") from exc
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        _claim_without_links(temp, target, shown)
        return
    try:
        os.unlink(temp)
    except OSError:
        pass  # the output is in place; a stray temporary file is removed by the next sweep


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_nlink > 1 and os.path.samefile(a, b)
    except OSError:
        return False


def _claim_without_links(temp: Path, target: Path, shown: Path) -> None:
    """For filesystems without hard links: create ``target`` exclusively (the claim), then rename
    the finished file over it. Between the two an empty file bears the name for an instant."""
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o600))
    except FileExistsError as exc:
        raise OutputExistsError(f"{shown}: already exists") from exc
    try:
        os.replace(temp, target)
    except BaseException:
        try:
            os.unlink(target)
        except OSError:
            pass
        raise


def _sync_folder(folder: Path) -> None:
    """Flush the folder, so that a rename survives a power cut; not every system can (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _OPEN_FLAGS)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_through(data: bytes, path: Path, shown: Path, *, regular: bool) -> None:
    """Write into a device node, FIFO or open descriptor, which a rename would replace.

    The file is opened without waiting: a FIFO that no process reads fails at once (ENXIO)
    instead of blocking forever. A regular file behind a descriptor name (``/dev/stdout`` sent
    to a file) is appended to, as the shell's ``>`` and ``>>`` leave it.
    """
    flags = os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | _OPEN_FLAGS
    if regular:
        flags |= os.O_APPEND
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            try:
                mode = os.stat(path).st_mode
            except OSError:
                mode = 0
            if stat.S_ISFIFO(mode):
                raise OutputError(f"{shown}: cannot write: no process reads this FIFO; start its reader first") from exc
            if stat.S_ISSOCK(mode):
                raise OutputError(f"{shown}: cannot write: it is a socket, not a file") from exc
        raise _cannot_write(shown, exc) from exc
    try:
        if hasattr(os, "set_blocking"):  # not on Windows before Python 3.12, which opens without O_NONBLOCK
            os.set_blocking(fd, True)  # a reader is there: from now on, wait for it as any writer would
        _write_all(fd, data)
    except OSError as exc:
        raise _cannot_write(shown, exc) from exc
    finally:
        os.close(fd)


class AtomicOutput:
    """A file or folder written over time (a tiled image, a Zarr store) and put in place at once.

    :func:`write_bytes_atomic` needs the whole file in memory; an image written band by band
    goes to ``temp`` instead (a file, open as :attr:`handle`, or an empty folder), and
    :meth:`commit` renames it to the destination, with the same guarantees: the replaced file's
    permission bits kept, links followed, ``exclusive`` claiming instead of replacing.
    :meth:`discard` (also run on any exception as a context manager) removes the temporary.
    Device nodes, FIFOs and descriptors cannot receive a file written in place: refused.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.bin"
    >>> with AtomicOutput(target) as output:
    ...     _ = output.handle.write(b"bands")
    ...     output.commit()
    >>> target.read_bytes()
    b'bands'
    """

    def __init__(self, destination: str | Path, *, folder: bool = False, exclusive: bool = False) -> None:
        self.shown = Path(destination)
        self.folder = folder
        self.exclusive = exclusive
        if exclusive:
            self.target = self.shown
            if os.path.lexists(self.target):
                raise OutputExistsError(f"{self.shown}: already exists")
        else:
            self.target, descriptor = _follow_links(self.shown, self.shown)
            try:
                mode: int | None = os.stat(self.target).st_mode
            except OSError:
                mode = None
            if descriptor or (mode is not None and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))):
                raise OutputError(f"{self.shown}: a file written in parts needs a regular file, not a device or pipe")
            if mode is not None and stat.S_ISDIR(mode) != folder:
                kind = "is a directory" if stat.S_ISDIR(mode) else "is a file, not a folder"
                raise OutputError(f"{self.shown}: {kind}")
        if not self.target.parent.is_dir():
            raise OutputError(f"{self.shown}: the folder {self.target.parent} does not exist")
        self.done = False
        if folder:
            self.temp = self._create_temp_folder()
            self.handle = None
        else:
            fd, self.temp = _create_temp(self.target, self.shown)
            try:
                previous = None if exclusive else os.stat(self.target)
            except FileNotFoundError:
                previous = None
            try:
                if previous is not None:
                    _take_over(fd, previous, self.shown)
            except BaseException:
                os.close(fd)
                os.unlink(self.temp)
                raise
            self.handle = os.fdopen(fd, "w+b")

    def _create_temp_folder(self) -> Path:
        stem = _temp_stem(self.target.name)
        for _ in range(100):
            random = "".join(secrets.choice(_TEMP_ALPHABET) for _ in range(_TEMP_RANDOM))
            temp = self.target.parent / f"{stem}.{random}{_TEMP_SUFFIX}"
            try:
                temp.mkdir()
                return temp
            except FileExistsError:
                continue
            except OSError as exc:
                raise _cannot_write(self.shown, exc) from exc
        raise OutputError(f"{self.shown}: cannot write: no free temporary name in {self.target.parent}")

    def commit(self) -> None:
        """Flush the temporary to disk and rename it to the destination."""
        try:
            if self.handle is not None:
                self.handle.flush()
                os.fsync(self.handle.fileno())
                self.handle.close()
                if self.exclusive:
                    _claim(self.temp, self.target, self.shown)
                else:
                    os.replace(self.temp, self.target)
            elif self.exclusive:
                try:
                    os.rename(self.temp, self.target)  # a folder claims its name only if none is there
                except OSError as exc:
                    if os.path.lexists(self.target):
                        raise OutputExistsError(f"{self.shown}: already exists") from exc
                    raise
            elif os.path.isdir(self.target):
                # A folder cannot be renamed over a full one: the old store steps aside first, and
                # is removed once the new one has its name.
                old = self._create_temp_folder()
                os.rename(self.target, old / "old")
                os.rename(self.temp, self.target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(self.temp, self.target)
            _sync_folder(self.target.parent)
        except OSError as exc:
            self.discard()
            raise _cannot_write(self.shown, exc) from exc
        except BaseException:
            self.discard()
            raise
        self.done = True

    def discard(self) -> None:
        """Remove the temporary file or folder; nothing at the destination changes."""
        if self.done:
            return
        self.done = True
        if self.handle is not None and not self.handle.closed:
            self.handle.close()
        if self.folder:
            shutil.rmtree(self.temp, ignore_errors=True)
        else:
            try:
                os.unlink(self.temp)
            except OSError:
                pass

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.discard()
