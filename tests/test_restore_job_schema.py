"""The restore jobs of a server database made before jobs could be cancelled or expire (schema 5) carry over."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from actors.server.db import MIGRATIONS, iso, migrate, open_database
from tests.old_schema import database_at_schema

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def test_jobs_of_schema_5_keep_everything_and_wait_from_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "backup.db"
    conn = database_at_schema(path, 5, START)
    at = iso(START)
    for status in ("queued", "complete"):
        conn.execute(
            "INSERT INTO restore_jobs (client_id, snapshot_id, paths, destination, overwrite, status, created_at, "
            "files_total, bytes_total, files_done, checkpoint) VALUES ('c', 1, '[\"/\"]', '/r', 'skip', ?, ?, 3, 30, "
            '2, \'{"cursor": "x", "counts": {}}\')',
            (status, at),
        )
    conn.commit()
    conn.close()
    before = datetime.now(UTC).replace(microsecond=0)
    db = open_database(path, START)
    try:
        rows = db.execute(
            "SELECT status, created_at, queued_at, files_done, checkpoint FROM restore_jobs ORDER BY id"
        ).fetchall()
        assert [(r["status"], r["created_at"], r["files_done"]) for r in rows] == [
            ("queued", START, 2),
            ("complete", START, 2),
        ]
        assert all(r["checkpoint"].startswith('{"cursor": "x"') for r in rows)
        # Its own wait was never recorded: it waits from the migration on, so no job expires the moment it runs.
        assert all(before <= r["queued_at"] <= datetime.now(UTC) for r in rows)
        db.execute("UPDATE restore_jobs SET status = 'cancelled' WHERE id = 1")  # the new statuses are allowed
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("UPDATE restore_jobs SET status = 'lost' WHERE id = 1")
        assert migrate(db, START) == MIGRATIONS[-1][0]
    finally:
        db.close()
