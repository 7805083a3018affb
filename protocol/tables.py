"""The tables of the database view (get_database_info, get_table_data, update_row, delete_row).

Declared once: the real server's schema has exactly these tables and columns (a contract
test reads it), the mock presents the same columns over its in-memory records, and
docs/protocol.md lists which backend exposes which table. The mock keeps no file versions
and no settings, so it exposes fewer tables; a table both expose looks the same in both.
A snapshot's tree (the real server's snapshot_dirs and snapshot_files) is an index of
millions of rows, browsed with browse_snapshot: the view does not show it.
Which columns may be edited is the backends' policy (actors/backends/dbview.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TableColumn:
    name: str
    type: str  # string, integer or datetime, with "|null" when the value may be null


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    summary: str
    columns: tuple[TableColumn, ...]  # the first one is the primary key

    @property
    def key(self) -> TableColumn:
        return self.columns[0]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _columns(*pairs: tuple[str, str]) -> tuple[TableColumn, ...]:
    return tuple(TableColumn(name, kind) for name, kind in pairs)


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "activity",
        "The activity log (newest entries kept).",
        _columns(
            ("id", "integer"),
            ("timestamp", "datetime"),
            ("type", "string"),
            ("level", "string"),
            ("client_id", "string|null"),
            ("file_id", "string|null"),
            ("message", "string"),
        ),
    ),
    TableSpec(
        "clients",
        "Backup clients; their file counts and sizes are computed, not stored.",
        _columns(
            ("id", "string"),
            ("name", "string"),
            ("public_key", "string"),
            ("hostname", "string"),
            ("ip_address", "string"),
            ("platform", "string"),
            ("agent_version", "string"),
            ("status", "string"),
            ("error_message", "string|null"),
            ("created_at", "datetime"),
            ("last_seen", "datetime"),
            ("connected_at", "datetime|null"),
        ),
    ),
    TableSpec(
        "file_versions",
        "Every backed-up version of every file.",
        _columns(
            ("id", "integer"),
            ("file_id", "string"),
            ("version", "integer"),
            ("size", "integer"),
            ("mtime_ns", "integer"),
            ("sha256", "string"),
            ("backed_up_at", "datetime"),
            ("snapshot_id", "integer|null"),
            ("mode", "integer|null"),
        ),
    ),
    TableSpec(
        "files",
        "Backed-up files, one row per path of a client (its latest version).",
        _columns(
            ("id", "string"),
            ("client_id", "string"),
            ("path", "string"),
            ("name", "string"),
            ("size", "integer"),
            ("mtime_ns", "integer"),
            ("sha256", "string"),
            ("status", "string"),
            ("backup_count", "integer"),
            ("created_at", "datetime"),
            ("modified_at", "datetime"),
            ("last_backup", "datetime"),
            ("last_verified", "datetime|null"),
            ("error_message", "string|null"),
        ),
    ),
    TableSpec(
        "snapshots",
        "Backup runs, one row each (their trees are browsed with browse_snapshot, not shown here).",
        _columns(
            ("id", "integer"),
            ("client_id", "string"),
            ("status", "string"),
            ("started_at", "datetime"),
            ("ended_at", "datetime|null"),
            ("root", "string"),
            ("files_new", "integer"),
            ("bytes_new", "integer"),
            ("files_changed", "integer"),
            ("bytes_changed", "integer"),
            ("files_unchanged", "integer"),
            ("bytes_unchanged", "integer"),
            ("files_failed", "integer"),
            ("bytes_failed", "integer"),
        ),
    ),
    TableSpec(
        "settings",
        "The server's persistent settings (whether it accepts agents).",
        _columns(("key", "string"), ("value", "string")),
    ),
)

TABLE_BY_NAME: dict[str, TableSpec] = {t.name: t for t in TABLES}

# Which tables each backend's database view exposes, by the backend's mode.
BACKEND_TABLES: dict[str, tuple[str, ...]] = {
    "mock": ("activity", "clients", "files"),
    "real": ("activity", "clients", "file_versions", "files", "settings", "snapshots"),
}
