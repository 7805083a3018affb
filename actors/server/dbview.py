"""The database view of the real server: get_database_info, get_table_data, update_row, delete_row.

Tables and columns form an allow-list read from the schema itself (``sqlite_master`` and
``PRAGMA table_info``). A name from a request is first checked against the pattern, then
looked up in that allow-list, and only the *known* identifier (never the request's
string) is quoted into SQL. What may be edited or deleted, and how a row id or a value
is checked, are the rules both backends share (actors/backends/dbview.py); the schema
matches the tables declared in protocol/tables.py (a contract test keeps it so).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Protocol

from actors.backends.dbview import (
    VIA_DATABASE_VIEW,
    StatusEdit,
    check_deletable,
    checked_changes,
    client_status_edit,
    describe_columns,
    find_table,
    fix_name_and_path,
    no_such_row,
    path_key,
    path_taken,
    row_key,
    status_edit,
)
from actors.server import queries as q
from actors.server.store import Store
from protocol.errors import ErrorCode, ProtocolError
from protocol.tables import BACKEND_TABLES, TableColumn

_TYPES = {"INTEGER": "integer", "TIMESTAMP": "datetime", "REAL": "number"}


class ClientActions(Protocol):
    """What an edit may need from the core beyond SQL (agents, keys, blobs)."""

    def delete_client_cascade(self, client_id: str, via: str) -> tuple[int, int]: ...

    def delete_file_and_blob(self, file_id: str, via: str) -> int: ...

    def disconnect_session(self, client_id: str, reason: str) -> bool: ...

    def has_session(self, client_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[TableColumn, ...]
    key: TableColumn

    @property
    def quoted(self) -> str:
        return quote(self.name)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def quote(identifier: str) -> str:
    """Quote an identifier taken from the schema (never one taken from a request)."""
    return '"' + identifier.replace('"', '""') + '"'


def read_schema(conn: sqlite3.Connection) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    names = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name"
        )
    ]
    for name in names:
        columns, key = [], None
        for _cid, col, decl, notnull, _default, pk in conn.execute(f"PRAGMA table_info({quote(name)})"):
            base = _TYPES.get((decl or "").upper(), "string")
            column = TableColumn(col, base if notnull or pk else f"{base}|null")
            columns.append(column)
            key = column if pk else key
        if key is not None:  # every table of ours has a one-column key; others are not shown
            tables[name] = Table(name, tuple(columns), key)
    return tables


class CatalogTables:
    def __init__(self, conn: sqlite3.Connection, store: Store, actions: ClientActions, path_label: str) -> None:
        self.conn = conn
        self.store = store
        self.actions = actions
        self.path_label = path_label
        # The declared tables only: a snapshot's tree is browsed with browse_snapshot, not row by row.
        self.tables = {n: t for n, t in read_schema(conn).items() if n in BACKEND_TABLES["real"]}

    # -- reads --

    def database_info(self) -> dict[str, Any]:
        sizes = self._btree_sizes()
        indexes: dict[str, list[str]] = {}
        for index, table in self.conn.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'"):
            indexes.setdefault(table, []).append(index)
        out = []
        for table in self.tables.values():
            rows = self.conn.execute(f"SELECT COUNT(*) FROM {table.quoted}").fetchone()[0]
            size = sizes.get(table.name, 0) + sum(sizes.get(i, 0) for i in indexes.get(table.name, []))
            out.append(
                {
                    "name": table.name,
                    "rows": rows,
                    "size_bytes": size,
                    "columns": describe_columns(table.name, table.columns),
                }
            )
        page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        return {
            "engine": f"sqlite {sqlite3.sqlite_version}",
            "path": self.path_label,
            "size_bytes": page_size * pages,
            "tables": out,
        }

    def _btree_sizes(self) -> dict[str, int]:
        try:
            return dict(self.conn.execute("SELECT name, pgsize FROM dbstat WHERE aggregate = TRUE"))
        except sqlite3.Error:  # SQLite built without the dbstat table
            return {}

    def table_data(self, args: dict[str, Any]) -> dict[str, Any]:
        table = find_table(args["table_name"], self.tables)
        offset, limit = args["offset"], args["limit"]
        rows = self.conn.execute(
            f"SELECT * FROM {table.quoted} ORDER BY {quote(table.key.name)} LIMIT ? OFFSET ?", (limit, offset)
        ).fetchall()
        total = self.conn.execute(f"SELECT COUNT(*) FROM {table.quoted}").fetchone()[0]
        return {
            "table": table.name,
            "columns": describe_columns(table.name, table.columns),
            "rows": [dict(r) for r in rows],
            "total": total,
            "offset": offset,
            "limit": limit,
        }

    def _row(self, table: Table, row_id: Any) -> dict[str, Any]:
        key = row_key(table.name, table.key, row_id)
        row = self.conn.execute(f"SELECT * FROM {table.quoted} WHERE {quote(table.key.name)} = ?", (key,)).fetchone()
        if row is None:
            raise no_such_row(table.name, row_id)
        return dict(row)

    # -- update_row --

    def update_row(self, args: dict[str, Any]) -> dict[str, Any]:
        table = find_table(args["table_name"], self.tables)
        changes = checked_changes(table.name, table.column_names, args["updated_data"])
        row = self._row(table, args["row_id"])
        edit: StatusEdit | None = None
        if table.name == "clients":
            edit = client_status_edit(
                row["status"], row["error_message"], changes, has_session=self.actions.has_session(row["id"])
            )
            if "status" in changes:  # applied with its companion fields (connected_at, ...)
                changes = {k: v for k, v in changes.items() if k not in ("status", "error_message")}
            if edit is not None and self.actions.has_session(row["id"]):
                self.actions.disconnect_session(row["id"], f"marked {edit.status} by an administrator")
        elif table.name == "files":
            file_edit = status_edit("files", row["status"], row["error_message"], changes)
            if file_edit is not None:  # a file's status has one companion field: why it is in error
                changes = {**changes, "status": file_edit.status, "error_message": file_edit.error_message}
            fix_name_and_path(row["path"], changes)
            self._check_path_free(row, changes)
        if changes:
            assignments = ", ".join(f"{quote(c)} = ?" for c in changes)
            self.conn.execute(
                f"UPDATE {table.quoted} SET {assignments} WHERE {quote(table.key.name)} = ?",
                (*changes.values(), row[table.key.name]),
            )
        if edit is not None:
            self.store.set_client_status(row["id"], edit.status, edit.error_message)
        updated = self._row(table, row[table.key.name])
        edited = ", ".join(sorted(args["updated_data"]))
        if table.name == "clients":
            self.store.client_changed(row["id"], "updated")
            self.store.record(
                "client_updated",
                "INFO",
                f"Administrator edited client {updated['name']}: {edited}",
                client_id=row["id"],
                logger="backup.admin",
            )
        else:
            self.store.file_changed(updated, "updated")
            self.store.record(
                "file_updated",
                "INFO",
                f"Administrator edited file {updated['path']}: {edited}",
                client_id=updated["client_id"],
                file_id=row["id"],
                logger="backup.admin",
            )
        return {"table": table.name, "row": updated}

    def _check_path_free(self, row: dict[str, Any], changes: dict[str, Any]) -> None:
        """CONFLICT when another file of the client has the new path (case ignored, see path_key)."""
        if "path" not in changes:
            return
        key = path_key(changes["path"])
        others = self.conn.execute(
            "SELECT path FROM files WHERE client_id = ? AND id != ?", (row["client_id"], row["id"])
        )
        if any(path_key(other) == key for (other,) in others):
            raise path_taken(row["client_id"], changes["path"])

    # -- delete_row --

    def delete_row(self, args: dict[str, Any]) -> dict[str, Any]:
        table = find_table(args["table_name"], self.tables)
        check_deletable(table.name)
        row = self._row(table, args["row_id"])
        row_id = row[table.key.name]
        cascaded = {"files": 0}
        if table.name == "clients":
            cascaded["files"], _ = self.actions.delete_client_cascade(row_id, VIA_DATABASE_VIEW)
        elif table.name == "files":
            self.actions.delete_file_and_blob(row_id, VIA_DATABASE_VIEW)
        elif table.name == "file_versions":
            self._delete_version(row)
        else:
            self.conn.execute("DELETE FROM activity WHERE id = ?", (row_id,))
            self.store.record(
                "row_deleted", "INFO", f"Administrator deleted activity entry {row_id}", logger="backup.admin"
            )
        return {
            "table": table.name,
            "row_id": str(row_id) if table.name == "activity" else row_id,  # activity ids travel as strings
            "cascaded": cascaded,
        }

    def _delete_version(self, row: dict[str, Any]) -> None:
        latest = self.conn.execute(
            "SELECT MAX(version) FROM file_versions WHERE file_id = ?", (row["file_id"],)
        ).fetchone()[0]
        if row["version"] == latest:
            raise ProtocolError(
                ErrorCode.CONFLICT,
                "this is the file's current version; delete the file instead",
                file_id=row["file_id"],
            )
        self.conn.execute("DELETE FROM file_versions WHERE id = ?", (row["id"],))
        self.conn.execute("UPDATE files SET backup_count = backup_count - 1 WHERE id = ?", (row["file_id"],))
        self.store.collect_blobs([row["sha256"]])
        file = q.get_file(self.conn, row["file_id"])
        self.store.file_changed(file, "updated")
        self.store.record(
            "row_deleted",
            "INFO",
            f"Administrator deleted version {row['version']} of {file['path']}",
            client_id=file["client_id"],
            file_id=file["id"],
            logger="backup.admin",
        )
