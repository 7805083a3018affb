"""download_archive in both backends: the archive unpacks (Python's tarfile) to exactly the files the snapshot
holds, each with the bytes download_file gives for that version and the hash get_file_versions records.

The same two runs of alpha as the snapshot suite: run 1 (partial) notes.txt v1, Report.pdf v2, photos/cat.jpg,
photos/dog.jpg, locked.db unreadable; run 2 (complete) notes.txt v2 and locked.db new.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.backends.api import StreamReply
from actors.server.core import BackupServer
from protocol.errors import ErrorCode, ProtocolError
from protocol.streaming import CHUNK_SIZE
from tests.contract.harness import MODES, START, Backend, close, covers, make_backend
from tests.contract.runs import RunFile, backup_run, seeded

pytestmark = pytest.mark.timeout(30)

NOTES, REPORT, CAT = "/home/alpha/notes.txt", "/home/alpha/Report.pdf", "/home/alpha/photos/cat.jpg"
DOG, LOCKED = "/home/alpha/photos/dog.jpg", "/home/alpha/locked.db"
MTIME = START - timedelta(hours=1)
OP = "download_archive"


def two_runs(backend: Backend) -> Backend:
    first = [seeded(NOTES), RunFile(REPORT, b"r" * 400, MTIME), seeded(CAT), RunFile(DOG, b"d" * 700, MTIME)]
    backup_run(backend, [*first, RunFile(LOCKED, None, MTIME, listed_size=50)], seconds=5)
    clock = backend.core.clock if isinstance(backend.core, BackupServer) else backend.core.world.clock
    clock.advance(60)
    second = [RunFile(NOTES, b"n" * 20, MTIME), *first[1:], RunFile(LOCKED, b"l" * 50, MTIME)]
    backup_run(backend, second, seconds=7)
    return backend


@pytest.fixture(params=MODES, scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    backend = two_runs(make_backend(request.param, tmp_path_factory.mktemp(f"archive-{request.param}")))
    yield backend
    close(backend)


@pytest.fixture(params=MODES)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    backend = two_runs(make_backend(request.param, tmp_path))
    yield backend
    close(backend)


def snapshots(backend: Backend) -> tuple[dict[str, Any], dict[str, Any]]:
    second, first = backend.call("list_snapshots", client_id=backend.clients["alpha"])["items"]
    return first, second


def read_all(stream: StreamReply) -> bytes:
    """Every chunk, in order, as the worker's stream sender reads them."""
    return b"".join(stream.read_at(o, min(CHUNK_SIZE, stream.total - o)) for o in range(0, stream.total, CHUNK_SIZE))


def archive(backend: Backend, snapshot: dict[str, Any], paths: list[str], **args: Any) -> tuple[bytes, dict[str, Any]]:
    stream = backend.stream(OP, snapshot_id=snapshot["id"], paths=paths, destination_path="/tmp/a.tar", **args)
    data = read_all(stream)
    final = stream.final()
    assert final["success"] is True and final["mode"] == backend.mode
    assert (len(data), final["data"]["size"]) == (stream.total, stream.total)
    assert "sha256" not in final["data"]  # the archive has no whole hash: each member is checked while it streams
    return data, final["data"]


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        found = {m.name: m for m in tar.getmembers()}
        for m in found.values():
            assert tarfile.data_filter(m, "/restore") is not None  # nothing unpacks outside its folder
        return found


def contents(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]


def held(backend: Backend, snapshot: dict[str, Any], folder: str) -> dict[str, dict[str, Any]]:
    """Every file below ``folder`` as browse_snapshot lists them, by path."""
    out: dict[str, dict[str, Any]] = {}
    for entry in backend.call("browse_snapshot", snapshot_id=snapshot["id"], path=folder)["items"]:
        if entry["type"] == "dir":
            out.update(held(backend, snapshot, entry["path"]))
        else:
            out[entry["path"]] = entry
    return out


def downloaded(backend: Backend, file_id: str, version: int) -> bytes:
    stream = backend.stream("download_file", file_id=file_id, destination_path="/tmp/f", version=version)
    return read_all(stream)


@covers(OP)
def test_a_folder_unpacks_to_every_file_of_the_snapshot_as_download_file_gives_it(runs: Backend) -> None:
    for snapshot in snapshots(runs):
        data, final = archive(runs, snapshot, ["/home/alpha"])
        files = held(runs, snapshot, "/home/alpha")
        unpacked = contents(data)
        assert set(unpacked) == {"alpha/" + p.removeprefix("/home/alpha/") for p in files}
        for path, entry in files.items():
            content = unpacked["alpha/" + path.removeprefix("/home/alpha/")]
            versions = runs.call("get_file_versions", file_id=entry["file_id"])["items"]
            recorded = next(v for v in versions if v["version"] == entry["version"])
            assert content == downloaded(runs, entry["file_id"], entry["version"])
            assert hashlib.sha256(content).hexdigest() == recorded["sha256"] == entry["sha256"]
            assert members(data)["alpha/" + path.removeprefix("/home/alpha/")].mtime == int(
                recorded["modified_at"].timestamp()
            )
        assert (final["files"], final["bytes"]) == (len(files), sum(e["size"] for e in files.values()))
        assert (final["folders"], final["name"], final["damaged"], final["damaged_total"]) == (2, "alpha.tar", [], 0)
        assert final["snapshot_id"] == snapshot["id"] and final["destination_path"] == "/tmp/a.tar"
    first, second = snapshots(runs)
    assert contents(archive(runs, first, [NOTES])[0]) == {"notes.txt": downloaded(runs, runs.files[NOTES], 1)}
    assert contents(archive(runs, second, [NOTES])[0])["notes.txt"] == b"n" * 20 or runs.mode == "mock"
    assert LOCKED not in held(runs, first, "/home/alpha")  # unreadable in run 1: not in its tree, nor its archive


@covers(OP)
def test_members_folders_first_depth_first_named_from_the_selections_folder(runs: Backend) -> None:
    _, second = snapshots(runs)
    assert list(members(archive(runs, second, ["/"])[0])) == [
        "home",
        "home/alpha",
        "home/alpha/Report.pdf",
        "home/alpha/locked.db",
        "home/alpha/notes.txt",
        "home/alpha/photos",
        "home/alpha/photos/cat.jpg",
        "home/alpha/photos/dog.jpg",
    ]
    data, final = archive(runs, second, [DOG, "/home/alpha/photos", NOTES, NOTES])
    assert list(members(data)) == ["photos", "photos/cat.jpg", "photos/dog.jpg", "notes.txt"]
    assert (final["files"], final["folders"], final["name"]) == (3, 1, f"snapshot-{second['id']}.tar")
    assert list(members(archive(runs, second, ["/home/alpha/photos/"])[0])) == [
        "photos",
        "photos/cat.jpg",
        "photos/dog.jpg",
    ]
    folder = members(archive(runs, second, ["/home"])[0])["home/alpha"]
    assert folder.isdir() and folder.mtime == int(second["started_at"].timestamp())


def test_both_backends_archive_the_same_members(tmp_path: Path) -> None:
    listings = []
    for mode in MODES:
        backend = two_runs(make_backend(mode, tmp_path / mode))
        try:
            _, second = snapshots(backend)
            found = members(archive(backend, second, ["/"])[0])
            listings.append([(m.name, m.size, m.type, m.mtime, m.mode) for m in found.values()])
        finally:
            close(backend)
    assert listings[0] == listings[1]


@covers(OP)
@pytest.mark.parametrize(
    ("paths", "code"),
    [
        (["/home/alpha/missing.txt"], "NOT_FOUND"),
        (["/home/alpha", "/nowhere"], "NOT_FOUND"),
        (["C:\\Users"], "NOT_FOUND"),
        ([""], "BAD_REQUEST"),
        (["home/alpha"], "BAD_REQUEST"),
        (["/home/../etc/passwd"], "BAD_REQUEST"),
        (["/home/alpha/./notes.txt"], "BAD_REQUEST"),
        (["/home//alpha"], "BAD_REQUEST"),
        (["/home/alpha\x00/x"], "BAD_REQUEST"),
        (["\\\\server\\share\\x"], "BAD_REQUEST"),
        (["../../etc"], "BAD_REQUEST"),
        ([], "BAD_REQUEST"),
        (["/home"] * 1001, "BAD_REQUEST"),
        (["x" * 5000], "BAD_REQUEST"),
        ([7], "BAD_REQUEST"),
        ("/home", "BAD_REQUEST"),
    ],
)
def test_a_bad_or_unknown_path_is_refused(runs: Backend, paths: Any, code: str) -> None:
    _, second = snapshots(runs)
    assert runs.error(OP, snapshot_id=second["id"], paths=paths, destination_path="/tmp/a.tar") == code


@covers(OP)
@pytest.mark.parametrize("snapshot_id", ["999999", "abc", "", "-1"])
def test_an_unknown_snapshot_is_not_found(runs: Backend, snapshot_id: str) -> None:
    assert runs.error(OP, snapshot_id=snapshot_id, paths=["/"], destination_path="/tmp/a.tar") == "NOT_FOUND"


def refusal_or_final_error(backend: Backend, snapshot: dict[str, Any], paths: list[str]) -> ProtocolError:
    """FILE_DAMAGED before the first chunk when the backend knows it, else as the final reply."""
    try:
        stream = backend.stream(OP, snapshot_id=snapshot["id"], paths=paths, destination_path="/tmp/a.tar")
    except ProtocolError as exc:
        return exc
    read_all(stream)
    with pytest.raises(ProtocolError) as info:
        stream.final()
    return info.value


@covers(OP)
def test_damaged_content_is_file_damaged_unless_allowed(fresh: Backend) -> None:
    _, second = snapshots(fresh)
    recorded = fresh.call("get_file_versions", file_id=fresh.files[CAT])["items"][0]["sha256"]
    fresh.corrupt(fresh.files[CAT])
    error = refusal_or_final_error(fresh, second, ["/home/alpha"])
    assert error.code is ErrorCode.FILE_DAMAGED and "allow_damaged" in error.message
    assert (error.details["path"], error.details["problem"], error.details["damaged_total"]) == (CAT, "damaged", 1)
    assert error.details["expected_sha256"] == recorded != error.details["actual_sha256"]
    data, final = archive(fresh, second, ["/home/alpha"], allow_damaged=True)
    stored = contents(data)["alpha/photos/cat.jpg"]
    assert hashlib.sha256(stored).hexdigest() == final["damaged"][0]["actual_sha256"] != recorded
    assert [(d["path"], d["file_id"], d["problem"]) for d in final["damaged"]] == [(CAT, fresh.files[CAT], "damaged")]
    assert final["damaged_total"] == 1 and final["files"] == 5
    assert contents(archive(fresh, second, [NOTES, DOG])[0])  # what is intact still archives
    assert fresh.events() == []  # archiving changes nothing


# -- the real server only: content that is gone (the mock's is generated, never lost) --


def test_missing_content_is_file_damaged_before_any_chunk_or_left_out(tmp_path: Path) -> None:
    backend = two_runs(make_backend("real", tmp_path))
    try:
        assert isinstance(backend.core, BackupServer)
        _, second = snapshots(backend)
        sha = backend.call("get_file_versions", file_id=backend.files[DOG])["items"][0]["sha256"]
        backend.core.blobs.path_for(sha).unlink()
        with pytest.raises(ProtocolError) as info:
            backend.run(OP, {"snapshot_id": second["id"], "paths": ["/home/alpha"], "destination_path": "/tmp/a"})
        assert info.value.code is ErrorCode.FILE_DAMAGED and info.value.details["problem"] == "missing"
        data, final = archive(backend, second, ["/home/alpha"], allow_damaged=True)
        assert "alpha/photos/dog.jpg" not in contents(data) and final["files"] == 4
        assert [(d["path"], d["problem"], d["actual_sha256"]) for d in final["damaged"]] == [(DOG, "missing", "")]
    finally:
        close(backend)


def test_content_deleted_while_streaming_fails_the_archive(tmp_path: Path) -> None:
    backend = two_runs(make_backend("real", tmp_path))
    try:
        _, second = snapshots(backend)
        stream = backend.stream(OP, snapshot_id=second["id"], paths=["/home/alpha"], destination_path="/tmp/a")
        backend.call("delete_file", file_id=backend.files[DOG])  # its only blob goes with it
        read_all(stream)
        with pytest.raises(ProtocolError) as info:
            stream.final()
        assert info.value.code is ErrorCode.FILE_DAMAGED and info.value.details["problem"] == "missing"
    finally:
        close(backend)
