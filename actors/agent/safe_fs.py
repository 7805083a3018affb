"""Where a restore job may write on the agent's machine, and how it gets there without being led astray.

Everything below the destination is reached through folder descriptors, one component at
a time, with ``O_NOFOLLOW``: a symbolic link planted in the destination tree (by a local
user, or restored earlier) is never followed, whatever it points to. A member path (the
server's word for where a file goes) must pass ``protocol.restore_rules.member_parts``:
relative, no ``..`` or ``.``, no separators inside a name. Missing folders are created with
``mkdir`` relative to their parent's descriptor (which never follows a link either) and
opened the same way. The destination itself must not be a link; the folders above it are
taken as the system lays them out (``/tmp`` may be a link on some systems). Files are
written by ``runtime.fsutil.AtomicFileAt``: a temporary, fsync, read back, rename.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from pathlib import PurePath

from protocol.agent_messages import MODE_BITS
from protocol.catalogue_restore_jobs import NOT_REGULAR, UNSAFE_PATH, WRITE_FAILED
from protocol.restore_rules import check_destination, member_parts, renamed

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
FOLDER_MODE = 0o755
MAX_RENAMES = 1000
_OPEN_FOLDERS = 64  # descriptors kept for the folders most recently written into


class Refused(Exception):
    """A file (or the whole job) cannot be written where asked: ``code`` says why (a problem code)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def supported() -> str | None:
    """None when this platform can restore without following links, else why not."""
    needed = (os.open, os.mkdir, os.stat, os.rename, os.unlink)
    if not _NOFOLLOW or any(f not in os.supports_dir_fd for f in needed):
        return "this platform cannot open files relative to a folder without following links (dir_fd, O_NOFOLLOW)"
    return None


def _open_dir(name: str, parent: int | None, follow: bool) -> int:
    flags = _DIR_FLAGS | (0 if follow else _NOFOLLOW)
    return os.open(name, flags) if parent is None else os.open(name, flags, dir_fd=parent)


def _in_the_way(exc: OSError) -> bool:
    """A link (ELOOP, or EMLINK/EFTYPE on some BSDs) or a non-folder (ENOTDIR) where a folder was expected."""
    return exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK, getattr(errno, "EFTYPE", -1))


def _step(parent: int, name: str, where: str) -> int:
    """The folder ``name`` in ``parent``, created when missing; never a link."""
    try:
        return _open_dir(name, parent, follow=False)
    except FileNotFoundError:
        pass
    except OSError as exc:
        if _in_the_way(exc):
            raise Refused(UNSAFE_PATH, f"{where} is a link or not a folder: not followed") from None
        raise Refused(WRITE_FAILED, f"cannot open {where}: {exc.strerror}") from None
    try:
        os.mkdir(name, FOLDER_MODE, dir_fd=parent)
    except FileExistsError:
        pass  # made meanwhile (or a dangling link, refused just below)
    except OSError as exc:
        raise Refused(WRITE_FAILED, f"cannot create {where}: {exc.strerror}") from None
    try:
        return _open_dir(name, parent, follow=False)
    except OSError as exc:
        code = UNSAFE_PATH if _in_the_way(exc) else WRITE_FAILED
        raise Refused(code, f"cannot open {where}: {exc.strerror}") from None


def open_destination(destination: str) -> int:
    """A descriptor of the destination folder, created when missing; Refused when it cannot be used."""
    problem = check_destination(destination)
    if problem:
        raise Refused(UNSAFE_PATH, f"destination {destination!r} {problem}")
    path = PurePath(destination)
    if not path.is_absolute():
        raise Refused(UNSAFE_PATH, f"destination {destination!r} is not an absolute path on this machine")
    fd = _open_dir(path.anchor, None, follow=True)
    parts = path.parts[1:]
    try:
        for n, name in enumerate(parts):
            last = n == len(parts) - 1
            where = str(PurePath(path.anchor, *parts[: n + 1]))
            try:
                # Folders above the destination may be links the system set up; the destination may not.
                child = _open_dir(name, fd, follow=not last)
            except FileNotFoundError:
                child = _step(fd, name, where)
            except OSError as exc:
                if last and _in_the_way(exc):
                    raise Refused(UNSAFE_PATH, f"the destination {where} is a link or not a folder") from None
                raise Refused(WRITE_FAILED, f"cannot open {where}: {exc.strerror}") from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


class Tree:
    """The destination's folders as descriptors, reached without following links (a few kept open)."""

    def __init__(self, root_fd: int, destination: str) -> None:
        self.root = root_fd
        self.destination = destination
        self._open: dict[tuple[str, ...], int] = {}
        self._unsynced: set[int] = set()  # folders a file was placed in since the last sync

    def placed(self, folder: int) -> None:
        """A file was renamed into ``folder``: it is synced by ``sync`` (once per batch, not once per file)."""
        self._unsynced.add(folder)

    def sync(self) -> None:
        """Make the renames in every folder written since the last call durable."""
        for fd in self._unsynced:
            with contextlib.suppress(OSError):  # some platforms cannot sync a folder; the renames stand
                os.fsync(fd)
        self._unsynced.clear()

    def _release(self, fd: int) -> None:
        if fd in self._unsynced:
            self._unsynced.discard(fd)
            with contextlib.suppress(OSError):
                os.fsync(fd)
        os.close(fd)

    def close(self) -> None:
        self.sync()
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()
        os.close(self.root)

    def folder_of(self, member: str) -> tuple[int, str]:
        """(descriptor of the folder a member goes in, its file name); Refused for an unsafe member or a link."""
        parts = member_parts(member)
        if isinstance(parts, str):
            raise Refused(UNSAFE_PATH, f"unsafe path {member[:200]!r}: {parts}")
        *folders, name = parts
        key = tuple(folders)
        fd = self._open.get(key)
        if fd is not None:
            self._open[key] = self._open.pop(key)  # most recently used last
            return fd, name
        fd = self.root
        opened: list[int] = []
        try:
            for n, folder in enumerate(folders):
                fd = _step(fd, folder, "/".join(folders[: n + 1]))
                opened.append(fd)
        except BaseException:
            for d in opened:
                os.close(d)
            raise
        for d in opened[:-1]:
            os.close(d)
        if opened:
            if len(self._open) >= _OPEN_FOLDERS:
                self._release(self._open.pop(next(iter(self._open))))
            self._open[key] = fd
        return fd, name


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a file goes under the overwrite policy: ``name`` in its folder, replacing what is there or not."""

    name: str
    replace: bool


def existing(folder: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return None


def place(folder: int, name: str, policy: str, where: str) -> Placement | None:
    """Where a file named ``name`` goes in ``folder``: None to skip it (policy skip, something is there)."""
    found = existing(folder, name)
    if found is None:
        return Placement(name, replace=False)
    if policy == "skip":
        return None
    if policy == "overwrite":
        if not stat.S_ISREG(found.st_mode):
            raise Refused(NOT_REGULAR, f"{where} exists and is not a regular file: not replaced")
        return Placement(name, replace=True)
    return Placement(free_name(folder, name, where), replace=False)


def set_mode(folder: int, name: str, inode: int, mode: int) -> bool:
    """Give the file just placed as ``name`` its backed-up permission bits (never setuid, setgid or sticky),
    through a descriptor of that very file: False when what is there now is not the inode written."""
    flags = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags, dir_fd=folder)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_ino != inode:
            return False
        os.fchmod(fd, mode & MODE_BITS)
        return True
    finally:
        os.close(fd)


def free_name(folder: int, name: str, where: str, start: int = 1) -> str:
    """The first ``name (restored N)`` nothing is called yet."""
    for n in range(start, start + MAX_RENAMES):
        candidate = renamed(name, n)
        if existing(folder, candidate) is None:
            return candidate
    raise Refused(WRITE_FAILED, f"{where}: {MAX_RENAMES} restored copies are there already")
