"""A file's stored content, as the console asks for it: verify it, or stream it out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.backends.api import StreamReply
from actors.backends.validation import check_destination_path
from actors.server import queries as q
from actors.server.blobs import BlobStore
from actors.server.store import Store
from protocol.errors import ErrorCode, ProtocolError
from protocol.streaming import CHUNK_SIZE as STREAM_CHUNK


def verify(store: Store, blobs: BlobStore, file_id: str) -> dict[str, Any]:
    """Re-hash a file's stored content against its recorded SHA-256; the verdict is recorded and announced."""
    file = q.get_file(store.conn, file_id)
    actual = blobs.rehash(file["sha256"])
    ok = actual == file["sha256"]
    at = store.set_verified(file_id, ok)
    store.file_changed(file, "updated")
    if ok:
        store.record(
            "verify_passed",
            "INFO",
            f"{file['path']} verified (sha256 {file['sha256'][:12]}…)",
            client_id=file["client_id"],
            file_id=file_id,
            logger="backup.verify",
        )
    else:
        found = "the stored content is missing" if actual is None else f"stored content hashes to {actual[:12]}…"
        store.record(
            "verify_failed",
            "ERROR",
            f"{file['path']} failed verification: expected sha256 {file['sha256'][:12]}…, {found}",
            client_id=file["client_id"],
            file_id=file_id,
            logger="backup.verify",
        )
    return {
        "file_id": file_id,
        "ok": ok,
        "expected_sha256": file["sha256"],
        "actual_sha256": actual or "",
        "status": "verified" if ok else "error",
        "verified_at": at,
    }


def download(
    store: Store, blobs: BlobStore, file_id: str, destination_path: str, reply: Callable[[Any, str], dict[str, Any]]
) -> StreamReply:
    """A file's stored content as a stream; ``reply`` builds the final reply after the last chunk."""
    check_destination_path(destination_path)
    file = q.get_file(store.conn, file_id)
    sha, size = file["sha256"], file["size"]  # frozen: a new version may land while this streams
    if not blobs.exists(sha):
        raise ProtocolError(ErrorCode.NOT_FOUND, f"the stored content of {file['path']} is missing", file_id=file_id)
    data = {
        "file_id": file_id,
        "name": file["name"],
        "size": size,
        "sha256": sha,
        "chunks": -(-size // STREAM_CHUNK),
        "destination_path": destination_path,
    }
    return StreamReply(
        total=size,
        read_at=lambda offset, length: blobs.read_at(sha, offset, length),
        final=lambda: reply(data, f"Downloaded {file['name']}"),
    )
