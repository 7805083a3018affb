"""Snapshots: two backup runs of alpha, listed, read, browsed folder by folder, searched, and their versions.

Run 1 (partial): notes.txt and cat.jpg unchanged, Report.pdf changed, photos/dog.jpg new,
locked.db listed but unreadable. Run 2 (complete), a minute later: notes.txt changed,
locked.db readable now (new), the rest unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from protocol.shapes import SHAPE_BY_NAME
from protocol.streaming import CHUNK_SIZE
from tests.contract.harness import FILES, MODES, START, Backend, close, covers, make_backend
from tests.contract.runs import ROOT, RunFile, backup_run, seeded

pytestmark = pytest.mark.timeout(30)

NOTES, REPORT, CAT = "/home/alpha/notes.txt", "/home/alpha/Report.pdf", "/home/alpha/photos/cat.jpg"
DOG, LOCKED = "/home/alpha/photos/dog.jpg", "/home/alpha/locked.db"
REPORT_V2, DOG_V1, NOTES_V2, LOCKED_V1 = b"r" * 400, b"d" * 700, b"n" * 20, b"l" * 50
MTIME = START - timedelta(hours=1)


def _advance(backend: Backend, seconds: float) -> None:
    clock = backend.core.world.clock if backend.mode == "mock" else backend.core.clock  # type: ignore[union-attr]
    clock.advance(seconds)


@pytest.fixture(params=MODES, scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    backend = make_backend(request.param, tmp_path_factory.mktemp(f"runs-{request.param}"))
    backup_run(
        backend,
        [
            seeded(NOTES),
            RunFile(REPORT, REPORT_V2, MTIME),
            seeded(CAT),
            RunFile(DOG, DOG_V1, MTIME),
            RunFile(LOCKED, None, MTIME, listed_size=50),
        ],
        seconds=5,
    )
    _advance(backend, 60)
    backup_run(
        backend,
        [
            RunFile(NOTES, NOTES_V2, MTIME),
            RunFile(REPORT, REPORT_V2, MTIME),
            seeded(CAT),
            RunFile(DOG, DOG_V1, MTIME),
            RunFile(LOCKED, LOCKED_V1, MTIME),
        ],
        seconds=7,
    )
    yield backend
    close(backend)


def snapshots(backend: Backend) -> tuple[dict[str, Any], dict[str, Any]]:
    second, first = backend.call("list_snapshots", client_id=backend.clients["alpha"])["items"]
    return first, second


def browse(backend: Backend, snapshot: dict[str, Any], path: str, **paging: int) -> dict[str, Any]:
    return backend.call("browse_snapshot", snapshot_id=snapshot["id"], path=path, **paging)


def summary(entry: dict[str, Any]) -> tuple[Any, ...]:
    return entry["name"], entry["type"], entry["size"], entry["files"], entry["change"], entry["version"]


@covers("list_snapshots", "get_snapshot")
def test_each_run_is_a_snapshot_with_its_counts(runs: Backend) -> None:
    page = runs.call("list_snapshots", client_id=runs.clients["alpha"])
    assert (page["total"], page["offset"], page["limit"]) == (2, 0, 50)
    first, second = snapshots(runs)
    for s in (first, second):
        assert set(s) == SHAPE_BY_NAME["Snapshot"].field_names
        assert s["client_id"] == runs.clients["alpha"] and s["root"] == ROOT
        assert runs.call("get_snapshot", snapshot_id=s["id"]) == s
    assert (first["status"], first["started_at"], first["ended_at"]) == ("partial", START, START + timedelta(seconds=5))
    counts = [(s["files_new"], s["bytes_new"], s["files_changed"], s["bytes_changed"]) for s in (first, second)]
    assert counts == [(1, 700, 1, 400), (1, 50, 1, 20)]
    rest = [(s["files_unchanged"], s["bytes_unchanged"], s["files_failed"], s["bytes_failed"]) for s in (first, second)]
    assert rest == [(2, 11 + 5000, 1, 50), (3, 400 + 5000 + 700, 0, 0)]
    assert [(s["files_total"], s["bytes_total"]) for s in (first, second)] == [(4, 6111), (5, 6170)]
    assert (second["status"], second["started_at"]) == ("complete", START + timedelta(seconds=65))


@covers("list_snapshots")
def test_snapshots_page_and_filter(runs: Backend) -> None:
    first, second = snapshots(runs)
    alpha = runs.clients["alpha"]
    assert runs.call("list_snapshots", client_id=alpha, offset=1, limit=1)["items"] == [first]
    assert runs.call("list_snapshots", client_id=alpha, status="partial")["items"] == [first]
    assert runs.call("list_snapshots", client_id=alpha, status="running")["total"] == 0
    assert runs.call("list_snapshots", client_id=runs.clients["gamma"])["items"] == []
    assert runs.error("list_snapshots", client_id="no-such-client") == "NOT_FOUND"
    assert runs.error("list_snapshots", client_id=alpha, status="gone") == "BAD_REQUEST"
    assert second["id"] != first["id"]


@covers("get_snapshot", "browse_snapshot")
@pytest.mark.parametrize("snapshot_id", ["999999", "abc", "", "1" * 40, "-1"])
def test_an_unknown_snapshot_is_not_found(runs: Backend, snapshot_id: str) -> None:
    assert runs.error("get_snapshot", snapshot_id=snapshot_id) == "NOT_FOUND"
    assert runs.error("browse_snapshot", snapshot_id=snapshot_id) == "NOT_FOUND"


@covers("browse_snapshot")
def test_browse_one_folder_at_a_time(runs: Backend) -> None:
    first, second = snapshots(runs)
    top = browse(runs, second, "/")
    assert (top["snapshot_id"], top["path"], top["parent"], top["total"]) == (second["id"], "/", None, 1)
    assert [summary(e) for e in top["items"]] == [("home", "dir", 6170, 5, "changed", None)]
    assert top["items"][0]["path"] == "/home"
    alpha = browse(runs, second, "/home/alpha")
    assert (alpha["path"], alpha["parent"], alpha["total"]) == ("/home/alpha", "/home", 4)
    assert [summary(e) for e in alpha["items"]] == [
        ("photos", "dir", 5700, 2, "unchanged", None),
        ("Report.pdf", "file", 400, None, "unchanged", 2),
        ("locked.db", "file", 50, None, "new", 1),
        ("notes.txt", "file", 20, None, "changed", 2),
    ]
    for entry in alpha["items"]:
        assert set(entry) == SHAPE_BY_NAME["SnapshotEntry"].field_names
    report = alpha["items"][1]
    assert (report["path"], report["file_id"], report["modified_at"]) == (REPORT, runs.files[REPORT], MTIME)
    assert report["sha256"] == hashlib.sha256(REPORT_V2).hexdigest() or runs.mode == "mock"
    photos = alpha["items"][0]
    assert (photos["path"], photos["file_id"], photos["sha256"], photos["modified_at"]) == (
        "/home/alpha/photos",
        None,
        None,
        None,
    )
    then = browse(runs, first, "/home/alpha/photos/")  # one trailing separator is ignored
    assert then["path"] == "/home/alpha/photos"
    assert [summary(e) for e in then["items"]] == [
        ("cat.jpg", "file", 5000, None, "unchanged", 1),
        ("dog.jpg", "file", 700, None, "new", 1),
    ]
    assert [summary(e) for e in browse(runs, first, "/home")["items"]] == [("alpha", "dir", 6111, 4, "new", None)]


@covers("browse_snapshot")
def test_browse_pages_folders_then_files(runs: Backend) -> None:
    _, second = snapshots(runs)
    whole = browse(runs, second, "/home/alpha")["items"]
    assert browse(runs, second, "/home/alpha", offset=1, limit=2)["items"] == whole[1:3]
    assert browse(runs, second, "/home/alpha", offset=0, limit=1)["items"] == whole[:1]
    last = browse(runs, second, "/home/alpha", offset=3, limit=10)
    assert (last["items"], last["total"], last["offset"], last["limit"]) == (whole[3:], 4, 3, 10)
    assert browse(runs, second, "/home/alpha", offset=9)["items"] == []


@covers("browse_snapshot")
@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/nowhere", "NOT_FOUND"),
        ("/home/alpha/notes.txt", "NOT_FOUND"),  # a file is not a folder
        ("C:\\Users", "NOT_FOUND"),
        ("home/alpha", "BAD_REQUEST"),
        ("/home/../etc", "BAD_REQUEST"),
        ("/home//alpha", "BAD_REQUEST"),
        ("/home/a\x00", "BAD_REQUEST"),
        ("x" * 5000, "BAD_REQUEST"),
    ],
)
def test_browse_refuses_a_bad_or_unknown_folder(runs: Backend, path: str, code: str) -> None:
    _, second = snapshots(runs)
    assert runs.error("browse_snapshot", snapshot_id=second["id"], path=path) == code


@covers("get_file_versions")
def test_every_version_of_a_file(runs: Backend) -> None:
    first, second = snapshots(runs)
    notes = runs.call("get_file_versions", file_id=runs.files[NOTES])
    assert notes["file"]["id"] == runs.files[NOTES] and notes["file"]["size"] == 20 and notes["total"] == 2
    assert set(notes["file"]) == SHAPE_BY_NAME["File"].field_names
    for v in notes["items"]:
        assert set(v) == SHAPE_BY_NAME["FileVersion"].field_names
        assert (v["file_id"], v["client_id"], v["path"], v["name"]) == (
            runs.files[NOTES],
            runs.clients["alpha"],
            NOTES,
            "notes.txt",
        )
    rows = [(v["version"], v["size"], v["snapshot_id"], v["backed_up_at"]) for v in notes["items"]]
    assert rows == [(2, 20, second["id"], START + timedelta(seconds=65)), (1, 11, None, START)]
    assert notes["items"][0]["sha256"] == notes["file"]["sha256"] != notes["items"][1]["sha256"]
    assert notes["items"][1]["modified_at"] == FILES[NOTES].mtime and notes["items"][0]["modified_at"] == MTIME
    by_path = runs.call("get_file_versions", client_id=runs.clients["alpha"], path=NOTES)
    assert by_path == notes
    report = runs.call("get_file_versions", file_id=runs.files[REPORT])["items"]
    assert [(v["version"], v["snapshot_id"]) for v in report] == [(2, first["id"]), (1, None)]
    locked = runs.call("get_file_versions", file_id=runs.files[LOCKED])["items"]
    assert [(v["version"], v["size"], v["snapshot_id"]) for v in locked] == [(1, 50, second["id"])]


@covers("get_file_versions")
@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({}, "BAD_REQUEST"),
        ({"client_id": "alpha-id"}, "BAD_REQUEST"),
        ({"path": NOTES}, "BAD_REQUEST"),
        ({"file_id": "f", "client_id": "alpha-id", "path": NOTES}, "BAD_REQUEST"),
        ({"file_id": "no-such-file"}, "NOT_FOUND"),
        ({"client_id": "alpha-id", "path": "/home/alpha/nothing.txt"}, "NOT_FOUND"),
        ({"client_id": "no-such-client", "path": NOTES}, "NOT_FOUND"),
    ],
)
def test_file_versions_need_one_way_to_name_the_file(runs: Backend, args: dict[str, Any], code: str) -> None:
    args = {k: runs.clients["alpha"] if v == "alpha-id" else v for k, v in args.items()}
    assert runs.error("get_file_versions", **args) == code


def found(page: dict[str, Any]) -> list[tuple[str, int]]:
    return [(v["path"], v["version"]) for v in page["items"]]


@covers("find_files")
def test_find_files_across_clients_in_a_client_and_in_a_snapshot(runs: Backend) -> None:
    first, second = snapshots(runs)
    alpha = runs.clients["alpha"]
    everywhere = runs.call("find_files", query="NOTES")
    assert found(everywhere) == [(NOTES, 2), ("C:\\Users\\beta\\Notes.md", 1)] and everywhere["total"] == 2
    for v in everywhere["items"]:
        assert set(v) == SHAPE_BY_NAME["FileVersion"].field_names
    photos = runs.call("find_files", query="photos", client_id=alpha)
    assert found(photos) == [(CAT, 1), (DOG, 1)]
    assert [v["snapshot_id"] for v in photos["items"]] == [None, first["id"]]
    then = runs.call("find_files", query="notes", snapshot_id=first["id"])
    assert found(then) == [(NOTES, 1)] and then["items"][0]["size"] == 11
    every = runs.call("find_files", query="", snapshot_id=second["id"], client_id=alpha)
    assert found(every) == [(LOCKED, 1), (NOTES, 2), (CAT, 1), (DOG, 1), (REPORT, 2)]
    page = runs.call("find_files", query="", snapshot_id=second["id"], offset=3, limit=1)
    assert (found(page), page["total"], page["offset"], page["limit"]) == ([(DOG, 1)], 5, 3, 1)
    assert runs.call("find_files", query="zzz")["total"] == 0
    assert runs.call("find_files", query="a\x00")["items"] == []


@covers("find_files")
def test_find_files_refuses_unknown_ids(runs: Backend) -> None:
    first, _ = snapshots(runs)
    assert runs.error("find_files", query="x", client_id="no-such-client") == "NOT_FOUND"
    assert runs.error("find_files", query="x", snapshot_id="424242") == "NOT_FOUND"
    assert runs.error("find_files", query="x", snapshot_id=first["id"], client_id=runs.clients["gamma"]) == "NOT_FOUND"


@covers("download_file")
def test_download_any_version(runs: Backend) -> None:
    versions = runs.call("get_file_versions", file_id=runs.files[NOTES])["items"]
    for v in versions:
        stream = runs.stream("download_file", file_id=runs.files[NOTES], destination_path="n.txt", version=v["version"])
        data = stream.read_at(0, CHUNK_SIZE)
        assert (stream.total, len(data), hashlib.sha256(data).hexdigest()) == (v["size"], v["size"], v["sha256"])
        assert stream.final()["data"]["sha256"] == v["sha256"]
    newest = runs.stream("download_file", file_id=runs.files[NOTES], destination_path="n.txt")
    assert newest.total == 20
    assert runs.error("download_file", file_id=runs.files[NOTES], destination_path="n.txt", version=3) == "NOT_FOUND"
    assert runs.error("download_file", file_id=runs.files[NOTES], destination_path="n.txt", version=0) == "BAD_REQUEST"


def test_a_deleted_file_leaves_the_snapshots_that_held_it(tmp_path: Path) -> None:
    for mode in MODES:
        backend = make_backend(mode, tmp_path / mode)
        try:
            backup_run(backend, [seeded(NOTES), seeded(REPORT), seeded(CAT)])
            (snapshot,) = backend.call("list_snapshots", client_id=backend.clients["alpha"])["items"]
            assert [e["name"] for e in browse(backend, snapshot, "/home/alpha")["items"]] == [
                "photos",
                "Report.pdf",
                "notes.txt",
            ]
            backend.call("delete_file", file_id=backend.files[NOTES])
            names = [e["name"] for e in browse(backend, snapshot, "/home/alpha")["items"]]
            assert names == ["photos", "Report.pdf"], mode  # what is gone cannot be restored
            assert backend.call("get_snapshot", snapshot_id=snapshot["id"])["files_unchanged"] == 3  # as it ran
        finally:
            close(backend)
