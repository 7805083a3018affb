"""The mock's snapshots: generated with its data, made by its ticker, kept across restarts, older states loadable."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actors.backends.api import RequestContext
from actors.mock import history_data
from actors.mock.core import MockCore
from actors.mock.history import COUNT_FIELDS
from actors.mock.store import pack, unpack
from protocol.streaming import CHUNK_SIZE
from runtime.clock import SimulatedClock
from tests.mock_invariants import assert_world_consistent

pytestmark = pytest.mark.timeout(60)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CTX = RequestContext("t", None)


def open_core(data_dir: Path | None = None) -> MockCore:
    return MockCore.open(data_dir, seed=7, clock=SimulatedClock(START), clients=12, files=240)


def call(core: MockCore, op: str, **args: Any) -> Any:
    reply = core.handle(op, args, CTX)
    assert isinstance(reply, dict) and reply["success"], reply
    return reply["data"]


def newest_run(core: MockCore, client_id: str) -> dict[str, Any] | None:
    items = call(core, "list_snapshots", client_id=client_id, limit=1)["items"]
    return items[0] if items else None


def walk(core: MockCore, snapshot_id: str, path: str = "/") -> list[dict[str, Any]]:
    """Every file of a snapshot's tree, folder by folder."""
    files: list[dict[str, Any]] = []
    for entry in call(core, "browse_snapshot", snapshot_id=snapshot_id, path=path)["items"]:
        files += walk(core, snapshot_id, entry["path"]) if entry["type"] == "dir" else [entry]
    return files


def test_a_fresh_dataset_has_each_clients_files_in_its_newest_snapshot() -> None:
    core = open_core()
    world = core.world
    assert_world_consistent(world)
    for client in world.clients.values():
        stored = {f.path for f in world.files_by_client[client.id].values() if f.backup_count > 0}
        run = newest_run(core, client.id)
        if not stored:
            assert run is None
            continue
        assert run is not None and run["status"] in ("complete", "partial") and run["files_total"] == len(stored)
        tree = walk(core, run["id"])
        assert {e["path"] for e in tree} == stored
        folders = call(core, "browse_snapshot", snapshot_id=run["id"])["items"]
        assert sum(f["size"] for f in folders) == run["bytes_total"] and sum(f["files"] for f in folders) == len(stored)


def test_the_ticker_makes_runs_whose_versions_download_intact() -> None:
    core = open_core()
    before = {r.id for r in core.world.history.runs.values()}
    for _ in range(400):
        core.tick()
    world = core.world
    assert_world_consistent(world)
    made = [r for r in world.history.runs.values() if r.id not in before]
    assert made and {r.status for r in made} >= {"complete"}
    changed = [r for r in made if r.status != "running" and r.changes]
    assert changed, "some runs stored new versions"
    run = changed[-1]
    path, change = next(iter(run.changes.items()))
    file_id, number, size = run.entries[path]
    versions = call(core, "get_file_versions", file_id=file_id)["items"]
    held = next(v for v in versions if v["version"] == number)
    assert (held["size"], held["snapshot_id"]) == (size, run.id)
    assert (change == "new") == (versions[-1]["version"] == number)
    for v in versions:
        # allow_damaged: the ticker corrupts stored bytes on purpose now and then; the final reply says so.
        args = {"file_id": file_id, "destination_path": "x", "version": v["version"], "allow_damaged": True}
        stream = core.handle("download_file", args, CTX)
        assert not isinstance(stream, dict)
        data = b"".join(stream.read_at(o, CHUNK_SIZE) for o in range(0, stream.total, CHUNK_SIZE))
        damaged = stream.final()["data"]["damaged"]
        assert (hashlib.sha256(data).hexdigest() == v["sha256"]) != damaged and len(data) == v["size"]


def test_history_survives_a_restart_and_an_older_state_loads_without_one(tmp_path: Path) -> None:
    core = open_core(tmp_path)
    for _ in range(100):
        core.tick()
    client_id = next(iter(core.world.history.by_client))
    runs = call(core, "list_snapshots", client_id=client_id)
    core.close()
    again = open_core(tmp_path)
    assert call(again, "list_snapshots", client_id=client_id) == runs
    again.close()
    # A state written before runs were kept: no history key, and no journal since it.
    state = tmp_path / "mock_state.msgpack"
    doc = unpack(state.read_bytes())
    del doc["history"]
    state.write_bytes(pack(doc))
    for name in ("mock_journal.log", "mock_journal.previous.log", "mock_state.previous.msgpack"):
        (tmp_path / name).unlink(missing_ok=True)
    old = open_core(tmp_path)
    assert call(old, "list_snapshots", client_id=client_id)["total"] == 0
    record = next(f for f in old.world.files.values() if f.backup_count > 0)
    (only,) = call(old, "get_file_versions", file_id=record.id)["items"]
    assert (only["version"], only["size"], only["sha256"], only["snapshot_id"]) == (
        record.backup_count,
        record.size,
        record.sha256,
        None,
    )
    assert_world_consistent(old.world)
    old.close()


def test_deleting_a_client_drops_its_runs() -> None:
    core = open_core()
    client_id = next(iter(core.world.history.by_client))
    call(core, "delete_client", client_id=client_id)
    assert client_id not in core.world.history.by_client
    assert all(r.client_id != client_id for r in core.world.history.runs.values())
    assert_world_consistent(core.world)


def test_the_history_rows_read_back_the_same_in_either_format() -> None:
    core = open_core()
    for _ in range(200):
        core.tick()
    history = core.world.history
    doc = history_data.encode(history)
    v1 = {**doc, "format": 1}
    v1["runs"] = [
        [
            r.id,
            r.client_id,
            r.status,
            r.started_at,
            r.ended_at,
            r.root,
            [r.counts[k] for k in COUNT_FIELDS],
            [[path, *entry] for path, entry in r.entries.items()],
            r.changes,
            [[path, f.files, f.size, f.change] for path, f in r.folders.items()],
            list(r.stored),
            list(r.failed),
        ]
        for r in (history.runs[i] for ids in history.by_client.values() for i in ids)
    ]
    for stored in (doc, v1):
        again = history_data.decode(unpack(pack(stored)))
        assert again.runs == history.runs and again.by_client == history.by_client
        assert again.open == history.open and again.origin == history.origin and again.versions == history.versions
