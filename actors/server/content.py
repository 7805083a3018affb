"""A file's stored content, as the console asks for it: verify it, or stream it out."""

from __future__ import annotations

from typing import Any

from actors.backends.api import StreamReply
from actors.backends.content_check import DAMAGED, MISSING, Reply, StoredFile, checked_stream, damaged
from actors.backends.file_errors import verify_failed
from actors.backends.validation import check_destination_path
from actors.server import queries as q
from actors.server import snapshot_queries
from actors.server.blobs import BlobStore
from actors.server.store import Store


def verify(store: Store, blobs: BlobStore, file_id: str) -> dict[str, Any]:
    """Re-hash a file's stored content against its recorded SHA-256; the verdict is recorded and announced."""
    file = q.get_file(store.conn, file_id)
    actual = blobs.rehash(file["sha256"])
    ok = actual == file["sha256"]
    at = store.set_verified(file_id, None if ok else verify_failed(file["sha256"], actual))
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
    store: Store,
    blobs: BlobStore,
    file_id: str,
    destination_path: str,
    reply: Reply,
    allow_damaged: bool = False,
    version: int | None = None,
) -> StreamReply:
    """A file's stored content as a stream, checked against its recorded hash (actors/backends/content_check.py)."""
    check_destination_path(destination_path)
    file = q.get_file(store.conn, file_id)
    sha, size = file["sha256"], file["size"]  # frozen: a new version may land while this streams
    if version is not None:  # an older one (snapshots); NOT_FOUND when it is not retained
        sha, size = snapshot_queries.version_content(store.conn, file_id, version)
    stored = StoredFile(file_id, file["name"], file["path"], sha, destination_path)
    stored_size = blobs.size(sha)
    if stored_size is None:
        raise damaged(stored, "", MISSING)
    if stored_size != size or file["status"] == "error":
        # Known to be wrong (a scrub or verify said so, or the size gave it away): say how
        # before streaming anything. Re-hashed, as a later upload of the same content heals it.
        actual = blobs.rehash(sha)
        if actual is None:
            raise damaged(stored, "", MISSING)
        if actual != sha and not allow_damaged:
            raise damaged(stored, actual, DAMAGED)
    return checked_stream(
        stored, stored_size, lambda offset, length: blobs.read_at(sha, offset, length), allow_damaged, reply
    )
