"""The database view of the mock: tables clients, files and activity over the live records.

Rows are the very objects get_clients/get_files return, so an edit here shows up there
at once (and goes through the same world methods, keeping aggregates right).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from actors.mock.actions import delete_client, delete_file, status_changes
from actors.mock.state import MockWorld
from protocol.catalogue import CLIENT_STATUSES, FILE_STATUSES
from protocol.errors import ErrorCode, ProtocolError

TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")
MAX_TABLE_NAME = 64
MAX_TEXT = 255


def _text(value: Any) -> str | None:
    """None when ``value`` is an acceptable non-empty string, else what is wrong with it."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value.strip():
        return "must not be empty"
    if len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters"
    return None


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _ip(value: Any) -> str | None:
    problem = _text(value)
    if problem:
        return problem
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"must be an IPv4 or IPv6 address, got {value!r}"
    return None


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and value in choices else f"must be one of {list(choices)}, got {value!r}"

    return check


def _count(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return f"must be a non-negative integer, got {value!r}"
    return None


def _file_name(value: Any) -> str | None:
    problem = _text(value)
    if problem is None and ("/" in value or "\\" in value):
        return "must not contain a path separator (edit 'path' to move the file)"
    return problem


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    check: Callable[[Any], str | None] | None = None  # None: read-only

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "editable": self.check is not None}


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    row_bytes: int  # rough on-disk size of one row, for get_database_info

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "clients",
            (
                Column("id", "string"),
                Column("name", "string", _text),
                Column("hostname", "string", _text),
                Column("ip_address", "string", _ip),
                Column("platform", "string", _text),
                Column("agent_version", "string", _text),
                Column("status", "string", _choice(CLIENT_STATUSES)),
                Column("last_seen", "datetime"),
                Column("connected_at", "datetime|null"),
                Column("created_at", "datetime"),
                Column("files_count", "integer"),
                Column("total_size", "integer"),
                Column("error_message", "string|null", _optional_text),
            ),
            320,
        ),
        Table(
            "files",
            (
                Column("id", "string"),
                Column("client_id", "string"),
                Column("name", "string", _file_name),
                Column("path", "string", _text),
                Column("size", "integer"),
                Column("sha256", "string"),
                Column("status", "string", _choice(FILE_STATUSES)),
                Column("created_at", "datetime"),
                Column("modified_at", "datetime"),
                Column("backup_count", "integer", _count),
                Column("last_backup", "datetime"),
                Column("last_verified", "datetime|null"),
            ),
            300,
        ),
        Table(
            "activity",
            (
                Column("id", "string"),
                Column("timestamp", "datetime"),
                Column("type", "string"),
                Column("level", "string"),
                Column("client_id", "string|null"),
                Column("file_id", "string|null"),
                Column("message", "string"),
            ),
            200,
        ),
    )
}


def find_table(name: str) -> Table:
    if len(name) > MAX_TABLE_NAME or not TABLE_NAME.fullmatch(name):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"invalid table name {name!r}: it must match ^[a-z_][a-z0-9_]*$ (at most {MAX_TABLE_NAME} characters)",
            table=name,
        )
    table = TABLES.get(name)
    if table is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"table {name!r} not found; tables: {', '.join(TABLES)}", table=name)
    return table


def _rows(world: MockWorld, table: str) -> dict[str, Any]:
    return {"clients": world.clients, "files": world.files, "activity": world.activity}[table]


def _row(world: MockWorld, table: Table, row_id: Any) -> Any:
    row = _rows(world, table.name).get(row_id) if isinstance(row_id, str) else None
    if row is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no row with id {row_id!r} in table {table.name!r}", table=table.name)
    return row


def database_info(world: MockWorld, path: str) -> dict[str, Any]:
    """Sizes are estimates from row counts: the same data gives the same answer anywhere."""
    tables = [
        {
            "name": t.name,
            "rows": len(_rows(world, t.name)),
            "size_bytes": len(_rows(world, t.name)) * t.row_bytes,
            "columns": [c.describe() for c in t.columns],
        }
        for t in TABLES.values()
    ]
    return {"engine": "mock", "path": path, "size_bytes": sum(t["size_bytes"] for t in tables), "tables": tables}


def table_data(world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
    table = find_table(args["table_name"])
    rows = _rows(world, table.name)
    offset, limit = args["offset"], args["limit"]
    return {
        "table": table.name,
        "columns": [c.describe() for c in table.columns],
        "rows": [r.to_dict() for r in islice(rows.values(), offset, offset + limit)],
        "total": len(rows),
        "offset": offset,
        "limit": limit,
    }


def _checked_changes(table: Table, updated: dict[Any, Any]) -> dict[str, Any]:
    if not updated:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "updated_data is empty: name at least one column to change")
    unknown = sorted(str(k) for k in updated if not isinstance(k, str) or table.column(k) is None)
    if unknown:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"table {table.name!r} has no column(s) {', '.join(unknown)}", columns=unknown
        )
    readonly = [k for k in updated if table.column(k).check is None]  # type: ignore[union-attr]
    if readonly:
        raise ProtocolError(
            ErrorCode.FORBIDDEN,
            f"column(s) {', '.join(readonly)} of table {table.name!r} are read-only",
            columns=readonly,
        )
    for key, value in updated.items():
        problem = table.column(key).check(value)  # type: ignore[union-attr, misc]
        if problem:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{table.name}.{key} {problem}", column=key)
    return dict(updated)


def _split_path(path: str) -> tuple[str, str, str]:
    cut = max(path.rfind("/"), path.rfind("\\"))
    return path[:cut], path[cut] if cut >= 0 else "", path[cut + 1 :]


def update_row(world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
    table = find_table(args["table_name"])
    changes = _checked_changes(table, args["updated_data"])
    row = _row(world, table, args["row_id"])
    if table.name == "clients":
        status = changes.get("status", row.status)
        if changes.get("error_message") is not None and status != "error":
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "clients.error_message can only be set on a client in status 'error'"
            )
        if "status" in changes:
            changes = {**status_changes(row, status, world.now(), changes.get("error_message")), **changes}
            if status == "error" and changes.get("error_message") is None:
                changes["error_message"] = row.error_message or "Marked as failed by an administrator"
        world.update_client(row, **changes)
        world.client_changed(row, "updated")
        label = row.name
    else:
        _fix_name_and_path(world, row, changes)
        world.update_file(row, **changes)
        world.file_changed(row, "updated")
        label = row.path
    kind = table.name[:-1]  # client, file
    columns = ", ".join(sorted(args["updated_data"]))
    world.record(
        f"{kind}_updated",
        "INFO",
        f"Administrator edited {kind} {label}: {columns}",
        logger="backup.admin",
        client_id=row.id if table.name == "clients" else row.client_id,
        file_id=row.id if table.name == "files" else None,
    )
    return {"table": table.name, "row": row.to_dict()}


def _fix_name_and_path(world: MockWorld, record: Any, changes: dict[str, Any]) -> None:
    """Keep a file's name equal to the last component of its path, whichever is edited."""
    if "path" in changes:
        directory, sep, base = _split_path(changes["path"])
        if not base:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "files.path must end with a file name")
        if "name" in changes and changes["name"] != base:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"files.name {changes['name']!r} differs from the path's file name {base!r}"
            )
        changes["name"] = base
    elif "name" in changes:
        directory, sep, _ = _split_path(record.path)
        changes["path"] = f"{directory}{sep}{changes['name']}"
    if (
        "path" in changes
        and changes["path"].lower() != record.path.lower()
        and (record.client_id, changes["path"].lower()) in world.taken_paths
    ):
        raise ProtocolError(
            ErrorCode.CONFLICT,
            f"client {record.client_id!r} already has a file at {changes['path']!r}",
            path=changes["path"],
        )


def delete_row(world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
    table = find_table(args["table_name"])
    row = _row(world, table, args["row_id"])
    cascaded = {"files": 0}  # same shape for every table: files deleted along with the row
    if table.name == "clients":
        count, _ = delete_client(world, row, activity="row_deleted", via=" (row deleted in the database view)")
        cascaded["files"] = count
    elif table.name == "files":
        delete_file(world, row, activity="row_deleted", reason=" (row deleted in the database view)")
    else:
        del world.activity[row.id]
        world.record("row_deleted", "INFO", f"Administrator deleted activity entry {row.id}", logger="backup.admin")
    return {"table": table.name, "row_id": row.id, "cascaded": cascaded}
