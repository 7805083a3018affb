"""The mock's restore jobs in its own world: carried out by its ticks, kept across a restart, replayed the same."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from actors.backends.api import RequestContext
from actors.mock.core import MockCore
from actors.mock.restore_jobs import MockRestoreJobs
from runtime.clock import SimulatedClock

pytestmark = pytest.mark.timeout(60)

CTX = RequestContext("test", None)
T0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def open_core(data_dir: Path) -> MockCore:
    return MockCore.open(data_dir, clients=6, files=80, clock=SimulatedClock(T0), tick_seconds=1.0)


def call(core: MockCore, op: str, **args: Any) -> Any:
    reply = core.handle(op, args, CTX)
    assert isinstance(reply, dict) and reply["success"], reply
    return reply["data"]


def a_job(core: MockCore) -> dict[str, Any]:
    """A whole run of a connected client, restored elsewhere."""
    world = core.world
    for client in world.clients.values():
        runs = [world.history.runs[i] for i in world.history.by_client.get(client.id, [])]
        done = [r for r in runs if r.status in ("complete", "partial") and r.entries]
        if client.status == "connected" and done:
            return call(core, "restore_to_agent", snapshot_id=done[-1].id, paths=["/"], destination="/restored")
    raise AssertionError("no connected client with a run")


def test_ticks_carry_a_job_out_and_it_survives_a_restart(tmp_path: Path) -> None:
    core = open_core(tmp_path)
    job = a_job(core)
    assert job["status"] == "queued" and job["files_total"] > 0
    core.close()
    core = open_core(tmp_path)  # from the state document and its journal
    assert call(core, "get_restore_job", job_id=job["id"]) == job
    for _ in range(600):
        core.tick()
        now = call(core, "get_restore_job", job_id=job["id"])
        if now["status"] not in ("queued", "running"):
            break
    assert now["status"] in ("complete", "partial")
    assert now["files_done"] == now["files_restored"] + now["files_skipped"] + now["files_failed"] == now["files_total"]
    assert now["bytes_done"] == now["bytes_total"]
    core.close()
    reopened = open_core(tmp_path)
    try:
        assert call(reopened, "get_restore_job", job_id=job["id"]) == now
        assert call(reopened, "list_restore_jobs")["items"] == [now]
    finally:
        reopened.close()


def test_the_jobs_state_round_trips(tmp_path: Path) -> None:
    core = open_core(tmp_path)
    a_job(core)
    core.world.restore_jobs.advance(core.world, 0.001)
    jobs = core.world.restore_jobs
    again = MockRestoreJobs.decode(jobs.encode())
    assert again.encode() == jobs.encode() and again.next_id == jobs.next_id
    assert [m.job.to_dict() for m in again.jobs.values()] == [m.job.to_dict() for m in jobs.jobs.values()]
    assert MockRestoreJobs.decode(None).jobs == {}
    core.close()


def test_a_cancel_is_journaled_and_a_state_without_queued_at_still_loads(tmp_path: Path) -> None:
    core = open_core(tmp_path)
    job = a_job(core)
    cancelled = call(core, "cancel_restore_job", job_id=job["id"])
    assert cancelled["status"] == "cancelled"
    doc = core.world.restore_jobs.encode()
    core.close()
    reopened = open_core(tmp_path)  # the cancel replayed from the journal
    try:
        assert call(reopened, "get_restore_job", job_id=job["id"]) == cancelled
    finally:
        reopened.close()
    for row in doc["jobs"]:
        del row[3][3]  # as saved before jobs expired: no queued_at
    older = MockRestoreJobs.decode(doc)
    (mock,) = older.jobs.values()
    assert mock.queued_at == mock.job.created_at  # it waits from its creation
