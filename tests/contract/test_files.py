"""Files: listing (filters, sorts, pages), a client's files, deleting, downloading (streamed), verifying."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from protocol.catalogue import FILE_SORTS
from protocol.shapes import SHAPE_BY_NAME
from protocol.streaming import CHUNK_SIZE
from tests.contract.harness import FILES, START, Backend, covers

pytestmark = pytest.mark.timeout(30)

ALPHA_FILES = ("/home/alpha/notes.txt", "/home/alpha/Report.pdf", "/home/alpha/photos/cat.jpg")


def names(page: dict[str, Any]) -> list[str]:
    return [f["name"] for f in page["items"]]


@covers("get_files")
def test_files_have_the_declared_shape(reader: Backend) -> None:
    page = reader.call("get_files")
    assert (page["total"], page["offset"], page["limit"], len(page["items"])) == (6, 0, 100, 6)
    for file in page["items"]:
        assert set(file) == SHAPE_BY_NAME["File"].field_names
        seed = FILES[file["path"]]
        assert file["id"] == reader.files[file["path"]]
        assert (file["size"], file["modified_at"], file["status"], file["backup_count"]) == (
            seed.size,
            seed.mtime,
            "uploaded",
            1,
        )
        assert (file["created_at"], file["last_backup"], file["last_verified"]) == (START, START, None)
        assert len(file["sha256"]) == 64
    report = next(f for f in page["items"] if f["path"] == "/home/alpha/Report.pdf")
    assert (report["name"], report["client_id"]) == ("Report.pdf", reader.clients["alpha"])
    windows = next(f for f in page["items"] if f["path"].endswith("Notes.md"))
    assert windows["name"] == "Notes.md"  # the last component of a Windows path


@covers("get_files")
def test_a_page_of_files_names_the_clients_of_its_files(reader: Backend) -> None:
    by_id = {client_id: name for name, client_id in reader.clients.items()}
    every = reader.call("get_files")
    assert every["client_names"] == {f["client_id"]: by_id[f["client_id"]] for f in every["items"]}
    assert len(set(every["client_names"])) > 1  # files of several clients: each named once
    one = reader.call("get_files", offset=0, limit=1)
    assert one["client_names"] == {one["items"][0]["client_id"]: by_id[one["items"][0]["client_id"]]}
    assert reader.call("get_files", client_id=reader.clients["Émile"])["client_names"] == {}


@covers("get_files")
@pytest.mark.parametrize("sort", FILE_SORTS)
def test_file_sorts(reader: Backend, sort: str) -> None:
    expected = {
        "name": ["archive.tar", "budget.xlsx", "cat.jpg", "Notes.md", "notes.txt", "Report.pdf"],
        "size": ["notes.txt", "Notes.md", "Report.pdf", "budget.xlsx", "cat.jpg", "archive.tar"],
        "modified_at": ["notes.txt", "Report.pdf", "cat.jpg", "budget.xlsx", "Notes.md", "archive.tar"],
        # Case-folded paths: "/" sorts before "c", "notes.txt" before "photos/" before "report.pdf".
        "path": ["notes.txt", "cat.jpg", "Report.pdf", "archive.tar", "budget.xlsx", "Notes.md"],
    }[sort.lstrip("-")]
    got = names(reader.call("get_files", filters={"sort": sort}))
    assert got == (list(reversed(expected)) if sort.startswith("-") else expected)


@covers("get_files")
@pytest.mark.parametrize(
    "filters, expected",
    [
        (None, ["archive.tar", "budget.xlsx", "cat.jpg", "Notes.md", "notes.txt", "Report.pdf"]),
        ({}, ["archive.tar", "budget.xlsx", "cat.jpg", "Notes.md", "notes.txt", "Report.pdf"]),
        (
            {"status": "uploaded", "search": None, "min_size": None},  # null means "not set"
            ["archive.tar", "budget.xlsx", "cat.jpg", "Notes.md", "notes.txt", "Report.pdf"],
        ),
        ({"status": "verified"}, []),
        ({"search": "NOTES"}, ["Notes.md", "notes.txt"]),  # the name, case-insensitive
        ({"search": "photos"}, ["cat.jpg"]),  # the path
        ({"search": "\\users\\"}, ["budget.xlsx", "Notes.md"]),
        ({"search": "txt\n/home"}, []),  # name and path are searched one by one, never across
        ({"min_size": 300}, ["archive.tar", "budget.xlsx", "cat.jpg", "Report.pdf"]),
        ({"max_size": 2048}, ["budget.xlsx", "Notes.md", "notes.txt", "Report.pdf"]),
        ({"min_size": 300, "max_size": 2048}, ["budget.xlsx", "Report.pdf"]),
        ({"min_size": 300, "max_size": 300}, ["Report.pdf"]),
        (
            {"search": "o", "max_size": 5000, "sort": "-size"},
            ["cat.jpg", "budget.xlsx", "Report.pdf", "Notes.md", "notes.txt"],
        ),
    ],
)
def test_file_filters(reader: Backend, filters: dict[str, Any] | None, expected: list[str]) -> None:
    page = reader.call("get_files", filters=filters, limit=1000)
    assert names(page) == expected and page["total"] == len(expected)


@covers("get_files")
def test_files_of_one_client_and_pages(reader: Backend) -> None:
    alpha = reader.call("get_files", client_id=reader.clients["alpha"], filters={"sort": "-size"})
    assert names(alpha) == ["cat.jpg", "Report.pdf", "notes.txt"] and alpha["total"] == 3
    narrowed = reader.call("get_files", client_id=reader.clients["alpha"], filters={"search": "o", "max_size": 300})
    assert names(narrowed) == ["notes.txt", "Report.pdf"]
    assert reader.call("get_files", client_id=reader.clients["Émile"])["items"] == []
    assert reader.error("get_files", client_id="no-such-client") == "NOT_FOUND"
    every = names(reader.call("get_files"))
    page = reader.call("get_files", offset=2, limit=2)
    assert names(page) == every[2:4] and (page["total"], page["offset"], page["limit"]) == (6, 2, 2)
    filtered = reader.call("get_files", offset=1, limit=1, filters={"search": "notes"})
    assert names(filtered) == ["notes.txt"] and filtered["total"] == 2
    assert reader.call("get_files", offset=6)["items"] == []


@covers("get_files")
@pytest.mark.parametrize(
    "filters",
    [
        {"colour": "red"},
        {"status": 3},
        {"status": "lost"},
        {"sort": "sha256"},
        {"sort": 1},
        {"search": ["a"]},
        {"min_size": "10"},
        {"min_size": True},
        {"max_size": -1},
        {"max_size": 2**63},  # beyond any integer SQLite can compare
        {"min_size": 10, "max_size": 5},
    ],
)
def test_bad_file_filters(reader: Backend, filters: dict[str, Any]) -> None:
    assert reader.error("get_files", filters=filters) == "BAD_REQUEST"


@covers("get_client_files")
def test_client_files(reader: Backend) -> None:
    listing = reader.call("get_client_files", client_id=reader.clients["Beta-Workstation"])
    assert set(listing) == {"items", "total"} and listing["total"] == 2
    assert names(listing) == ["budget.xlsx", "Notes.md"]
    assert all(set(f) == SHAPE_BY_NAME["File"].field_names for f in listing["items"])
    assert reader.call("get_client_files", client_id=reader.clients["Émile"]) == {"items": [], "total": 0}
    assert reader.error("get_client_files", client_id="no-such-client") == "NOT_FOUND"


@covers("delete_file")
def test_delete_file(backend: Backend) -> None:
    file_id, alpha_id = backend.files["/home/alpha/Report.pdf"], backend.clients["alpha"]
    assert backend.call("delete_file", file_id=file_id) == {
        "file_id": file_id,
        "client_id": alpha_id,
        "freed_bytes": 300,
    }
    events = backend.events()
    assert ("file.changed", {"file_id": file_id, "client_id": alpha_id, "change": "deleted", "file": None}) in events
    assert [d["type"] for t, d in events if t == "activity"] == ["file_deleted"]
    alpha = backend.client("alpha")
    assert (alpha["files_count"], alpha["total_size"]) == (2, 5011)
    assert backend.call("get_server_status")["files_total"] == 5
    for op, extra in (("delete_file", {}), ("verify_file", {}), ("download_file", {"destination_path": "/tmp/x"})):
        assert backend.error(op, file_id=file_id, **extra) == "NOT_FOUND"


@covers("download_file")
def test_download_streams_the_content(reader: Backend) -> None:
    file = reader.file("/srv/data/archive.tar")
    stream = reader.stream("download_file", file_id=file["id"], destination_path="/home/me/archive.tar")
    assert stream.total == 300_000 > CHUNK_SIZE
    first = stream.read_at(0, CHUNK_SIZE)
    rest = stream.read_at(CHUNK_SIZE, CHUNK_SIZE)
    assert (len(first), len(rest)) == (CHUNK_SIZE, 300_000 - CHUNK_SIZE)
    assert hashlib.sha256(first + rest).hexdigest() == file["sha256"]
    final = stream.final()
    assert final["success"] is True and final["mode"] == reader.mode
    assert final["data"] == {
        "file_id": file["id"],
        "name": "archive.tar",
        "size": 300_000,
        "sha256": file["sha256"],
        "expected_sha256": file["sha256"],
        "damaged": False,
        "chunks": 2,
        "destination_path": "/home/me/archive.tar",
    }
    small = reader.stream("download_file", file_id=reader.files["/home/alpha/notes.txt"], destination_path="n.txt")
    assert small.total == 11 and len(small.read_at(0, CHUNK_SIZE)) == 11 and small.final()["data"]["chunks"] == 1
    assert reader.events() == []  # a download changes nothing


@covers("download_file")
@pytest.mark.parametrize("destination", ["", "   ", "../x", "/tmp/../etc/passwd", "C:\\a\\..\\b", "a\x00b"])
def test_download_refuses_a_bad_destination(reader: Backend, destination: str) -> None:
    file_id = reader.files["/home/alpha/notes.txt"]
    assert reader.error("download_file", file_id=file_id, destination_path=destination) == "BAD_REQUEST"
    assert reader.error("download_file", file_id="no-such-file", destination_path="/tmp/x") == "NOT_FOUND"


@covers("verify_file")
def test_verify_file(backend: Backend) -> None:
    file = backend.file("/home/alpha/notes.txt")
    verdict = backend.call("verify_file", file_id=file["id"])
    assert verdict == {
        "file_id": file["id"],
        "ok": True,
        "expected_sha256": file["sha256"],
        "actual_sha256": file["sha256"],
        "status": "verified",
        "verified_at": START,
    }
    assert (backend.file(file["path"])["status"], backend.file(file["path"])["last_verified"]) == ("verified", START)
    events = backend.events()
    assert [t for t, _ in events] == ["file.changed", "activity"] and events[1][1]["type"] == "verify_passed"
    rotten = backend.file("/srv/data/archive.tar")
    backend.corrupt(rotten["id"])
    bad = backend.call("verify_file", file_id=rotten["id"])
    assert (bad["ok"], bad["status"], bad["expected_sha256"]) == (False, "error", rotten["sha256"])
    assert bad["actual_sha256"] != rotten["sha256"]
    assert names(backend.call("get_files", filters={"status": "error"})) == ["archive.tar"]
    assert backend.activity_types() == ["verify_failed"]
    assert backend.error("verify_file", file_id="no-such-file") == "NOT_FOUND"
