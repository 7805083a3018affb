"""Writes of the backup server: clients, file versions, deletions with blob clean-up, activity, events.

Each change is one SQLite transaction and, once committed, emits what a watcher needs
(``client.changed``/``file.changed`` first, then the ``activity`` entry), like the mock.
A blob is deleted only when no file version references its hash any more (content
addressing shares blobs between files, versions and clients), and only after the rows
that referenced it are committed away.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from actors.server import counters
from actors.server import queries as q
from actors.server.blobs import BlobStore
from actors.server.db import iso, transaction
from actors.server.faults import StorageAlarm
from protocol.agent_messages import file_name_of
from protocol.events import ACTIVITY, CLIENT_CHANGED, FILE_CHANGED, SERVER_CHANGED

log = structlog.get_logger()

EVENT_LIMIT = 20_000
ACTIVITY_LIMIT = 10_000
_LOG_METHOD = {"INFO": "info", "WARNING": "warning", "ERROR": "error"}


def new_id() -> str:
    return uuid.uuid4().hex


def mtime_datetime(mtime_ns: int) -> datetime:
    try:
        return datetime.fromtimestamp(mtime_ns / 1e9, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.fromtimestamp(0, UTC)


class Store:
    def __init__(
        self,
        conn: sqlite3.Connection,
        blobs: BlobStore,
        now: Callable[[], datetime],
        status: Callable[[], dict[str, Any]],
    ) -> None:
        self.conn = conn
        counters.install(conn)
        self.blobs = blobs
        self.now = now
        self._status = status  # the ServerStatus, for server.changed
        self._server_changed_pending = False
        self.events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=EVENT_LIMIT)
        self._activity_since_trim = 0
        self.storage_alarm = StorageAlarm(self.record, self.emit, now)  # full disk: reported, rate-limited

    # -- events and activity --

    def emit(self, topic: str, data: dict[str, Any]) -> None:
        self.events.append((topic, data))

    def client_changed(self, client_id: str, change: str) -> None:
        data = None if change == "deleted" else q.get_client(self.conn, client_id)
        self.emit(CLIENT_CHANGED, {"client_id": client_id, "change": change, "client": data})

    def file_changed(self, file: dict[str, Any], change: str) -> None:
        data = None if change == "deleted" else q.get_file(self.conn, file["id"])
        self.emit(FILE_CHANGED, {"file_id": file["id"], "client_id": file["client_id"], "change": change, "file": data})

    def server_changed(self) -> None:
        """Emit ``server.changed`` now (an operator's action: the console waits for it)."""
        self._server_changed_pending = False
        self.emit(SERVER_CHANGED, {"status": self._status()})

    def server_changed_soon(self) -> None:
        """Mark the status changed; ``flush_server_changed`` emits it once for however many marks.

        The status costs queries over every client, file and session: computed once per tick, not
        once per agent that says hello or goodbye (a burst of 500 agents would pay it 500 times).
        """
        self._server_changed_pending = True

    def flush_server_changed(self) -> None:
        if self._server_changed_pending:
            self.server_changed()

    def record(
        self,
        type_: str,
        level: str,
        message: str,
        *,
        client_id: str | None = None,
        file_id: str | None = None,
        logger: str = "backup.server",
    ) -> dict[str, Any]:
        """Append to the activity table, log it (the log store sees it too) and emit it."""
        at = self.now()
        cur = self.conn.execute(
            "INSERT INTO activity (timestamp, type, level, client_id, file_id, message) VALUES (?, ?, ?, ?, ?, ?)",
            (iso(at), type_, level, client_id, file_id, message),
        )
        entry = {
            "id": str(cur.lastrowid),
            "timestamp": at,
            "type": type_,
            "level": level,
            "client_id": client_id,
            "file_id": file_id,
            "message": message,
        }
        ids = {k: v for k, v in (("client_id", client_id), ("file_id", file_id)) if v is not None}
        getattr(log, _LOG_METHOD.get(level, "info"))(f"activity.{type_}", message=message, logger=logger, **ids)
        self.emit(ACTIVITY, entry)
        self._activity_since_trim += 1
        if self._activity_since_trim >= 500:
            self.trim_activity()
        return entry

    def trim_activity(self) -> None:
        self._activity_since_trim = 0
        self.conn.execute("DELETE FROM activity WHERE id <= (SELECT MAX(id) FROM activity) - ?", (ACTIVITY_LIMIT,))

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        out = list(self.events)
        self.events.clear()
        return out

    # -- settings --

    def setting(self, key: str, default: str) -> str:
        row = self.conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_setting(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- clients --

    def register_client(self, public_key: str, info: dict[str, str]) -> tuple[str, bool]:
        """Create the client of ``public_key`` or refresh its details; returns (id, created)."""
        now = iso(self.now())
        row = self.conn.execute("SELECT id FROM clients WHERE public_key = ?", (public_key,)).fetchone()
        fields = (info["name"], info["hostname"], info["ip_address"], info["platform"], info["agent_version"])
        if row is not None:
            self.conn.execute(
                "UPDATE clients SET name = ?, hostname = ?, ip_address = ?, platform = ?, agent_version = ? WHERE id = ?",
                (*fields, row[0]),
            )
            return row[0], False
        client_id = new_id()
        self.conn.execute(
            "INSERT INTO clients (id, name, hostname, ip_address, platform, agent_version, public_key, status, "
            "created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, 'disconnected', ?, ?)",
            (client_id, *fields, public_key, now, now),
        )
        return client_id, True

    def set_client_status(self, client_id: str, status: str, error_message: str | None = None) -> None:
        """Keep connected_at/last_seen/error_message consistent with the status."""
        now = iso(self.now())
        if status == "connected":
            self.conn.execute(
                "UPDATE clients SET status = 'connected', connected_at = ?, last_seen = ?, "
                "error_message = NULL WHERE id = ?",
                (now, now, client_id),
            )
        else:
            self.conn.execute(
                "UPDATE clients SET last_seen = CASE WHEN status = 'connected' THEN ? ELSE last_seen END, "
                "status = ?, connected_at = NULL, error_message = ? WHERE id = ?",
                (now, status, error_message if status == "error" else None, client_id),
            )

    def touch_client(self, client_id: str) -> None:
        self.conn.execute("UPDATE clients SET last_seen = ? WHERE id = ?", (iso(self.now()), client_id))

    def disconnect_all(self) -> list[str]:
        """Mark every connected client disconnected (sessions do not survive a restart or a stop)."""
        ids = [r[0] for r in self.conn.execute("SELECT id FROM clients WHERE status = 'connected'")]
        for client_id in ids:
            self.set_client_status(client_id, "disconnected")
        return ids

    def delete_client(self, client_id: str) -> tuple[int, int, str]:
        """Delete a client, its files and versions (cascade) and unreferenced blobs.

        Returns (files deleted, bytes freed on disk, its public key).
        """
        q.get_client(self.conn, client_id)  # NOT_FOUND first
        key = self.conn.execute("SELECT public_key FROM clients WHERE id = ?", (client_id,)).fetchone()[0]
        files = self.conn.execute("SELECT id, client_id FROM files WHERE client_id = ?", (client_id,)).fetchall()
        hashes = self._hashes_of("f.client_id = ?", client_id)
        with transaction(self.conn):
            self.conn.execute("DELETE FROM clients WHERE id = ?", (client_id,))
        freed = self.collect_blobs(hashes)
        for f in files:
            self.file_changed(dict(f), "deleted")
        self.client_changed(client_id, "deleted")
        return len(files), freed, key

    # -- files --

    def _hashes_of(self, where: str, value: str) -> set[str]:
        sql = f"SELECT DISTINCT v.sha256 FROM file_versions v JOIN files f ON f.id = v.file_id WHERE {where}"
        return {r[0] for r in self.conn.execute(sql, (value,))}

    def collect_blobs(self, candidates: Iterable[str]) -> int:
        """Delete the candidate blobs no version references any more; returns bytes freed."""
        freed = 0
        for sha in candidates:
            if self.conn.execute("SELECT 1 FROM file_versions WHERE sha256 = ? LIMIT 1", (sha,)).fetchone() is None:
                freed += self.blobs.delete(sha)
        return freed

    def delete_file(self, file_id: str) -> tuple[dict[str, Any], int]:
        file = q.get_file(self.conn, file_id)
        hashes = self._hashes_of("f.id = ?", file_id)
        with transaction(self.conn):
            self.conn.execute("DELETE FROM files WHERE id = ?", (file_id,))
        freed = self.collect_blobs(hashes)
        self.file_changed(file, "deleted")
        self.client_changed(file["client_id"], "updated")
        return file, freed

    def latest(self, client_id: str, path: str) -> sqlite3.Row | None:
        return self.conn.execute(
            "SELECT id, size, mtime_ns, sha256, status FROM files WHERE client_id = ? AND path = ?", (client_id, path)
        ).fetchone()

    def owns_content(self, client_id: str, sha256: str) -> bool:
        """Whether one of this client's versions has this content (dedup stays within a client)."""
        return (
            self.conn.execute(
                "SELECT 1 FROM file_versions v JOIN files f ON f.id = v.file_id WHERE f.client_id = ? AND v.sha256 = ? LIMIT 1",
                (client_id, sha256),
            ).fetchone()
            is not None
        )

    def add_version(
        self, client_id: str, path: str, size: int, mtime_ns: int, sha256: str, mode: int | None = None
    ) -> tuple[dict[str, Any], int, str]:
        """Record a new latest version of ``path``; returns (file, version number, change)."""
        return self.add_versions(client_id, [(path, size, mtime_ns, sha256)], [mode])[0]

    def add_versions(
        self, client_id: str, items: list[tuple[str, int, int, str]], modes: Sequence[int | None] = ()
    ) -> list[tuple[dict[str, Any], int, str]]:
        """Record new latest versions, all in one transaction (one commit for a batch of small files).

        ``items`` are (path, size, mtime_ns, sha256), ``modes`` their permission bits (None, or none given:
        unknown); returns (file, version, change) for each.
        """
        now = iso(self.now())
        written: list[tuple[str, int, str]] = []
        with transaction(self.conn):
            for index, (path, size, mtime_ns, sha256) in enumerate(items):
                mode = modes[index] if index < len(modes) else None
                modified = iso(mtime_datetime(mtime_ns))
                row = self.latest(client_id, path)
                if row is None:
                    file_id, version, change = new_id(), 1, "created"
                    self.conn.execute(
                        "INSERT INTO files (id, client_id, path, name, size, mtime_ns, sha256, status, backup_count, "
                        "created_at, modified_at, last_backup) VALUES (?, ?, ?, ?, ?, ?, ?, 'uploaded', 1, ?, ?, ?)",
                        (file_id, client_id, path, file_name_of(path), size, mtime_ns, sha256, now, modified, now),
                    )
                else:
                    file_id, change = row["id"], "updated"
                    version = self.conn.execute(
                        "SELECT COALESCE(MAX(version), 0) + 1 FROM file_versions WHERE file_id = ?", (file_id,)
                    ).fetchone()[0]
                    self.conn.execute(
                        "UPDATE files SET size = ?, mtime_ns = ?, sha256 = ?, status = 'uploaded', "
                        "error_message = NULL, backup_count = backup_count + 1, modified_at = ?, last_backup = ?, "
                        "last_verified = NULL WHERE id = ?",
                        (size, mtime_ns, sha256, modified, now, file_id),
                    )
                self.conn.execute(
                    "INSERT INTO file_versions (file_id, version, size, mtime_ns, sha256, backed_up_at, mode) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (file_id, version, size, mtime_ns, sha256, now, mode),
                )
                written.append((file_id, version, change))
        out = []
        for file_id, version, change in written:
            file = q.get_file(self.conn, file_id)
            self.emit(FILE_CHANGED, {"file_id": file_id, "client_id": client_id, "change": change, "file": file})
            out.append((file, version, change))
        return out

    def touch_file(self, file_id: str, mtime_ns: int, mode: int | None = None) -> None:
        """Same content, new modification time: no new version, just the metadata (its mode too, when known)."""
        self.conn.execute(
            "UPDATE files SET mtime_ns = ?, modified_at = ? WHERE id = ?",
            (mtime_ns, iso(mtime_datetime(mtime_ns)), file_id),
        )
        self.conn.execute(
            "UPDATE file_versions SET mtime_ns = ?, mode = COALESCE(?, mode) WHERE file_id = ? AND version = "
            "(SELECT MAX(version) FROM file_versions WHERE file_id = ?)",
            (mtime_ns, mode, file_id, file_id),
        )

    def set_verified(self, file_id: str, failure: str | None) -> datetime:
        """Record a verification: passed when ``failure`` is None, else failed for that reason (the file's error)."""
        at = self.now()
        self.conn.execute(
            "UPDATE files SET status = ?, error_message = ?, last_verified = ? WHERE id = ?",
            ("verified" if failure is None else "error", failure, iso(at), file_id),
        )
        return at
