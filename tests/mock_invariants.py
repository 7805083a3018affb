"""The mock world's invariants, recomputed the slow way: the tests' oracle for its incremental aggregates."""

from __future__ import annotations

from actors.mock.state import MockWorld
from protocol.catalogue import CLIENT_STATUSES, FILE_STATUSES


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
