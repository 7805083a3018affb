"""MockCore in memory: every operation, its errors, events, evolution and determinism."""

from __future__ import annotations

import hashlib
import math
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.backends.api import RequestContext, StreamReply
from actors.mock import queries as mock_queries
from actors.mock.content import content_sha256
from actors.mock.core import MockCore
from actors.mock.records import ACTIVITY_LIMIT, LOG_LIMIT
from protocol.catalogue import BACKEND_OPERATIONS, CLIENT_SORTS, FILE_SORTS, REAL_ONLY_OPERATIONS
from protocol.codec import encode
from protocol.errors import ProtocolError
from protocol.shapes import SHAPE_BY_NAME
from protocol.streaming import CHUNK_SIZE
from protocol.tables import TABLE_BY_NAME
from runtime.clock import SimulatedClock
from tests.mock_invariants import assert_world_consistent

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parent.parent
START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CTX = RequestContext(request_id="test", session=None)


def make(seed: int = 42, clients: int = 12, files: int | None = None, tick: float = 3.0) -> MockCore:
    return MockCore.open(None, seed=seed, clock=SimulatedClock(START), clients=clients, files=files, tick_seconds=tick)


def call(core: MockCore, op: str, **args: Any) -> Any:
    reply = core.handle(op, args, CTX)
    assert isinstance(reply, dict) and reply["success"] is True and reply["mode"] == "mock", reply
    assert reply["timestamp"] == core.world.now()
    return reply["data"]


def code(core: MockCore, op: str, **args: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        core.handle(op, args, CTX)
    assert info.value.message
    return info.value.code.value


def all_clients(core: MockCore) -> list[dict[str, Any]]:
    return call(core, "get_clients", limit=10000)["items"]


def all_files(core: MockCore, **filters: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = call(core, "get_files", offset=len(items), limit=1000, filters=filters or None)
        items += page["items"]
        if len(items) >= page["total"]:
            return items


def assert_consistent(core: MockCore) -> None:
    """files_count/total_size and the server totals agree with the files, seen through the API."""
    assert_world_consistent(core.world)
    clients = all_clients(core)
    total_files = total_bytes = 0
    for client in clients:
        files = call(core, "get_client_files", client_id=client["id"])
        assert client["files_count"] == files["total"] == len(files["items"])
        assert client["total_size"] == sum(f["size"] for f in files["items"])
        total_files += client["files_count"]
        total_bytes += client["total_size"]
    status = call(core, "get_server_status")
    assert status["clients_total"] == len(clients)
    assert status["files_total"] == total_files == len(all_files(core))
    assert status["storage_used"] == total_bytes
    assert status["clients_connected"] == sum(c["status"] == "connected" for c in clients)
    assert status["active_transfers"] == len(all_files(core, status="uploading"))


def events(core: MockCore, topic: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    return [e for e in core.drain_events() if topic is None or e[0] == topic]


def connected_client(core: MockCore) -> dict[str, Any]:
    return next(c for c in all_clients(core) if c["status"] == "connected")


def file_of_status(core: MockCore, *statuses: str) -> dict[str, Any]:
    return next(f for f in all_files(core) if f["status"] in statuses and f["size"] > 0)


# -- basics --


def test_implements_every_backend_operation() -> None:
    core = make()
    assert core.name == "mock" and core.mode == "mock"
    assert sorted(core.operations()) == sorted(set(BACKEND_OPERATIONS) - REAL_ONLY_OPERATIONS)
    assert core.tick_interval() == 3.0
    assert core.drain_events() == []  # generation is not news


def test_unknown_operations_and_bad_args() -> None:
    core = make()
    assert code(core, "format_disk") == "UNKNOWN_OPERATION"
    assert code(core, "events_since", seq=0) == "UNKNOWN_OPERATION"  # the bridge's, not a backend's
    assert code(core, "get_clients", limit=0) == "BAD_REQUEST"
    assert code(core, "get_clients", sort="size") == "BAD_REQUEST"
    assert code(core, "delete_file") == "BAD_REQUEST"


def test_shapes_match_the_declared_ones() -> None:
    core = make()
    assert set(all_clients(core)[0]) == SHAPE_BY_NAME["Client"].field_names
    assert set(all_files(core)[0]) == SHAPE_BY_NAME["File"].field_names
    assert set(call(core, "get_recent_activity")["items"][0]) == SHAPE_BY_NAME["Activity"].field_names
    assert set(call(core, "get_logs")["items"][0]) == SHAPE_BY_NAME["LogEntry"].field_names
    assert set(call(core, "get_server_status")) == SHAPE_BY_NAME["ServerStatus"].field_names
    assert set(call(core, "get_system_status")) == SHAPE_BY_NAME["SystemStatus"].field_names
    pong = call(core, "test_connection")
    assert pong == {"pong": True, "backend": "mock", "server_time": START}


def test_reads_never_draw_from_the_rng() -> None:
    core = make()
    before = core.world.rng.getstate()
    client = all_clients(core)[0]
    reads: list[tuple[str, dict[str, Any]]] = [
        ("get_clients", {"search": "a"}),
        ("get_files", {"filters": {"search": "e", "sort": "-size"}}),
        ("get_client_details", {"client_id": client["id"]}),
        ("get_client_files", {"client_id": client["id"]}),
        ("get_database_info", {}),
        ("get_table_data", {"table_name": "files"}),
        ("get_logs", {"text": "x"}),
        ("get_recent_activity", {}),
        ("get_server_status", {}),
        ("test_connection", {}),
        ("resolve_client", {"client_id_or_name": client["name"]}),
    ]
    for op, args in reads:
        call(core, op, **args)
    assert core.world.rng.getstate() == before and core.drain_events() == []


# -- determinism --


def _script(core: MockCore) -> list[Any]:
    """A fixed sequence of calls and ticks; returns every reply, error and event."""
    out: list[Any] = []

    def do(op: str, **args: Any) -> Any:
        try:
            reply = core.handle(op, args, CTX)
        except ProtocolError as exc:
            out.append(("error", op, exc.code.value, exc.message))
            return None
        if isinstance(reply, StreamReply):
            out.append((op, reply.total, reply.read_at(0, reply.total), reply.final()))
            return reply
        out.append((op, reply))
        return reply["data"]

    clients = do("get_clients")["items"]
    for _ in range(15):
        core.tick()
    out.append(core.drain_events())
    files = do("get_files", offset=3, limit=40, filters={"sort": "-modified_at"})["items"]
    do("verify_file", file_id=files[0]["id"])
    do("download_file", file_id=files[1]["id"], destination_path="/tmp/x")
    do("delete_file", file_id=files[2]["id"])
    do("delete_file", file_id=files[2]["id"])
    do("update_row", table_name="clients", row_id=clients[1]["id"], updated_data={"name": "renamed"})
    do("update_row", table_name="files", row_id=files[3]["id"], updated_data={"sha256": "0" * 64})
    do("delete_client", client_id=clients[2]["id"])
    connected = list(do("get_clients", status="connected")["items"])
    if connected:
        do("disconnect_client", client_id=connected[0]["id"])
    do("stop_server")
    for _ in range(10):
        core.tick()
    do("start_server")
    for _ in range(25):
        core.tick()
    out.append(core.drain_events())
    for op in ("get_recent_activity", "get_server_status", "get_database_info", "get_logs", "test_connection"):
        do(op)
    do("get_table_data", table_name="activity", offset=5, limit=50)
    do("get_files", filters={"search": "e", "status": "uploaded"})
    out.append(core.drain_events())
    return out


def test_same_seed_and_clock_give_identical_replies_and_events() -> None:
    first, second = _script(make(seed=7)), _script(make(seed=7))
    assert first == second
    assert _script(make(seed=8)) != first


def _script_digest() -> str:
    return hashlib.sha256(encode(_script(make(seed=7)))).hexdigest()


@pytest.mark.processes
def test_determinism_does_not_depend_on_string_hashing() -> None:
    """Same script in processes with different PYTHONHASHSEED: no set/hash order leaks out."""
    program = "import tests.test_mock_core as t; print(t._script_digest())"
    digests = {
        subprocess.run(
            [sys.executable, "-c", program],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        )
        .stdout.strip()
        .splitlines()[-1]
        for hash_seed in ("1", "2")
    }
    assert digests == {_script_digest()}


# -- clients --


def test_get_clients_filters_sorts_and_pages() -> None:
    core = make(clients=40)
    everyone = all_clients(core)
    assert len(everyone) == 40 and call(core, "get_clients")["total"] == 40
    probe = everyone[5]
    needle = probe["name"][1:5].upper()
    found = call(core, "get_clients", search=needle)
    expected = [c for c in everyone if needle.lower() in (c["name"] + c["hostname"] + c["ip_address"]).lower()]
    assert found["total"] == len(expected) and probe in found["items"]
    by_ip = call(core, "get_clients", search=probe["ip_address"])["items"]
    assert probe in by_ip
    for status in ("connected", "disconnected", "error"):
        got = call(core, "get_clients", status=status, limit=10000)
        assert got["total"] == sum(c["status"] == status for c in everyone)
        assert all(c["status"] == status for c in got["items"])
    for sort in CLIENT_SORTS:
        items = call(core, "get_clients", sort=sort)["items"]
        field = sort.lstrip("-")
        keys = [c[field].lower() if field == "name" else c[field] for c in items]
        assert keys == sorted(keys, reverse=sort.startswith("-")), sort
        page = call(core, "get_clients", sort=sort, offset=7, limit=9)
        assert page["items"] == items[7:16] and (page["offset"], page["limit"], page["total"]) == (7, 9, 40)
    assert call(core, "get_clients", offset=100)["items"] == []


def test_client_details_and_resolve() -> None:
    core = make()
    client = max(all_clients(core), key=lambda c: c["files_count"])
    details = call(core, "get_client_details", client_id=client["id"])
    assert details["client"] == client
    summary = details["files_summary"]
    assert summary["count"] == client["files_count"] and summary["total_size"] == client["total_size"]
    assert sum(summary["by_status"].values()) == client["files_count"]
    recent = details["recent_files"]
    assert 0 < len(recent) <= 20 and all(f["client_id"] == client["id"] for f in recent)
    assert [f["modified_at"] for f in recent] == sorted((f["modified_at"] for f in recent), reverse=True)
    assert code(core, "get_client_details", client_id="nope") == "NOT_FOUND"

    assert call(core, "resolve_client", client_id_or_name=client["id"]) == client
    assert call(core, "resolve_client", client_id_or_name=client["name"].upper()) == client
    assert code(core, "resolve_client", client_id_or_name="no-such-host") == "NOT_FOUND"
    other = next(c for c in all_clients(core) if c["id"] != client["id"])
    call(core, "update_row", table_name="clients", row_id=other["id"], updated_data={"name": client["name"].upper()})
    assert code(core, "resolve_client", client_id_or_name=client["name"]) == "CONFLICT"
    assert call(core, "resolve_client", client_id_or_name=other["id"])["name"] == client["name"].upper()


def test_disconnect_client() -> None:
    core = make()
    client = connected_client(core)
    data = call(core, "disconnect_client", client_id=client["id"])
    assert data["client"]["status"] == "disconnected" and data["client"]["connected_at"] is None
    assert data["client"]["last_seen"] == START
    topics = [t for t, _ in core.drain_events()]
    assert topics == ["client.changed", "activity", "server.changed"]
    assert code(core, "disconnect_client", client_id=client["id"]) == "CONFLICT"
    assert code(core, "disconnect_client", client_id="ghost") == "NOT_FOUND"
    connected = sum(c["status"] == "connected" for c in all_clients(core))
    assert call(core, "get_server_status")["clients_connected"] == connected


def test_delete_client_cascades() -> None:
    core = make()
    client = max(all_clients(core), key=lambda c: c["files_count"])
    own = {f["id"] for f in call(core, "get_client_files", client_id=client["id"])["items"]}
    before = call(core, "get_server_status")
    data = call(core, "delete_client", client_id=client["id"])
    assert data == {"client_id": client["id"], "deleted_files": len(own), "freed_bytes": client["total_size"]}
    after = call(core, "get_server_status")
    assert after["clients_total"] == before["clients_total"] - 1
    assert after["files_total"] == before["files_total"] - len(own)
    assert after["storage_used"] == before["storage_used"] - client["total_size"]
    assert not own & {f["id"] for f in all_files(core)}
    assert code(core, "get_files", client_id=client["id"]) == "NOT_FOUND"
    assert code(core, "get_client_files", client_id=client["id"]) == "NOT_FOUND"
    assert code(core, "delete_client", client_id=client["id"]) == "NOT_FOUND"
    evs = core.drain_events()
    deleted_files = [d["file_id"] for t, d in evs if t == "file.changed" and d["change"] == "deleted"]
    assert set(deleted_files) == own
    assert ("client.changed", {"client_id": client["id"], "change": "deleted", "client": None}) in evs
    assert evs[-2][0] == "activity" and evs[-2][1]["type"] == "client_deleted" and evs[-1][0] == "server.changed"
    assert_consistent(core)


def test_delete_file() -> None:
    core = make()
    record = file_of_status(core, "uploaded", "verified")
    owner = call(core, "get_client_details", client_id=record["client_id"])["client"]
    data = call(core, "delete_file", file_id=record["id"])
    assert data == {"file_id": record["id"], "client_id": record["client_id"], "freed_bytes": record["size"]}
    now_owner = call(core, "get_client_details", client_id=record["client_id"])["client"]
    assert now_owner["files_count"] == owner["files_count"] - 1
    assert now_owner["total_size"] == owner["total_size"] - record["size"]
    assert [t for t, _ in core.drain_events()] == ["file.changed", "client.changed", "activity", "server.changed"]
    assert code(core, "delete_file", file_id=record["id"]) == "NOT_FOUND"
    assert code(core, "verify_file", file_id=record["id"]) == "NOT_FOUND"
    assert code(core, "download_file", file_id=record["id"], destination_path="/x") == "NOT_FOUND"


# -- files --


def test_get_files_filters_sorts_and_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    core = make(clients=20)
    everything = all_files(core)
    assert len(everything) == call(core, "get_server_status")["files_total"]
    for sort in FILE_SORTS:
        items = call(core, "get_files", limit=1000, filters={"sort": sort})["items"]
        field = sort.lstrip("-")
        keys = [f[field].lower() if field in ("name", "path") else f[field] for f in items]
        assert keys == sorted(keys, reverse=sort.startswith("-")), sort
    default = call(core, "get_files", limit=1000)["items"]
    assert default == call(core, "get_files", limit=1000, filters={"sort": "name"})["items"]

    def brute(status: str | None, search: str, low: int | None, high: int | None) -> list[str]:
        return [
            f["id"]
            for f in everything
            if (status is None or f["status"] == status)
            and (search.lower() in (f["name"] + "\n" + f["path"]).lower())
            and (low is None or f["size"] >= low)
            and (high is None or f["size"] <= high)
        ]

    cases = [
        ("verified", "", None, None),
        (None, "REPORT", None, None),
        (None, "", 1000, 50_000),
        ("uploaded", "s", 100, None),
        (None, "zzz-no-match", None, None),
    ]
    for status, search, low, high in cases:
        filters = {"status": status, "search": search, "min_size": low, "max_size": high, "sort": "-size"}
        got = call(core, "get_files", limit=1000, filters=filters)
        assert sorted(f["id"] for f in got["items"]) == sorted(brute(status, search, low, high))
        assert got["total"] == len(got["items"])
        # The sorted-index path (used for large match sets) must give the same order.
        monkeypatch.setattr(mock_queries, "SORT_DIRECTLY", 0)
        assert call(core, "get_files", limit=1000, filters=filters) == got
        monkeypatch.undo()
    page = call(core, "get_files", offset=10, limit=5, filters={"search": "e"})
    assert page["items"] == call(core, "get_files", limit=1000, filters={"search": "e"})["items"][10:15]

    client = max(all_clients(core), key=lambda c: c["files_count"])
    own = call(core, "get_files", client_id=client["id"], limit=1000, filters={"sort": "-size"})
    assert own["total"] == client["files_count"]
    assert [f["size"] for f in own["items"]] == sorted((f["size"] for f in own["items"]), reverse=True)
    assert call(core, "get_client_files", client_id=client["id"])["total"] == client["files_count"]
    assert code(core, "get_files", client_id="ghost") == "NOT_FOUND"


@pytest.mark.parametrize(
    "filters",
    [
        {"colour": "red"},
        {"status": 3},
        {"status": "lost"},
        {"sort": "size!"},
        {"sort": 1},
        {"min_size": "10"},
        {"min_size": True},
        {"max_size": -1},
        {"search": ["a"]},
        {"min_size": 10, "max_size": 5},
    ],
)
def test_get_files_rejects_bad_filters(filters: dict[str, Any]) -> None:
    assert code(make(clients=2), "get_files", filters=filters) == "BAD_REQUEST"


def test_download_streams_the_file_content() -> None:
    core = make()
    record = max((f for f in all_files(core) if f["status"] != "error"), key=lambda f: f["size"])
    assert record["size"] > CHUNK_SIZE  # more than one chunk
    reply = core.handle("download_file", {"file_id": record["id"], "destination_path": "/home/me/out.bin"}, CTX)
    assert isinstance(reply, StreamReply) and reply.total == record["size"]
    digest = hashlib.sha256()
    for offset in range(0, reply.total, CHUNK_SIZE):
        digest.update(reply.read_at(offset, min(CHUNK_SIZE, reply.total - offset)))
    assert digest.hexdigest() == record["sha256"]
    final = reply.final()
    assert final["success"] and final["mode"] == "mock"
    assert final["data"] == {
        "file_id": record["id"],
        "name": record["name"],
        "size": record["size"],
        "sha256": record["sha256"],
        "expected_sha256": record["sha256"],
        "damaged": False,
        "chunks": math.ceil(record["size"] / CHUNK_SIZE),
        "destination_path": "/home/me/out.bin",
    }
    assert core.drain_events() == []


def test_verify_passes_on_a_clean_file_and_fails_on_a_corrupted_one() -> None:
    core = make()
    record = file_of_status(core, "uploaded")
    ok = call(core, "verify_file", file_id=record["id"])
    assert ok == {
        "file_id": record["id"],
        "ok": True,
        "expected_sha256": record["sha256"],
        "actual_sha256": record["sha256"],
        "status": "verified",
        "verified_at": START,
    }
    evs = core.drain_events()
    assert [t for t, _ in evs] == ["file.changed", "activity"] and evs[1][1]["type"] == "verify_passed"

    # Corrupt it the way the ticker does: the bytes change, the recorded hash does not.
    stored = core.world.files[record["id"]]
    core.world.update_file(stored, content_version=stored.content_version + 1)
    bad = call(core, "verify_file", file_id=record["id"])
    assert bad["ok"] is False and bad["status"] == "error" and bad["expected_sha256"] == record["sha256"]
    assert bad["actual_sha256"] != record["sha256"]
    assert call(core, "get_files", filters={"status": "error", "search": record["path"]})["total"] >= 1
    evs = core.drain_events()
    assert evs[-1][1]["type"] == "verify_failed" and evs[-1][1]["level"] == "ERROR"
    # A download is honest too: refused as damaged, or, asked for anyway, bytes that do not match.
    assert code(core, "download_file", file_id=record["id"], destination_path="/x") == "FILE_DAMAGED"
    args = {"file_id": record["id"], "destination_path": "/x", "allow_damaged": True}
    stream = core.handle("download_file", args, CTX)
    assert isinstance(stream, StreamReply)
    assert hashlib.sha256(stream.read_at(0, stream.total)).hexdigest() != record["sha256"]

    uploading = core.world.files[file_of_status(core, "verified")["id"]]
    core.world.update_file(uploading, status="uploading")
    assert code(core, "verify_file", file_id=uploading.id) == "CONFLICT"


def test_ticker_corruption_is_caught_by_verify() -> None:
    core = make(clients=8)
    for _ in range(600):
        core.tick()
        if any(d.get("type") == "error" and "scrub" in d["message"] for t, d in core.drain_events() if t == "activity"):
            break
    else:
        pytest.fail("the ticker never corrupted a file in 600 ticks")
    w = core.world
    rotten = [
        f
        for f in w.files.values()
        if f.status != "uploading" and content_sha256(w.seed, f.id, f.content_version, f.size) != f.sha256
    ]
    assert rotten
    assert call(core, "verify_file", file_id=rotten[0].id)["ok"] is False


# -- database view (what both backends do alike is tests/contract/) --


def test_database_info_and_table_data() -> None:
    core = make()
    info = call(core, "get_database_info")
    assert info["engine"] == "mock" and info["path"] == ":memory:"
    tables = {t["name"]: t for t in info["tables"]}
    assert set(tables) == {"clients", "files", "activity"}
    assert tables["clients"]["rows"] == 12 and tables["files"]["rows"] == call(core, "get_server_status")["files_total"]
    assert info["size_bytes"] == sum(t["size_bytes"] for t in info["tables"]) > 0
    client_columns = {c["name"]: c for c in tables["clients"]["columns"]}
    assert tuple(client_columns) == TABLE_BY_NAME["clients"].column_names  # the real server's columns
    assert client_columns["name"]["editable"] and not client_columns["public_key"]["editable"]
    data = call(core, "get_table_data", table_name="files", offset=5, limit=7)
    assert data["table"] == "files" and data["total"] == tables["files"]["rows"] and len(data["rows"]) == 7
    assert data["columns"] == tables["files"]["columns"] and (data["offset"], data["limit"]) == (5, 7)
    assert tuple(data["rows"][0]) == TABLE_BY_NAME["files"].column_names
    assert [r["id"] for r in data["rows"]] == sorted(core.world.files)[5:12]  # in primary key order
    assert code(core, "get_table_data", table_name="no_such_table") == "NOT_FOUND"
    assert call(core, "get_table_data", table_name="activity")["total"] == len(core.world.activity)


def test_update_row_is_reflected_everywhere() -> None:
    core = make()
    client = all_clients(core)[0]
    row = call(core, "update_row", table_name="clients", row_id=client["id"], updated_data={"name": "finance-ws-99"})
    assert row["table"] == "clients" and row["row"]["name"] == "finance-ws-99"
    shared = set(client) & set(row["row"])  # the table row has the table's columns (no counts, a key)
    assert {k: row["row"][k] for k in shared} == {k: client[k] for k in shared} | {"name": "finance-ws-99"}
    assert next(c for c in all_clients(core) if c["id"] == client["id"])["name"] == "finance-ws-99"
    assert call(core, "get_clients", search="FINANCE-WS-99")["total"] == 1
    evs = core.drain_events()
    renamed_client = {**client, "name": "finance-ws-99"}
    assert evs[0] == ("client.changed", {"client_id": client["id"], "change": "updated", "client": renamed_client})
    assert evs[1][1]["type"] == "client_updated"

    record = file_of_status(core, "uploaded", "verified")

    def edit_file(**changes: Any) -> dict[str, Any]:
        return call(core, "update_row", table_name="files", row_id=record["id"], updated_data=changes)["row"]

    renamed = edit_file(name="renamed.txt")
    assert renamed["name"] == "renamed.txt" and renamed["path"].endswith("renamed.txt")
    assert renamed["path"][: -len("renamed.txt")] == record["path"][: -len(record["name"])]
    assert [f["id"] for f in call(core, "get_files", filters={"search": "renamed.txt"})["items"]] == [record["id"]]
    assert edit_file(path="/srv/new/place.md")["name"] == "place.md"
    assert edit_file(status="error")["status"] == "error"
    assert_consistent(core)


def test_update_row_client_status_keeps_fields_consistent() -> None:
    core = make()
    client = connected_client(core)
    row = call(core, "update_row", table_name="clients", row_id=client["id"], updated_data={"status": "error"})["row"]
    assert row["status"] == "error" and row["error_message"] and row["connected_at"] is None
    row = call(
        core, "update_row", table_name="clients", row_id=client["id"], updated_data={"error_message": "disk on fire"}
    )["row"]
    assert row["error_message"] == "disk on fire"
    # "connected" is an agent's session: it cannot be set by hand on a client without one.
    connect = {"status": "connected"}
    assert code(core, "update_row", table_name="clients", row_id=client["id"], updated_data=connect) == "CONFLICT"
    row = call(core, "update_row", table_name="clients", row_id=client["id"], updated_data={"status": "disconnected"})[
        "row"
    ]
    assert row["status"] == "disconnected" and row["connected_at"] is None and row["error_message"] is None
    assert (
        code(core, "update_row", table_name="clients", row_id=client["id"], updated_data={"error_message": "x"})
        == "BAD_REQUEST"
    )
    connected = sum(c["status"] == "connected" for c in all_clients(core))
    assert call(core, "get_server_status")["clients_connected"] == connected


@pytest.mark.parametrize(
    "table, data, expected",
    [
        ("clients", {}, "BAD_REQUEST"),
        ("clients", {"colour": "red"}, "BAD_REQUEST"),
        ("clients", {"name": "ok", "colour": "red"}, "BAD_REQUEST"),
        ("clients", {"id": "new"}, "FORBIDDEN"),
        ("clients", {"files_count": 0}, "BAD_REQUEST"),  # computed, not a column of the table
        ("clients", {"public_key": "x"}, "FORBIDDEN"),
        ("clients", {"created_at": "2020-01-01"}, "FORBIDDEN"),
        ("clients", {"last_seen": "2020-01-01"}, "FORBIDDEN"),
        ("clients", {"name": 5}, "BAD_REQUEST"),
        ("clients", {"name": "  "}, "BAD_REQUEST"),
        ("clients", {"status": "sleeping"}, "BAD_REQUEST"),
        ("clients", {"ip_address": "10.0.0.999"}, "BAD_REQUEST"),
        ("files", {"sha256": "00"}, "FORBIDDEN"),
        ("files", {"size": 1}, "FORBIDDEN"),
        ("files", {"client_id": "x"}, "FORBIDDEN"),
        ("files", {"last_verified": None}, "FORBIDDEN"),
        ("files", {"status": "lost"}, "BAD_REQUEST"),
        ("files", {"backup_count": 2}, "FORBIDDEN"),
        ("files", {"status": "uploading"}, "BAD_REQUEST"),
        ("files", {"name": "a/b.txt"}, "BAD_REQUEST"),
        ("files", {"path": "/srv/dir/"}, "BAD_REQUEST"),
        ("files", {"name": "a.txt", "path": "/srv/b.txt"}, "BAD_REQUEST"),
        ("activity", {"message": "rewritten history"}, "FORBIDDEN"),
        ("activity", {"nope": 1}, "BAD_REQUEST"),
    ],
)
def test_update_row_errors(table: str, data: dict[str, Any], expected: str) -> None:
    core = make()
    tables: dict[str, dict[str, Any]] = {
        "clients": core.world.clients,
        "files": core.world.files,
        "activity": core.world.activity,
    }
    row_id = next(iter(tables[table]))
    before = core.world.rng.getstate()
    assert code(core, "update_row", table_name=table, row_id=row_id, updated_data=data) == expected
    assert core.world.rng.getstate() == before and core.drain_events() == []  # a failure changes nothing


def test_update_row_unknown_rows_and_path_conflicts() -> None:
    core = make()
    assert code(core, "update_row", table_name="clients", row_id="ghost", updated_data={"name": "x"}) == "NOT_FOUND"
    assert code(core, "update_row", table_name="files", row_id=12, updated_data={"name": "x"}) == "BAD_REQUEST"
    assert code(core, "update_row", table_name="clones", row_id="x", updated_data={"name": "x"}) == "NOT_FOUND"
    client = max(all_clients(core), key=lambda c: c["files_count"])
    a, b = call(core, "get_client_files", client_id=client["id"])["items"][:2]
    clash = {"path": b["path"].upper()}
    assert code(core, "update_row", table_name="files", row_id=a["id"], updated_data=clash) == "CONFLICT"


def test_delete_row() -> None:
    core = make()
    client = max(all_clients(core), key=lambda c: c["files_count"])
    data = call(core, "delete_row", table_name="clients", row_id=client["id"])
    assert data == {"table": "clients", "row_id": client["id"], "cascaded": {"files": client["files_count"]}}
    assert code(core, "get_client_details", client_id=client["id"]) == "NOT_FOUND"
    record = all_files(core)[0]
    assert call(core, "delete_row", table_name="files", row_id=record["id"])["cascaded"] == {"files": 0}
    activity_id = next(iter(core.world.activity))
    call(core, "delete_row", table_name="activity", row_id=activity_id)
    assert activity_id not in core.world.activity
    assert code(core, "delete_row", table_name="files", row_id=record["id"]) == "NOT_FOUND"
    assert code(core, "delete_row", table_name="activity", row_id=activity_id) == "NOT_FOUND"
    types = [d["type"] for t, d in core.drain_events() if t == "activity"]
    assert types == ["client_deleted", "file_deleted", "row_deleted"]
    assert_consistent(core)


# -- status, activity, logs --


def test_start_and_stop_server() -> None:
    core = make()
    status = call(core, "get_server_status")
    assert status["running"] and status["uptime_seconds"] > 0 and status["started_at"] < START
    assert code(core, "start_server") == "CONFLICT"
    connected = {c["id"] for c in all_clients(core) if c["status"] == "connected"}
    stopped = call(core, "stop_server")
    assert stopped["running"] is False and stopped["started_at"] is None and stopped["uptime_seconds"] == 0
    assert stopped["clients_connected"] == 0  # stopping ends every session
    evs = core.drain_events()
    assert evs[-2][1]["type"] == "server_stopped" and evs[-1] == ("server.changed", {"status": stopped})
    ended = {d["client_id"] for t, d in evs if t == "activity" and d["type"] == "client_disconnected"}
    assert connected and ended == connected
    assert code(core, "stop_server") == "CONFLICT"
    for _ in range(40):
        core.tick()
    quiet = {d["type"] for t, d in core.drain_events() if t == "activity"}
    assert not quiet & {"client_connected", "backup_started", "backup_completed"}
    assert call(core, "get_server_status")["uptime_seconds"] == 0
    started = call(core, "start_server")
    assert started["running"] and started["started_at"] == START + timedelta(seconds=120)
    core.tick()
    assert call(core, "get_server_status")["uptime_seconds"] == 3.0


def test_recent_activity_and_logs() -> None:
    core = make()
    for _ in range(30):
        core.tick()
    recent = call(core, "get_recent_activity", limit=10)
    assert len(recent["items"]) == 10 and recent["total"] == len(core.world.activity)
    stamps = [a["timestamp"] for a in recent["items"]]
    assert stamps == sorted(stamps, reverse=True)
    every = call(core, "get_logs", limit=1000)
    assert every["total"] == len(core.world.logs)
    assert [e["id"] for e in every["items"]] == [e.id for e in reversed(core.world.logs)][:1000]
    warnings = call(core, "get_logs", level="WARNING", limit=1000)
    assert all(e["level"] in ("WARNING", "ERROR", "CRITICAL") for e in warnings["items"])
    assert warnings["total"] == sum(e.level in ("WARNING", "ERROR", "CRITICAL") for e in core.world.logs)
    text = call(core, "get_logs", text="BACKUP", limit=1000)
    assert text["total"] > 0
    assert all("backup" in (e["event"] + " " + e["message"]).lower() for e in text["items"])
    page = call(core, "get_logs", offset=3, limit=4)
    assert page["items"] == every["items"][3:7] and page["offset"] == 3


# -- evolution --


def test_tick_advances_the_clock_and_changes_things() -> None:
    core = make(tick=5.0)
    topics: set[str] = set()
    for n in range(1, 41):
        core.tick()
        assert core.world.now() == START + timedelta(seconds=5 * n)
        topics |= {t for t, _ in core.drain_events()}
    assert {"activity", "client.changed", "file.changed"} <= topics
    assert_consistent(core)


@pytest.mark.parametrize("files", [0, 5, 200])
def test_dataset_stays_bounded(files: int) -> None:
    core = make(clients=10, files=files)
    for n in range(2500):
        core.tick()
        assert files * 0.9 <= len(core.world.files) <= files * 1.1, n
        if n % 100 == 0:
            core.drain_events()
    assert len(core.world.activity) <= ACTIVITY_LIMIT and len(core.world.logs) <= LOG_LIMIT
    assert_consistent(core)


def test_aggregates_hold_after_random_operations_and_ticks() -> None:
    core = make(clients=15)
    rng = random.Random(3)
    for step in range(400):
        files = list(core.world.files)
        clients = list(core.world.clients)
        roll = rng.random()
        try:
            if roll < 0.45 or not files:
                core.tick()
            elif roll < 0.6:
                call(core, "delete_file", file_id=rng.choice(files))
            elif roll < 0.7:
                call(core, "verify_file", file_id=rng.choice(files))
            elif roll < 0.8:
                call(
                    core,
                    "update_row",
                    table_name="files",
                    row_id=rng.choice(files),
                    updated_data={"status": rng.choice(["uploaded", "error", "verified"])},
                )
            elif roll < 0.9:
                call(
                    core,
                    "update_row",
                    table_name="clients",
                    row_id=rng.choice(clients),
                    updated_data={"status": rng.choice(["connected", "disconnected", "error"])},
                )
            elif roll < 0.93 and len(clients) > 3:
                call(core, "delete_client", client_id=rng.choice(clients))
            else:
                call(core, "disconnect_client", client_id=rng.choice(clients))
        except ProtocolError as exc:
            assert exc.code.value == "CONFLICT"  # verify while uploading, disconnect when not connected
        if step % 50 == 0:
            assert_consistent(core)
        core.drain_events()
    assert_consistent(core)
