"""The files of a restore job in the real server's snapshot catalog: what was selected, totals, batches.

A job's files are never listed ahead: the agent asks for the next batch after a cursor
(where the previous batch ended: selected item, folder path, file name), and the batch is
read through the catalog's indexes (a folder's sub-folders are a range of ``snapshot_dirs``
paths, its files a range of ``snapshot_files`` names), so a job over a million files costs
the server one batch at a time. The order is the one both backends use (restore_plan).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from actors.backends.restore_plan import member_base, member_of, normalized, not_in_snapshot
from actors.backends.snapshot_paths import child_path, split
from protocol.agent_messages import AgentProtocolError
from protocol.catalogue_snapshots import ROOT

ITEMS_PER_BATCH = 200  # files per job_items message
BATCH_BYTES = 192 * 1024  # and about this much header (paths are up to 4 KiB each)
_DIRS_PER_QUERY = 256
_FILES_PER_QUERY = 500
_ITEM_OVERHEAD = 160  # ids, hash, numbers and msgpack framing of one item

# (lo, hi) bounds of folder paths, hi exclusive (None: no bound).
Bounds = tuple[str, str | None]
Position = tuple[int, str, str]  # selected item, folder path, file name: the last file handed out


@dataclass(frozen=True, slots=True)
class Selected:
    path: str
    folder: bool


def select(
    conn: sqlite3.Connection, snapshot: int, snapshot_id: str, paths: list[str], *, strict: bool = True
) -> list[Selected]:
    """The selected items, inner ones left out. One the snapshot does not hold is NOT_FOUND (``strict``), or
    taken as a file that is not there (it yields nothing), so a cursor's index means the same item either way."""
    out = []
    for path in normalized(paths):
        if path == ROOT or _dir_id(conn, snapshot, path) is not None:
            out.append(Selected(path, True))
            continue
        folder, name = split(path)
        dir_id = _dir_id(conn, snapshot, folder)
        found = (
            dir_id is not None
            and conn.execute("SELECT 1 FROM snapshot_files WHERE dir_id = ? AND name = ?", (dir_id, name)).fetchone()
        )
        if not found and strict:
            raise not_in_snapshot(snapshot_id, path)
        out.append(Selected(path, False))
    return out


def _dir_id(conn: sqlite3.Connection, snapshot: int, path: str) -> int | None:
    row = conn.execute("SELECT id FROM snapshot_dirs WHERE snapshot_id = ? AND path = ?", (snapshot, path)).fetchone()
    return None if row is None else int(row[0])


def _bounds(selected: Selected) -> list[Bounds]:
    """The folder paths a selected item's files are in, as ascending ranges of the index."""
    path = selected.path
    if not selected.folder:
        return [(split(path)[0], split(path)[0] + "\x00")]
    if path == ROOT:
        return [("", None)]
    if path.endswith(("\\", "/")):  # a drive's root, C:\
        return [(path, path[:-1] + chr(ord(path[-1]) + 1))]
    out: list[Bounds] = [(path, path + "\x00"), (path + "/", path + "0")]
    if path[1:2] == ":":  # a drive's folders may use either separator
        out.append((path + "\\", path + "]"))
    return out


def totals(conn: sqlite3.Connection, snapshot: int, selection: list[Selected]) -> tuple[int, int]:
    files = size = 0
    for selected in selection:
        if not selected.folder:
            folder, name = split(selected.path)
            row = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(v.size), 0) FROM snapshot_dirs d JOIN snapshot_files s ON s.dir_id = d.id "
                "JOIN file_versions v ON v.id = s.version_id WHERE d.snapshot_id = ? AND d.path = ? AND s.name = ?",
                (snapshot, folder, name),
            ).fetchone()
        else:
            row = [0, 0]
            for lo, hi in _bounds(selected):
                n, b = conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(v.size), 0) FROM snapshot_dirs d "
                    "JOIN snapshot_files s ON s.dir_id = d.id JOIN file_versions v ON v.id = s.version_id "
                    f"WHERE d.snapshot_id = ? AND d.path >= ?{'' if hi is None else ' AND d.path < ?'}",
                    (snapshot, lo) if hi is None else (snapshot, lo, hi),
                ).fetchone()
                row = [row[0] + n, row[1] + b]
        files, size = files + row[0], size + row[1]
    return files, size


def parse_cursor(cursor: str) -> Position | None:
    """None for the start; BAD_REQUEST (to the agent) for anything this server did not hand out."""
    if cursor == "":
        return None
    try:
        index, folder, name = json.loads(cursor)
    except (ValueError, TypeError):
        raise AgentProtocolError(f"restore cursor {cursor[:80]!r} is not one this server gave") from None
    if type(index) is not int or not isinstance(folder, str) or not isinstance(name, str):
        raise AgentProtocolError(f"restore cursor {cursor[:80]!r} is not one this server gave")
    return index, folder, name


def batch(
    conn: sqlite3.Connection, snapshot: int, selection: list[Selected], cursor: str
) -> tuple[list[list[Any]], str, bool]:
    """The files after ``cursor``: (items, the cursor after them, whether they are the last)."""
    items: list[list[Any]] = []
    budget = BATCH_BYTES
    after = cursor
    walk = _walk(conn, snapshot, selection, parse_cursor(cursor))
    for position, item in walk:
        if len(items) >= ITEMS_PER_BATCH or budget < len(item[0]) + len(item[1]) + _ITEM_OVERHEAD:
            return items, after, False
        items.append(item)
        budget -= len(item[0]) + len(item[1]) + _ITEM_OVERHEAD
        after = json.dumps(position, ensure_ascii=False)
    return items, after, True


def _walk(
    conn: sqlite3.Connection, snapshot: int, selection: list[Selected], start: Position | None
) -> Iterator[tuple[Position, list[Any]]]:
    """(position, item) of every file after ``start``: [path, member, file_id, version, size, sha256, mtime_ns,
    mode (null: not known)]."""
    first, from_dir, from_name = start if start is not None else (0, "", "")
    base = member_base([s.path for s in selection])
    for index in range(first, len(selection)):
        selected = selection[index]
        resume = index == first and start is not None
        for dir_id, folder in _dirs(conn, snapshot, selected, from_dir if resume else ""):
            after = from_name if resume and folder == from_dir else ""
            for name, *rest in _files(conn, dir_id, after, selected):
                path = child_path(folder, name)
                yield (index, folder, name), [path, member_of(path, base), *rest]


def _dirs(conn: sqlite3.Connection, snapshot: int, selected: Selected, at_least: str) -> Iterator[tuple[int, str]]:
    for lo, hi in _bounds(selected):
        low = max(lo, at_least)
        if hi is not None and low >= hi:
            continue
        inclusive = True
        while True:
            sql = f"SELECT id, path FROM snapshot_dirs WHERE snapshot_id = ? AND path {'>=' if inclusive else '>'} ?"
            params: list[Any] = [snapshot, low]
            if hi is not None:
                sql += " AND path < ?"
                params.append(hi)
            rows = conn.execute(f"{sql} ORDER BY path LIMIT {_DIRS_PER_QUERY}", params).fetchall()
            for dir_id, path in rows:
                yield int(dir_id), path
            if len(rows) < _DIRS_PER_QUERY:
                break
            low, inclusive = rows[-1][1], False


def _files(conn: sqlite3.Connection, dir_id: int, after: str, selected: Selected) -> Iterator[list[Any]]:
    """[name, file_id, version, size, sha256, mtime_ns, mode] of a folder's files after ``after`` (one, for a
    file)."""
    only = None if selected.folder else split(selected.path)[1]
    while True:
        sql = (
            "SELECT s.name, v.file_id, v.version, v.size, v.sha256, v.mtime_ns, v.mode FROM snapshot_files s "
            "JOIN file_versions v ON v.id = s.version_id WHERE s.dir_id = ? AND s.name > ?"
        )
        params: list[Any] = [dir_id, after]
        if only is not None:
            sql += " AND s.name = ?"
            params.append(only)
        rows = conn.execute(f"{sql} ORDER BY s.name LIMIT {_FILES_PER_QUERY}", params).fetchall()
        for row in rows:
            yield list(row)
        if len(rows) < _FILES_PER_QUERY:
            return
        after = rows[-1][0]
