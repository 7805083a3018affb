"""A server database as an older version left it: the first migrations only, for the tests of the later ones."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from actors.server.db import MIGRATIONS, _statements, iso


def database_at_schema(path: Path, version: int, at: datetime, client_id: str = "c") -> sqlite3.Connection:
    """``path`` made by the migrations up to ``version`` (applied at ``at``), with one client ``client_id`` (``old``)
    to hang rows on; the open connection, for the rows of that version's tables."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
    for number, _summary, sql in MIGRATIONS[:version]:
        for statement in _statements(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, ?)", (number, iso(at)))
    conn.execute(
        "INSERT INTO clients (id, name, public_key, created_at, last_seen) VALUES (?, 'old', 'k', ?, ?)",
        (client_id, iso(at), iso(at)),
    )
    return conn
