"""The database view's rules for both backends: names, the editing policy, row ids, deletions.

Which tables exist and what their columns are is declared in protocol/tables.py; this is
what may be done to them. Both backends resolve a request through the same steps in the
same order (table name, then the changes, then the row), so a request that is wrong in
two ways gets the same error code from either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from actors.backends import validation as v
from protocol.agent_messages import file_name_of
from protocol.catalogue import CLIENT_STATUSES
from protocol.errors import ErrorCode, ProtocolError
from protocol.tables import TableColumn

TABLE_NAME = re.compile(r"[a-z_][a-z0-9_]*")
MAX_TABLE_NAME = 64
MAX_ROW_ID = 2**63 - 1  # SQLite's largest integer key
# "uploading" belongs to the transfer machinery: a row set to it by hand would be an upload
# nothing ever finishes.
FILE_EDIT_STATUSES = ("uploaded", "verified", "error")
DEFAULT_ERROR_MESSAGE = "Marked as failed by an administrator"
VIA_DATABASE_VIEW = " (row deleted in the database view)"

# The editing policy: table -> column -> check. Every other column is read-only (FORBIDDEN).
EDITABLE: dict[str, dict[str, v.Check]] = {
    "clients": {
        "name": v.text,
        "hostname": v.text,
        "ip_address": v.ip_address,
        "platform": v.text,
        "agent_version": v.text,
        "status": v.one_of(CLIENT_STATUSES),
        "error_message": v.optional_text,
    },
    "files": {
        "name": v.file_name,
        "path": v.client_path,
        "status": v.one_of(FILE_EDIT_STATUSES),
        "error_message": v.optional_text,
    },
}
# Settings are the server's own state (start/stop it instead); every other table's rows may go.
DELETABLE = frozenset({"activity", "clients", "file_versions", "files"})

T = TypeVar("T")


def find_table(name: str, tables: Mapping[str, T]) -> T:
    """The table ``name`` among ``tables``: BAD_REQUEST for a malformed name, NOT_FOUND for an unknown one."""
    if len(name) > MAX_TABLE_NAME or not TABLE_NAME.fullmatch(name):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"invalid table name {name!r}: it must match ^[a-z_][a-z0-9_]*$ (at most {MAX_TABLE_NAME} characters)",
            table=name,
        )
    table = tables.get(name)
    if table is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"table {name!r} not found; tables: {', '.join(tables)}", table=name)
    return table


def describe_columns(table: str, columns: Iterable[TableColumn]) -> list[dict[str, Any]]:
    policy = EDITABLE.get(table, {})
    return [{"name": c.name, "type": c.type, "editable": c.name in policy} for c in columns]


def checked_changes(table: str, columns: Iterable[str], updated: dict[Any, Any]) -> dict[str, Any]:
    """The changes of an update_row, every column known, editable and given a valid value."""
    if not updated:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "updated_data is empty: name at least one column to change")
    known = set(columns)
    unknown = sorted(str(k) for k in updated if not isinstance(k, str) or k not in known)
    if unknown:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"table {table!r} has no column(s) {', '.join(unknown)}", columns=unknown
        )
    policy = EDITABLE.get(table, {})
    readonly = sorted(k for k in updated if k not in policy)
    if readonly:
        raise ProtocolError(
            ErrorCode.FORBIDDEN, f"column(s) {', '.join(readonly)} of table {table!r} are read-only", columns=readonly
        )
    for key, value in updated.items():
        problem = policy[key](value)
        if problem:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{table}.{key} {problem}", column=key)
    return dict(updated)


def row_key(table: str, key: TableColumn, row_id: Any) -> str | int:
    """The row id in the type of the table's key; BAD_REQUEST when it cannot name a row of this table.

    Integer keys also take their decimal text, because ids travel as strings (Activity.id).
    """
    if key.type == "integer":
        if isinstance(row_id, int) and not isinstance(row_id, bool):
            value = row_id
        elif isinstance(row_id, str) and row_id.isascii() and row_id.isdigit() and len(row_id) <= 19:
            value = int(row_id)
        else:
            value = None
        if value is None or abs(value) > MAX_ROW_ID:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"row ids of table {table!r} are integers (or their decimal text), got {row_id!r}",
                table=table,
            )
        return value
    if not isinstance(row_id, str):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"row ids of table {table!r} are strings, got {row_id!r}", table=table
        )
    return row_id


def no_such_row(table: str, row_id: Any) -> ProtocolError:
    return ProtocolError(ErrorCode.NOT_FOUND, f"no row with id {row_id!r} in table {table!r}", table=table)


def check_deletable(table: str) -> None:
    if table not in DELETABLE:
        raise ProtocolError(ErrorCode.FORBIDDEN, f"rows of table {table!r} cannot be deleted", table=table)


@dataclass(frozen=True, slots=True)
class StatusEdit:
    """A status set by hand (clients, files), applied with its companion fields (error_message, connected_at, ...)."""

    status: str
    error_message: str | None


def status_edit(table: str, status: str, error_message: str | None, changes: dict[str, Any]) -> StatusEdit | None:
    """Check an edit of a row with ``status``/``error_message`` (clients, files); None: no status change.

    One rule for both tables: a row in status error always says why (an administrator who
    gives no reason gets the row's own, else DEFAULT_ERROR_MESSAGE), and only such a row has
    an error_message (any other status clears it).
    """
    target = changes.get("status", status)
    if "error_message" in changes:
        if changes["error_message"] is not None and target != "error":
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"{table}.error_message can only be set on a row in status 'error'"
            )
        if changes["error_message"] is None and target == "error" and "status" not in changes:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"{table}.error_message of a row in status 'error' cannot be cleared: give the reason, "
                "or change the status",
            )
    if "status" not in changes:
        return None
    message = changes.get("error_message")
    if target == "error" and message is None:
        message = error_message or DEFAULT_ERROR_MESSAGE
    return StatusEdit(target, message if target == "error" else None)


def client_status_edit(
    status: str, error_message: str | None, changes: dict[str, Any], *, has_session: bool
) -> StatusEdit | None:
    """``status_edit`` of a client, whose status "connected" only a live agent session gives.

    It cannot be set by hand on a client without a session; on a client with one it changes
    nothing (the session goes on).
    """
    edit = status_edit("clients", status, error_message, changes)
    if edit is None or edit.status != "connected":
        return edit
    if not has_session:
        raise ProtocolError(
            ErrorCode.CONFLICT,
            "status 'connected' comes from a live agent session; this client's agent is not connected",
        )
    return None


def fix_name_and_path(old_path: str, changes: dict[str, Any]) -> None:
    """Keep a file's name equal to the last component of its path, whichever of the two is edited."""
    if "path" in changes:
        base = file_name_of(changes["path"])
        if "name" in changes and changes["name"] != base:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"files.name {changes['name']!r} differs from the path's file name {base!r}"
            )
        changes["name"] = base
    elif "name" in changes:
        changes["path"] = old_path[: len(old_path) - len(file_name_of(old_path))] + changes["name"]


def path_key(path: str) -> str:
    """Two paths of one client conflict when their keys are equal: case is ignored (Windows clients)."""
    return path.lower()


def path_taken(client_id: str, path: str) -> ProtocolError:
    return ProtocolError(ErrorCode.CONFLICT, f"client {client_id!r} already has a file at {path!r}", path=path)
