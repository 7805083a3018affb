"""Content-addressed blob storage: ``blobs/ab/cdef...`` named by the content's SHA-256.

A blob is written to ``blobs/tmp/`` while it arrives, hashed on the way, fsynced, and
renamed to its final name only when complete and its hash is known; the directory is
fsynced after the rename. A crash therefore leaves at most a temporary file, which the
next start removes: a final name always holds the whole content.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from runtime.fsutil import AtomicFile, fsync_dir

log = structlog.get_logger()

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Blobs sit in folders named by the first hex digits of their hash: 256 folders keep each one
# small, and few enough that the store keeps one descriptor open per folder for its fsyncs.
FANOUT_CHARS = 2


@dataclass
class BlobWriter:
    """One blob being received. ``write`` in order, then ``commit`` or ``abort``."""

    store: BlobStore
    pending: AtomicFile
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256, repr=False)

    def write(self, data: bytes | memoryview) -> None:
        self._hash.update(data)
        self.pending.write(data)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def commit(self) -> tuple[str, bool]:
        """Make the blob durable under its hash; returns (sha256, an identical blob existed).

        An existing blob of the same name is replaced all the same: if it was damaged on
        disk (verify_file would say so), a fresh upload of the content heals it.
        """
        digest = self.sha256
        final = self.store.path_for(digest)
        existed = final.exists()
        try:
            self.store.ensure_dir(final.parent)
        except BaseException:
            self.pending.abort()
            raise
        self.pending.commit(final)
        return digest, existed

    def abort(self) -> None:
        self.pending.abort()


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        # Fan-out directories known to exist, with an open descriptor each for the fsync after
        # a rename (at most 16 ** FANOUT_CHARS): saves a mkdir and an open per blob.
        self._dirs: dict[Path, int] = {}

    def ensure_dir(self, path: Path) -> None:
        if path not in self._dirs:
            path.mkdir(parents=True, exist_ok=True)
            self._dirs[path] = os.open(path, os.O_RDONLY)

    def fsync_dir(self, path: Path) -> None:
        fd = self._dirs.get(path)
        if fd is None:
            fsync_dir(path)
        else:
            os.fsync(fd)

    def _forget_dir(self, path: Path) -> None:
        fd = self._dirs.pop(path, None)
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        for path in list(self._dirs):
            self._forget_dir(path)

    def path_for(self, sha256: str) -> Path:
        if not SHA256_HEX.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:FANOUT_CHARS] / sha256[FANOUT_CHARS:]

    def clean_temporaries(self) -> int:
        """Remove what a crash left in ``tmp/`` (never visible as a blob)."""
        removed = 0
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)
            removed += 1
        if removed:
            log.warning("server.blob_temporaries_removed", count=removed, reason="left by an interrupted upload")
        return removed

    def writer(self) -> BlobWriter:
        # Unbuffered: chunks arrive as large frames, a buffer would only add a copy.
        return BlobWriter(self, AtomicFile(directory=self.tmp, prefix="upload-", buffering=0, sync_dir=self.fsync_dir))

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        """Bytes stored under ``sha256``; None when the blob is missing."""
        try:
            return self.path_for(sha256).stat().st_size
        except (FileNotFoundError, ValueError):  # ValueError: a damaged row names no blob at all
            return None

    def read_at(self, sha256: str, offset: int, length: int) -> bytes:
        with open(self.path_for(sha256), "rb") as f:
            f.seek(offset)
            return f.read(length)

    def rehash(self, sha256: str) -> str | None:
        """SHA-256 of what is stored under ``sha256`` now; None when the blob is missing."""
        try:
            with open(self.path_for(sha256), "rb", buffering=0) as f:
                return hashlib.file_digest(f, "sha256").hexdigest()
        except FileNotFoundError:
            return None

    def delete(self, sha256: str) -> int:
        """Remove one blob; returns the bytes freed (0 when it was already gone)."""
        path = self.path_for(sha256)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        try:
            path.parent.rmdir()  # only succeeds when empty
            self._forget_dir(path.parent)
        except OSError:
            pass
        return size
