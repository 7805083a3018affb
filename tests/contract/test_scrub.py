"""The storage scrub: the same report, marks and events from both backends."""

from __future__ import annotations

import pytest

from tests.contract.harness import FILES, START, Backend, covers

pytestmark = pytest.mark.timeout(30)

REPORT_FIELDS = {
    "complete",
    "started_at",
    "finished_at",
    "blobs_checked",
    "files_checked",
    "bytes_checked",
    "damaged_total",
    "damaged",
}


@covers("scrub_storage")
def test_a_clean_store_scrubs_clean(backend: Backend) -> None:
    report = backend.call("scrub_storage")
    assert set(report) == REPORT_FIELDS
    total = sum(f.size for f in FILES.values())
    assert report == {
        "complete": True,
        "started_at": START,
        "finished_at": START,
        "blobs_checked": len(FILES),  # every seeded content is its own
        "files_checked": len(FILES),
        "bytes_checked": total,
        "damaged_total": 0,
        "damaged": [],
    }
    assert backend.call("get_files", filters={"status": "error"})["total"] == 0
    events = backend.events()
    assert [(t, d["type"], d["level"]) for t, d in events] == [("activity", "scrub_completed", "INFO")]


@covers("scrub_storage")
def test_damaged_content_marks_its_file_and_is_reported(backend: Backend) -> None:
    rotten = backend.file("/srv/data/archive.tar")
    backend.corrupt(rotten["id"])
    report = backend.call("scrub_storage")
    assert report["complete"] is True and report["damaged_total"] == 1
    (problem,) = report["damaged"]
    assert set(problem) == {"file_id", "client_id", "path", "sha256", "problem", "actual_sha256"}
    assert (problem["file_id"], problem["client_id"], problem["path"]) == (
        rotten["id"],
        backend.clients["gamma"],
        "/srv/data/archive.tar",
    )
    assert (problem["sha256"], problem["problem"]) == (rotten["sha256"], "damaged")
    assert len(problem["actual_sha256"]) == 64 and problem["actual_sha256"] != rotten["sha256"]
    marked = backend.file("/srv/data/archive.tar")
    assert (marked["status"], marked["last_verified"]) == ("error", START)
    events = backend.events()
    assert [t for t, _ in events] == ["file.changed", "activity", "activity"]
    assert events[0][1]["file"]["status"] == "error"
    assert [(d["type"], d["level"]) for _, d in events[1:]] == [
        ("scrub_damaged", "ERROR"),
        ("scrub_completed", "ERROR"),
    ]
    assert events[1][1]["file_id"] == rotten["id"] and "archive.tar" in events[1][1]["message"]
    # Still damaged at the next pass: reported again, but the file is not announced twice.
    again = backend.call("scrub_storage")
    assert again["damaged"] == report["damaged"]
    assert backend.activity_types() == ["scrub_completed"]
    assert backend.call("verify_file", file_id=rotten["id"])["ok"] is False  # verify agrees
