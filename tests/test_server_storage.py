"""A full disk on the server, without sockets: uploads fail with STORAGE_FULL, credit and temporaries
are never left behind, console writes get STORAGE_FULL, and one rate-limited activity entry says so."""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import CapturingLogger

from actors.agent.session import EXIT_STORAGE_FULL, error_of
from actors.server import agents as server_agents
from actors.server import faults
from actors.server import uploads as server_uploads
from actors.server.core import BackupServer, ServerConfig
from protocol.agent_messages import STORAGE_FULL, Message, encode_message
from protocol.errors import ErrorCode, ProtocolError
from protocol.events import ACTIVITY
from runtime import fsutil
from tests.full_disk import FullDiskServer, fill_after, free_space, no_space
from tests.test_server_core import CTX, FakeAgent, FakeClock, call, enrolled_agent, sha

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def core(tmp_path: Path) -> Iterator[FullDiskServer]:
    server = FullDiskServer(ServerConfig(tmp_path, log_file=False))
    server.agents.clock = FakeClock()
    yield server
    server.close()


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> CapturingLogger:
    capture = CapturingLogger()
    for module in (faults, server_uploads, server_agents):
        monkeypatch.setattr(module, "log", capture)
    return capture


def storage_full_events(core: FullDiskServer) -> list[dict[str, Any]]:
    return [d for topic, d in core.drain_events() if topic == ACTIVITY and d["type"] == "storage_full"]


def temporaries(core: FullDiskServer) -> list[Path]:
    return list(core.blobs.tmp.iterdir())


def credits(replies: list[Message]) -> int:
    return sum(m["n"] for m in replies if m.type == "credit")


def chunks(agent: FakeAgent, path: str, data: bytes, upload: str, chunk: int = 4) -> list[list[Message]]:
    """Send an upload chunk by chunk; the replies of each chunk."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    out = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        extra: dict[str, Any] = {"path": path, "size": len(data), "mtime_ns": 1} if index == 0 else {}
        if last:
            extra["sha256"] = sha(data)
        out.append(agent.send("chunk", piece, u=upload, i=index, o=index * chunk, last=last, **extra))
    return out


def test_a_full_disk_fails_the_upload_returns_every_credit_and_leaves_no_temporary(
    core: FullDiskServer, tmp_path: Path, logs: CapturingLogger
) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    core.drain_events()
    fill_after(core.config.root, 10)
    data = bytes(range(40))
    replies = chunks(agent, "/data/big.bin", data, "u1")
    # Every chunk, the ones before the failure, the failing one and the ignored rest, gave its credit back.
    assert all(credits(r) == 1 for r in replies)
    failed = [m for r in replies for m in r if m.type == "failed"]
    assert len(failed) == 1 and failed[0]["code"] == STORAGE_FULL and failed[0]["u"] == "u1"
    assert "server storage full" in failed[0]["message"] and "/data/big.bin" in failed[0]["message"]
    assert [m for r in replies for m in r if m.type == "error"] == []  # the rest was dropped quietly
    assert temporaries(core) == []  # removed at once, not at the next restart
    assert call(core, "get_files")["total"] == 0
    # More uploads fail the same way: no traceback, one activity entry for all of them.
    for n in range(2, 5):
        replies = chunks(agent, f"/data/more-{n}.bin", data, f"u{n}")
        assert [m["code"] for r in replies for m in r if m.type == "failed"] == [STORAGE_FULL]
    (event,) = storage_full_events(core)
    assert event["level"] == "ERROR" and "full" in event["message"]
    assert not [c for c in logs.calls if c.method_name == "exception"]
    assert core.store.storage_alarm.occurrences == 4
    assert temporaries(core) == []
    # Space comes back: the same file is stored whole.
    free_space(core.config.root)
    stored = [m for r in chunks(agent, "/data/big.bin", data, "u5") for m in r if m.type == "stored"]
    assert len(stored) == 1 and core.blobs.rehash(sha(data)) == sha(data)


def test_a_full_disk_at_commit_fails_the_upload_and_removes_the_temporary(
    core: FullDiskServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if stat.S_ISREG(os.fstat(fd).st_mode):  # the blob's own fsync, the last step before its rename
            raise no_space()
        real_fsync(fd)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    replies = chunks(agent, "/data/small.txt", b"hello world", "u1")
    monkeypatch.setattr(fsutil.os, "fsync", real_fsync)
    (failed,) = [m for r in replies for m in r if m.type == "failed"]
    assert failed["code"] == STORAGE_FULL and "/data/small.txt" in failed["message"]
    assert temporaries(core) == [] and not core.blobs.exists(sha(b"hello world"))
    assert core.agents.active_transfers() == 0


def fill_database(core: BackupServer) -> None:
    """A full disk, as SQLite sees it: no page may be added (its own limit), and the pages of the
    tables the tests write to are filled up, so the next insert or growing update needs a page."""
    pages = core.conn.execute("PRAGMA page_count").fetchone()[0]
    core.conn.execute(f"PRAGMA max_page_count = {pages}")
    fillers = (
        "INSERT INTO activity (timestamp, type, level, message) VALUES ('2025-01-01T00:00:00+00:00', 'x', 'INFO', ?)",
        "INSERT INTO clients (id, name, public_key, created_at, last_seen) "
        "VALUES (lower(hex(randomblob(16))), ?, lower(hex(randomblob(16))), '2025-01-01T00:00:00+00:00', "
        "'2025-01-01T00:00:00+00:00')",
    )
    for sql in fillers:
        for size in (2000, 200, 20, 1):
            with contextlib.suppress(sqlite3.OperationalError):
                for _ in range(100_000):
                    core.conn.execute(sql, ("f" * size,))


def test_a_full_database_answers_console_writes_with_storage_full(core: FullDiskServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    client = call(core, "get_clients", search="laptop")["items"][0]
    core.drain_events()
    fill_database(core)
    longer = {"name": "renamed-" + "n" * 200}
    failure = failure_of(core, "update_row", table_name="clients", row_id=client["id"], updated_data=longer)
    assert failure.code is ErrorCode.STORAGE_FULL and "storage full" in failure.message
    assert call(core, "get_client_details", client_id=client["id"])["client"]["name"] == client["name"]
    # The activity table is full too: the consoles still get the event (not stored, so no row id).
    (event,) = storage_full_events(core)
    assert event["level"] == "ERROR" and event["id"].startswith("storage_full-")
    core.conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
    assert call(core, "update_row", table_name="clients", row_id=client["id"], updated_data=longer)


def failure_of(core: FullDiskServer, op: str, **args: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        core.handle(op, args, CTX)
    return info.value


def test_a_full_database_at_hello_tells_the_agent(core: FullDiskServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    fill_database(core)
    replies = agent.send("hello", name="laptop", hostname="lap", platform="Linux", version="1")
    # The session opened, its activity entry could not be written: the agent hears it next.
    assert [m.type for m in replies] == ["welcome", "error"]
    error = replies[-1]
    assert error["code"] == STORAGE_FULL
    failure = error_of(error)  # what the agent makes of it: its exit status and words
    assert failure.exit_code == EXIT_STORAGE_FULL and failure.message.startswith("server storage full")


def test_a_full_database_while_recording_versions_fails_those_uploads(
    core: FullDiskServer, tmp_path: Path, logs: CapturingLogger
) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    core.drain_events()
    fill_database(core)
    files = {f"/data/{'long-name-' * 30}{n}.txt": f"content {n}".encode() * 50 for n in range(10)}
    replies: list[Message] = []
    for n, (path, data) in enumerate(files.items()):
        gateway = core.agents
        frames = encode_message(
            "chunk", data, u=f"u{n}", i=0, o=0, last=True, path=path, size=len(data), mtime_ns=1, sha256=sha(data)
        )
        gateway.on_message(agent.route, frames, agent.key, "10.0.0.7")
    replies = agent.send("heartbeat")  # the batch's group commit runs at the end of the batch
    failed = [m for m in replies if m.type == "failed"]
    assert len(failed) == len(files) and {m["code"] for m in failed} == {STORAGE_FULL}
    assert credits(replies) == len(files)
    assert not [c for c in logs.calls if c.method_name == "exception"]
    assert len(storage_full_events(core)) == 1


def test_storage_full_errors_are_recognised() -> None:
    assert faults.is_storage_full(OSError(errno.ENOSPC, "No space left on device"))
    assert faults.is_storage_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not faults.is_storage_full(OSError(errno.EIO, "Input/output error"))
    assert not faults.is_storage_full(ValueError("no space"))
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = faults.SQLITE_FULL
    assert faults.is_storage_full(full)
    assert not faults.is_storage_full(sqlite3.OperationalError("database is locked"))


def test_the_alarm_reports_at_most_once_per_interval() -> None:
    recorded: list[str] = []
    now = [0.0]
    alarm = faults.StorageAlarm(
        lambda type_, level, message, **kw: recorded.append(message),
        lambda topic, data: None,
        lambda: datetime.now(UTC),
        clock=lambda: now[0],
        every_s=60,
    )
    for _ in range(5):
        alarm.report("writing", no_space())
    now[0] = 61
    alarm.report("writing", no_space())
    assert len(recorded) == 2 and "4 more failures" in recorded[1] and alarm.occurrences == 6
