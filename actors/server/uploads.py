"""Backups on the server side: manifest decisions and chunked uploads into blob storage.

An upload is a run of ``chunk`` messages with the same upload id: the first carries the
path, size and modification time, the last the sender's SHA-256. Bytes go straight to a
temporary blob file and into the hash, so memory holds at most the chunks in flight
(the credit window), whatever the file size. Only a complete upload whose size and hash
match is committed (blob first, then the version row), so nothing partial is ever visible.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import structlog

from actors.server.blobs import SHA256_HEX, BlobStore, BlobWriter
from actors.server.faults import describe, is_storage_full
from actors.server.store import Store
from actors.server.tally import TallyMap
from protocol.agent_messages import (
    HASH_MISMATCH,
    MAX_BATCH,
    SIZE_MISMATCH,
    STORAGE_FULL,
    AgentProtocolError,
    Message,
    check_client_path,
    file_mode,
)
from protocol.errors import ErrorCode

log = structlog.get_logger()

MAX_OPEN_UPLOADS = 64  # per session; an agent pipelines small files, it never needs more
FAILED_MEMORY = 256  # failed upload ids remembered so their remaining chunks are ignored quietly
# 1 PiB: no real file is larger, so a bigger size is a broken or hostile agent; it also keeps
# the sums of sizes in the database far from SQLite's 64-bit integer limit.
MAX_SIZE = 1 << 50
LOGGED_PATH_CHARS = 200  # a hostile path must not flood the log


@dataclass
class Upload:
    upload_id: str
    path: str
    size: int
    mtime_ns: int
    mode: int | None
    writer: BlobWriter
    next_index: int = 0
    received: int = 0


@dataclass(frozen=True, slots=True)
class Completed:
    """An upload whose blob is durable; its version row is written with the batch (group commit)."""

    upload_id: str
    path: str
    size: int
    mtime_ns: int
    sha256: str
    existed: bool
    mode: int | None = None


@dataclass
class Outcome:
    """What one chunk led to: nothing yet, a completed upload, or a failure."""

    completed: Completed | None = None
    failed: tuple[str, str] | None = None  # (code, message)


@dataclass
class Uploads:
    """The open uploads of one session."""

    client_id: str
    open: TallyMap[str, Upload] = field(default_factory=TallyMap)  # counted in the server's active transfers
    failed: OrderedDict[str, None] = field(default_factory=OrderedDict)
    stored_files: int = 0
    stored_bytes: int = 0

    def abort_all(self) -> None:
        for upload in self.open.values():
            upload.writer.abort()
        self.open.clear()


def _entry(raw: Any) -> tuple[str, int, int, str | None, int | None]:
    """[path, size, mtime_ns, sha256 or null, mode?]: an older agent sends no mode."""
    if not isinstance(raw, list) or len(raw) not in (4, 5):
        raise AgentProtocolError("a manifest entry is [path, size, mtime_ns, sha256 or null, mode]")
    path, size, mtime_ns, sha, *more = raw
    mode = file_mode(more[0] if more else None)
    if type(size) is not int or not 0 <= size < MAX_SIZE or type(mtime_ns) is not int:
        raise AgentProtocolError("manifest entry size and mtime_ns must be integers (size >= 0)")
    if sha is not None and not (isinstance(sha, str) and SHA256_HEX.fullmatch(sha)):
        raise AgentProtocolError("manifest entry sha256 must be 64 lowercase hex digits or null")
    return path, size, mtime_ns, sha, mode


def decide_manifest(store: Store, blobs: BlobStore, client_id: str, entries: list[Any]) -> dict[str, list[Any]]:
    """For each entry: skip (unchanged), link (content already here), ask for its hash, or ask for it.

    Without a hash, unchanged size and modification time mean unchanged (the usual quick
    check); same size with another time needs the hash to tell. A file whose last
    verification or scrub failed, or whose blob is missing, is always asked for again,
    which heals its blob.
    """
    if len(entries) > MAX_BATCH:
        raise AgentProtocolError(f"a manifest holds at most {MAX_BATCH} entries")
    result: dict[str, list[Any]] = {"send": [], "need_hash": [], "skip": [], "linked": [], "refused": []}
    for index, raw in enumerate(entries):
        path, size, mtime_ns, sha, mode = _entry(raw)
        problem = check_client_path(path)
        if problem:
            result["refused"].append([index, f"path {problem}"])
            log.warning("server.path_refused", client_id=client_id, path=repr(path)[:LOGGED_PATH_CHARS], reason=problem)
            continue
        row = store.latest(client_id, path)
        # A lost blob must not make the file look unchanged: one stat per known file is the price.
        healthy = row if row is not None and row["status"] != "error" and blobs.exists(row["sha256"]) else None
        if sha is None:
            if healthy is not None and healthy["size"] == size and healthy["mtime_ns"] == mtime_ns:
                result["skip"].append(index)
            elif healthy is not None and healthy["size"] == size:
                result["need_hash"].append(index)
            else:
                result["send"].append(index)
            continue
        if healthy is not None and healthy["sha256"] == sha and healthy["size"] == size:
            if healthy["mtime_ns"] != mtime_ns:
                store.touch_file(healthy["id"], mtime_ns, mode)
            result["skip"].append(index)
        elif store.owns_content(client_id, sha) and blobs.exists(sha):
            # Only this client's own content is linked: a hash alone must not give access to
            # another client's data (a known weakness of cross-user deduplication).
            store.add_version(client_id, path, size, mtime_ns, sha, mode)
            result["linked"].append(index)
        else:
            result["send"].append(index)
    return result


def on_chunk(store: Store, blobs: BlobStore, uploads: Uploads, msg: Message) -> Outcome:
    upload_id: str = msg["u"]
    try:
        upload = _open(blobs, uploads, msg) if msg["i"] == 0 else uploads.open.get(upload_id)
        if upload is None:
            if upload_id in uploads.failed:
                return Outcome()  # the rest of an upload that already failed
            raise AgentProtocolError(f"upload {upload_id!r} is unknown (its first chunk never arrived?)")
        if msg["i"] != upload.next_index or msg["o"] != upload.received:
            raise AgentProtocolError(
                f"chunk {msg['i']} at offset {msg['o']} out of order (expected chunk "
                f"{upload.next_index} at {upload.received})"
            )
        upload.writer.write(msg.body)
        upload.received += len(msg.body)
        upload.next_index += 1
        if upload.received > upload.size:
            raise AgentProtocolError(f"{upload.path}: more bytes than the announced {upload.size}", SIZE_MISMATCH)
        if not msg["last"]:
            return Outcome()
        return Outcome(completed=_finish(uploads, upload, msg.get("sha256")))
    except AgentProtocolError as exc:
        _fail(uploads, upload_id)
        log.warning(
            "server.upload_failed", client_id=uploads.client_id, upload_id=upload_id, code=exc.code, reason=exc.message
        )
        return Outcome(failed=(exc.code, exc.message))
    except OSError as exc:
        # The blob store could not take the bytes (a full disk, an I/O error): this upload fails
        # and its temporary file goes now; the session, its credit and the other uploads go on.
        path = _upload_path(uploads, upload_id, msg)
        _fail(uploads, upload_id)
        if is_storage_full(exc):
            store.storage_alarm.report(f"storing an upload from client {uploads.client_id}", exc)
            return Outcome(failed=(STORAGE_FULL, f"server storage full: cannot store {path} ({describe(exc)})"))
        log.error("server.upload_io_failed", client_id=uploads.client_id, upload_id=upload_id, error=describe(exc))
        return Outcome(failed=(ErrorCode.INTERNAL.value, f"the server could not store {path}: {describe(exc)}"))


def _upload_path(uploads: Uploads, upload_id: str, msg: Message) -> str:
    upload = uploads.open.get(upload_id)
    path = upload.path if upload is not None else msg.get("path")
    return str(path)[:LOGGED_PATH_CHARS] if path else f"upload {upload_id[:LOGGED_PATH_CHARS]}"


def _open(blobs: BlobStore, uploads: Uploads, msg: Message) -> Upload:
    upload_id = msg["u"]
    if upload_id in uploads.open:
        raise AgentProtocolError(f"upload {upload_id!r} is already open")
    if len(uploads.open) >= MAX_OPEN_UPLOADS:
        raise AgentProtocolError(f"at most {MAX_OPEN_UPLOADS} uploads may be open at once")
    path, size, mtime_ns = msg.get("path"), msg.get("size"), msg.get("mtime_ns")
    if path is None or size is None or mtime_ns is None or size < 0 or size >= MAX_SIZE:
        raise AgentProtocolError("the first chunk must carry path, size (>= 0) and mtime_ns")
    problem = check_client_path(path)
    if problem:
        log.warning(
            "server.path_refused", client_id=uploads.client_id, path=repr(path)[:LOGGED_PATH_CHARS], reason=problem
        )
        raise AgentProtocolError(f"path {problem}")
    upload = Upload(upload_id, path, size, mtime_ns, file_mode(msg.get("mode")), blobs.writer())
    uploads.open[upload_id] = upload
    return upload


def _finish(uploads: Uploads, upload: Upload, declared: str | None) -> Completed:
    # A failure below leaves the upload open for on_chunk's handler, which aborts it (removing
    # its temporary file) and remembers it as failed.
    if upload.received != upload.size:
        raise AgentProtocolError(
            f"{upload.path}: received {upload.received} bytes, announced {upload.size} (changed while being sent?)",
            SIZE_MISMATCH,
        )
    actual = upload.writer.sha256
    if declared != actual:
        raise AgentProtocolError(
            f"{upload.path}: SHA-256 of the received bytes is {actual}, the agent said {declared}", HASH_MISMATCH
        )
    started = time.perf_counter()
    sha, existed = upload.writer.commit()
    del uploads.open[upload.upload_id]
    log.debug(
        "server.blob_committed",
        client_id=uploads.client_id,
        path=upload.path,
        size=upload.size,
        commit_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return Completed(upload.upload_id, upload.path, upload.size, upload.mtime_ns, sha, existed, upload.mode)


def record_completed(store: Store, uploads: Uploads, done: list[Completed]) -> list[dict[str, Any]]:
    """Write the version rows of a batch of completed uploads in one transaction; the ``stored`` replies."""
    items = [(c.path, c.size, c.mtime_ns, c.sha256) for c in done]
    results = store.add_versions(uploads.client_id, items, [c.mode for c in done])
    replies = []
    for c, (file, version, _) in zip(done, results, strict=False):
        uploads.stored_files += 1
        uploads.stored_bytes += c.size
        replies.append(
            {"u": c.upload_id, "file_id": file["id"], "version": version, "sha256": c.sha256, "dedup": c.existed}
        )
    return replies


def _fail(uploads: Uploads, upload_id: str) -> None:
    upload = uploads.open.pop(upload_id, None)
    if upload is not None:
        upload.writer.abort()
    uploads.failed[upload_id] = None
    while len(uploads.failed) > FAILED_MEMORY:
        uploads.failed.popitem(last=False)
