"""The mock world's invariants, recomputed the slow way: the tests' oracle for its incremental aggregates."""

from __future__ import annotations

from actors.mock.history import SNAPSHOTS_PER_CLIENT, VERSIONS_PER_FILE
from actors.mock.state import MockWorld
from protocol.catalogue import CLIENT_STATUSES, FILE_STATUSES
from protocol.catalogue_snapshots import SNAPSHOT_STATUSES


def assert_world_consistent(world: MockWorld) -> None:
    """Recompute every aggregate the slow way and compare with the ones the world keeps incrementally."""
    total = 0
    for cid, client in world.clients.items():
        own = world.files_by_client[cid]
        size = sum(f.size for f in own.values())
        assert client.files_count == len(own), (client.name, client.files_count, len(own))
        assert client.total_size == size, (client.name, client.total_size, size)
        total += size
    assert total == world.storage_used, (total, world.storage_used)
    assert sum(len(v) for v in world.files_by_client.values()) == len(world.files)
    assert all(f.client_id in world.clients for f in world.files.values())
    for status in FILE_STATUSES:
        assert world.file_status_counts[status] == sum(1 for f in world.files.values() if f.status == status)
    for status in CLIENT_STATUSES:
        assert world.client_status_counts[status] == sum(1 for c in world.clients.values() if c.status == status)
    assert set(world.uploading) == {f.id for f in world.files.values() if f.status == "uploading"}
    # A file in error says why; no other file carries a reason.
    for f in world.files.values():
        assert bool(f.error_message) if f.status == "error" else f.error_message is None, (f.status, f.error_message)
    assert_history_consistent(world)


def assert_history_consistent(world: MockWorld) -> None:
    """Each run's counts, folders and versions agree with its entries and with the files they name."""
    history = world.history
    listed = [run_id for ids in history.by_client.values() for run_id in ids]
    assert sorted(listed) == sorted(history.runs) and len(set(listed)) == len(listed)
    for client_id, ids in history.by_client.items():
        assert client_id in world.clients and [int(i) for i in ids] == sorted(int(i) for i in ids)
        assert len(ids) <= SNAPSHOTS_PER_CLIENT
    assert {r.id for r in history.runs.values() if r.status == "running"} == {r.id for r in history.open.values()}
    for run in history.runs.values():
        assert run.status in SNAPSHOT_STATUSES and all(c in ("new", "changed") for c in run.changes.values())
        if run.status == "running":
            continue
        assert run.ended_at is not None and run.ended_at >= run.started_at
        snapshot = run.to_dict()
        assert snapshot["files_total"] == len(run.entries) == run.folders["/"].files
        assert snapshot["bytes_total"] == sum(size for _, _, size in run.entries.values()) == run.folders["/"].size
        for change in ("new", "changed"):
            held = [run.entries[p][2] for p, c in run.changes.items() if c == change]
            assert (snapshot[f"files_{change}"], snapshot[f"bytes_{change}"]) == (len(held), sum(held))
    assert all(f in world.files and f not in history.versions for f in history.origin)
    assert all(run_id in history.runs or int(run_id) < history.next_id for run_id in history.origin.values())
    for file_id, kept in history.versions.items():
        record = world.files[file_id]  # a deleted file's versions go with it
        numbers = [v.number for v in kept]
        assert numbers == sorted(set(numbers)) and len(kept) <= VERSIONS_PER_FILE
        if kept and record.backup_count:
            newest = kept[-1]
            assert (newest.number, newest.size, newest.sha256) == (record.backup_count, record.size, record.sha256)
