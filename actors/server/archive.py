"""The real server's snapshots as download_archive reads them: the tree in SQLite, the content in blobs.

A folder's listing is two index range scans (sub-folders by parent and name, files by
folder and name), as browsing reads it. Whether each file's content is still there is
known before streaming from its blob's size (a stat); content a scrub or a verify found
damaged, or whose size gave it away, is re-hashed then, as download_file does. Anything
else shows while streaming: every member is hashed against its recorded SHA-256.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from actors.backends.api import StreamReply
from actors.backends.archive import FileEntry, archive_stream
from actors.backends.content_check import Reply
from actors.backends.snapshot_paths import split
from actors.backends.tar_stream import DAMAGED, MISSING
from actors.backends.validation import check_destination_path
from actors.server import snapshot_queries
from actors.server.blobs import FANOUT_CHARS, SHA256_HEX, BlobStore
from protocol.lane import LANE_CHUNK_SIZE

# A blob is read in pieces of the bulk lane's chunks: fewer reads, and a chunk made of two pieces at most.
READ_SIZE = LANE_CHUNK_SIZE

_FILES = (
    "SELECT s.name, v.id, v.size, v.mtime_ns, v.sha256, f.sha256, f.status FROM snapshot_files s "
    "JOIN file_versions v ON v.id = s.version_id JOIN files f ON f.id = v.file_id"
)


class ServerTree:
    """One snapshot of the catalog (``SnapshotTree`` of actors/backends/archive.py)."""

    def __init__(self, conn: sqlite3.Connection, blobs: BlobStore, snapshot_id: str) -> None:
        snapshot = snapshot_queries.get_snapshot(conn, snapshot_id)  # NOT_FOUND for an unknown one
        self.conn = conn
        self.blobs = blobs
        self._blob_root = str(blobs.root)
        self.snapshot_id = snapshot["id"]
        self._key = int(snapshot["id"])
        started = snapshot["started_at"]
        self.folder_mtime = int(started.timestamp() if isinstance(started, datetime) else 0)

    def _dir_id(self, path: str) -> int | None:
        row = self.conn.execute(
            "SELECT id FROM snapshot_dirs WHERE snapshot_id = ? AND path = ?", (self._key, path)
        ).fetchone()
        return None if row is None else int(row[0])

    def _file_row(self, path: str) -> tuple[Any, ...] | None:
        folder, name = split(path)
        dir_id = self._dir_id(folder)
        if dir_id is None:
            return None
        row = self.conn.execute(f"{_FILES} WHERE s.dir_id = ? AND s.name = ?", (dir_id, name)).fetchone()
        return None if row is None else tuple(row)

    def kind(self, path: str) -> str | None:
        if self._dir_id(path) is not None:
            return "dir"
        return "file" if self._file_row(path) is not None else None

    def listing(self, path: str) -> tuple[list[tuple[str, str]], list[FileEntry]]:
        dir_id = self._dir_id(path)
        subs = [
            (str(name), str(sub))
            for name, sub in self.conn.execute(
                "SELECT name, path FROM snapshot_dirs WHERE parent_id = ? ORDER BY name", (dir_id,)
            )
        ]
        rows = self.conn.execute(f"{_FILES} WHERE s.dir_id = ? ORDER BY s.name", (dir_id,)).fetchall()
        return subs, [self._entry(tuple(row)) for row in rows]

    def file(self, path: str) -> FileEntry:
        row = self._file_row(path)
        assert row is not None  # kind() said the snapshot holds it
        return self._entry(row)

    def _blob(self, sha: str) -> str | None:
        """The blob's path as a string (BlobStore.path_for's, without a Path per file: planning reads thousands)."""
        if not SHA256_HEX.fullmatch(sha):
            return None  # a damaged row names no blob at all
        return f"{self._blob_root}/{sha[:FANOUT_CHARS]}/{sha[FANOUT_CHARS:]}"

    def _stored_size(self, sha: str) -> int | None:
        path = self._blob(sha)
        try:
            return os.stat(path).st_size if path is not None else None
        except FileNotFoundError:
            return None

    def _entry(self, row: tuple[Any, ...]) -> FileEntry:
        name, version_id, size, mtime_ns, sha, current_sha, status = row
        entry = FileEntry(name, size, mtime_ns // 1_000_000_000, sha, version_id)
        stored = self._stored_size(sha)
        if stored is None:
            entry.problem = MISSING
        elif stored != size or (status == "error" and current_sha == sha):
            # Known to be wrong (its size, or a scrub or verify said so): say how before streaming.
            # Re-hashed, as a later upload of the same content heals it.
            actual = self.blobs.rehash(sha)
            if actual is None:
                entry.problem = MISSING
            elif actual != sha:
                entry.problem, entry.actual_sha256, entry.size = DAMAGED, actual, stored
        return entry

    def content(self, ref: Any, sha256: str, size: int) -> Iterator[bytes]:
        path = self._blob(sha256)
        try:
            blob = open(path or "", "rb", buffering=0)  # noqa: SIM115 (held across chunks)
        except OSError:
            return  # deleted meanwhile, or unreadable: the archive says it is missing
        with blob:
            left = size
            while left > 0:
                try:
                    piece = blob.read(min(READ_SIZE, left))
                except OSError:
                    return  # a disk error: what could not be read is missing, as above
                if not piece:
                    return
                left -= len(piece)
                yield piece

    def describe(self, ref: Any) -> tuple[str, str]:
        row = self.conn.execute(
            "SELECT f.id, f.path FROM file_versions v JOIN files f ON f.id = v.file_id WHERE v.id = ?", (ref,)
        ).fetchone()
        return ("", "") if row is None else (str(row[0]), str(row[1]))


def download_archive(conn: sqlite3.Connection, blobs: BlobStore, args: dict[str, Any], reply: Reply) -> StreamReply:
    check_destination_path(args["destination_path"])
    tree = ServerTree(conn, blobs, args["snapshot_id"])
    return archive_stream(tree, args["paths"], args["allow_damaged"], args["destination_path"], reply)
