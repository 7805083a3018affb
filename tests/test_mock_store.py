"""Persistence of the mock: snapshot, journal, crash recovery, corruption, debouncing."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest
from structlog.testing import CapturingLogger

from actors.backends.api import RequestContext
from actors.mock import core as mock_core
from actors.mock import store as mock_store
from actors.mock.core import MockCore
from actors.mock.store import JOURNAL_NAME, SNAPSHOT_NAME, encode_world
from runtime.clock import SimulatedClock
from tests.mock_invariants import assert_world_consistent

pytestmark = pytest.mark.timeout(60)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CTX = RequestContext(request_id="test", session=None)


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> CapturingLogger:
    """The store's and core's log calls (patched directly: immune to global structlog config)."""
    capture = CapturingLogger()
    monkeypatch.setattr(mock_store, "log", capture)
    monkeypatch.setattr(mock_core, "log", capture)
    return capture


def events_logged(capture: CapturingLogger) -> list[str]:
    return [call.args[0] for call in capture.calls]


def open_core(
    path: Path, *, seed: int = 42, clients: int = 12, files: int | None = None, min_interval: float = 3600.0
) -> MockCore:
    return MockCore.open(
        path, seed=seed, clock=SimulatedClock(START), clients=clients, files=files, min_snapshot_interval=min_interval
    )


def call(core: MockCore, op: str, **args: Any) -> Any:
    reply = core.handle(op, args, CTX)
    assert isinstance(reply, dict) and reply["success"], reply
    return reply["data"]


def state(core: MockCore) -> dict[str, Any]:
    """Everything the world holds, RNG state and clock included."""
    return encode_world(core.world, 0)


def do_some_work(core: MockCore, rounds: int = 3) -> None:
    """Writes of every kind interleaved with ticks."""
    for n in range(rounds):
        files = list(core.world.files.values())
        clients = list(core.world.clients.values())
        call(core, "verify_file", file_id=next(f.id for f in files if f.status != "uploading"))
        call(core, "delete_file", file_id=files[n].id)
        call(core, "update_row", table_name="clients", row_id=clients[n].id, updated_data={"name": f"renamed-{n}"})
        call(core, "update_row", table_name="files", row_id=files[-1].id, updated_data={"status": "error"})
        core.tick()
        connected = [c for c in core.world.clients.values() if c.status == "connected"]
        if connected:
            call(core, "disconnect_client", client_id=connected[0].id)
        call(core, "delete_client", client_id=clients[-1].id)
        core.tick()
        core.tick()
    call(core, "stop_server")
    core.tick()
    call(core, "start_server")
    core.drain_events()


# -- snapshots --


def test_fresh_open_writes_a_versioned_snapshot(tmp_path: Path) -> None:
    core = open_core(tmp_path / "data")
    assert core.store is not None and core.store.snapshots_written == 1
    raw = msgpack.unpackb((tmp_path / "data" / SNAPSHOT_NAME).read_bytes(), raw=False, timestamp=3)
    assert {
        "format",
        "version",
        "seed",
        "journal_seq",
        "rng_state",
        "clock",
        "clients",
        "files",
        "activity",
        "logs",
        "server",
    } <= set(raw)
    assert raw["format"] == "mock-state" and raw["version"] == 1 and raw["seed"] == 42 and raw["journal_seq"] == 0
    assert len(raw["clients"]["rows"]) == 12 and len(raw["files"]["rows"]) == len(core.world.files)
    assert not list((tmp_path / "data").glob(".*.part"))
    assert call(core, "get_database_info")["path"] == SNAPSHOT_NAME
    core.close()


def test_close_then_open_gives_the_same_world_which_evolves_the_same(tmp_path: Path) -> None:
    closed, kept = open_core(tmp_path / "a"), open_core(tmp_path / "b")
    for core in (closed, kept):
        do_some_work(core)
    closed.close()
    reopened = open_core(tmp_path / "a")
    assert state(reopened) == state(kept)
    assert reopened.drain_events() == []
    # The RNG state travelled with the data: evolution continues exactly as without the restart.
    for _ in range(20):
        reopened.tick()
        kept.tick()
    assert reopened.drain_events() == kept.drain_events()
    assert state(reopened) == state(kept)
    assert_world_consistent(reopened.world)


def test_open_close_open_never_grows(tmp_path: Path) -> None:
    core = open_core(tmp_path)
    first = state(core)
    core.close()
    for _ in range(3):
        core = open_core(tmp_path)
        assert state(core) == first
        core.close()
    assert (len(core.world.clients), len(core.world.files)) == (12, len(first["files"]["rows"]))


def test_stored_data_wins_over_new_arguments(tmp_path: Path, logs: CapturingLogger) -> None:
    core = open_core(tmp_path, seed=1, clients=5)
    names = [c["name"] for c in call(core, "get_clients")["items"]]
    core.close()
    again = open_core(tmp_path, seed=2, clients=50, files=1000)
    assert [c["name"] for c in call(again, "get_clients")["items"]] == names and again.world.seed == 1
    assert "mock.stored_config_wins" in events_logged(logs)
    again.close()


# -- journal and crashes --


@pytest.mark.parametrize("snapshot_on_every_tick", [False, True])
def test_acknowledged_writes_survive_a_crash(tmp_path: Path, snapshot_on_every_tick: bool) -> None:
    crashed = open_core(tmp_path)
    assert crashed.store is not None
    if snapshot_on_every_tick:
        crashed.store.snapshot_due = lambda: True  # type: ignore[method-assign]
    do_some_work(crashed, rounds=4)
    assert crashed.store.snapshots_written == (14 if snapshot_on_every_tick else 1)
    # No close(): the process "dies" here. Opening again must rebuild exactly what was acknowledged.
    recovered = open_core(tmp_path)
    assert state(recovered) == state(crashed)
    assert recovered.journal_seq == crashed.journal_seq
    assert recovered.drain_events() == []
    assert_world_consistent(recovered.world)
    recovered.close()


def test_torn_journal_tail_is_ignored(tmp_path: Path, logs: CapturingLogger) -> None:
    core = open_core(tmp_path)
    victim = next(iter(core.world.files.values()))
    call(core, "update_row", table_name="files", row_id=victim.id, updated_data={"name": "replayed.txt"})
    journal = tmp_path / JOURNAL_NAME
    intact = journal.stat().st_size
    call(core, "delete_file", file_id=victim.id)
    whole = journal.read_bytes()
    journal.write_bytes(whole[: intact + (len(whole) - intact) // 2])  # the last write was half on disk
    recovered = open_core(tmp_path)
    assert recovered.world.files[victim.id].name == "replayed.txt"  # the intact record was replayed
    assert "mock.journal_tail_ignored" in events_logged(logs)
    assert journal.stat().st_size == intact  # the damage is cut off, so new records stay readable
    call(recovered, "delete_file", file_id=victim.id)
    again = open_core(tmp_path)
    assert victim.id not in again.world.files
    again.close()


@pytest.mark.parametrize("damage", ["flip", "garbage", "short_header"])
def test_damaged_last_record_is_ignored(tmp_path: Path, damage: str, logs: CapturingLogger) -> None:
    core = open_core(tmp_path)
    call(core, "stop_server")
    journal = tmp_path / JOURNAL_NAME
    data = bytearray(journal.read_bytes())
    if damage == "flip":
        data[-3] ^= 0xFF
    elif damage == "garbage":
        data += b"\x00\x00\x00\x05\xde\xad\xbe\xef!"
    else:
        data += b"\x00\x00"
    journal.write_bytes(bytes(data))
    recovered = open_core(tmp_path)
    assert recovered.world.server.running is (damage == "flip")
    assert "mock.journal_tail_ignored" in events_logged(logs)
    recovered.close()


def test_a_record_that_now_fails_is_skipped(tmp_path: Path, logs: CapturingLogger) -> None:
    core = open_core(tmp_path)
    call(core, "stop_server")
    assert core.store is not None
    core.store.append(
        {"seq": core.journal_seq + 1, "op": "delete_file", "args": {"file_id": "ghost"}, "at": START}, sync=True
    )
    core.store.append({"seq": core.journal_seq + 2, "op": "start_server", "args": {}, "at": START}, sync=True)
    recovered = open_core(tmp_path)
    assert "mock.journal_record_skipped" in events_logged(logs)
    assert recovered.world.server.running and recovered.journal_seq == core.journal_seq + 2
    recovered.close()


def test_records_already_in_the_snapshot_are_not_applied_twice(tmp_path: Path) -> None:
    core = open_core(tmp_path, min_interval=0.0)
    do_some_work(core, rounds=1)
    journal = tmp_path / JOURNAL_NAME
    old_records = journal.read_bytes()
    # A snapshot that lands but whose journal truncation does not (crash in between).
    call(core, "update_row", table_name="clients", row_id=next(iter(core.world.clients)), updated_data={"name": "z"})
    assert core.store is not None
    core.store.snapshot_due = lambda: True  # type: ignore[method-assign]
    core.tick()  # snapshot and truncation
    assert journal.stat().st_size == 0
    journal.write_bytes(old_records)
    recovered = open_core(tmp_path)
    assert state(recovered) == state(core)
    recovered.close()


def test_many_quick_writes_mean_few_snapshots(tmp_path: Path) -> None:
    core = open_core(tmp_path, min_interval=2.0)
    assert core.store is not None
    client_id = next(iter(core.world.clients))
    for n in range(200):
        call(core, "update_row", table_name="clients", row_id=client_id, updated_data={"name": f"name-{n}"})
    assert core.store.snapshots_written == 1  # writes alone only journal; snapshots happen on ticks
    started = time.monotonic()
    for n in range(200, 1000):
        call(core, "update_row", table_name="clients", row_id=client_id, updated_data={"name": f"name-{n}"})
        if n % 50 == 0:
            core.tick()
    elapsed = time.monotonic() - started
    # At most one snapshot per 2 s however many writes (typically none here: this takes < 2 s).
    assert core.store.snapshots_written <= 1 + 1 + int(elapsed / 2.0)
    assert core.store.records_appended >= 1000
    recovered = open_core(tmp_path)  # crash: nothing closed
    assert recovered.world.clients[client_id].name == "name-999"
    recovered.close()
    core.close()


def test_close_writes_a_final_snapshot_and_empties_the_journal(tmp_path: Path) -> None:
    core = open_core(tmp_path)
    call(core, "stop_server")
    assert (tmp_path / JOURNAL_NAME).stat().st_size > 0
    core.close()
    core.close()  # idempotent
    assert (tmp_path / JOURNAL_NAME).stat().st_size == 0
    assert core.store is not None and core.store.snapshots_written == 2
    assert open_core(tmp_path).world.server.running is False


# -- corruption --


def _valid_snapshot(tmp_path: Path) -> bytes:
    core = open_core(tmp_path)
    core.close()
    return (tmp_path / SNAPSHOT_NAME).read_bytes()


@pytest.mark.parametrize(
    "damage", ["garbage", "truncated", "other_format", "future_version", "missing_keys", "bad_rows", "aggregates_lie"]
)
def test_corrupt_snapshot_is_moved_aside_and_replaced_by_fresh_data(
    tmp_path: Path, damage: str, logs: CapturingLogger
) -> None:
    good = _valid_snapshot(tmp_path)
    doc = msgpack.unpackb(good, raw=False, timestamp=3, strict_map_key=False)
    if damage == "garbage":
        bad = b"\xc1not msgpack at all"
    elif damage == "truncated":
        bad = good[: len(good) // 2]
    else:
        if damage == "other_format":
            doc["format"] = "something-else"
        elif damage == "future_version":
            doc["version"] = 2
        elif damage == "missing_keys":
            del doc["files"]
        elif damage == "bad_rows":
            doc["files"]["rows"][0] = ["short"]
        else:
            doc["clients"]["rows"][0][11] += 1  # files_count
        bad = msgpack.packb(doc, use_bin_type=True, datetime=True)
    (tmp_path / SNAPSHOT_NAME).write_bytes(bad)
    (tmp_path / JOURNAL_NAME).write_bytes(b"records of the lost world")
    core = open_core(tmp_path, seed=5, clients=7)
    assert len(core.world.clients) == 7  # a fresh dataset from the new arguments
    aside = list(tmp_path.glob(f"{SNAPSHOT_NAME}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == bad  # kept for inspection, never overwritten
    assert list(tmp_path.glob(f"{JOURNAL_NAME}.corrupt-*"))
    assert "mock.state_corrupt" in events_logged(logs)
    core.close()
    assert len(open_core(tmp_path).world.clients) == 7  # and the fresh data is now the stored data


def test_leftovers_of_an_interrupted_snapshot_are_removed(tmp_path: Path) -> None:
    good = _valid_snapshot(tmp_path)
    leftover = tmp_path / f".{SNAPSHOT_NAME}.x1y2z3.part"  # as runtime.fsutil.atomic_write names it
    leftover.write_bytes(good[:100])
    core = open_core(tmp_path)
    assert not leftover.exists() and len(core.world.clients) == 12
    core.close()


def test_a_journal_without_its_snapshot_is_set_aside(tmp_path: Path) -> None:
    core = open_core(tmp_path / "a")
    call(core, "stop_server")
    shutil.copy(tmp_path / "a" / JOURNAL_NAME, tmp_path / JOURNAL_NAME)
    fresh = open_core(tmp_path)
    assert fresh.world.server.running  # the stray record was not applied to a world it does not belong to
    assert list(tmp_path.glob(f"{JOURNAL_NAME}.corrupt-*"))
    fresh.close()


@pytest.mark.processes
def test_kill_9_in_a_real_process_loses_no_acknowledged_write(tmp_path: Path) -> None:
    child = f"""
import os, signal, sys
from datetime import datetime, timezone
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from actors.backends.api import RequestContext
from runtime.clock import SimulatedClock
from actors.mock.core import MockCore
core = MockCore.open({str(tmp_path)!r}, clock=SimulatedClock(datetime(2025, 3, 1, 12, tzinfo=timezone.utc)),
                     clients=12, min_snapshot_interval=3600)
ctx = RequestContext("child", None)
victim = next(iter(core.world.clients))
core.handle("delete_client", {{"client_id": victim}}, ctx)
core.tick()
core.handle("stop_server", {{}}, ctx)
print(victim, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    victim = proc.stdout.strip()
    recovered = open_core(tmp_path)
    assert victim and victim not in recovered.world.clients and len(recovered.world.clients) == 11
    assert recovered.world.server.running is False and recovered.journal_seq == 3
    recovered.close()
