"""The database view of the mock: tables activity, clients and files over the live records.

The tables have exactly the real server's columns (protocol/tables.py) and follow its
rules (actors/backends/dbview.py); a column the mock does not keep is derived from what
it keeps (a client's public key from its id, a file's mtime_ns from modified_at). Edits go
through the same world methods as every other change, so they show up in get_clients
and get_files at once and the aggregates stay right.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any

from zmq.utils import z85

from actors.backends.dbview import (
    VIA_DATABASE_VIEW,
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
from actors.mock.actions import delete_client, delete_file, disconnect, status_changes
from actors.mock.records import Activity, Client, FileRecord
from actors.mock.state import MockWorld
from protocol.tables import BACKEND_TABLES, TABLE_BY_NAME, TableSpec

TABLES: dict[str, TableSpec] = {name: TABLE_BY_NAME[name] for name in BACKEND_TABLES["mock"]}
ROW_BYTES = {"activity": 200, "clients": 320, "files": 300}  # rough on-disk size of a row, for get_database_info
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def public_key(client_id: str) -> str:
    """A stand-in z85 CURVE public key, derived from the client id (the mock keeps no keys)."""
    return z85.encode(hashlib.sha256(b"mock-client-key:" + client_id.encode()).digest()).decode()


def mtime_ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def client_row(c: Client) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "public_key": public_key(c.id),
        "hostname": c.hostname,
        "ip_address": c.ip_address,
        "platform": c.platform,
        "agent_version": c.agent_version,
        "status": c.status,
        "error_message": c.error_message,
        "created_at": c.created_at,
        "last_seen": c.last_seen,
        "connected_at": c.connected_at,
    }


def file_row(f: FileRecord) -> dict[str, Any]:
    return {
        "id": f.id,
        "client_id": f.client_id,
        "path": f.path,
        "name": f.name,
        "size": f.size,
        "mtime_ns": mtime_ns(f.modified_at),
        "sha256": f.sha256,
        "status": f.status,
        "backup_count": f.backup_count,
        "created_at": f.created_at,
        "modified_at": f.modified_at,
        "last_backup": f.last_backup,
        "last_verified": f.last_verified,
        "error_message": f.error_message,
    }


def activity_row(a: Activity) -> dict[str, Any]:
    return {**a.to_dict(), "id": int(a.id)}


_ROW: dict[str, Callable[[Any], dict[str, Any]]] = {"activity": activity_row, "clients": client_row, "files": file_row}


def _records(world: MockWorld, table: str) -> dict[str, Any]:
    records: dict[str, dict[str, Any]] = {"activity": world.activity, "clients": world.clients, "files": world.files}
    return records[table]


def _in_key_order(world: MockWorld, table: str, offset: int, limit: int) -> list[Any]:
    records = _records(world, table)
    if table == "activity":  # numbered in insertion order already
        return list(islice(records.values(), offset, offset + limit))
    return [records[key] for key in sorted(records)[offset : offset + limit]]


def _record(world: MockWorld, table: TableSpec, row_id: Any) -> Any:
    key = row_key(table.name, table.key, row_id)
    record = _records(world, table.name).get(str(key))
    if record is None:
        raise no_such_row(table.name, row_id)
    return record


def database_info(world: MockWorld, path: str) -> dict[str, Any]:
    """Sizes are estimates from row counts: the same data gives the same answer anywhere."""
    tables = [
        {
            "name": t.name,
            "rows": len(_records(world, t.name)),
            "size_bytes": len(_records(world, t.name)) * ROW_BYTES[t.name],
            "columns": describe_columns(t.name, t.columns),
        }
        for t in TABLES.values()
    ]
    return {"engine": "mock", "path": path, "size_bytes": sum(t["size_bytes"] for t in tables), "tables": tables}


def table_data(world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
    table = find_table(args["table_name"], TABLES)
    offset, limit = args["offset"], args["limit"]
    return {
        "table": table.name,
        "columns": describe_columns(table.name, table.columns),
        "rows": [_ROW[table.name](r) for r in _in_key_order(world, table.name, offset, limit)],
        "total": len(_records(world, table.name)),
        "offset": offset,
        "limit": limit,
    }


def update_row(world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
    table = find_table(args["table_name"], TABLES)
    changes = checked_changes(table.name, table.column_names, args["updated_data"])
    row = _record(world, table, args["row_id"])
    edited = ", ".join(sorted(args["updated_data"]))
    if table.name == "clients":
        _edit_client(world, row, changes)
        world.record(
            "client_updated",
            "INFO",
            f"Administrator edited client {row.name}: {edited}",
            logger="backup.admin",
            client_id=row.id,
        )
    else:  # files: no column of activity is editable, checked_changes refused already
        _edit_file(world, row, changes)
        world.record(
            "file_updated",
            "INFO",
            f"Administrator edited file {row.path}: {edited}",
            logger="backup.admin",
            client_id=row.client_id,
            file_id=row.id,
        )
    return {"table": table.name, "row": _ROW[table.name](row)}


def _edit_client(world: MockWorld, client: Client, changes: dict[str, Any]) -> None:
    # A client in status "connected" is one whose (simulated) agent has a session.
    connected = client.status == "connected"
    edit = client_status_edit(client.status, client.error_message, changes, has_session=connected)
    if "status" in changes:
        changes = {k: v for k, v in changes.items() if k not in ("status", "error_message")}
    if edit is not None and connected:
        disconnect(world, client, f"marked {edit.status} by an administrator")
    if changes:
        world.update_client(client, **changes)
    if edit is not None:
        world.update_client(client, **status_changes(client, edit.status, world.now(), edit.error_message))
    world.client_changed(client, "updated")


def _edit_file(world: MockWorld, record: FileRecord, changes: dict[str, Any]) -> None:
    edit = status_edit("files", record.status, record.error_message, changes)
    if edit is not None:  # a file's status has one companion field: why it is in error
        changes = {**changes, "status": edit.status, "error_message": edit.error_message}
    fix_name_and_path(record.path, changes)
    if "path" in changes:
        key = path_key(changes["path"])
        if any(path_key(f.path) == key for f in world.files_by_client[record.client_id].values() if f is not record):
            raise path_taken(record.client_id, changes["path"])
    world.update_file(record, **changes)
    world.file_changed(record, "updated")


def delete_row(world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
    table = find_table(args["table_name"], TABLES)
    check_deletable(table.name)
    row = _record(world, table, args["row_id"])
    cascaded = {"files": 0}  # same shape for every table: files deleted along with the row
    if table.name == "clients":
        cascaded["files"], _ = delete_client(world, row, via=VIA_DATABASE_VIEW)
    elif table.name == "files":
        delete_file(world, row, reason=VIA_DATABASE_VIEW)
    else:
        del world.activity[row.id]
        world.record("row_deleted", "INFO", f"Administrator deleted activity entry {row.id}", logger="backup.admin")
    return {"table": table.name, "row_id": row.id, "cascaded": cascaded}
