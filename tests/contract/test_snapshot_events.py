"""snapshot.ended: every backup run that ends says so, with its summary, in both backends.

Consoles follow it to refresh a client's history and the Restore view's timeline without polling.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors.server.core import BackupServer
from protocol.events import SNAPSHOT_ENDED
from protocol.shapes import SHAPE_BY_NAME
from tests.contract.harness import MODES, Backend, close, covers, make_backend
from tests.contract.restore_agent import replies, send
from tests.contract.runs import ROOT, RunFile, backup_run, seeded

pytestmark = pytest.mark.timeout(30)

NOTES, REPORT, CAT = "/home/alpha/notes.txt", "/home/alpha/Report.pdf", "/home/alpha/photos/cat.jpg"
LOCKED = "/home/alpha/locked.db"
ALL = [NOTES, REPORT, CAT]


@pytest.fixture(params=MODES)
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Backend]:
    made = make_backend(request.param, tmp_path)
    yield made
    close(made)


def _ended(events: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [data for topic, data in events if topic == SNAPSHOT_ENDED]


@covers("list_snapshots", "get_snapshot")
def test_a_run_that_ends_is_an_event_with_its_summary(backend: Backend) -> None:
    alpha = backend.clients["alpha"]
    (first,) = _ended(backup_run(backend, [seeded(p) for p in ALL]))
    snapshot = backend.call("get_snapshot", snapshot_id=first["snapshot_id"])
    assert first == {"client_id": alpha, "snapshot_id": snapshot["id"], "status": "complete", "snapshot": snapshot}
    assert set(first["snapshot"]) == set(SHAPE_BY_NAME["Snapshot"].field_names)
    assert (snapshot["files_total"], snapshot["bytes_total"], snapshot["root"]) == (3, 5311, ROOT)
    unreadable = RunFile(LOCKED, None, snapshot["started_at"], listed_size=50)
    (second,) = _ended(backup_run(backend, [*(seeded(p) for p in ALL), unreadable]))
    assert (second["status"], second["snapshot"]["files_failed"], second["snapshot"]["status"]) == (
        "partial",
        1,
        "partial",
    )
    newest = backend.call("list_snapshots", client_id=alpha)["items"][0]
    assert second["snapshot"] == newest and second["snapshot_id"] != first["snapshot_id"]


def test_a_run_cut_short_is_an_event_too(tmp_path: Any) -> None:
    """Real server: a run whose agent starts over (a new batch 1) ended interrupted."""
    backend = make_backend("real", tmp_path)
    try:
        assert isinstance(backend.core, BackupServer)
        send(backend.core, "manifest", batch=1, entries=[[NOTES, 11, 0, None]])
        replies(backend.core)
        backend.events()
        send(backend.core, "manifest", batch=1, entries=[[NOTES, 11, 0, None]])
        (cut,) = _ended(backend.events())
        assert (cut["status"], cut["snapshot"]["status"]) == ("interrupted", "interrupted")
    finally:
        close(backend)
