"""The data shapes replies carry, declared once: docs are generated from here and tests
check that backends return exactly these fields."""

from __future__ import annotations

from dataclasses import dataclass

from protocol.modes import BRIDGE_STATE_FIELDS


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    summary: str
    fields: tuple[tuple[str, str], ...]

    @property
    def field_names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.fields)


SHAPES: tuple[Shape, ...] = (
    Shape(
        "Client",
        "A backup client (agent) as the server knows it.",
        (
            ("id", "string"),
            ("name", "string"),
            ("hostname", "string"),
            ("ip_address", "string"),
            ("platform", 'string, e.g. "Ubuntu 24.04"'),
            ("agent_version", "string"),
            ("status", "string: connected, disconnected or error"),
            ("last_seen", "datetime"),
            ("connected_at", "datetime or null when not connected"),
            ("created_at", "datetime"),
            ("files_count", "integer: always equal to the number of its files"),
            ("total_size", "integer: bytes, always the sum of its files' sizes"),
            ("error_message", "string or null (set when status is error)"),
        ),
    ),
    Shape(
        "File",
        "One backed-up file (its latest version).",
        (
            ("id", "string"),
            ("client_id", "string"),
            ("name", "string"),
            ("path", "string: path on the client"),
            ("size", "integer: bytes"),
            ("sha256", "string: hex SHA-256 of the content"),
            ("status", "string: uploading, uploaded, verified or error"),
            ("created_at", "datetime"),
            ("modified_at", "datetime"),
            ("backup_count", "integer: versions backed up"),
            ("last_backup", "datetime"),
            ("last_verified", "datetime or null"),
            ("error_message", "string or null: why the file is in status error (set when status is error)"),
        ),
    ),
    Shape(
        "Snapshot",
        "One backup run of a client: when, how it ended, and what it found compared with the client's files "
        "before it. new + changed + unchanged are the files its tree holds; failed ones are not in it. While it "
        "runs its counts grow as files are recorded, and its folders' totals and changes (browse_snapshot) are null "
        "until it ends: the `snapshot.ended` event says when.",
        (
            ("id", "string"),
            ("client_id", "string"),
            ("status", "string: running, complete, partial (ended, some files failed) or interrupted (never ended)"),
            ("started_at", "datetime"),
            ("ended_at", "datetime or null while running"),
            ("root", 'string: the folder the agent backed up ("" when unknown)'),
            ("files_total", "integer: files in its tree"),
            ("bytes_total", "integer"),
            ("files_new", "integer: first version of a file"),
            ("bytes_new", "integer"),
            ("files_changed", "integer: a new version of a file already backed up"),
            ("bytes_changed", "integer"),
            ("files_unchanged", "integer"),
            ("bytes_unchanged", "integer"),
            ("files_failed", "integer: files the run could not back up (unreadable, refused, upload failed)"),
            ("bytes_failed", "integer: of those whose size is known"),
        ),
    ),
    Shape(
        "SnapshotEntry",
        "One folder or file of a snapshot's tree, as browse_snapshot lists them.",
        (
            ("name", "string"),
            ("type", "string: dir or file"),
            ("path", "string: a folder's path is what browse_snapshot takes"),
            ("size", "integer: bytes (a folder: of every file below it; null while its run is running)"),
            ("files", "integer: a folder's files below it (null while its run is running); null for a file"),
            (
                "change",
                "string: new, changed or unchanged since the client's previous run (a folder: changed when "
                "anything below it did; null while its run is running)",
            ),
            ("file_id", "string or null (a folder)"),
            ("version", "integer or null: the file's version this snapshot holds"),
            ("sha256", "string or null"),
            ("modified_at", "datetime or null: the file's modification time in that version"),
        ),
    ),
    Shape(
        "FileVersion",
        "One stored version of a file; `download_file` with `file_id` and `version` fetches it.",
        (
            ("file_id", "string"),
            ("client_id", "string"),
            ("path", "string: the file's path on the client"),
            ("name", "string"),
            ("version", "integer: 1 for the first, counting up"),
            ("size", "integer: bytes"),
            ("sha256", "string"),
            ("modified_at", "datetime: the file's modification time in that version"),
            ("backed_up_at", "datetime"),
            ("snapshot_id", "string or null: the run that stored it (null: stored before runs were recorded)"),
        ),
    ),
    Shape(
        "Activity",
        "An entry of the activity log.",
        (
            ("id", "string"),
            ("timestamp", "datetime"),
            ("type", "string (see the activity topic)"),
            ("level", "string: INFO, WARNING or ERROR"),
            ("client_id", "string or null"),
            ("file_id", "string or null"),
            ("message", "string"),
        ),
    ),
    Shape(
        "LogEntry",
        "A server log line.",
        (
            ("id", "string"),
            ("timestamp", "datetime"),
            ("level", "string: DEBUG, INFO, WARNING, ERROR or CRITICAL"),
            ("logger", "string"),
            ("event", "string: the event name"),
            ("message", "string"),
            ("client_id", "string or null"),
        ),
    ),
    Shape(
        "ServerStatus",
        "The backup server's state.",
        (
            ("running", "boolean: accepting agents"),
            ("started_at", "datetime or null when stopped"),
            ("uptime_seconds", "number: 0 when stopped"),
            ("host", "string"),
            ("port", "integer: the agents' port"),
            ("version", "string"),
            ("clients_connected", "integer"),
            ("clients_total", "integer"),
            ("files_total", "integer"),
            ("storage_used", "integer: bytes"),
            ("active_transfers", "integer"),
        ),
    ),
    Shape(
        "SystemStatus",
        "The host the backend runs on (real figures from psutil).",
        (
            ("hostname", "string"),
            ("platform", "string"),
            ("cpu_percent", "number"),
            ("cpu_count", "integer"),
            ("load_average", "[number, number, number]: 1, 5, 15 minutes"),
            ("memory", "{total, available, used, percent}"),
            ("disk", "{path, total, used, free, percent}: the disk holding the backend's data"),
            ("boot_time", "datetime"),
            ("timestamp", "datetime"),
        ),
    ),
    Shape(
        "Event",
        "An event as delivered by events_since (live events carry the same fields in their header).",
        (
            ("seq", "integer: global, gap-free, starts at 1 for each bridge epoch"),
            ("epoch", "string: changes when the bridge restarts (sequence numbers restart too)"),
            ("topic", "string"),
            ("mode", "string: real, mock or bridge (who produced it)"),
            ("ts", "number: Unix time the producer stamped"),
            ("id", "string or absent"),
            ("data", "map: the topic's fields"),
        ),
    ),
    Shape(
        "BridgeStatus",
        "The bridge itself.",
        (
            *BRIDGE_STATE_FIELDS,
            ("mock_events_dropped", "integer: a mock's events kept off the topics while a real backend is expected"),
            ("last_real_entries", "integer: last known real replies kept for policy stale"),
            ("last_real_bytes", "integer: their size (bounded, least recently used first out)"),
            ("epoch", "string"),
            ("latest_seq", "integer"),
            ("oldest_seq", "integer: oldest event still in the ring"),
            ("events_endpoint", "string: where to SUB for events"),
            ("frontend_endpoint", "string"),
            ("tap_endpoint", "string: where recorders SUB for every message (empty when disabled)"),
            ("uptime_s", "number"),
            ("inflight", "integer: requests waiting for a backend"),
            ("heartbeat_interval_s", "number"),
            ("backends", "[{name, mode, pid, alive, ops, last_heartbeat_age_s, inflight, down_reason}]"),
        ),
    ),
)

SHAPE_BY_NAME: dict[str, Shape] = {s.name: s for s in SHAPES}
