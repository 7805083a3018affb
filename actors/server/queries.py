"""Read queries of the backup server: listings with filters, sorts and pages, in SQL.

Every ORDER BY and WHERE fragment is a constant chosen from a fixed table by a validated
key; user input only ever reaches SQL as a bound parameter. Client aggregates
(files_count, total_size) are computed by SQL from the files table, so they cannot drift.
What a filter, a sort or a page means is shared with the mock (actors/backends/filters.py):
text compares with NOCASE and lower(), which fold ASCII letters only, like filters.fold.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from actors.backends.filters import RECENT_FILES, client_filters, page, parse_file_filters, sort_order
from protocol.catalogue import FILE_STATUSES
from protocol.errors import ErrorCode, ProtocolError

CLIENT_COLUMNS = (
    "c.id, c.name, c.hostname, c.ip_address, c.platform, c.agent_version, c.status, c.last_seen, c.connected_at, "
    "c.created_at, "
    "(SELECT COUNT(*) FROM files f WHERE f.client_id = c.id) AS files_count, "
    "(SELECT COALESCE(SUM(f.size), 0) FROM files f WHERE f.client_id = c.id) AS total_size, "
    "c.error_message"
)
FILE_COLUMNS = (
    "id, client_id, name, path, size, sha256, status, created_at, modified_at, backup_count, last_backup, last_verified, "
    "error_message"
)
CLIENT_ORDER = {
    "name": "c.name COLLATE NOCASE {d}, c.id {d}",
    "last_seen": "c.last_seen {d}, c.id {d}",
    "status": "c.status {d}, c.id {d}",
    "total_size": "total_size {d}, c.id {d}",
}
FILE_ORDER = {
    "name": "name COLLATE NOCASE {d}, id {d}",
    "size": "size {d}, id {d}",
    "modified_at": "modified_at {d}, id {d}",
    "path": "path COLLATE NOCASE {d}, id {d}",
}


def _order(table: dict[str, str], sort: str) -> str:
    """A constant ORDER BY clause for a sort key the catalogue already validated."""
    field, descending = sort_order(sort)
    return table[field].format(d="DESC" if descending else "ASC")  # KeyError is impossible after validation


def client_dict(row: sqlite3.Row) -> dict[str, Any]:
    return dict(row)


def get_clients(conn: sqlite3.Connection, args: dict[str, Any]) -> dict[str, Any]:
    filters = client_filters(args)
    where: list[str] = []
    params: list[Any] = []
    if filters.status is not None:
        where.append("c.status = ?")
        params.append(filters.status)
    if filters.search:  # already folded; lower() folds the haystack the same way
        where.append(
            "(instr(lower(c.name), ?) > 0 OR instr(lower(c.hostname), ?) > 0 OR instr(lower(c.ip_address), ?) > 0)"
        )
        params += [filters.search] * 3
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM clients c{clause}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {CLIENT_COLUMNS} FROM clients c{clause} ORDER BY {_order(CLIENT_ORDER, filters.sort)} LIMIT ? OFFSET ?",
        [*params, args["limit"], args["offset"]],
    ).fetchall()
    return page([client_dict(r) for r in rows], total, args["offset"], args["limit"])


def all_clients(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(f"SELECT {CLIENT_COLUMNS} FROM clients c ORDER BY c.name COLLATE NOCASE, c.id").fetchall()
    return [client_dict(r) for r in rows]


def get_client(conn: sqlite3.Connection, client_id: str) -> dict[str, Any]:
    row = conn.execute(f"SELECT {CLIENT_COLUMNS} FROM clients c WHERE c.id = ?", (client_id,)).fetchone()
    if row is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"client {client_id!r} not found", client_id=client_id)
    return client_dict(row)


def client_by_key(conn: sqlite3.Connection, public_key: str) -> dict[str, Any] | None:
    row = conn.execute(f"SELECT {CLIENT_COLUMNS} FROM clients c WHERE c.public_key = ?", (public_key,)).fetchone()
    return client_dict(row) if row else None


def client_details(conn: sqlite3.Connection, client_id: str) -> dict[str, Any]:
    client = get_client(conn, client_id)
    by_status = dict.fromkeys(FILE_STATUSES, 0)
    for status, n in conn.execute(
        "SELECT status, COUNT(*) FROM files WHERE client_id = ? GROUP BY status", (client_id,)
    ):
        by_status[status] = n
    recent = conn.execute(
        f"SELECT {FILE_COLUMNS} FROM files WHERE client_id = ? ORDER BY modified_at DESC, id DESC LIMIT ?",
        (client_id, RECENT_FILES),
    ).fetchall()
    return {
        "client": client,
        "files_summary": {"count": client["files_count"], "total_size": client["total_size"], "by_status": by_status},
        "recent_files": [dict(r) for r in recent],
    }


def resolve_client(conn: sqlite3.Connection, key: str) -> dict[str, Any]:
    row = conn.execute(f"SELECT {CLIENT_COLUMNS} FROM clients c WHERE c.id = ?", (key,)).fetchone()
    if row is not None:
        return client_dict(row)
    ids = [r[0] for r in conn.execute("SELECT id FROM clients WHERE lower(name) = lower(?) ORDER BY id", (key,))]
    if not ids:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"no client has the id or name {key!r}", client_id_or_name=key)
    if len(ids) > 1:
        raise ProtocolError(
            ErrorCode.CONFLICT, f"the name {key!r} matches {len(ids)} clients; use a client id", client_ids=ids
        )
    return get_client(conn, ids[0])


def get_files(conn: sqlite3.Connection, args: dict[str, Any]) -> dict[str, Any]:
    filters = parse_file_filters(args.get("filters"))
    where: list[str] = []
    params: list[Any] = []
    if args.get("client_id") is not None:
        get_client(conn, args["client_id"])  # NOT_FOUND for an unknown client, like the mock
        where.append("client_id = ?")
        params.append(args["client_id"])
    if filters.status is not None:
        where.append("status = ?")
        params.append(filters.status)
    if filters.search:
        where.append("(instr(lower(name), ?) > 0 OR instr(lower(path), ?) > 0)")
        params += [filters.search, filters.search]
    if filters.min_size is not None:
        where.append("size >= ?")
        params.append(filters.min_size)
    if filters.max_size is not None:
        where.append("size <= ?")
        params.append(filters.max_size)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = conn.execute(f"SELECT COUNT(*) FROM files{clause}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {FILE_COLUMNS} FROM files{clause} ORDER BY {_order(FILE_ORDER, filters.sort)} LIMIT ? OFFSET ?",
        [*params, args["limit"], args["offset"]],
    ).fetchall()
    ids = list(dict.fromkeys(r["client_id"] for r in rows))
    names = conn.execute(f"SELECT id, name FROM clients WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()
    listed = page([dict(r) for r in rows], total, args["offset"], args["limit"])
    return {**listed, "client_names": {r["id"]: r["name"] for r in names}}


def files_of(conn: sqlite3.Connection, client_id: str | None) -> list[dict[str, Any]]:
    if client_id is None:
        rows = conn.execute(f"SELECT {FILE_COLUMNS} FROM files ORDER BY path COLLATE NOCASE, id").fetchall()
    else:
        get_client(conn, client_id)
        rows = conn.execute(
            f"SELECT {FILE_COLUMNS} FROM files WHERE client_id = ? ORDER BY name COLLATE NOCASE, id", (client_id,)
        ).fetchall()
    return [dict(r) for r in rows]


def get_file(conn: sqlite3.Connection, file_id: str) -> dict[str, Any]:
    row = conn.execute(f"SELECT {FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone()
    if row is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"file {file_id!r} not found", file_id=file_id)
    return dict(row)


def activity_dict(row: sqlite3.Row) -> dict[str, Any]:
    entry = dict(row)
    entry["id"] = str(entry["id"])
    return entry


def recent_activity(conn: sqlite3.Connection, limit: int) -> dict[str, Any]:
    rows = conn.execute(
        "SELECT id, timestamp, type, level, client_id, file_id, message FROM activity ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    total = conn.execute("SELECT COUNT(*) FROM activity").fetchone()[0]
    return {"items": [activity_dict(r) for r in rows], "total": total}
