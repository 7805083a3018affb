"""The server status's totals (clients, connected clients, files, stored bytes), kept by SQLite triggers.

The status used to count them: COUNT over clients and files and a GROUP BY over every file
version, each time it was asked for (once per tick while agents come and go: O(N) in the
server's one loop). Triggers keep one row of totals instead, changed with each row that
comes, goes or changes status, in the same transaction, whoever writes it: the store, the
database view, a cascade of deletions, or a tool such as the sqlite3 shell.

They are derived data, so no migration holds them: ``install`` replaces the triggers and
recounts at every start (the one full count left), which also sets right a database that
was written without them.
"""

from __future__ import annotations

import sqlite3

from actors.server.db import transaction

FIELDS = ("clients_total", "clients_connected", "files_total", "storage_used")

_TABLE = """
CREATE TABLE IF NOT EXISTS status_counters (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    clients_total INTEGER NOT NULL,
    clients_connected INTEGER NOT NULL,
    files_total INTEGER NOT NULL,
    storage_used INTEGER NOT NULL
)
"""

# What the blobs occupy: each distinct content once (the largest size recorded for its hash,
# as recount says), so a version changes storage_used only when it is the first or the last
# of its content, or the largest.
_OTHERS_OLD = "(SELECT COALESCE(MAX(size), 0) FROM file_versions WHERE sha256 = OLD.sha256 AND id != NEW.id)"
_OTHERS_NEW = "(SELECT COALESCE(MAX(size), 0) FROM file_versions WHERE sha256 = NEW.sha256 AND id != NEW.id)"

_TRIGGERS: dict[str, str] = {
    "status_counters_client_added": """
        AFTER INSERT ON clients BEGIN
            UPDATE status_counters SET clients_total = clients_total + 1,
                clients_connected = clients_connected + (NEW.status = 'connected') WHERE id = 1;
        END""",
    "status_counters_client_removed": """
        AFTER DELETE ON clients BEGIN
            UPDATE status_counters SET clients_total = clients_total - 1,
                clients_connected = clients_connected - (OLD.status = 'connected') WHERE id = 1;
        END""",
    "status_counters_client_status": """
        AFTER UPDATE OF status ON clients BEGIN
            UPDATE status_counters
                SET clients_connected = clients_connected + (NEW.status = 'connected') - (OLD.status = 'connected')
                WHERE id = 1;
        END""",
    "status_counters_file_added": """
        AFTER INSERT ON files BEGIN
            UPDATE status_counters SET files_total = files_total + 1 WHERE id = 1;
        END""",
    "status_counters_file_removed": """
        AFTER DELETE ON files BEGIN
            UPDATE status_counters SET files_total = files_total - 1 WHERE id = 1;
        END""",
    "status_counters_version_added": """
        AFTER INSERT ON file_versions BEGIN
            UPDATE status_counters SET storage_used = storage_used
                + (SELECT MAX(size) FROM file_versions WHERE sha256 = NEW.sha256)
                - COALESCE((SELECT MAX(size) FROM file_versions WHERE sha256 = NEW.sha256 AND id != NEW.id), 0)
                WHERE id = 1;
        END""",
    "status_counters_version_removed": """
        AFTER DELETE ON file_versions BEGIN
            UPDATE status_counters SET storage_used = storage_used
                + (SELECT COALESCE(MAX(size), 0) FROM file_versions WHERE sha256 = OLD.sha256)
                - MAX(OLD.size, (SELECT COALESCE(MAX(size), 0) FROM file_versions WHERE sha256 = OLD.sha256))
                WHERE id = 1;
        END""",
    # The server never rewrites a version's content, but a hand edit may: counted as the old
    # content going and the new one coming.
    "status_counters_version_changed": f"""
        AFTER UPDATE OF size, sha256 ON file_versions BEGIN
            UPDATE status_counters SET storage_used = storage_used
                + MAX({_OTHERS_OLD}, CASE WHEN NEW.sha256 = OLD.sha256 THEN NEW.size ELSE 0 END)
                - MAX({_OTHERS_OLD}, OLD.size)
                WHERE id = 1;
            UPDATE status_counters SET storage_used = storage_used + MAX({_OTHERS_NEW}, NEW.size) - {_OTHERS_NEW}
                WHERE id = 1 AND NEW.sha256 != OLD.sha256;
        END""",
}


def recount(conn: sqlite3.Connection) -> dict[str, int]:
    """The totals counted from the tables (at start, and to check the triggers)."""
    clients_total, connected = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(status = 'connected'), 0) FROM clients"
    ).fetchone()
    files_total = conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    stored = conn.execute(
        "SELECT COALESCE(SUM(size), 0) FROM (SELECT MAX(size) AS size FROM file_versions GROUP BY sha256)"
    ).fetchone()[0]
    return {
        "clients_total": clients_total,
        "clients_connected": connected,
        "files_total": files_total,
        "storage_used": stored,
    }


def install(conn: sqlite3.Connection) -> None:
    """(Re)create the counters' table and triggers and fill it with a fresh count, in one transaction."""
    with transaction(conn):
        conn.execute(_TABLE)
        for name, body in _TRIGGERS.items():
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
            conn.execute(f"CREATE TRIGGER {name} {body}")
        counted = recount(conn)
        conn.execute(
            f"INSERT OR REPLACE INTO status_counters (id, {', '.join(FIELDS)}) VALUES (1, ?, ?, ?, ?)",
            [counted[f] for f in FIELDS],
        )


def read(conn: sqlite3.Connection) -> dict[str, int]:
    """The totals as the triggers kept them: one row, whatever the size of the tables."""
    row = conn.execute(f"SELECT {', '.join(FIELDS)} FROM status_counters WHERE id = 1").fetchone()
    return dict(zip(FIELDS, map(int, row), strict=True))
