"""Durable file-system steps shared by everything that writes atomically.

``AtomicFile`` is the one implementation of "write to a temporary file, fsync, rename
over the target, fsync the directory; remove the temporary on any failure". A reader
therefore sees either the old target or the complete new one, never a partial file.
``atomic_write`` (a context manager for streamed writes) and ``atomic_write_bytes``
are the everyday forms; writers that receive their data over several calls, or learn
the target's name only at the end (content-addressed blobs), hold an ``AtomicFile``;
``AtomicFileAt`` does the same inside an open folder without following any link.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_SUFFIX = ".part"


def fsync_dir(path: Path | str) -> None:
    """Make a rename inside ``path`` durable (where the platform lets a directory be synced)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _temp_prefix(target: Path) -> str:
    """Temporaries for ``target`` are hidden files named after it, so a listing shows whose they are."""
    return f".{target.name}."


class AtomicFile:
    """A temporary file that becomes ``target`` on ``commit`` and vanishes on ``abort``.

    The temporary is created in ``directory`` (default: the target's folder), which must
    be on the target's file system for the rename to be atomic. ``target`` may be left
    out here and given to ``commit`` instead, when the name depends on the content.
    ``sync_dir`` lets a caller that keeps directory descriptors open reuse them.
    """

    def __init__(
        self,
        target: Path | str | None = None,
        *,
        directory: Path | str | None = None,
        prefix: str | None = None,
        buffering: int = -1,
        sync_dir: Callable[[Path], None] = fsync_dir,
    ) -> None:
        self.target = Path(target) if target is not None else None
        if directory is None:
            if self.target is None:
                raise ValueError("AtomicFile needs a target or a directory for its temporary file")
            directory = self.target.parent
        if prefix is None:
            prefix = _temp_prefix(self.target) if self.target is not None else "."
        self._sync_dir = sync_dir
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=TEMP_SUFFIX, dir=directory)
        self.tmp_path: Path | None = Path(name)
        try:
            self.file: BinaryIO = os.fdopen(fd, "wb", buffering=buffering)
        except BaseException:
            os.close(fd)
            self.tmp_path.unlink(missing_ok=True)
            raise

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:  # an unbuffered (raw) file may take only part of it at once
            view = view[self.file.write(view) :]

    def commit(self, target: Path | str | None = None) -> Path:
        """Make the written bytes durable under ``target``; on any failure nothing is left behind."""
        if self.tmp_path is None:
            raise ValueError("this AtomicFile was already committed or aborted")
        final = Path(target) if target is not None else self.target
        try:
            if final is None:
                raise ValueError("commit needs the target's path")
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp_path, final)
        except BaseException:
            self.abort()
            raise
        self.tmp_path = None
        self._sync_dir(final.parent)
        return final

    def abort(self) -> None:
        """Close and remove the temporary (a no-op after commit or a previous abort)."""
        if not self.file.closed:
            with contextlib.suppress(OSError):  # a failing flush of a file being thrown away
                self.file.close()
        if self.tmp_path is not None:
            self.tmp_path.unlink(missing_ok=True)
            self.tmp_path = None


@contextlib.contextmanager
def atomic_write(target: Path | str) -> Iterator[BinaryIO]:
    """Stream bytes to ``target`` atomically: committed on a clean exit, discarded on an exception."""
    pending = AtomicFile(target)
    try:
        yield pending.file
    except BaseException:
        pending.abort()
        raise
    pending.commit()


def atomic_write_bytes(target: Path | str, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically and durably."""
    with atomic_write(target) as out:
        out.write(data)


def remove_temporaries(target: Path | str) -> int:
    """Remove the temporaries a crash left beside ``target`` (an exception never leaves any)."""
    target = Path(target)
    prefix = _temp_prefix(target)
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for leftover in target.parent.iterdir():
            if leftover.name.startswith(prefix) and leftover.name.endswith(TEMP_SUFFIX):
                leftover.unlink(missing_ok=True)
                removed += 1
    return removed


class AtomicFileAt:
    """AtomicFile's steps inside an open folder (``dir_fd``), following no symbolic link anywhere.

    For writers that must not be led out of a folder they hold open (restores onto a machine
    whose local users may plant links): the temporary is created beside ``name`` with
    ``O_CREAT | O_EXCL | O_NOFOLLOW``, read back through its own descriptor (``sha256``), and
    placed by a rename that replaces whatever entry ``name`` is (never what a link points to)
    or, with ``replace=False``, by a hard link that fails with FileExistsError when anything is
    there by then. Filesystems without hard links get a check then a rename (a narrow race).
    A caller placing many files in a folder may sync the folder once itself (``sync_dir=False``).
    """

    def __init__(self, dir_fd: int, name: str, mode: int = 0o600) -> None:
        self.dir_fd = dir_fd
        self.name = name
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        while True:
            # Short: the target's own name may already be as long as a name can be.
            tmp = f".{name[:32]}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
            try:
                self.fd = os.open(tmp, flags, mode, dir_fd=dir_fd)
                break
            except FileExistsError:
                continue
        self.tmp_name: str | None = tmp
        self._unsynced = False  # written since the last fsync

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data).cast("B")
        self._unsynced = True
        while view:
            view = view[os.write(self.fd, view) :]

    def sync(self) -> None:
        """fsync what was written since the last one (a writer of a large file may spread the cost)."""
        if self._unsynced:
            os.fsync(self.fd)
            self._unsynced = False

    def sha256(self, chunk: int = 1024 * 1024, between: Callable[[], object] | None = None) -> tuple[int, str]:
        """(size, SHA-256) of what the temporary holds, read back after an fsync; ``between`` is called
        after each chunk read (a caller with a connection to keep alive)."""
        self.sync()
        digest, offset = hashlib.sha256(), 0
        while data := os.pread(self.fd, chunk, offset):
            digest.update(data)
            offset += len(data)
            if between is not None:
                between()
        return offset, digest.hexdigest()

    def set_mtime(self, mtime_ns: int) -> None:
        os.utime(self.fd, ns=(mtime_ns, mtime_ns))

    def commit(self, *, replace: bool, name: str | None = None, sync_dir: bool = True) -> None:
        """Make the bytes durable under ``name`` (default: the one given at first). On FileExistsError
        (``replace=False`` and something is there) the temporary stays, to be committed under another
        name or aborted; on any other failure it is gone, and the target is untouched either way."""
        if self.tmp_name is None:
            raise ValueError("this AtomicFileAt was already committed or aborted")
        if name is not None:
            self.name = name
        tmp, fd = self.tmp_name, self.dir_fd
        try:
            if self.fd >= 0:
                self.sync()
                os.close(self.fd)
                self.fd = -1
            if replace:
                os.replace(tmp, self.name, src_dir_fd=fd, dst_dir_fd=fd)
            else:
                self._link_no_clobber(tmp)
        except FileExistsError:
            raise
        except BaseException:
            self.abort()
            raise
        self.tmp_name = None
        if sync_dir:
            with contextlib.suppress(OSError):
                os.fsync(fd)

    def _link_no_clobber(self, tmp: str) -> None:
        try:
            os.link(tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd, follow_symlinks=False)
        except OSError as exc:
            if isinstance(exc, FileExistsError) or exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP):
                raise
            # No hard links here: check, then rename (what appears in between is replaced).
            try:
                os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
            except FileNotFoundError:
                os.rename(tmp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
                return
            raise FileExistsError(errno.EEXIST, "already exists", self.name) from None
        os.unlink(tmp, dir_fd=self.dir_fd)

    def abort(self) -> None:
        """Close and remove the temporary (a no-op after commit or a previous abort)."""
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1
        if self.tmp_name is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp_name, dir_fd=self.dir_fd)
            self.tmp_name = None
