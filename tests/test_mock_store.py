"""Persistence of the mock: snapshot, journal, crash recovery, corruption, debouncing."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgpack
import pytest
from structlog.testing import CapturingLogger

from actors.backends.api import RequestContext
from actors.mock import core as mock_core
from actors.mock import journal as journal_format
from actors.mock import store as mock_store
from actors.mock.core import MockCore
from actors.mock.store import (
    JOURNAL_NAME,
    PREVIOUS_JOURNAL_NAME,
    PREVIOUS_SNAPSHOT_NAME,
    SNAPSHOT_NAME,
    encode_world,
)
from protocol.errors import ProtocolError
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


def logged(capture: CapturingLogger, event: str) -> dict[str, Any]:
    """The fields of the one log line ``event``."""
    (line,) = [call.kwargs for call in capture.calls if call.args[0] == event]
    return line


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


def test_torn_journal_tail_is_cut_off_after_a_copy_is_kept(tmp_path: Path, logs: CapturingLogger) -> None:
    core = open_core(tmp_path)
    victim = next(iter(core.world.files.values()))
    call(core, "update_row", table_name="files", row_id=victim.id, updated_data={"name": "replayed.txt"})
    journal = tmp_path / JOURNAL_NAME
    intact = journal.stat().st_size
    call(core, "delete_file", file_id=victim.id)
    whole = journal.read_bytes()
    torn = whole[: intact + (len(whole) - intact) // 2]  # the last write was half on disk
    journal.write_bytes(torn)
    recovered = open_core(tmp_path)
    assert recovered.world.files[victim.id].name == "replayed.txt"  # the intact record was replayed
    assert logged(logs, "mock.journal_recovered")["records_lost"] == 1
    assert journal.stat().st_size == intact  # the damage is cut off, so new records stay readable
    (copy,) = tmp_path.glob(f"{JOURNAL_NAME}.damaged-*")
    assert copy.read_bytes() == torn  # what was on disk before the repair, for inspection
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
    assert "mock.journal_recovered" in events_logged(logs)
    recovered.close()


def rename_each_client(core: MockCore) -> dict[str, str]:
    """One acknowledged write per client (a record each, independent of the others); the names given."""
    names = {}
    for n, client_id in enumerate(sorted(core.world.clients)):
        names[client_id] = f"renamed-{n}"
        call(core, "update_row", table_name="clients", row_id=client_id, updated_data={"name": names[client_id]})
    return names


def record_spans(journal: Path) -> list[tuple[int, int]]:
    """(start, end) of each record in a journal file of the current format."""
    data = journal.read_bytes()
    spans, pos = [], len(journal_format.FILE_HEADER)
    while pos < len(data):
        length = int.from_bytes(data[pos + 4 : pos + 8], "big")
        spans.append((pos, pos + 16 + length))
        pos += 16 + length
    return spans


@pytest.mark.parametrize("where", ["payload", "length", "sync"])
def test_one_damaged_record_in_the_middle_costs_only_that_record(
    tmp_path: Path, where: str, logs: CapturingLogger
) -> None:
    core = open_core(tmp_path, clients=40)
    names = rename_each_client(core)
    journal = tmp_path / JOURNAL_NAME
    spans = record_spans(journal)
    assert len(spans) == len(names) == 40
    victim_index = 20
    start, end = spans[victim_index]
    offset = {"payload": (start + 16 + end) // 2, "length": start + 6, "sync": start + 1}[where]
    data = bytearray(journal.read_bytes())
    data[offset] ^= 0x5A
    journal.write_bytes(bytes(data))
    recovered = open_core(tmp_path)  # a crash: nothing was closed
    victim = sorted(names)[victim_index]
    kept = {cid: c.name for cid, c in recovered.world.clients.items() if cid != victim}
    assert kept == {cid: name for cid, name in names.items() if cid != victim}  # every record after it too
    assert recovered.world.clients[victim].name != names[victim]
    assert recovered.journal_seq == core.journal_seq
    line = logged(logs, "mock.journal_recovered")
    assert (line["records_kept"], line["records_lost"]) == (39, 1)
    assert (tmp_path / line["copy"]).read_bytes() == bytes(data)
    assert_world_consistent(recovered.world)
    # The repaired journal is whole again: a later open finds no damage and the same state.
    recovered.close()
    again = open_core(tmp_path)
    assert {cid: c.name for cid, c in again.world.clients.items() if cid != victim} == kept
    again.close()


def test_a_journal_of_the_first_format_is_read_and_migrated(tmp_path: Path, logs: CapturingLogger) -> None:
    crashed = open_core(tmp_path)
    do_some_work(crashed, rounds=2)
    journal = tmp_path / JOURNAL_NAME
    records = journal_format.parse(journal.read_bytes(), mock_store.unpack).records
    assert len(records) == crashed.journal_seq
    # The first format: no file header, each record >II (length, crc32) then its msgpack payload.
    payloads = [mock_store.pack(r) for r in records]
    legacy = b"".join(struct.pack(">II", len(p), zlib.crc32(p)) + p for p in payloads)
    journal.write_bytes(legacy)
    recovered = open_core(tmp_path)
    assert state(recovered) == state(crashed) and recovered.journal_seq == crashed.journal_seq
    assert logged(logs, "mock.journal_migrated")["from_version"] == 1
    assert journal.read_bytes() == journal_format.encode_file(records, mock_store.pack)
    call(recovered, "stop_server")  # appends go behind records of the same format
    again = open_core(tmp_path)
    assert again.world.server.running is False and again.journal_seq == crashed.journal_seq + 1
    again.close()


def test_a_damaged_payload_in_a_first_format_journal_is_skipped(tmp_path: Path, logs: CapturingLogger) -> None:
    core = open_core(tmp_path, clients=10)
    names = rename_each_client(core)
    journal = tmp_path / JOURNAL_NAME
    records = journal_format.parse(journal.read_bytes(), mock_store.unpack).records
    frames = []
    for r in records:
        p = mock_store.pack(r)
        frames.append(bytearray(struct.pack(">II", len(p), zlib.crc32(p)) + p))
    frames[4][-2] ^= 0xFF  # inside the fifth payload: its length is intact
    journal.write_bytes(b"".join(frames))
    recovered = open_core(tmp_path)
    victim = sorted(names)[4]
    assert all(recovered.world.clients[cid].name == name for cid, name in names.items() if cid != victim)
    assert logged(logs, "mock.journal_recovered")["records_lost"] == 1
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
    core.tick()  # snapshot and a new journal segment
    assert journal.read_bytes() == journal_format.FILE_HEADER
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


def test_close_writes_a_final_snapshot_and_starts_a_new_journal(tmp_path: Path) -> None:
    core = open_core(tmp_path)
    call(core, "stop_server")
    assert (tmp_path / JOURNAL_NAME).stat().st_size > len(journal_format.FILE_HEADER)
    core.close()
    core.close()  # idempotent
    assert (tmp_path / JOURNAL_NAME).read_bytes() == journal_format.FILE_HEADER
    # The records since the previous snapshot are kept beside it until the next snapshot.
    assert (tmp_path / PREVIOUS_JOURNAL_NAME).stat().st_size > len(journal_format.FILE_HEADER)
    assert (tmp_path / PREVIOUS_SNAPSHOT_NAME).exists()
    assert core.store is not None and core.store.snapshots_written == 2
    assert open_core(tmp_path).world.server.running is False


# -- corruption --


def _valid_snapshot(tmp_path: Path) -> bytes:
    core = open_core(tmp_path)
    core.close()
    return (tmp_path / SNAPSHOT_NAME).read_bytes()


def damaged_snapshot(good: bytes, damage: str) -> bytes:
    doc = msgpack.unpackb(good, raw=False, timestamp=3, strict_map_key=False)
    if damage == "garbage":
        return b"\xc1not msgpack at all"
    if damage == "truncated":
        return good[: len(good) // 2]
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
    packed: bytes = msgpack.packb(doc, use_bin_type=True, datetime=True)
    return packed


DAMAGES = ["garbage", "truncated", "other_format", "future_version", "missing_keys", "bad_rows", "aggregates_lie"]


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_snapshot_falls_back_to_the_previous_one_plus_the_journal(
    tmp_path: Path, damage: str, logs: CapturingLogger
) -> None:
    crashed = open_core(tmp_path)
    assert crashed.store is not None
    do_some_work(crashed, rounds=1)
    crashed.store.snapshot_due = lambda: True  # type: ignore[method-assign]
    crashed.tick()  # generation 2; generation 1 becomes the previous one
    crashed.store.snapshot_due = lambda: False  # type: ignore[method-assign]
    do_some_work(crashed, rounds=2)  # acknowledged writes after the newest snapshot
    bad = damaged_snapshot((tmp_path / SNAPSHOT_NAME).read_bytes(), damage)
    (tmp_path / SNAPSHOT_NAME).write_bytes(bad)
    recovered = open_core(tmp_path, seed=5, clients=7)  # a crash: nothing was closed
    assert state(recovered) == state(crashed)  # every acknowledged write, none lost, no fresh data
    assert recovered.journal_seq == crashed.journal_seq
    (aside,) = tmp_path.glob(f"{SNAPSHOT_NAME}.corrupt-*")
    assert aside.read_bytes() == bad  # kept for inspection, never overwritten
    assert logged(logs, "mock.state_corrupt")["generation"] == "current"
    line = logged(logs, "mock.state_recovered")
    assert (line["snapshot"], line["records_lost"]) == (PREVIOUS_SNAPSHOT_NAME, 0) and line["records_replayed"] > 0
    # The recovered world became the newest generation at once; it reopens without any fallback.
    recovered.close()
    again = open_core(tmp_path)
    assert state(again) == state(crashed)
    again.close()


def test_a_crash_between_the_snapshot_renames_loses_nothing(tmp_path: Path) -> None:
    crashed = open_core(tmp_path)
    do_some_work(crashed, rounds=2)
    assert crashed.store is not None
    crashed.store.write_snapshot(encode_world(crashed.world, crashed.journal_seq))
    call(crashed, "stop_server")
    # As if the process died after moving N-1 aside and before N got its name.
    (tmp_path / SNAPSHOT_NAME).replace(tmp_path / PREVIOUS_SNAPSHOT_NAME)
    recovered = open_core(tmp_path)
    assert state(recovered) == state(crashed)
    recovered.close()


def test_both_generations_damaged_starts_afresh_and_says_what_was_lost(tmp_path: Path, logs: CapturingLogger) -> None:
    core = open_core(tmp_path)
    call(core, "stop_server")
    core.close()  # two generations now
    for name in (SNAPSHOT_NAME, PREVIOUS_SNAPSHOT_NAME):
        (tmp_path / name).write_bytes(b"\xc1 damaged")
    fresh = open_core(tmp_path, seed=5, clients=7)
    assert len(fresh.world.clients) == 7  # nothing else left to start from
    assert len(list(tmp_path.glob("mock_state*.corrupt-*"))) == 2
    assert list(tmp_path.glob(f"{PREVIOUS_JOURNAL_NAME}.corrupt-*"))
    assert logged(logs, "mock.state_lost")["records_lost"] == 1
    fresh.close()
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


@pytest.mark.parametrize("error, code", [(errno.ENOSPC, "STORAGE_FULL"), (errno.EIO, "INTERNAL")])
def test_a_write_the_journal_cannot_keep_is_refused_with_its_cause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int, code: str
) -> None:
    core = open_core(tmp_path)
    assert core.store is not None

    def failing_append(record: dict[str, Any], *, sync: bool) -> None:
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(core.store, "append", failing_append)
    with pytest.raises(ProtocolError) as info:
        core.handle("stop_server", {}, CTX)
    assert info.value.code.value == code and "could not be made durable" in info.value.message
    core.close()
