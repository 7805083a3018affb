"""A file in status error says why (File.error_message), by one rule in both backends.

Every change of a file's status to error sets a specific reason (a verification, a scrub, an
administrator's); every change to another status clears it. The reason travels wherever the
file does: get_files, a client's recent files, file.changed and the database view.
"""

from __future__ import annotations

from typing import Any

import pytest

from actors.backends.dbview import DEFAULT_ERROR_MESSAGE
from actors.backends.file_errors import scrub_failed, verify_failed
from protocol.tables import TABLE_BY_NAME
from tests.contract.harness import Backend, covers

pytestmark = pytest.mark.timeout(30)

ROTTEN = "/srv/data/archive.tar"  # gamma's only file
HEALTHY = "/home/alpha/notes.txt"


def changed_files(backend: Backend) -> list[dict[str, Any]]:
    return [data["file"] for topic, data in backend.events() if topic == "file.changed"]


def edit_file(backend: Backend, path: str, **changes: Any) -> dict[str, Any]:
    reply = backend.call("update_row", table_name="files", row_id=backend.files[path], updated_data=changes)
    row: dict[str, Any] = reply["row"]
    assert tuple(row) == TABLE_BY_NAME["files"].column_names
    return row


@covers("verify_file", "get_files", "get_client_details")
def test_a_failed_verification_says_why(backend: Backend) -> None:
    rotten = backend.file(ROTTEN)
    assert (rotten["status"], rotten["error_message"]) == ("uploaded", None)
    backend.corrupt(rotten["id"])
    verdict = backend.call("verify_file", file_id=rotten["id"])
    reason = verify_failed(rotten["sha256"], verdict["actual_sha256"])
    assert reason.startswith(f"verification failed: expected sha256 {rotten['sha256'][:12]}…, stored content hashes")
    marked = backend.file(ROTTEN)
    assert (marked["status"], marked["error_message"]) == ("error", reason)
    assert [(f["status"], f["error_message"]) for f in changed_files(backend)] == [("error", reason)]
    (recent,) = backend.call("get_client_details", client_id=backend.clients["gamma"])["recent_files"]
    assert recent["error_message"] == reason
    (row,) = [r for r in backend.call("get_table_data", table_name="files")["rows"] if r["path"] == ROTTEN]
    assert row["error_message"] == reason
    assert all(f["error_message"] is None for f in backend.call("get_files")["items"] if f["path"] != ROTTEN)


@covers("verify_file")
def test_a_passed_verification_clears_the_reason(backend: Backend) -> None:
    marked = edit_file(backend, HEALTHY, status="error", error_message="suspect disk")
    assert (marked["status"], marked["error_message"]) == ("error", "suspect disk")
    assert backend.file(HEALTHY)["error_message"] == "suspect disk"
    backend.events()
    verdict = backend.call("verify_file", file_id=backend.files[HEALTHY])
    assert (verdict["ok"], verdict["status"]) == (True, "verified")
    assert (backend.file(HEALTHY)["status"], backend.file(HEALTHY)["error_message"]) == ("verified", None)
    assert [f["error_message"] for f in changed_files(backend)] == [None]


@covers("scrub_storage")
def test_a_scrub_says_what_it_found_and_keeps_an_earlier_reason(backend: Backend) -> None:
    rotten = backend.file(ROTTEN)
    backend.corrupt(rotten["id"])
    report = backend.call("scrub_storage")
    (problem,) = report["damaged"]
    reason = scrub_failed(rotten["sha256"], "damaged", problem["actual_sha256"])
    assert reason == f"storage scrub: stored content (sha256 {rotten['sha256'][:12]}…) hashes to " + (
        f"{problem['actual_sha256'][:12]}…"
    )
    assert (backend.file(ROTTEN)["status"], backend.file(ROTTEN)["error_message"]) == ("error", reason)
    backend.call("verify_file", file_id=rotten["id"])  # error again: the newest finding is the reason
    verified = verify_failed(rotten["sha256"], problem["actual_sha256"])
    assert backend.file(ROTTEN)["error_message"] == verified
    backend.call("scrub_storage")  # already known to be bad: marked again by nobody
    assert backend.file(ROTTEN)["error_message"] == verified


@covers("update_row")
def test_an_administrator_marks_a_file_in_error_with_a_reason(backend: Backend) -> None:
    assert edit_file(backend, HEALTHY, status="error")["error_message"] == DEFAULT_ERROR_MESSAGE
    assert edit_file(backend, HEALTHY, error_message="bad sector")["error_message"] == "bad sector"
    kept = edit_file(backend, HEALTHY, status="error", name="notes-old.txt")  # the reason it has stays
    assert (kept["error_message"], kept["path"]) == ("bad sector", "/home/alpha/notes-old.txt")
    listed = backend.file(HEALTHY)
    assert (listed["status"], listed["error_message"]) == ("error", "bad sector")
    assert [f["id"] for f in backend.call("get_files", filters={"status": "error"})["items"]] == [listed["id"]]
    cleared = edit_file(backend, HEALTHY, status="uploaded")
    assert (cleared["status"], cleared["error_message"]) == ("uploaded", None)
    given = edit_file(backend, ROTTEN, status="error", error_message="tape lost")
    assert (given["status"], given["error_message"]) == ("error", "tape lost")
    assert edit_file(backend, ROTTEN, status="verified")["error_message"] is None
    assert backend.activity_types() == ["file_updated"] * 6


@covers("update_row")
@pytest.mark.parametrize(
    "table, path_or_name, start, changes",
    [
        ("files", HEALTHY, None, {"error_message": "boom"}),  # the file is not in status error
        ("files", HEALTHY, None, {"status": "verified", "error_message": "boom"}),
        ("files", HEALTHY, None, {"error_message": ""}),
        ("files", HEALTHY, None, {"error_message": "two\nlines"}),
        ("files", HEALTHY, None, {"error_message": 5}),
        ("files", HEALTHY, "error", {"error_message": None}),  # a file in error keeps a reason
        ("files", HEALTHY, "error", {"status": "uploaded", "error_message": "boom"}),
        ("clients", "gamma", None, {"error_message": None}),  # the same rule for a client in error
    ],
)
def test_refused_reasons_change_nothing(
    backend: Backend, table: str, path_or_name: str, start: str | None, changes: dict[str, Any]
) -> None:
    if start is not None:
        edit_file(backend, path_or_name, status=start)
    row_id = backend.files[path_or_name] if table == "files" else backend.clients[path_or_name]
    before = backend.call("get_table_data", table_name=table)["rows"]
    backend.events()
    assert backend.error("update_row", table_name=table, row_id=row_id, updated_data=changes) == "BAD_REQUEST"
    assert backend.call("get_table_data", table_name=table)["rows"] == before and backend.events() == []
