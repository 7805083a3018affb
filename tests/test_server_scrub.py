"""The real server's storage scrub without sockets: lost and rotten blobs are found, marked, reported and
sent again by the agent's next backup; periodic passes run in bounded slices and survive restarts."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actors.server import scrub as scrub_module
from actors.server.core import BackupServer, ServerConfig
from actors.server.faults import SQLITE_FULL
from actors.server.scrub import LAST_PASS_SETTING, READ_SIZE, Scrubber
from protocol.agent_messages import Message
from protocol.events import ACTIVITY, FILE_CHANGED
from runtime.clock import SimulatedClock
from tests.test_server_core import FakeAgent, FakeClock, call, enrolled_agent, sha
from tests.test_server_storage import fill_database

pytestmark = pytest.mark.timeout(60)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0
MTIME = 1_700_000_000_000_000_000


def open_server(root: Path, clock: SimulatedClock, interval_s: float = HOUR) -> BackupServer:
    server = BackupServer(ServerConfig(root, log_file=False, scrub_interval_s=interval_s), clock)
    server.agents.clock = FakeClock()
    return server


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def core(tmp_path: Path, clock: SimulatedClock) -> Iterator[BackupServer]:
    server = open_server(tmp_path, clock)
    yield server
    server.close()


def backed_up(core: BackupServer, tmp_path: Path, files: dict[str, bytes]) -> FakeAgent:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    for n, (path, data) in enumerate(files.items()):
        replies = agent.put(path, data, upload=f"u{n}", chunk=256 * 1024, mtime_ns=MTIME)
        assert [m.type for m in replies if m.type in ("stored", "failed")] == ["stored"], replies
    core.drain_events()
    return agent


def manifest(agent: FakeAgent, files: dict[str, bytes], batch: int = 1) -> Message:
    entries = [[path, len(data), MTIME, None] for path, data in files.items()]
    (result,) = [m for m in agent.send("manifest", batch=batch, entries=entries) if m.type == "manifest_result"]
    return result


def status_of(core: BackupServer, path: str) -> str:
    return str(next(f["status"] for f in call(core, "get_files")["items"] if f["path"] == path))


def activity(core: BackupServer) -> list[dict[str, Any]]:
    return [d for topic, d in core.drain_events() if topic == ACTIVITY]


FILES = {"/home/u/keep.txt": b"kept safe" * 100, "/home/u/lost.txt": b"this blob will vanish" * 100}


def test_a_lost_blob_is_asked_for_again_even_before_a_scrub(core: BackupServer, tmp_path: Path) -> None:
    agent = backed_up(core, tmp_path, FILES)
    assert manifest(agent, FILES)["skip"] == [0, 1]
    core.blobs.path_for(sha(FILES["/home/u/lost.txt"])).unlink()
    decision = manifest(agent, FILES, batch=2)
    assert (decision["skip"], decision["send"]) == ([0], [1])  # unchanged on the agent, gone on the server


def test_scrub_marks_a_lost_blob_and_the_next_backup_heals_it(core: BackupServer, tmp_path: Path) -> None:
    agent = backed_up(core, tmp_path, FILES)
    lost = next(f for f in call(core, "get_files")["items"] if f["path"] == "/home/u/lost.txt")
    core.blobs.path_for(lost["sha256"]).unlink()
    report = call(core, "scrub_storage")
    assert report["complete"] is True and (report["blobs_checked"], report["files_checked"]) == (2, 2)
    assert report["damaged_total"] == 1
    assert report["damaged"] == [
        {
            "file_id": lost["id"],
            "client_id": lost["client_id"],
            "path": "/home/u/lost.txt",
            "sha256": lost["sha256"],
            "problem": "missing",
            "actual_sha256": "",
        }
    ]
    assert (status_of(core, "/home/u/lost.txt"), status_of(core, "/home/u/keep.txt")) == ("error", "uploaded")
    events = core.drain_events()
    assert [d["file_id"] for t, d in events if t == FILE_CHANGED] == [lost["id"]]
    kinds = [(d["type"], d["level"]) for t, d in events if t == ACTIVITY]
    assert kinds == [("scrub_damaged", "ERROR"), ("scrub_completed", "ERROR")]
    # The agent's next backup is asked for the file again, sends it, and the content is whole again.
    decision = manifest(agent, FILES, batch=2)
    assert (decision["skip"], decision["send"]) == ([0], [1])
    stored = agent.put("/home/u/lost.txt", FILES["/home/u/lost.txt"], upload="again", mtime_ns=MTIME)
    assert [m.type for m in stored if m.type in ("stored", "failed")] == ["stored"]
    assert status_of(core, "/home/u/lost.txt") == "uploaded"
    assert call(core, "verify_file", file_id=lost["id"])["ok"] is True
    assert call(core, "scrub_storage")["damaged_total"] == 0


def test_rotten_and_unreadable_content_is_found(core: BackupServer, tmp_path: Path) -> None:
    backed_up(core, tmp_path, FILES)
    rotten = core.blobs.path_for(sha(FILES["/home/u/keep.txt"]))
    rotten.write_bytes(b"bit rot")
    unreadable = core.blobs.path_for(sha(FILES["/home/u/lost.txt"]))
    unreadable.unlink()
    unreadable.mkdir()  # opening it for reading fails (EISDIR), as a dying disk's EIO would
    report = call(core, "scrub_storage")
    problems = {p["path"]: (p["problem"], p["actual_sha256"]) for p in report["damaged"]}
    assert problems == {"/home/u/keep.txt": ("damaged", sha(b"bit rot")), "/home/u/lost.txt": ("unreadable", "")}
    unreadable.rmdir()


def test_periodic_passes_run_in_bounded_slices_and_are_remembered(
    tmp_path: Path, clock: SimulatedClock, core: BackupServer
) -> None:
    big = os.urandom(3 * READ_SIZE + 5)
    backed_up(core, tmp_path, {**FILES, "/home/u/big.bin": big})
    core.blobs.path_for(sha(FILES["/home/u/lost.txt"])).write_bytes(b"rot")
    core.scrubber = Scrubber(core.store, core.blobs, HOUR, slice_s=0)  # one step per tick: the smallest slice
    core.tick()
    assert core.scrubber.current is None  # a new store counts as checked: nothing is due yet
    clock.advance(HOUR)
    ticks = 0
    while core.scrubber.current is not None or ticks == 0:
        before = core.scrubber.current.bytes_checked if core.scrubber.current else 0
        core.tick()
        ticks += 1
        after = core.scrubber.current.bytes_checked if core.scrubber.current else None
        assert after is None or after - before <= READ_SIZE  # never more than one read per slice
    assert ticks > 8  # 3 blobs, 4 reads of the big one, the queries: many ticks, not one long stall
    assert status_of(core, "/home/u/lost.txt") == "error"
    done = [d for d in activity(core) if d["type"] == "scrub_completed"]
    assert len(done) == 1 and "Storage scrub (schedule): 3 blobs of 3 files" in done[0]["message"]
    core.tick()
    assert core.scrubber.current is None  # not due again before another hour
    core.close()
    reopened = open_server(tmp_path, clock)  # the last pass's time is kept: a restart does not start one
    try:
        assert reopened.store.setting(LAST_PASS_SETTING, "") == START.replace(hour=13).isoformat(
            timespec="microseconds"
        )
        reopened.tick()
        assert reopened.scrubber.current is None
        clock.advance(HOUR)
        reopened.drain_events()
        reopened.tick()
        finished = [d for d in activity(reopened) if d["type"] == "scrub_completed"]
        assert reopened.scrubber.current is not None or finished
    finally:
        reopened.close()


def test_interval_zero_means_on_demand_only(tmp_path: Path, clock: SimulatedClock) -> None:
    core = open_server(tmp_path, clock, interval_s=0)
    try:
        backed_up(core, tmp_path, FILES)
        clock.advance(1000 * HOUR)
        for _ in range(5):
            core.tick()
        assert core.scrubber.current is None and activity(core) == []
        assert call(core, "scrub_storage")["files_checked"] == 2
    finally:
        core.close()


def test_the_operation_continues_the_pass_under_way(tmp_path: Path, clock: SimulatedClock, core: BackupServer) -> None:
    big = os.urandom(2 * READ_SIZE)
    backed_up(core, tmp_path, {**FILES, "/home/u/big.bin": big})
    core.scrubber = Scrubber(core.store, core.blobs, HOUR, slice_s=0, demand_s=0)
    clock.advance(HOUR)
    core.tick()
    core.tick()
    scheduled = core.scrubber.current
    assert scheduled is not None and scheduled.trigger == "schedule" and scheduled.blobs_checked == 0
    reports = [call(core, "scrub_storage")]
    assert core.scrubber.current is scheduled  # carried on, not started over
    while not reports[-1]["complete"]:
        reports.append(call(core, "scrub_storage"))
    assert len(reports) > 1 and reports[0]["finished_at"] is None
    assert reports[-1]["started_at"] == START.replace(hour=13)
    assert reports[-1]["bytes_checked"] == sum(map(len, FILES.values())) + len(big)


def test_a_blob_healed_while_it_is_hashed_is_not_blamed(tmp_path: Path, clock: SimulatedClock) -> None:
    core = open_server(tmp_path, clock)
    try:
        big = os.urandom(2 * READ_SIZE)
        backed_up(core, tmp_path, {"/home/u/big.bin": big})
        path = core.blobs.path_for(sha(big))
        path.write_bytes(os.urandom(len(big)))  # rotten on disk
        core.scrubber = Scrubber(core.store, core.blobs, HOUR, slice_s=0)
        clock.advance(HOUR)
        while core.scrubber.current is None or core.scrubber.current.reading is None:
            core.tick()  # until the rotten blob is open and being hashed
        writer = core.blobs.writer()  # a fresh upload of the same content lands meanwhile (a new file)
        writer.write(big)
        writer.commit()
        while core.scrubber.current is not None:
            core.tick()
        assert status_of(core, "/home/u/big.bin") == "uploaded"
        assert [d["level"] for d in activity(core) if d["type"] == "scrub_completed"] == ["INFO"]
    finally:
        core.close()


def test_a_full_database_pauses_a_periodic_pass_without_crashing_the_loop(
    tmp_path: Path, clock: SimulatedClock, core: BackupServer
) -> None:
    backed_up(core, tmp_path, FILES)
    core.blobs.path_for(sha(FILES["/home/u/lost.txt"])).unlink()
    fill_database(core)
    clock.advance(HOUR)
    core.tick()  # the mark or its activity entry cannot be written: reported, not raised
    assert core.store.storage_alarm.occurrences >= 1
    assert [d["type"] for d in activity(core) if d["type"] == "storage_full"] == ["storage_full"]
    core.conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
    while core.scrubber.current is not None:
        core.tick()
    assert status_of(core, "/home/u/lost.txt") == "error"


def test_a_mark_that_cannot_be_written_is_retried_not_lost(
    tmp_path: Path, clock: SimulatedClock, core: BackupServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    backed_up(core, tmp_path, FILES)
    core.blobs.path_for(sha(FILES["/home/u/lost.txt"])).unlink()
    real_transaction = scrub_module.transaction
    failures = [full_error()]

    def transaction(conn: sqlite3.Connection) -> Any:
        if failures:
            raise failures.pop()
        return real_transaction(conn)

    monkeypatch.setattr(scrub_module, "transaction", transaction)
    clock.advance(HOUR)
    core.tick()  # the mark fails: reported, and the blob stays queued
    assert status_of(core, "/home/u/lost.txt") == "uploaded" and core.scrubber.current is not None
    assert core.store.storage_alarm.occurrences == 1
    while core.scrubber.current is not None:
        core.tick()
    assert status_of(core, "/home/u/lost.txt") == "error"


def test_a_row_naming_no_blob_counts_as_missing(core: BackupServer, tmp_path: Path) -> None:
    backed_up(core, tmp_path, FILES)
    core.conn.execute("UPDATE files SET sha256 = 'not a hash' WHERE path = '/home/u/lost.txt'")
    (problem,) = call(core, "scrub_storage")["damaged"]
    assert (problem["path"], problem["problem"]) == ("/home/u/lost.txt", "missing")


def full_error() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database or disk is full")
    error.sqlite_errorcode = SQLITE_FULL
    return error


def test_a_full_database_does_not_stop_the_scrubber_from_starting(
    core: BackupServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    core.conn.execute("DELETE FROM settings WHERE key = ?", (LAST_PASS_SETTING,))

    def set_setting(key: str, value: str) -> None:
        raise full_error()

    monkeypatch.setattr(core.store, "set_setting", set_setting)
    scrubber = Scrubber(core.store, core.blobs, HOUR)  # as at a start on a full disk
    assert scrubber.last_finished == START and not scrubber.due()
    assert core.store.storage_alarm.occurrences == 1
