"""Event topics: what each one means and the fields of its data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    source: str  # "backend" or "bridge"
    summary: str
    fields: tuple[tuple[str, str], ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        "activity",
        "backend",
        "Something happened on the backup server (the activity log grew).",
        (
            ("id", "string: activity id"),
            ("timestamp", "datetime"),
            (
                "type",
                "string: client_connected, client_disconnected, backup_started, backup_completed, "
                "verify_passed, verify_failed, file_deleted, client_deleted, error, server_started, server_stopped, ...",
            ),
            ("level", "string: INFO, WARNING or ERROR"),
            ("client_id", "string or null"),
            ("file_id", "string or null"),
            ("message", "string: human-readable"),
        ),
    ),
    Topic(
        "client.changed",
        "backend",
        "A client was created, changed or deleted.",
        (
            ("client_id", "string"),
            ("change", "string: created, updated, deleted"),
            ("client", "Client or null when deleted"),
        ),
    ),
    Topic(
        "file.changed",
        "backend",
        "A file was created, changed or deleted.",
        (
            ("file_id", "string"),
            ("client_id", "string"),
            ("change", "string: created, updated, deleted"),
            ("file", "File or null when deleted"),
        ),
    ),
    Topic(
        "server.changed",
        "backend",
        "The server was started or stopped, or its totals changed.",
        (("status", "ServerStatus"),),
    ),
    Topic(
        "bridge.backend",
        "bridge",
        "A backend registered, died (3 missed heartbeats) or said DISCONNECT.",
        (("name", "string"), ("mode", "string: real or mock"), ("state", "string: up or down"), ("reason", "string")),
    ),
    Topic(
        "bridge.mode",
        "bridge",
        "The mode new requests are served in changed.",
        (("mode", "string: real, mock or none"), ("previous", "string")),
    ),
    Topic(
        "bridge.write",
        "bridge",
        "A write operation succeeded; attached clients refresh what it touched.",
        (
            ("op", "string: the operation"),
            ("ids", "map: the request's id-like arguments (client_id, file_id, table_name, row_id)"),
            ("session", "string or null: session of the requester"),
            ("request_id", "string"),
            ("mode", "string: real or mock, who executed it"),
        ),
    ),
)

TOPIC_NAMES: frozenset[str] = frozenset(t.name for t in TOPICS)
