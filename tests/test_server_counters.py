"""The server status's totals are kept as things change, not recounted per status, and they
answer exactly what a recount answers (issue 10, item 11)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.server import counters
from actors.server.core import BackupServer, ServerConfig
from tests.test_server_core import FakeAgent, FakeClock, call, enrolled_agent, sha

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[BackupServer]:
    server = BackupServer(ServerConfig(tmp_path, log_file=False))
    server.agents.clock = FakeClock()
    yield server
    server.close()


def check(core: BackupServer) -> dict[str, int]:
    """The kept totals, the status and the active transfers, each against a recount."""
    recounted = counters.recount(core.conn)
    assert counters.read(core.conn) == recounted
    status = call(core, "get_server_status")
    assert {field: status[field] for field in counters.FIELDS} == recounted
    sessions = core.agents.sessions.values()
    assert status["active_transfers"] == sum(len(s.uploads.open) + len(s.fetches) for s in sessions)
    return recounted


def test_the_kept_totals_equal_a_recount_after_every_kind_of_change(core: BackupServer, tmp_path: Path) -> None:
    assert check(core) == {"clients_total": 0, "clients_connected": 0, "files_total": 0, "storage_used": 0}
    alice, bob = enrolled_agent(core, tmp_path, "alice"), enrolled_agent(core, tmp_path, "bob")
    alice.hello("alice")
    bob.hello("bob")
    assert check(core)["clients_connected"] == 2
    alice.put("/a/one", b"shared content", upload="u1")
    alice.put("/a/two", b"only alice", upload="u2")
    bob.put("/b/same", b"shared content", upload="u3")  # the same blob: stored once
    assert check(core) == {
        "clients_total": 2,
        "clients_connected": 2,
        "files_total": 3,
        "storage_used": len(b"shared content") + len(b"only alice"),
    }
    alice.put("/a/one", b"a new version of one", upload="u4", mtime_ns=2)  # the old version stays stored
    check(core)
    files = {f["path"]: f for f in call(core, "get_files")["items"]}
    call(core, "delete_file", file_id=files["/b/same"]["id"])  # alice still holds that content
    check(core)
    version = core.conn.execute("SELECT id FROM file_versions ORDER BY id LIMIT 1").fetchone()[0]
    call(core, "delete_row", table_name="file_versions", row_id=str(version))
    check(core)
    bob_id = files["/b/same"]["client_id"]
    call(core, "update_row", table_name="clients", row_id=bob_id, updated_data={"status": "error"})
    assert check(core)["clients_connected"] == 1
    call(core, "disconnect_client", client_id=files["/a/two"]["client_id"])
    check(core)
    call(core, "delete_client", client_id=bob_id)  # cascades to its files and their versions
    check(core)
    # A hand edit of a version's content, and rows written by another tool: the triggers see them too.
    core.conn.execute(
        "UPDATE file_versions SET size = size + 100, sha256 = ? WHERE id = (SELECT MAX(id) FROM file_versions)",
        (sha(b"x"),),
    )
    check(core)
    core.conn.execute("DELETE FROM clients")
    assert check(core) == {"clients_total": 0, "clients_connected": 0, "files_total": 0, "storage_used": 0}


def test_the_status_runs_no_count_over_the_tables(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    agent.put("/x", b"content")
    statements: list[str] = []
    core.conn.set_trace_callback(statements.append)
    try:
        status = call(core, "get_server_status")
    finally:
        core.conn.set_trace_callback(None)
    assert (status["files_total"], status["clients_connected"]) == (1, 1)
    assert statements and not [s for s in statements if "COUNT(" in s.upper() or "GROUP BY" in s.upper()]


def test_a_restart_recounts_totals_that_drifted(tmp_path: Path) -> None:
    core = BackupServer(ServerConfig(tmp_path, log_file=False))
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    agent.put("/x", b"content")
    core.close()
    conn = sqlite3.connect(tmp_path / "server" / "backup.db")
    with conn:  # as if written by a tool that dropped the triggers
        conn.execute("UPDATE status_counters SET files_total = 99, storage_used = -1")
    conn.close()
    again = BackupServer(ServerConfig(tmp_path, log_file=False))
    try:
        assert counters.read(again.conn) == counters.recount(again.conn)
        assert counters.read(again.conn)["files_total"] == 1
    finally:
        again.close()


def test_active_transfers_follow_uploads_as_they_open_and_close(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    first: FakeAgent = agent
    first.send("chunk", b"part", u="open", i=0, o=0, last=False, path="/big", size=8, mtime_ns=1)
    assert core.agents.active_transfers() == 1
    check(core)
    first.send("chunk", b"rest", u="open", i=1, o=4, last=True, sha256=sha(b"partrest"))
    assert core.agents.active_transfers() == 0
    first.send("chunk", b"part", u="left", i=0, o=0, last=False, path="/other", size=8, mtime_ns=1)
    assert core.agents.active_transfers() == 1
    call(core, "disconnect_client", client_id=call(core, "get_clients")["items"][0]["id"])  # the upload is dropped
    assert core.agents.active_transfers() == 0
    check(core)
