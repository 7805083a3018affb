"""Reads of the snapshot catalog: list, get, browse one folder, search, a file's versions.

Browsing reads one folder's rows through two indexes (sub-folders by parent and name,
files by folder and name), so its cost is the page asked for, not the snapshot's size.
What a path, a search or a page means is shared with the mock (actors/backends/).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from actors.backends.filters import fold, page, searchable
from actors.backends.snapshot_paths import child_path, folder_to_browse, parent_of
from actors.server import queries as q
from actors.server.store import mtime_datetime
from protocol.errors import ErrorCode, ProtocolError

SNAPSHOT_COLUMNS = (
    "id, client_id, status, started_at, ended_at, root, files_new, bytes_new, files_changed, bytes_changed, "
    "files_unchanged, bytes_unchanged, files_failed, bytes_failed"
)
# A file's newest version, for listings of files.
NEWEST = "v.id = (SELECT id FROM file_versions WHERE file_id = f.id ORDER BY version DESC LIMIT 1)"
VERSION_COLUMNS = (
    "f.id, f.client_id, f.path, f.name, v.version, v.size, v.sha256, v.mtime_ns, v.backed_up_at, v.snapshot_id"
)


def snapshot_dict(row: sqlite3.Row) -> dict[str, Any]:
    s = dict(row)
    s["id"] = str(s["id"])
    s["files_total"] = s["files_new"] + s["files_changed"] + s["files_unchanged"]
    s["bytes_total"] = s["bytes_new"] + s["bytes_changed"] + s["bytes_unchanged"]
    return s


def version_dict(row: sqlite3.Row | tuple[Any, ...]) -> dict[str, Any]:
    file_id, client_id, path, name, version, size, sha, mtime_ns, backed_up_at, snapshot_id = tuple(row)
    return {
        "file_id": file_id,
        "client_id": client_id,
        "path": path,
        "name": name,
        "version": version,
        "size": size,
        "sha256": sha,
        "modified_at": mtime_datetime(mtime_ns),
        "backed_up_at": backed_up_at,
        "snapshot_id": None if snapshot_id is None else str(snapshot_id),
    }


def _known_client(conn: sqlite3.Connection, client_id: str) -> None:
    """NOT_FOUND for an unknown client (q.get_client would also sum the files of a known one: too slow here)."""
    if conn.execute("SELECT 1 FROM clients WHERE id = ?", (client_id,)).fetchone() is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"client {client_id!r} not found", client_id=client_id)


def _not_found(snapshot_id: str) -> ProtocolError:
    return ProtocolError(
        ErrorCode.NOT_FOUND, f"snapshot {snapshot_id[:100]!r} not found", snapshot_id=snapshot_id[:100]
    )


def _row(conn: sqlite3.Connection, snapshot_id: str) -> sqlite3.Row:
    # Ids travel as strings; anything that is not one of ours is simply not found.
    key = int(snapshot_id) if snapshot_id.isascii() and snapshot_id.isdigit() and len(snapshot_id) < 19 else None
    row = None
    if key is not None:
        row = conn.execute(f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE id = ?", (key,)).fetchone()
    if row is None:
        raise _not_found(snapshot_id)
    return row


def get_snapshot(conn: sqlite3.Connection, snapshot_id: str) -> dict[str, Any]:
    return snapshot_dict(_row(conn, snapshot_id))


def list_snapshots(conn: sqlite3.Connection, args: dict[str, Any]) -> dict[str, Any]:
    client_id = args["client_id"]
    _known_client(conn, client_id)
    where, params = "client_id = ?", [client_id]
    if args.get("status") is not None:
        where += " AND status = ?"
        params.append(args["status"])
    total = conn.execute(f"SELECT COUNT(*) FROM snapshots WHERE {where}", params).fetchone()[0]
    rows = conn.execute(
        f"SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
        [*params, args["limit"], args["offset"]],
    ).fetchall()
    return page([snapshot_dict(r) for r in rows], total, args["offset"], args["limit"])


def browse(conn: sqlite3.Connection, args: dict[str, Any]) -> dict[str, Any]:
    snapshot = _row(conn, args["snapshot_id"])
    path = folder_to_browse(args["path"])
    folder = conn.execute(
        "SELECT id FROM snapshot_dirs WHERE snapshot_id = ? AND path = ?", (snapshot["id"], path)
    ).fetchone()
    if folder is None:
        raise ProtocolError(
            ErrorCode.NOT_FOUND,
            f"snapshot {args['snapshot_id']} holds no folder {path[:200]!r}",
            snapshot_id=args["snapshot_id"],
            path=path[:200],
        )
    dir_id, offset, limit = folder[0], args["offset"], args["limit"]
    dirs = conn.execute("SELECT COUNT(*) FROM snapshot_dirs WHERE parent_id = ?", (dir_id,)).fetchone()[0]
    files = conn.execute("SELECT COUNT(*) FROM snapshot_files WHERE dir_id = ?", (dir_id,)).fetchone()[0]
    items: list[dict[str, Any]] = []
    if offset < dirs:
        for name, sub, count, size, change in conn.execute(
            "SELECT name, path, files, size, change FROM snapshot_dirs WHERE parent_id = ? ORDER BY name "
            "LIMIT ? OFFSET ?",
            (dir_id, limit, offset),
        ):
            items.append(_dir_entry(name, sub, count, size, change))
    if len(items) < limit:
        for name, change, file_id, version, size, sha, mtime_ns in conn.execute(
            "SELECT s.name, s.change, v.file_id, v.version, v.size, v.sha256, v.mtime_ns FROM snapshot_files s "
            "JOIN file_versions v ON v.id = s.version_id WHERE s.dir_id = ? ORDER BY s.name LIMIT ? OFFSET ?",
            (dir_id, limit - len(items), max(0, offset - dirs)),
        ):
            items.append(
                {
                    "name": name,
                    "type": "file",
                    "path": child_path(path, name),
                    "size": size,
                    "files": None,
                    "change": change,
                    "file_id": file_id,
                    "version": version,
                    "sha256": sha,
                    "modified_at": mtime_datetime(mtime_ns),
                }
            )
    return {
        "snapshot_id": args["snapshot_id"],
        "path": path,
        "parent": parent_of(path),
        **page(items, dirs + files, offset, limit),
    }


def _dir_entry(name: str, path: str, files: int | None, size: int | None, change: str | None) -> dict[str, Any]:
    return {
        "name": name,
        "type": "dir",
        "path": path,
        "size": size,
        "files": files,
        "change": change,
        "file_id": None,
        "version": None,
        "sha256": None,
        "modified_at": None,
    }


def find_files(conn: sqlite3.Connection, args: dict[str, Any]) -> dict[str, Any]:
    client_id, snapshot_id = args.get("client_id"), args.get("snapshot_id")
    if client_id is not None:
        _known_client(conn, client_id)
    needle = fold(args["query"])
    offset, limit = args["offset"], args["limit"]
    if not searchable(needle):
        return page([], 0, offset, limit)
    if snapshot_id is not None:
        snapshot = _row(conn, snapshot_id)
        if client_id is not None and snapshot["client_id"] != client_id:
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                f"client {client_id!r} has no snapshot {snapshot_id!r}",
                client_id=client_id,
                snapshot_id=snapshot_id,
            )
        return _find_in_snapshot(conn, snapshot["id"], needle, offset, limit)
    where, params = "instr(lower(f.path), ?) > 0", [needle]
    if client_id is not None:
        where += " AND f.client_id = ?"
        params.append(client_id)
    total = conn.execute(f"SELECT COUNT(*) FROM files f WHERE {where}", params).fetchone()[0]
    # The page's files first (the path index gives them in order), then only their newest versions.
    ids = conn.execute(
        f"SELECT f.id FROM files f WHERE {where} ORDER BY f.path COLLATE NOCASE, f.id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    items = []
    for (file_id,) in ids:
        row = conn.execute(
            f"SELECT {VERSION_COLUMNS} FROM files f JOIN file_versions v ON {NEWEST} WHERE f.id = ?", (file_id,)
        ).fetchone()
        items.append(version_dict(row))
    return page(items, total, offset, limit)


# The path a snapshot's tree gives a file: snapshot_paths.child_path, in SQL.
TREE_PATH = (
    "CASE WHEN substr(d.path, -1) IN ('/', '\\') THEN d.path || s.name "
    "WHEN d.path GLOB '[A-Za-z]:[\\/]*' THEN d.path || substr(d.path, 3, 1) || s.name "
    "ELSE d.path || '/' || s.name END"
)


def _find_in_snapshot(conn: sqlite3.Connection, snapshot: int, needle: str, offset: int, limit: int) -> dict[str, Any]:
    """Matches among one snapshot's files, by the path its tree gives them, with the versions it holds.

    One pass over the tree's rows (no join per row): the page and the count of all matches together.
    """
    tree = "snapshot_dirs d JOIN snapshot_files s ON s.dir_id = d.id"
    match = f"d.snapshot_id = ? AND instr(lower({TREE_PATH}), ?) > 0"
    rows = conn.execute(
        f"SELECT s.version_id, {TREE_PATH} AS full, s.name, COUNT(*) OVER () FROM {tree} WHERE {match} "
        "ORDER BY full COLLATE NOCASE LIMIT ? OFFSET ?",
        (snapshot, needle, limit, offset),
    ).fetchall()
    if rows:
        total = rows[0][3]
    else:  # past the last match: count them apart
        total = conn.execute(f"SELECT COUNT(*) FROM {tree} WHERE {match}", (snapshot, needle)).fetchone()[0]
    items = []
    for version_id, path, name, _ in rows:
        file_id, client_id, *version = conn.execute(
            "SELECT v.file_id, f.client_id, v.version, v.size, v.sha256, v.mtime_ns, v.backed_up_at, v.snapshot_id "
            "FROM file_versions v JOIN files f ON f.id = v.file_id WHERE v.id = ?",
            (version_id,),
        ).fetchone()
        items.append(version_dict((file_id, client_id, path, name, *version)))
    return page(items, total, offset, limit)


def file_versions(conn: sqlite3.Connection, args: dict[str, Any]) -> dict[str, Any]:
    file_id, client_id, path = args.get("file_id"), args.get("client_id"), args.get("path")
    if file_id is not None and client_id is None and path is None:
        file = q.get_file(conn, file_id)
    elif file_id is None and client_id is not None and path is not None:
        _known_client(conn, client_id)
        found = conn.execute("SELECT id FROM files WHERE client_id = ? AND path = ?", (client_id, path)).fetchone()
        if found is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND, f"client {client_id!r} has no file {path[:200]!r}", client_id=client_id
            )
        file = q.get_file(conn, found[0])
    else:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "give either file_id, or client_id and path")
    rows = conn.execute(
        f"SELECT {VERSION_COLUMNS} FROM files f JOIN file_versions v ON v.file_id = f.id WHERE f.id = ? "
        "ORDER BY v.version DESC",
        (file["id"],),
    ).fetchall()
    return {"file": file, "items": [version_dict(r) for r in rows], "total": len(rows)}


def version_content(conn: sqlite3.Connection, file_id: str, version: int) -> tuple[str, int]:
    """(sha256, size) of one version of a file, for a download; NOT_FOUND when it is not retained."""
    q.get_file(conn, file_id)
    row = conn.execute(
        "SELECT sha256, size FROM file_versions WHERE file_id = ? AND version = ?", (file_id, version)
    ).fetchone()
    if row is None:
        raise ProtocolError(
            ErrorCode.NOT_FOUND, f"file {file_id!r} has no version {version}", file_id=file_id, version=version
        )
    return row[0], row[1]


def handlers(conn: sqlite3.Connection) -> dict[str, Callable[[dict[str, Any]], tuple[Any, str]]]:
    """The catalogue's snapshot operations, for the core's table of handlers."""
    return {
        "list_snapshots": lambda a: (list_snapshots(conn, a), "Snapshots"),
        "get_snapshot": lambda a: (get_snapshot(conn, a["snapshot_id"]), "Snapshot"),
        "browse_snapshot": lambda a: (browse(conn, a), "Snapshot folder"),
        "find_files": lambda a: (find_files(conn, a), "Files found"),
        "get_file_versions": lambda a: (file_versions(conn, a), "File versions"),
    }
