"""Why a file is in error, backend by backend (the shared contract is tests/contract/test_file_errors.py).

The real server: what a scrub found (missing, unreadable, damaged), a verification that finds
no content, a new upload that heals the file, and a database of schema 4 upgraded in place.
The mock: its world's rule (a status of error needs a reason, any other clears it), its
interrupted uploads, and a state saved before files had an error_message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actors.backends.file_errors import REASON_NOT_RECORDED, scrub_failed, upload_interrupted, verify_failed
from actors.mock.actions import set_client_status, set_running
from actors.mock.core import MockCore
from actors.mock.evolution import Evolution
from actors.mock.records import FILE_COLUMNS
from actors.mock.store import decode_world, encode_world, pack, unpack
from actors.server.db import iso
from runtime.clock import SimulatedClock
from tests.contract.harness import make_backend
from tests.mock_invariants import assert_world_consistent
from tests.old_schema import database_at_schema
from tests.test_server_core import call, sha
from tests.test_server_scrub import MTIME, backed_up, open_server

pytestmark = pytest.mark.timeout(60)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FILES = {
    "/home/u/lost.txt": b"this blob will vanish" * 100,
    "/home/u/rotten.txt": b"this blob will rot" * 100,
    "/home/u/unreadable.txt": b"this blob will not open" * 100,
}


def file_by_path(files: list[dict[str, Any]], path: str) -> dict[str, Any]:
    return next(f for f in files if f["path"] == path)


# -- the real server --


def test_server_scrub_reasons_name_each_problem_and_an_upload_heals(tmp_path: Path) -> None:
    core = open_server(tmp_path, SimulatedClock(START))
    try:
        agent = backed_up(core, tmp_path, FILES)
        core.blobs.path_for(sha(FILES["/home/u/lost.txt"])).unlink()
        core.blobs.path_for(sha(FILES["/home/u/rotten.txt"])).write_bytes(b"bit rot")
        unreadable = core.blobs.path_for(sha(FILES["/home/u/unreadable.txt"]))
        unreadable.unlink()
        unreadable.mkdir()  # opening it fails, as a dying disk's EIO would
        call(core, "scrub_storage")
        files = call(core, "get_files")["items"]
        reasons = {f["path"]: (f["status"], f["error_message"]) for f in files}
        assert reasons == {
            "/home/u/lost.txt": ("error", scrub_failed(sha(FILES["/home/u/lost.txt"]), "missing", "")),
            "/home/u/rotten.txt": ("error", scrub_failed(sha(FILES["/home/u/rotten.txt"]), "damaged", sha(b"bit rot"))),
            "/home/u/unreadable.txt": ("error", scrub_failed(sha(FILES["/home/u/unreadable.txt"]), "unreadable", "")),
        }
        assert reasons["/home/u/lost.txt"][1].endswith(") is missing")
        assert reasons["/home/u/unreadable.txt"][1].endswith(") cannot be read")
        unreadable.rmdir()
        stored = agent.put("/home/u/lost.txt", FILES["/home/u/lost.txt"], upload="again", mtime_ns=MTIME)
        assert [m.type for m in stored if m.type in ("stored", "failed")] == ["stored"]
        healed = file_by_path(call(core, "get_files")["items"], "/home/u/lost.txt")
        assert (healed["status"], healed["error_message"]) == ("uploaded", None)
    finally:
        core.close()


def test_server_verify_of_missing_content_says_so(tmp_path: Path) -> None:
    core = open_server(tmp_path, SimulatedClock(START))
    try:
        backed_up(core, tmp_path, {"/home/u/lost.txt": FILES["/home/u/lost.txt"]})
        (lost,) = call(core, "get_files")["items"]
        core.blobs.path_for(lost["sha256"]).unlink()
        assert call(core, "verify_file", file_id=lost["id"])["ok"] is False
        (marked,) = call(core, "get_files")["items"]
        assert marked["error_message"] == verify_failed(lost["sha256"], None)
        assert marked["error_message"].endswith(", the stored content is missing")
    finally:
        core.close()


def test_server_database_of_schema_4_gives_its_files_in_error_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "server" / "backup.db"
    conn = database_at_schema(path, 4, START)
    at = iso(START)
    for file_id, status in (
        ("verified-bad", "error"),
        ("scrubbed", "error"),
        ("unknown", "error"),
        ("fine", "uploaded"),
    ):
        conn.execute(
            "INSERT INTO files (id, client_id, path, name, size, mtime_ns, sha256, status, created_at, modified_at, "
            "last_backup) VALUES (?, 'c', ?, ?, 1, 0, ?, ?, ?, ?, ?)",
            (file_id, f"/old/{file_id}", file_id, "0" * 64, status, at, at, at),
        )
    history = [
        ("verify_failed", "verified-bad", "/old/verified-bad failed verification: first"),
        ("verify_passed", "verified-bad", "/old/verified-bad verified"),
        ("verify_failed", "verified-bad", "/old/verified-bad failed verification: newest"),
        ("scrub_damaged", "scrubbed", "/old/scrubbed: stored content is missing"),
        ("file_updated", "unknown", "Administrator edited file /old/unknown: status"),
    ]
    for type_, file_id, message in history:
        conn.execute(
            "INSERT INTO activity (timestamp, type, level, client_id, file_id, message) VALUES (?, ?, 'ERROR', 'c', ?, ?)",
            (at, type_, file_id, message),
        )
    conn.commit()
    conn.close()
    core = open_server(tmp_path, SimulatedClock(START))
    try:
        reasons = {f["id"]: f["error_message"] for f in call(core, "get_files")["items"]}
        assert reasons == {
            "verified-bad": "/old/verified-bad failed verification: newest",
            "scrubbed": "/old/scrubbed: stored content is missing",
            "unknown": REASON_NOT_RECORDED,
            "fine": None,
        }
    finally:
        core.close()


# -- the mock --


def test_mock_world_needs_a_reason_for_error_and_clears_it_otherwise(tmp_path: Path) -> None:
    backend = make_backend("mock", tmp_path)
    assert isinstance(backend.core, MockCore)
    world = backend.core.world
    record = world.files[backend.files["/home/alpha/notes.txt"]]
    with pytest.raises(ValueError, match="without an error_message"):
        world.update_file(record, status="error")
    with pytest.raises(ValueError, match="without an error_message"):
        world.update_file(record, status="error", error_message="")
    assert (record.status, record.error_message) == ("uploaded", None)  # a refused change changes nothing
    world.update_file(record, status="error", error_message="why")
    assert (record.status, record.error_message, world.file_status_counts["error"]) == ("error", "why", 1)
    world.update_file(record, status="verified")
    assert (record.status, record.error_message) == ("verified", None)
    assert_world_consistent(world)
    backend.core.close()


def test_mock_interrupted_uploads_say_why_and_a_finished_one_clears_it(tmp_path: Path) -> None:
    backend = make_backend("mock", tmp_path)
    assert isinstance(backend.core, MockCore)
    world = backend.core.world
    alpha = world.clients[backend.clients["alpha"]]
    record = world.files[backend.files["/home/alpha/notes.txt"]]
    evolution = Evolution(world)

    def upload() -> tuple[str, str | None]:
        world.update_file(record, status="uploading")
        assert evolution._upload_finish()
        return record.status, record.error_message

    set_running(world, False)  # ends alpha's session too: the stopped server is the reason given
    assert upload() == ("error", upload_interrupted("server stopped"))
    set_running(world, True)
    assert upload() == ("error", "upload interrupted: client disconnected")
    set_client_status(world, alpha, "connected")
    assert upload() == ("uploaded", None)
    assert_world_consistent(world)
    backend.core.close()


def test_mock_state_saved_before_error_message_loads(tmp_path: Path) -> None:
    core = MockCore.open(tmp_path, seed=3, clock=SimulatedClock(START), clients=8)
    failed = [f.id for f in core.world.files.values() if f.status == "error"]
    current = [f.to_dict() for f in core.world.files.values()]
    core.close()
    state = tmp_path / "mock_state.msgpack"
    doc = unpack(state.read_bytes())
    assert doc["files"]["columns"] == list(FILE_COLUMNS) and FILE_COLUMNS[-1] == "error_message"
    doc["files"]["columns"].pop()
    for row in doc["files"]["rows"]:
        row.pop()
    state.write_bytes(pack(doc))
    for name in ("mock_journal.log", "mock_journal.previous.log", "mock_state.previous.msgpack"):
        (tmp_path / name).unlink(missing_ok=True)
    old = MockCore.open(tmp_path, seed=3, clock=SimulatedClock(START), clients=8)
    try:
        assert failed, "the generated world holds no file in error"
        loaded = {f.id: f.to_dict() for f in old.world.files.values()}
        assert set(loaded) == {f["id"] for f in current}
        for before in current:
            expected = REASON_NOT_RECORDED if before["id"] in failed else None
            assert loaded[before["id"]] == {**before, "error_message": expected}
        assert_world_consistent(old.world)
    finally:
        old.close()


def test_mock_state_with_other_file_columns_is_refused() -> None:
    core = MockCore.open(None, seed=3, clock=SimulatedClock(START), clients=2)
    doc = unpack(pack(encode_world(core.world, 0)))
    core.close()
    doc["files"]["columns"][-1] = "why"
    with pytest.raises(ValueError, match="files columns"):
        decode_world(doc, SimulatedClock(START))
