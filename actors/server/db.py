"""The backup server's SQLite database: connection settings, schema and ordered migrations.

Every connection gets WAL and ``foreign_keys=ON`` (SQLite turns foreign keys off per
connection by default, so it is set each time, never assumed). The schema version lives
in ``schema_version``; migrations run in order inside one transaction each, so a crash
leaves the database at a whole version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import structlog

log = structlog.get_logger()


def iso(moment: datetime) -> str:
    """Fixed-width UTC text: sorts like time, reads back exactly."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_timestamp(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode())


# Columns declared TIMESTAMP come back as aware datetimes (parse_decltypes below).
sqlite3.register_converter("TIMESTAMP", _parse_timestamp)

MIGRATIONS: tuple[tuple[int, str, str], ...] = (
    (
        1,
        "clients, files, versions, activity, settings",
        """
        CREATE TABLE clients (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            public_key TEXT NOT NULL UNIQUE,
            hostname TEXT NOT NULL DEFAULT '',
            ip_address TEXT NOT NULL DEFAULT '',
            platform TEXT NOT NULL DEFAULT '',
            agent_version TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT 'disconnected' CHECK (status IN ('connected', 'disconnected', 'error')),
            error_message TEXT,
            created_at TIMESTAMP NOT NULL,
            last_seen TIMESTAMP NOT NULL,
            connected_at TIMESTAMP
        );
        CREATE INDEX clients_name ON clients (name COLLATE NOCASE);
        CREATE INDEX clients_status ON clients (status);
        CREATE INDEX clients_last_seen ON clients (last_seen);

        CREATE TABLE files (
            id TEXT PRIMARY KEY,
            client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            name TEXT NOT NULL,
            size INTEGER NOT NULL CHECK (size >= 0),
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('uploading', 'uploaded', 'verified', 'error')),
            backup_count INTEGER NOT NULL DEFAULT 1,
            created_at TIMESTAMP NOT NULL,
            modified_at TIMESTAMP NOT NULL,
            last_backup TIMESTAMP NOT NULL,
            last_verified TIMESTAMP,
            UNIQUE (client_id, path)
        );
        CREATE INDEX files_name ON files (name COLLATE NOCASE);
        CREATE INDEX files_path ON files (path COLLATE NOCASE);
        CREATE INDEX files_size ON files (size);
        CREATE INDEX files_modified ON files (modified_at);
        CREATE INDEX files_status ON files (status);
        CREATE INDEX files_sha256 ON files (sha256);

        CREATE TABLE file_versions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            backed_up_at TIMESTAMP NOT NULL,
            UNIQUE (file_id, version)
        );
        CREATE INDEX file_versions_sha256 ON file_versions (sha256);

        -- No foreign keys here on purpose: the history outlives deleted clients and files.
        CREATE TABLE activity (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            timestamp TIMESTAMP NOT NULL,
            type TEXT NOT NULL,
            level TEXT NOT NULL,
            client_id TEXT,
            file_id TEXT,
            message TEXT NOT NULL
        );
        CREATE INDEX activity_client ON activity (client_id);

        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    ),
    (
        2,
        "covering index for the per-client file counts and sizes",
        """
        -- files_count/total_size are computed on every client read: COUNT and SUM(size) over a
        -- client's files then come from this index alone, without visiting the table.
        CREATE INDEX files_client_size ON files (client_id, size);
    """,
    ),
    (
        3,
        "snapshots: each backup run with its tree of folders and files",
        """
        CREATE TABLE snapshots (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
            status TEXT NOT NULL CHECK (status IN ('running', 'complete', 'partial', 'interrupted')),
            started_at TIMESTAMP NOT NULL,
            ended_at TIMESTAMP,
            root TEXT NOT NULL DEFAULT '',
            files_new INTEGER NOT NULL DEFAULT 0,
            bytes_new INTEGER NOT NULL DEFAULT 0,
            files_changed INTEGER NOT NULL DEFAULT 0,
            bytes_changed INTEGER NOT NULL DEFAULT 0,
            files_unchanged INTEGER NOT NULL DEFAULT 0,
            bytes_unchanged INTEGER NOT NULL DEFAULT 0,
            files_failed INTEGER NOT NULL DEFAULT 0,
            bytes_failed INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX snapshots_client ON snapshots (client_id, id);

        -- A snapshot's tree. Browsing one folder is two index range scans whatever the snapshot's
        -- size: its sub-folders by (parent_id, name), its files by the primary key (dir_id, name).
        -- Folder sizes and counts (everything below) are summed once, when the run ends.
        CREATE TABLE snapshot_dirs (
            id INTEGER PRIMARY KEY,
            snapshot_id INTEGER NOT NULL REFERENCES snapshots (id) ON DELETE CASCADE,
            parent_id INTEGER REFERENCES snapshot_dirs (id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            name TEXT NOT NULL,
            files INTEGER,
            size INTEGER,
            change TEXT CHECK (change IN ('new', 'changed', 'unchanged')),
            UNIQUE (snapshot_id, path)
        );
        CREATE INDEX snapshot_dirs_parent ON snapshot_dirs (parent_id, name);

        -- WITHOUT ROWID: the rows are stored in (dir_id, name) order, so a folder's files are
        -- contiguous on disk and a page of them is one short scan. Deleting a version (its file
        -- deleted) takes its entries with it: what is gone cannot be restored.
        CREATE TABLE snapshot_files (
            dir_id INTEGER NOT NULL REFERENCES snapshot_dirs (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            version_id INTEGER NOT NULL REFERENCES file_versions (id) ON DELETE CASCADE,
            change TEXT NOT NULL CHECK (change IN ('new', 'changed', 'unchanged')),
            PRIMARY KEY (dir_id, name)
        ) WITHOUT ROWID;
        CREATE INDEX snapshot_files_version ON snapshot_files (version_id);

        -- The run that stored a version; NULL for versions stored before runs were recorded.
        ALTER TABLE file_versions ADD COLUMN snapshot_id INTEGER REFERENCES snapshots (id) ON DELETE SET NULL;
        CREATE INDEX file_versions_snapshot ON file_versions (snapshot_id);
    """,
    ),
    (
        4,
        "restore jobs: restores onto a client's machine, carried out by its agent",
        """
        -- A job outlives its snapshot (no foreign key there: what was asked and what became of it
        -- stays readable); it goes with its client. checkpoint is where an interrupted job resumes
        -- ({cursor, counts} as JSON); problems lists the first skipped or failed files (JSON).
        CREATE TABLE restore_jobs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
            snapshot_id INTEGER NOT NULL,
            paths TEXT NOT NULL,
            destination TEXT NOT NULL,
            overwrite TEXT NOT NULL CHECK (overwrite IN ('skip', 'overwrite', 'rename')),
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'complete', 'partial', 'failed')),
            created_at TIMESTAMP NOT NULL,
            started_at TIMESTAMP,
            ended_at TIMESTAMP,
            files_total INTEGER NOT NULL,
            bytes_total INTEGER NOT NULL,
            files_done INTEGER NOT NULL DEFAULT 0,
            bytes_done INTEGER NOT NULL DEFAULT 0,
            files_restored INTEGER NOT NULL DEFAULT 0,
            bytes_restored INTEGER NOT NULL DEFAULT 0,
            files_skipped INTEGER NOT NULL DEFAULT 0,
            files_failed INTEGER NOT NULL DEFAULT 0,
            checkpoint TEXT NOT NULL DEFAULT '',
            problems TEXT NOT NULL DEFAULT '[]',
            error TEXT
        );
        CREATE INDEX restore_jobs_client ON restore_jobs (client_id, id);
        CREATE INDEX restore_jobs_status ON restore_jobs (status);
    """,
    ),
    (
        5,
        "files.error_message: why a file is in status error",
        """
        -- Set with every change of a file's status to error, cleared with every other change.
        ALTER TABLE files ADD COLUMN error_message TEXT;
        -- A file already in error takes the newest reason its history still holds (the activity
        -- log is trimmed), else says how to find out: no file in error is left without a reason.
        UPDATE files SET error_message = COALESCE(
            (SELECT a.message FROM activity a WHERE a.file_id = files.id
             AND a.type IN ('verify_failed', 'scrub_damaged') ORDER BY a.id DESC LIMIT 1),
            'marked error before reasons were recorded: verify the file to see why'
        ) WHERE status = 'error';
    """,
    ),
    (
        6,
        "restore jobs can be cancelled and expire: statuses cancelling, cancelled, expired; queued_at",
        """
        -- SQLite cannot change a CHECK constraint: the table is rebuilt with the new statuses. queued_at
        -- is when a job last began to wait for its agent (created, or queued again), which it expires from.
        CREATE TABLE restore_jobs_new (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
            snapshot_id INTEGER NOT NULL,
            paths TEXT NOT NULL,
            destination TEXT NOT NULL,
            overwrite TEXT NOT NULL CHECK (overwrite IN ('skip', 'overwrite', 'rename')),
            status TEXT NOT NULL CHECK (status IN (
                'queued', 'running', 'cancelling', 'complete', 'partial', 'failed', 'cancelled', 'expired'
            )),
            created_at TIMESTAMP NOT NULL,
            queued_at TIMESTAMP NOT NULL,
            started_at TIMESTAMP,
            ended_at TIMESTAMP,
            files_total INTEGER NOT NULL,
            bytes_total INTEGER NOT NULL,
            files_done INTEGER NOT NULL DEFAULT 0,
            bytes_done INTEGER NOT NULL DEFAULT 0,
            files_restored INTEGER NOT NULL DEFAULT 0,
            bytes_restored INTEGER NOT NULL DEFAULT 0,
            files_skipped INTEGER NOT NULL DEFAULT 0,
            files_failed INTEGER NOT NULL DEFAULT 0,
            checkpoint TEXT NOT NULL DEFAULT '',
            problems TEXT NOT NULL DEFAULT '[]',
            error TEXT
        );
        -- A job waiting since before this version waits from now on (its own wait was not recorded):
        -- the migration's time is as good a start as any, and no job expires the moment it runs.
        INSERT INTO restore_jobs_new (id, client_id, snapshot_id, paths, destination, overwrite, status, created_at,
            queued_at, started_at, ended_at, files_total, bytes_total, files_done, bytes_done, files_restored,
            bytes_restored, files_skipped, files_failed, checkpoint, problems, error)
        SELECT id, client_id, snapshot_id, paths, destination, overwrite, status, created_at,
            strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000+00:00', started_at, ended_at, files_total, bytes_total, files_done,
            bytes_done, files_restored, bytes_restored, files_skipped, files_failed, checkpoint, problems, error
        FROM restore_jobs;
        DROP TABLE restore_jobs;
        ALTER TABLE restore_jobs_new RENAME TO restore_jobs;
        CREATE INDEX restore_jobs_client ON restore_jobs (client_id, id);
        CREATE INDEX restore_jobs_status ON restore_jobs (status, queued_at);
    """,
    ),
    (
        7,
        "file_versions.mode: a version's permission bits, restored with it",
        """
        -- The permission bits (mode & 0o777: never setuid, setgid or sticky) the agent saw when it backed the
        -- version up; NULL for versions stored before, or by an agent that does not send them.
        ALTER TABLE file_versions ADD COLUMN mode INTEGER;
    """,
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the settings every connection must have."""
    conn = sqlite3.connect(
        str(path),
        detect_types=sqlite3.PARSE_DECLTYPES,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    # NORMAL in WAL mode: a commit survives a process crash (kill -9); only an OS crash can
    # lose the newest commits, never corrupt the file. Blobs are fsynced before their rows.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception (autocommit connection)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        # SQLite may have rolled back already (it does on SQLITE_FULL, for one): a second
        # ROLLBACK would fail and hide the error that matters.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, now: datetime) -> int:
    """Apply the missing migrations in order; returns the version reached."""
    current = schema_version(conn)
    if current > LATEST_VERSION:
        raise RuntimeError(f"database schema version {current} is newer than this server ({LATEST_VERSION})")
    for version, summary, sql in MIGRATIONS:
        if version <= current:
            continue
        with transaction(conn):
            # executescript would COMMIT our transaction; run the statements one by one.
            for statement in _statements(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, iso(now)))
        log.info("server.db_migrated", version=version, summary=summary)
        current = version
    return current


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def open_database(path: Path, now: datetime) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    migrate(conn, now)
    return conn
