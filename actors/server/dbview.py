"""The database view of the real server: get_database_info, get_table_data, update_row, delete_row.

Tables and columns form an allow-list read from the schema itself (``sqlite_master`` and
``PRAGMA table_info``). A name from a request is first checked against the pattern, then
looked up in that allow-list, and only the *known* identifier (never the request's
string) is quoted into SQL. Which columns may be edited is a fixed policy on top:
everything else (ids, hashes, sizes, keys, timestamps) is read-only, so editing it is
FORBIDDEN. Same semantics as the mock's view (actors/mock_database.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

# The mock's view defines what a valid table name, text, address or status is: one definition for both.
from actors.mock.database import MAX_TABLE_NAME, TABLE_NAME, _choice, _ip, _optional_text, _text
from actors.server import queries as q
from actors.server.store import Store
from protocol.agent_messages import check_client_path, check_file_name, file_name_of
from protocol.catalogue import CLIENT_STATUSES, FILE_STATUSES
from protocol.errors import ErrorCode, ProtocolError

Check = Callable[[Any], "str | None"]


def _path(value: Any) -> str | None:
    return check_client_path(value)


def _name(value: Any) -> str | None:
    return _text(value) or check_file_name(value)


# The editing policy: table -> column -> validator. Anything not named here is read-only.
EDITABLE: dict[str, dict[str, Check]] = {
    "clients": {
        "name": _text,
        "hostname": _text,
        "ip_address": _ip,
        "platform": _text,
        "agent_version": _text,
        "status": _choice(CLIENT_STATUSES),
        "error_message": _optional_text,
    },
    "files": {"name": _name, "path": _path, "status": _choice(FILE_STATUSES)},
}
DELETABLE = frozenset({"clients", "files", "file_versions", "activity"})


class ClientActions(Protocol):
    """What an edit may need from the core beyond SQL (agents, keys, blobs)."""

    def delete_client_cascade(self, client_id: str, via: str) -> tuple[int, int]: ...

    def delete_file_and_blob(self, file_id: str, via: str) -> int: ...

    def disconnect_session(self, client_id: str, reason: str) -> bool: ...

    def has_session(self, client_id: str) -> bool: ...


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    decl: str
    notnull: bool
    pk: bool
    check: Check | None

    def describe(self) -> dict[str, Any]:
        base = {"INTEGER": "integer", "TIMESTAMP": "datetime", "REAL": "number"}.get(self.decl.upper(), "string")
        nullable = not self.notnull and not self.pk
        return {"name": self.name, "type": f"{base}|null" if nullable else base, "editable": self.check is not None}


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: dict[str, Column]
    pk: Column

    @property
    def quoted(self) -> str:
        return quote(self.name)


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
        policy = EDITABLE.get(name, {})
        columns = {}
        for _cid, col, decl, notnull, _default, pk in conn.execute(f"PRAGMA table_info({quote(name)})"):
            columns[col] = Column(col, decl or "", bool(notnull), bool(pk), policy.get(col))
        pk = next((c for c in columns.values() if c.pk), None)
        if pk is not None:  # every table of ours has a one-column key; others are not shown
            tables[name] = Table(name, columns, pk)
    return tables


class DatabaseView:
    def __init__(self, conn: sqlite3.Connection, store: Store, actions: ClientActions, path_label: str) -> None:
        self.conn = conn
        self.store = store
        self.actions = actions
        self.path_label = path_label
        self.tables = read_schema(conn)

    def find_table(self, name: str) -> Table:
        if len(name) > MAX_TABLE_NAME or not TABLE_NAME.fullmatch(name):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"invalid table name {name!r}: it must match ^[a-z_][a-z0-9_]*$ (at most {MAX_TABLE_NAME} characters)",
                table=name,
            )
        table = self.tables.get(name)
        if table is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND, f"table {name!r} not found; tables: {', '.join(self.tables)}", table=name
            )
        return table

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
                    "columns": [c.describe() for c in table.columns.values()],
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
        table = self.find_table(args["table_name"])
        offset, limit = args["offset"], args["limit"]
        rows = self.conn.execute(
            f"SELECT * FROM {table.quoted} ORDER BY {quote(table.pk.name)} LIMIT ? OFFSET ?", (limit, offset)
        ).fetchall()
        total = self.conn.execute(f"SELECT COUNT(*) FROM {table.quoted}").fetchone()[0]
        return {
            "table": table.name,
            "columns": [c.describe() for c in table.columns.values()],
            "rows": [dict(r) for r in rows],
            "total": total,
            "offset": offset,
            "limit": limit,
        }

    def _row(self, table: Table, row_id: Any) -> dict[str, Any]:
        key = _key_value(table.pk, row_id)
        row = (
            None
            if key is None
            else self.conn.execute(f"SELECT * FROM {table.quoted} WHERE {quote(table.pk.name)} = ?", (key,)).fetchone()
        )
        if row is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND, f"no row with id {row_id!r} in table {table.name!r}", table=table.name
            )
        return dict(row)

    # -- update_row --

    def update_row(self, args: dict[str, Any]) -> dict[str, Any]:
        table = self.find_table(args["table_name"])
        changes = _checked_changes(table, args["updated_data"])
        row = self._row(table, args["row_id"])
        status: tuple[str, str | None] | None = None
        if table.name == "clients":
            changes, status = self._client_changes(row, changes)
        elif table.name == "files":
            self._fix_name_and_path(row, changes)
        if changes:
            assignments = ", ".join(f"{quote(table.columns[c].name)} = ?" for c in changes)
            self.conn.execute(
                f"UPDATE {table.quoted} SET {assignments} WHERE {quote(table.pk.name)} = ?",
                (*changes.values(), row[table.pk.name]),
            )
        if status is not None:
            self.store.set_client_status(row["id"], *status)
        updated = self._row(table, row[table.pk.name])
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

    def _client_changes(
        self, row: dict[str, Any], changes: dict[str, Any]
    ) -> tuple[dict[str, Any], tuple[str, str | None] | None]:
        """Split off a status change: it is applied with its companion fields (connected_at, ...)."""
        status = changes.get("status", row["status"])
        if changes.get("error_message") is not None and status != "error":
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "clients.error_message can only be set on a client in status 'error'"
            )
        if "status" not in changes:
            return changes, None
        if status == "connected" and not self.actions.has_session(row["id"]):
            raise ProtocolError(
                ErrorCode.CONFLICT,
                "status 'connected' comes from a live agent session; this client's agent is not connected",
                client_id=row["id"],
            )
        if status != "connected" and self.actions.has_session(row["id"]):
            self.actions.disconnect_session(row["id"], f"marked {status} by an administrator")
        message = changes.get("error_message")
        if status == "error" and message is None:
            message = row["error_message"] or "Marked as failed by an administrator"
        rest = {k: v for k, v in changes.items() if k not in ("status", "error_message")}
        return rest, (status, message)

    def _fix_name_and_path(self, row: dict[str, Any], changes: dict[str, Any]) -> None:
        """Keep a file's name equal to the last component of its path, whichever is edited."""
        if "path" in changes:
            base = file_name_of(changes["path"])
            if "name" in changes and changes["name"] != base:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST, f"files.name {changes['name']!r} differs from the path's file name {base!r}"
                )
            changes["name"] = base
        elif "name" in changes:
            old = row["path"]
            changes["path"] = old[: len(old) - len(file_name_of(old))] + changes["name"]
        if "path" in changes and changes["path"] != row["path"]:
            taken = self.conn.execute(
                "SELECT 1 FROM files WHERE client_id = ? AND path = ? AND id != ?",
                (row["client_id"], changes["path"], row["id"]),
            ).fetchone()
            if taken:
                raise ProtocolError(
                    ErrorCode.CONFLICT,
                    f"client {row['client_id']!r} already has a file at {changes['path']!r}",
                    path=changes["path"],
                )

    # -- delete_row --

    def delete_row(self, args: dict[str, Any]) -> dict[str, Any]:
        table = self.find_table(args["table_name"])
        if table.name not in DELETABLE:
            raise ProtocolError(
                ErrorCode.FORBIDDEN, f"rows of table {table.name!r} cannot be deleted", table=table.name
            )
        row = self._row(table, args["row_id"])
        row_id = row[table.pk.name]
        cascaded = {"files": 0}
        via = " (row deleted in the database view)"
        if table.name == "clients":
            cascaded["files"], _ = self.actions.delete_client_cascade(row_id, via)
        elif table.name == "files":
            self.actions.delete_file_and_blob(row_id, via)
        elif table.name == "file_versions":
            self._delete_version(row)
        else:
            self.conn.execute("DELETE FROM activity WHERE id = ?", (row_id,))
            self.store.record(
                "row_deleted", "INFO", f"Administrator deleted activity entry {row_id}", logger="backup.admin"
            )
        return {
            "table": table.name,
            "row_id": str(row_id) if table.name == "activity" else row_id,
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


def _key_value(pk: Column, row_id: Any) -> Any:
    """The row id in the key column's type, or None when it cannot match any row."""
    if pk.decl.upper() == "INTEGER":
        if isinstance(row_id, bool):
            return None
        if isinstance(row_id, int):
            return row_id
        return int(row_id) if isinstance(row_id, str) and row_id.isdigit() and len(row_id) < 19 else None
    return row_id if isinstance(row_id, str) else None


def _checked_changes(table: Table, updated: dict[Any, Any]) -> dict[str, Any]:
    if not updated:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "updated_data is empty: name at least one column to change")
    unknown = sorted(str(k) for k in updated if not isinstance(k, str) or k not in table.columns)
    if unknown:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"table {table.name!r} has no column(s) {', '.join(unknown)}", columns=unknown
        )
    readonly = sorted(k for k in updated if table.columns[k].check is None)
    if readonly:
        raise ProtocolError(
            ErrorCode.FORBIDDEN,
            f"column(s) {', '.join(readonly)} of table {table.name!r} are read-only",
            columns=readonly,
        )
    for key, value in updated.items():
        problem = table.columns[key].check(value)  # type: ignore[misc]
        if problem:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{table.name}.{key} {problem}", column=key)
    return dict(updated)
