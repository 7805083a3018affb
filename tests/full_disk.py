"""A blob store whose disk fills up on demand: ENOSPC injected at the blob store's write seam.

A real full file system needs a mount (root, and not deterministic across machines), and a
file-size limit (RLIMIT_FSIZE) raises EFBIG, not ENOSPC. So the disk "fills" here: while
the control file ``<server root>/disk_full_after`` exists and holds a byte count N, the
blobs written after it appeared may total N bytes; the write that would pass N stores what
still fits and raises ENOSPC, as a full disk does, and so does every later one. Removing
the file is "space comes back". ``FullDiskServer`` is the real server with this store
(``--server-class tests.full_disk:FullDiskServer``).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from actors.server.blobs import BlobStore, BlobWriter
from actors.server.core import BackupServer
from runtime.fsutil import AtomicFile

CONTROL_FILE = "disk_full_after"


def no_space() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FillingFile(AtomicFile):
    """An AtomicFile that counts what it writes against its store's remaining space."""

    def __init__(self, store: FullDiskBlobs) -> None:
        # As BlobStore.writer makes its files: unbuffered, in tmp/, synced with the store's descriptors.
        super().__init__(directory=store.tmp, prefix="upload-", buffering=0, sync_dir=store.fsync_dir)
        self.store = store

    def write(self, data: bytes | memoryview) -> None:
        room = self.store.room()
        if room is not None and len(data) > room:
            super().write(memoryview(data)[:room])
            self.store.spent(room)
            raise no_space()
        super().write(data)
        self.store.spent(len(data))


class FullDiskBlobs(BlobStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.control = root.parent / CONTROL_FILE
        self.written = 0  # since the control file appeared
        self._budget: int | None = None

    def room(self) -> int | None:
        """Bytes that still fit; None while the disk is not filling."""
        try:
            budget = int(self.control.read_text().strip())
        except (FileNotFoundError, ValueError):
            self._budget = None
            self.written = 0
            return None
        if budget != self._budget:
            self._budget, self.written = budget, 0
        return max(0, budget - self.written)

    def spent(self, n: int) -> None:
        self.written += n

    def writer(self) -> BlobWriter:
        if self.room() == 0:
            raise no_space()  # not even an empty file fits
        return BlobWriter(self, FillingFile(self))


class FullDiskServer(BackupServer):
    blob_store_class = FullDiskBlobs


def fill_after(server_root: Path, n_bytes: int) -> None:
    (server_root / CONTROL_FILE).write_text(str(n_bytes))


def free_space(server_root: Path) -> None:
    (server_root / CONTROL_FILE).unlink(missing_ok=True)
