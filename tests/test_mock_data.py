"""The mock's data model, generator, content and indexes (no core, no disk)."""

from __future__ import annotations

import hashlib
import ipaddress
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.backends import validation
from actors.backends.dbview import EDITABLE, path_key
from actors.backends.file_errors import verify_failed
from actors.backends.system_status import SystemStatusProbe
from actors.mock.content import BLOCK_SIZE, EMPTY_SHA256, content_sha256, read_content
from actors.mock.generator import MAX_FILE_SIZE, MockDataGenerator, category_of, platform_family
from actors.mock.index import SortedIndex
from actors.mock.records import CLIENT_COLUMNS, FILE_COLUMNS, Client, FileRecord, from_row, to_row
from actors.mock.state import MockWorld, generate_world
from protocol.catalogue import CLIENT_STATUSES, FILE_STATUSES
from runtime.clock import SimulatedClock
from tests.mock_invariants import assert_world_consistent

pytestmark = pytest.mark.timeout(60)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CLIENT_KEYS = {
    "id",
    "name",
    "hostname",
    "ip_address",
    "platform",
    "agent_version",
    "status",
    "last_seen",
    "connected_at",
    "created_at",
    "files_count",
    "total_size",
    "error_message",
}
FILE_KEYS = {
    "id",
    "client_id",
    "name",
    "path",
    "size",
    "sha256",
    "status",
    "created_at",
    "modified_at",
    "backup_count",
    "last_backup",
    "last_verified",
    "error_message",
}


def world(seed: int = 7, clients: int = 30, files: int | None = None) -> MockWorld:
    return generate_world(seed, SimulatedClock(START), clients, files)


# -- content --


def full_content(seed: int, file_id: str, version: int, size: int) -> bytes:
    return read_content(seed, file_id, version, size, 0, size)


@pytest.mark.parametrize("size", [0, 1, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 65536, 65537, 300_001])
def test_content_hash_is_the_real_sha256_of_the_bytes(size: int) -> None:
    data = full_content(3, "f-1", 0, size)
    assert len(data) == size
    assert content_sha256(3, "f-1", 0, size) == hashlib.sha256(data).hexdigest()


def test_content_depends_on_seed_id_and_version() -> None:
    base = full_content(1, "a", 0, 4000)
    assert full_content(1, "a", 0, 4000) == base
    assert full_content(2, "a", 0, 4000) != base
    assert full_content(1, "b", 0, 4000) != base
    assert full_content(1, "a", 1, 4000) != base
    assert content_sha256(1, "a", 0, 0) == EMPTY_SHA256


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 20_000), offset=st.integers(0, 25_000), length=st.integers(0, 9_000))
def test_read_at_any_offset_is_a_slice_of_the_whole(size: int, offset: int, length: int) -> None:
    whole = full_content(9, "x", 2, size)
    assert read_content(9, "x", 2, size, offset, length) == whole[offset : offset + length]


def test_read_content_rejects_negative_ranges() -> None:
    with pytest.raises(ValueError):
        read_content(1, "a", 0, 10, -1, 5)


# -- generator --


def test_generator_is_deterministic() -> None:
    a, b = world(seed=11), world(seed=11)
    assert [c.to_dict() for c in a.clients.values()] == [c.to_dict() for c in b.clients.values()]
    assert [f.to_dict() for f in a.files.values()] == [f.to_dict() for f in b.files.values()]
    assert a.rng.getstate() == b.rng.getstate()
    c = world(seed=12)
    assert [x.name for x in c.clients.values()] != [x.name for x in a.clients.values()]


def test_clients_are_realistic_and_consistent() -> None:
    w = world(clients=200)
    names = [c.name for c in w.clients.values()]
    assert len(set(names)) == len(names)
    ips = [c.ip_address for c in w.clients.values()]
    assert len(set(ips)) == len(ips)
    for client in w.clients.values():
        assert set(client.to_dict()) == CLIENT_KEYS
        assert ipaddress.ip_address(client.ip_address).is_private
        assert client.status in CLIENT_STATUSES
        assert (client.connected_at is not None) == (client.status == "connected")
        assert (client.error_message is not None) == (client.status == "error")
        assert client.created_at <= client.last_seen <= START
        assert client.platform.split()[0] in {"Windows", "macOS", "Ubuntu", "Debian", "Rocky", "Fedora"}
        assert client.agent_version.count(".") == 2
        # The generated values are ones the shared rules accept (an edit to them must be possible).
        for column, check in EDITABLE["clients"].items():
            assert check(getattr(client, column)) is None, (column, getattr(client, column))
        for tz_value in (client.last_seen, client.created_at):
            assert tz_value.tzinfo is not None
    assert {c.status for c in w.clients.values()} == set(CLIENT_STATUSES)


def test_files_have_platform_paths_and_honest_hashes() -> None:
    w = world(clients=60)
    statuses = set()
    for record in w.files.values():
        assert set(record.to_dict()) == FILE_KEYS
        assert validation.client_path(record.path) is None and validation.file_name(record.name) is None
        client = w.clients[record.client_id]
        family = platform_family(client)
        if family.startswith("windows"):
            assert record.path[1:3] == ":\\" and record.path.endswith("\\" + record.name)
        else:
            assert record.path.startswith("/") and record.path.endswith("/" + record.name)
        if family == "macos":
            assert record.path.startswith("/Users/")
        actual = content_sha256(w.seed, record.id, record.content_version, record.size)
        # Only files whose verification failed carry a hash their bytes no longer have.
        assert (actual == record.sha256) == (record.status != "error")
        if record.status == "error":  # the failed verification's reason names what the bytes hash to
            assert record.error_message == verify_failed(record.sha256, actual)
        else:
            assert record.error_message is None
        assert record.created_at <= record.modified_at <= START
        assert (record.last_verified is not None) == (record.status in ("verified", "error"))
        statuses.add(record.status)
    assert statuses <= set(FILE_STATUSES) and {"uploaded", "verified"} <= statuses
    paths = [(f.client_id, path_key(f.path)) for f in w.files.values()]
    assert len(set(paths)) == len(paths)


def test_default_file_count_is_about_twenty_per_client() -> None:
    w = world(clients=100)
    counts = [c.files_count for c in w.clients.values()]
    assert min(counts) >= 8 and max(counts) <= 40
    assert 14 <= sum(counts) / len(counts) <= 26
    assert w.target_files == len(w.files)
    # Mostly small files, a long tail, and a dataset of tens of MB rather than GB.
    sizes = sorted(f.size for f in w.files.values())
    assert sizes[len(sizes) // 2] < 64 * 1024
    assert sizes[-1] <= MAX_FILE_SIZE
    assert w.storage_used < 300 * 1024 * 1024
    assert_world_consistent(w)


@pytest.mark.parametrize("files", [0, 1, 7, 500])
def test_exact_file_count(files: int) -> None:
    w = world(clients=13, files=files)
    assert len(w.files) == files == sum(c.files_count for c in w.clients.values())
    assert_world_consistent(w)


def test_no_clients_means_no_files() -> None:
    w = world(clients=0, files=10)
    assert len(w.clients) == 0 and len(w.files) == 0


def test_new_upload_is_empty_and_uploading() -> None:
    w = world(clients=5)
    client = next(iter(w.clients.values()))
    record = w.gen.new_upload(client, START, w.taken_paths)
    assert record.status == "uploading" and record.size == 0 and record.sha256 == EMPTY_SHA256
    assert record.last_backup == START and record.backup_count == 0
    assert w.gen.next_size(record) > 0
    assert category_of("x.tar.gz") == "archive" and category_of("a.docx") == "doc" and category_of("noext") == "text"


def test_rows_round_trip() -> None:
    w = world(clients=3)
    client = next(iter(w.clients.values()))
    record = next(iter(w.files.values()))
    assert from_row(Client, to_row(client, CLIENT_COLUMNS), CLIENT_COLUMNS).to_dict() == client.to_dict()
    back = from_row(FileRecord, to_row(record, FILE_COLUMNS), FILE_COLUMNS)
    assert back.to_dict() == record.to_dict() and back.content_version == record.content_version
    with pytest.raises(ValueError):
        from_row(Client, ["too", "short"], CLIENT_COLUMNS)


def test_generator_draws_only_from_its_rng() -> None:
    a = MockDataGenerator(random.Random(5), 5).make_clients(20, START)
    random.seed(999)  # the global RNG must not matter
    b = MockDataGenerator(random.Random(5), 5).make_clients(20, START)
    assert [c.to_dict() for c in a] == [c.to_dict() for c in b]


# -- sorted index --


class _Rec:
    def __init__(self, id: str, key: int) -> None:
        self.id = id
        self.key = key


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "del", "move"]), st.integers(0, 30), st.integers(0, 5)), max_size=80))
def test_sorted_index_stays_equal_to_a_fresh_sort(ops: list[tuple[str, int, int]]) -> None:
    records: dict[str, _Rec] = {}
    index: SortedIndex[_Rec] = SortedIndex(lambda r: r.key, records.values)
    index.page(0, 1)  # build it, so every change below is incremental
    for action, n, key in ops:
        rid = f"r{n}"
        if action == "add" and rid not in records:
            records[rid] = _Rec(rid, key)
            index.add(records[rid])
        elif action == "del" and rid in records:
            index.discard(records[rid])
            del records[rid]
        elif action == "move" and rid in records:
            index.discard(records[rid])
            records[rid].key = key
            index.add(records[rid])
    expected = sorted(records.values(), key=lambda r: (r.key, r.id))
    assert list(index.records()) == expected
    assert list(index.records(descending=True)) == expected[::-1]
    assert index.page(2, 3) == expected[2:5]
    assert index.page(2, 3, descending=True) == expected[::-1][2:5]


# -- system status --


def test_system_status_shape(tmp_path: Path) -> None:
    probe = SystemStatusProbe(tmp_path / "not" / "yet")
    status = probe.collect(START)
    assert set(status) == {
        "hostname",
        "platform",
        "cpu_percent",
        "cpu_count",
        "load_average",
        "memory",
        "disk",
        "boot_time",
        "timestamp",
    }
    assert set(status["memory"]) == {"total", "available", "used", "percent"}
    assert set(status["disk"]) == {"path", "total", "used", "free", "percent"}
    assert Path(status["disk"]["path"]) == tmp_path
    assert len(status["load_average"]) == 3 and status["cpu_count"] >= 1
    assert status["timestamp"] == START and status["boot_time"].tzinfo is not None
