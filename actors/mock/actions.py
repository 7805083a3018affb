"""State changes shared by the operations, the database view and the ticker.

Each action applies one change to the world and emits everything a watcher needs:
the ``client.changed``/``file.changed`` events first, then the activity entry (which
also lands in the emulated server log). Callers check preconditions; actions assume
them, so a failed request never half-changes anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from actors.backends.file_errors import verify_failed
from actors.mock.content import content_sha256
from actors.mock.records import Client, FileRecord
from actors.mock.state import MockWorld
from protocol.errors import ErrorCode, ProtocolError


def find_client(world: MockWorld, client_id: str) -> Client:
    client = world.clients.get(client_id)
    if client is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"client {client_id!r} not found", client_id=client_id)
    return client


def find_file(world: MockWorld, file_id: str) -> FileRecord:
    record = world.files.get(file_id)
    if record is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"file {file_id!r} not found", file_id=file_id)
    return record


def status_changes(client: Client, status: str, now: datetime, error_message: str | None = None) -> dict[str, Any]:
    """The field changes that keep a client's connection fields consistent with its status."""
    changes: dict[str, Any] = {"status": status}
    if status == "connected":
        if client.status != "connected":
            changes["connected_at"] = now
            changes["last_seen"] = now
        changes["error_message"] = None
    else:
        changes["connected_at"] = None
        if client.status == "connected":
            changes["last_seen"] = now
        if status == "error":
            changes["error_message"] = error_message or client.error_message or "Marked as failed"
        else:
            changes["error_message"] = None
    return changes


def set_client_status(world: MockWorld, client: Client, status: str, error_message: str | None = None) -> None:
    world.update_client(client, **status_changes(client, status, world.now(), error_message))
    world.client_changed(client, "updated")


def disconnect(world: MockWorld, client: Client, reason: str) -> None:
    """End a connected client's session (the mock's stand-in for its agent going)."""
    set_client_status(world, client, "disconnected")
    world.record(
        "client_disconnected",
        "INFO",
        f"{client.name} disconnected: {reason}",
        logger="backup.agent",
        client_id=client.id,
    )
    world.server_changed()  # one client fewer connected


def set_running(world: MockWorld, running: bool) -> dict[str, Any]:
    """Start or stop accepting agents; stopping ends every session, like the real server."""
    if world.server.running == running:
        state = "running" if running else "stopped"
        raise ProtocolError(ErrorCode.CONFLICT, f"the backup server is already {state}", running=running)
    if not running:
        for client in [c for c in world.clients.values() if c.status == "connected"]:
            disconnect(world, client, "the backup server was stopped by its operator")
    world.server.running = running
    world.server.started_at = world.now() if running else None
    if running:
        world.record("server_started", "INFO", world.server.started_message())
    else:
        world.record("server_stopped", "WARNING", "Backup server stopped; agents can no longer connect")
    world.server_changed()
    return world.server_status()


def delete_client(world: MockWorld, client: Client, *, via: str = "") -> tuple[int, int]:
    """Delete a client and, in cascade, its files; returns (files deleted, bytes freed)."""
    freed = client.total_size
    removed = world.remove_client(client)
    for record in removed:
        world.file_changed(record, "deleted")
    world.client_changed(client, "deleted")
    world.record(
        "client_deleted",
        "WARNING",
        f"Deleted client {client.name} and its {len(removed)} files ({freed} bytes freed){via}",
        logger="backup.admin",
        client_id=client.id,
    )
    world.server_changed()  # the totals changed
    return len(removed), freed


def delete_file(world: MockWorld, record: FileRecord, *, reason: str = "") -> int:
    """Delete one file; returns the bytes freed (its content is its own: the mock shares no content)."""
    client = world.clients[record.client_id]
    world.remove_file(record)
    world.file_changed(record, "deleted")
    world.client_changed(client, "updated")
    world.record(
        "file_deleted",
        "INFO",
        f"Deleted {record.path} ({record.size} bytes, {record.size} bytes freed on disk){reason}",
        logger="backup.storage",
        client_id=client.id,
        file_id=record.id,
    )
    world.server_changed()  # the totals changed
    return record.size


def verify_file(world: MockWorld, record: FileRecord) -> dict[str, Any]:
    """Re-hash the stored content for real and record the verdict."""
    if record.status == "uploading":
        raise ProtocolError(
            ErrorCode.CONFLICT,
            f"file {record.id!r} is still uploading; verify it once the upload finished",
            file_id=record.id,
        )
    actual = content_sha256(world.seed, record.id, record.content_version, record.size)
    ok = actual == record.sha256
    now = world.now()
    status = "verified" if ok else "error"
    reason = None if ok else verify_failed(record.sha256, actual)
    world.update_file(record, status=status, error_message=reason, last_verified=now)
    world.file_changed(record, "updated")
    client = world.clients[record.client_id]
    if ok:
        world.record(
            "verify_passed",
            "INFO",
            f"{client.name}: {record.path} verified (sha256 {actual[:12]}…)",
            logger="backup.verify",
            client_id=client.id,
            file_id=record.id,
        )
    else:
        world.record(
            "verify_failed",
            "ERROR",
            f"{client.name}: {record.path} failed verification: expected sha256 {record.sha256[:12]}…, "
            f"stored content hashes to {actual[:12]}…",
            logger="backup.verify",
            client_id=client.id,
            file_id=record.id,
        )
    return {
        "file_id": record.id,
        "ok": ok,
        "expected_sha256": record.sha256,
        "actual_sha256": actual,
        "status": status,
        "verified_at": now,
    }
