"""The real server's runs as snapshots, driven message by message: opening, closing, lost sessions, restarts,
and a database of the previous schema upgraded in place."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.server.core import BackupServer, ServerConfig
from actors.server.db import MIGRATIONS, iso
from actors.server.faults import SQLITE_FULL
from actors.server.snapshots import ORPHAN_AFTER_S
from runtime.clock import SimulatedClock
from tests.old_schema import database_at_schema
from tests.test_server_core import FakeAgent, FakeClock, call, enrolled_agent, sha

pytestmark = pytest.mark.timeout(60)
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MTIME = 1_700_000_000_000_000_000


def open_core(tmp_path: Path, clock: SimulatedClock) -> BackupServer:
    server = BackupServer(ServerConfig(tmp_path, log_file=False), clock)
    server.agents.clock = FakeClock()
    server.agents.runs.clock = server.agents.clock
    return server


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(T0)


@pytest.fixture
def core(tmp_path: Path, clock: SimulatedClock) -> Iterator[BackupServer]:
    server = open_core(tmp_path, clock)
    yield server
    server.close()


def entry(path: str, data: bytes) -> list[Any]:
    return [path, len(data), MTIME, sha(data)]


def manifest(agent: FakeAgent, batch: int, files: dict[str, bytes]) -> dict[str, Any]:
    (result,) = agent.send("manifest", batch=batch, entries=[entry(p, d) for p, d in files.items()])
    assert result.type == "manifest_result", result
    for n, index in enumerate(result["send"]):
        path = list(files)[index]
        agent.put(path, files[path], upload=f"u{batch}-{n}", mtime_ns=MTIME)
    return result.fields


def done(agent: FakeAgent, **summary: Any) -> None:
    agent.send("done", summary={"root": "/data", "files": 0, "skipped": 0, "failed": 0, **summary})


def snapshots(core: BackupServer) -> list[dict[str, Any]]:
    client_id = core.conn.execute("SELECT id FROM clients").fetchone()[0]
    return list(reversed(call(core, "list_snapshots", client_id=client_id)["items"]))


def names(core: BackupServer, snapshot: dict[str, Any], path: str) -> list[tuple[str, Any, Any]]:
    items = call(core, "browse_snapshot", snapshot_id=snapshot["id"], path=path)["items"]
    return [(e["name"], e["change"], e["size"]) for e in items]


def test_a_run_then_an_unchanged_run(core: BackupServer, tmp_path: Path, clock: SimulatedClock) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    files = {"/data/a.txt": b"alpha", "/data/sub/b.txt": b"bravo!"}
    manifest(agent, 1, files)
    clock.advance(3)
    done(agent, files=2, seconds=3.0)
    clock.advance(60)
    manifest(agent, 1, files)
    done(agent, files=2)
    first, second = snapshots(core)
    assert (first["status"], first["files_new"], first["bytes_new"], first["root"]) == ("complete", 2, 11, "/data")
    assert (first["started_at"], first["ended_at"]) == (T0, T0 + timedelta(seconds=3))
    assert (second["files_unchanged"], second["bytes_unchanged"], second["files_total"]) == (2, 11, 2)
    assert names(core, second, "/data") == [("sub", "unchanged", 6), ("a.txt", "unchanged", 5)]
    assert names(core, first, "/") == [("data", "new", 11)]


def test_a_lost_session_goes_on_in_the_same_run_and_a_redone_batch_counts_once(
    core: BackupServer, tmp_path: Path
) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    manifest(agent, 1, {"/d/1": b"one"})
    core.agents.disconnect(core.conn.execute("SELECT id FROM clients").fetchone()[0], "test")
    core.agents.drain_outbox()
    agent.hello()  # the agent reconnects and redoes the batch it was in
    manifest(agent, 2, {"/d/2": b"two"})
    manifest(agent, 2, {"/d/2": b"two"})
    done(agent, files=2)
    (run,) = snapshots(core)
    assert (run["status"], run["files_new"], run["files_unchanged"], run["files_total"]) == ("complete", 1, 1, 2)
    assert names(core, run, "/d") == [("1", "new", 3), ("2", "unchanged", 3)]
    assert names(core, run, "/") == [("d", "new", 6)]


def test_a_new_first_batch_ends_the_run_still_open(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    agent.send("manifest", batch=1, entries=[entry("/d/big", b"x" * 10)])  # asked for, never sent
    manifest(agent, 1, {"/d/small": b"s"})
    done(agent, files=1)
    first, second = snapshots(core)
    assert (first["status"], first["files_failed"], first["bytes_failed"]) == ("interrupted", 1, 10)
    assert (second["status"], second["files_total"]) == ("complete", 1)


def test_failures_make_a_partial_run(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    agent.send("manifest", batch=1, entries=[["relative/path", 7, MTIME, None], entry("/d/gone", b"12345")])
    done(agent, files=3, skipped=3)  # the agent also skipped one it could not list
    (run,) = snapshots(core)
    assert (run["status"], run["files_failed"], run["bytes_failed"], run["files_total"]) == ("partial", 3, 12, 0)


def test_a_run_with_no_files_is_a_snapshot_too(core: BackupServer, tmp_path: Path, clock: SimulatedClock) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    clock.advance(10)
    done(agent, seconds=4.0)
    (run,) = snapshots(core)
    assert (run["status"], run["files_total"], run["started_at"], run["ended_at"]) == (
        "complete",
        0,
        T0 + timedelta(seconds=6),
        T0 + timedelta(seconds=10),
    )
    assert call(core, "browse_snapshot", snapshot_id=run["id"])["items"] == []


def test_a_run_whose_agent_never_returns_is_interrupted(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    manifest(agent, 1, {"/d/kept": b"kept"})
    agent.send("bye")
    core.tick()
    assert snapshots(core)[0]["status"] == "running"  # it may come back
    core.agents.clock.t += ORPHAN_AFTER_S + 1  # type: ignore[attr-defined]
    core.tick()
    (run,) = snapshots(core)
    assert (run["status"], run["files_new"]) == ("interrupted", 1)
    assert names(core, run, "/d") == [("kept", "new", 4)]


def test_a_restart_closes_the_runs_left_open(tmp_path: Path, clock: SimulatedClock) -> None:
    core = open_core(tmp_path, clock)
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    manifest(agent, 1, {"/d/x": b"xx", "/d/e/y": b"yyy"})
    core.close()
    again = open_core(tmp_path, clock)
    try:
        (run,) = snapshots(again)
        assert (run["status"], run["files_new"], run["bytes_new"]) == ("interrupted", 2, 5)
        assert names(again, run, "/d") == [("e", "new", 3), ("x", "new", 2)]
    finally:
        again.close()


def test_a_database_of_the_previous_schema_is_upgraded_in_place(tmp_path: Path, clock: SimulatedClock) -> None:
    path = tmp_path / "server" / "backup.db"
    conn = database_at_schema(path, 2, T0, client_id="c1")
    at = iso(T0)
    conn.execute(
        "INSERT INTO files (id, client_id, path, name, size, mtime_ns, sha256, status, created_at, modified_at, "
        "last_backup) VALUES ('f1', 'c1', '/old/file', 'file', 3, 0, ?, 'uploaded', ?, ?, ?)",
        (sha(b"old"), at, at, at),
    )
    conn.execute(
        "INSERT INTO file_versions (file_id, version, size, mtime_ns, sha256, backed_up_at) VALUES ('f1', 1, 3, 0, ?, ?)",
        (sha(b"old"), at),
    )
    conn.commit()
    conn.close()
    core = open_core(tmp_path, clock)
    try:
        assert core.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == MIGRATIONS[-1][0]
        (version,) = call(core, "get_file_versions", file_id="f1")["items"]
        assert (version["version"], version["size"], version["snapshot_id"]) == (1, 3, None)
        assert call(core, "list_snapshots", client_id="c1")["total"] == 0
        assert call(core, "find_files", query="old")["items"][0]["file_id"] == "f1"
    finally:
        core.close()


class FullOnTreeRows:
    """The server's connection, except that writing a snapshot's file rows finds the disk full."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def executemany(self, sql: str, rows: Any) -> sqlite3.Cursor:
        if sql.startswith("INSERT OR REPLACE INTO snapshot_files"):
            error = sqlite3.OperationalError("database or disk is full")
            error.sqlite_errorcode = SQLITE_FULL
            raise error
        return self._conn.executemany(sql, rows)


def test_a_full_disk_costs_the_snapshot_its_rows_not_the_backup(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    runs = core.agents.runs
    runs.conn = FullOnTreeRows(core.conn)  # type: ignore[assignment]
    manifest(agent, 1, {"/d/a": b"aaa"})  # stored, but its snapshot row cannot be written
    runs.conn = core.conn
    manifest(agent, 2, {"/d/e/b": b"bb"})
    done(agent, files=2)
    (run,) = snapshots(core)
    assert (run["status"], run["files_new"], run["files_failed"], run["bytes_failed"]) == ("partial", 1, 1, 3)
    assert names(core, run, "/d") == [("e", "new", 2)]
    assert call(core, "get_files")["total"] == 2  # the backup itself lost nothing
    assert "storage_full" in [a["type"] for a in call(core, "get_recent_activity")["items"]]
