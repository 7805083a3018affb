"""Event topics: their names (use these constants, never the literals), what each means, its data."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.modes import BRIDGE_STATE_FIELDS, Mode

ACTIVITY = "activity"
CLIENT_CHANGED = "client.changed"
FILE_CHANGED = "file.changed"
SERVER_CHANGED = "server.changed"
RESTORE_JOB = "restore.job"
SNAPSHOT_ENDED = "snapshot.ended"
BRIDGE_BACKEND = "bridge.backend"
BRIDGE_MODE = "bridge.mode"
BRIDGE_WRITE = "bridge.write"


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    source: str  # "backend" or "bridge": who publishes it
    summary: str
    fields: tuple[tuple[str, str], ...]


TOPICS: tuple[Topic, ...] = (
    Topic(
        ACTIVITY,
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
        CLIENT_CHANGED,
        "backend",
        "A client was created, changed or deleted.",
        (
            ("client_id", "string"),
            ("change", "string: created, updated, deleted"),
            ("client", "Client or null when deleted"),
        ),
    ),
    Topic(
        FILE_CHANGED,
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
        SERVER_CHANGED,
        "backend",
        "The server was started or stopped, or its totals changed.",
        (("status", "ServerStatus"),),
    ),
    Topic(
        RESTORE_JOB,
        "backend",
        "A restore job (restore_to_agent) was queued, taken by its agent, moved on (at most twice a second), "
        "asked to stop (cancel_restore_job on a running job) or ended (also cancelled or expired); back to queued "
        "when its agent went away mid-job (it resumes where it stopped).",
        (
            ("job_id", "string"),
            ("client_id", "string"),
            ("change", "string: queued, started, progress, requeued, cancelling or ended"),
            ("job", "RestoreJob"),
        ),
    ),
    Topic(
        SNAPSHOT_ENDED,
        "backend",
        "A backup run ended (complete, partial or interrupted): a client's history and what can be restored from "
        "it changed.",
        (
            ("client_id", "string"),
            ("snapshot_id", "string"),
            ("status", "string: complete, partial or interrupted"),
            ("snapshot", "Snapshot: the run's summary, its counts and bytes"),
        ),
    ),
    Topic(
        BRIDGE_BACKEND,
        "bridge",
        "A backend registered, died (3 missed heartbeats) or said DISCONNECT.",
        (
            ("name", "string"),
            ("mode", f"string: {Mode.REAL} or {Mode.MOCK}"),
            ("state", "string: up or down"),
            ("reason", "string"),
        ),
    ),
    Topic(
        BRIDGE_MODE,
        "bridge",
        "The bridge's serving state changed: the mode new requests are served in, the policy, whether a real "
        "backend is expected, or since when it is unavailable (set or cleared).",
        (*BRIDGE_STATE_FIELDS, ("previous", "string: the mode before")),
    ),
    Topic(
        BRIDGE_WRITE,
        "bridge",
        "A write operation succeeded; attached clients refresh what it touched.",
        (
            ("op", "string: the operation"),
            ("ids", "map: the request's arguments the catalogue marks as ids (see each operation's *ids*)"),
            ("session", "string or null: session of the requester"),
            ("request_id", "string"),
            ("mode", f"string: {Mode.REAL} or {Mode.MOCK}, who executed it"),
        ),
    ),
)
