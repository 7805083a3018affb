"""Restore jobs that do not run to their end: cancelled by an operator, or expired because their agent never came.

The same alpha as tests/contract/test_restore_jobs.py (one complete run of its three files). A running
job's agent stops between two files: the real server's agent is played by the test (restore_agent.py),
which stops as told (``job_cancel``) or, as an older agent would, not at all; the mock's simulated agent
stops at its next tick.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from actors.mock.core import MockCore
from actors.server.core import BackupServer
from protocol.catalogue_restore_jobs import QUEUED_EXPIRY_S
from protocol.errors import ProtocolError
from tests.contract.harness import Backend, covers
from tests.contract.restore_agent import RealAgent, advance_mock, outcome, replies, send
from tests.contract.test_restore_jobs import (
    ALL_BYTES,
    SHAPE,
    alpha,
    job_events,
    real_alpha,
    restore,
)

__all__ = ["alpha", "real_alpha"]  # the fixtures, imported for this module's tests

pytestmark = pytest.mark.timeout(30)


def _away(backend: Backend) -> None:
    """alpha's agent is gone: a job it is given waits queued."""
    backend.call("disconnect_client", client_id=backend.clients["alpha"])
    if isinstance(backend.core, BackupServer):
        replies(backend.core)


def _activity(backend: Backend) -> list[tuple[str, str]]:
    return [(a["type"], a["level"]) for a in backend.call("get_recent_activity")["items"]]


def _wait(backend: Backend, seconds: float) -> None:
    """Time passes on the server (its tick runs), with alpha's agent still away."""
    if isinstance(backend.core, MockCore):
        advance_mock(backend, seconds=seconds)
    else:
        backend.core.clock.advance(seconds)
        backend.core.tick()


@covers("cancel_restore_job", "get_restore_job")
def test_a_queued_job_is_cancelled_at_once(alpha: Backend) -> None:
    _away(alpha)
    job = restore(alpha, ["/home/alpha"])
    job_events(alpha)
    cancelled = alpha.call("cancel_restore_job", job_id=job["id"])
    assert set(cancelled) == SHAPE
    assert outcome(cancelled) == ("cancelled", 3, ALL_BYTES, 0, 0, 0, 0, 0, 0, [])
    assert cancelled["ended_at"] is not None and cancelled["started_at"] is None and cancelled["error"] is None
    assert alpha.call("get_restore_job", job_id=job["id"]) == cancelled
    assert job_events(alpha) == [("ended", "cancelled")]
    assert ("restore_cancelled", "INFO") in _activity(alpha)
    if isinstance(alpha.core, MockCore):
        advance_mock(alpha, times=3)  # the simulated agent never takes it
    assert alpha.call("get_restore_job", job_id=job["id"]) == cancelled


@covers("cancel_restore_job")
def test_a_running_job_stops_between_two_files_and_keeps_what_it_did(alpha: Backend) -> None:
    job = restore(alpha, ["/home/alpha"])
    asked: list[dict[str, object]] = []

    def cancel_after_two(handled: int) -> None:
        if handled == 2 and not asked:
            asked.append(alpha.call("cancel_restore_job", job_id=job["id"]))

    if isinstance(alpha.core, BackupServer):
        RealAgent(alpha).carry_out(job["id"], before_file=cancel_after_two)
    else:
        advance_mock(alpha, seconds=0.0001)  # Report.pdf and notes.txt written, cat.jpg under way
        cancel_after_two(2)
        advance_mock(alpha)
    assert asked[0]["status"] == "cancelling"
    ended = alpha.call("get_restore_job", job_id=job["id"])
    # The two files written before the cancel stay, restored and verified; cat.jpg was never finished.
    assert outcome(ended) == ("cancelled", 3, ALL_BYTES, 2, 311, 2, 311, 0, 0, [])
    assert ended["ended_at"] is not None
    changes = job_events(alpha)
    assert ("cancelling", "cancelling") in changes and changes[-1] == ("ended", "cancelled")
    assert ("restore_cancelled", "INFO") in _activity(alpha)


@covers("cancel_restore_job")
def test_a_job_being_cancelled_ends_when_its_agent_goes(alpha: Backend) -> None:
    job = restore(alpha, ["/home/alpha"])
    if isinstance(alpha.core, BackupServer):
        send(alpha.core, "job_next", job=job["id"], cursor="")  # taken: running
    else:
        advance_mock(alpha, seconds=0.0001)
    assert alpha.call("get_restore_job", job_id=job["id"])["status"] == "running"
    assert alpha.call("cancel_restore_job", job_id=job["id"])["status"] == "cancelling"
    assert alpha.call("cancel_restore_job", job_id=job["id"])["status"] == "cancelling"  # asked again: still so
    _away(alpha)
    if isinstance(alpha.core, MockCore):
        advance_mock(alpha)
    ended = alpha.call("get_restore_job", job_id=job["id"])
    assert ended["status"] == "cancelled"
    assert ended["files_restored"] + ended["files_skipped"] + ended["files_failed"] == ended["files_done"]


@covers("cancel_restore_job")
def test_cancelling_a_job_that_ended_or_does_not_exist_is_refused(alpha: Backend) -> None:
    assert alpha.error("cancel_restore_job", job_id="999999") == "NOT_FOUND"
    assert alpha.error("cancel_restore_job", job_id="x") == "NOT_FOUND"
    _away(alpha)
    job = restore(alpha, ["/home/alpha"])
    alpha.call("cancel_restore_job", job_id=job["id"])
    with pytest.raises(ProtocolError) as info:
        alpha.run("cancel_restore_job", {"job_id": job["id"]})
    assert info.value.code.value == "CONFLICT" and "already ended (cancelled" in info.value.message


@covers("restore_to_agent", "get_restore_job")
def test_a_job_nobody_comes_for_expires(alpha: Backend) -> None:
    _away(alpha)
    job = restore(alpha, ["/home/alpha"])
    _wait(alpha, QUEUED_EXPIRY_S - 120)
    assert alpha.call("get_restore_job", job_id=job["id"])["status"] == "queued"
    job_events(alpha)
    _wait(alpha, 180)
    expired = alpha.call("get_restore_job", job_id=job["id"])
    assert outcome(expired) == ("expired", 3, ALL_BYTES, 0, 0, 0, 0, 0, 0, [])
    assert "did not come for it within 24 h" in expired["error"]
    assert expired["ended_at"] - expired["created_at"] >= timedelta(seconds=QUEUED_EXPIRY_S)
    assert job_events(alpha) == [("ended", "expired")]
    assert ("restore_expired", "WARNING") in _activity(alpha)
    assert alpha.error("cancel_restore_job", job_id=job["id"]) == "CONFLICT"


def test_an_agent_that_ignores_the_cancel_is_stopped_at_its_next_batch(real_alpha: Backend) -> None:
    alpha = real_alpha
    assert isinstance(alpha.core, BackupServer)
    job = restore(alpha, ["/home/alpha"])
    replies(alpha.core)
    send(alpha.core, "job_next", job=job["id"], cursor="")
    batch = next(h for h, _ in replies(alpha.core) if h["t"] == "job_items")
    alpha.call("cancel_restore_job", job_id=job["id"])
    assert [h for h, _ in replies(alpha.core)] == [{"v": 1, "t": "job_cancel", "job": job["id"]}]
    counts = dict.fromkeys(("files_done", "files_restored"), 1) | dict.fromkeys(("bytes_done", "bytes_restored"), 300)
    counts |= {"files_skipped": 0, "files_failed": 0}
    send(alpha.core, "job_checkpoint", job=job["id"], cursor=batch["cursor"], counts=counts, problems=[], end=False)
    send(alpha.core, "job_next", job=job["id"], cursor=batch["cursor"])
    errors = [h for h, _ in replies(alpha.core) if h["t"] == "error"]
    assert [(e["code"], e["ref"]) for e in errors] == [("CONFLICT", job["id"])]
    ended = alpha.call("get_restore_job", job_id=job["id"])
    assert (ended["status"], ended["files_done"], ended["bytes_restored"]) == ("cancelled", 1, 300)
    # A job_stopped nobody asked for, or for a job over, is refused.
    send(alpha.core, "job_stopped", job=job["id"], counts=counts, problems=[])
    assert [h["code"] for h, _ in replies(alpha.core) if h["t"] == "error"] == ["CONFLICT"]


def test_a_connected_agent_drops_the_offer_of_a_queued_job_cancelled(real_alpha: Backend) -> None:
    alpha = real_alpha
    assert isinstance(alpha.core, BackupServer)
    job = restore(alpha, ["/home/alpha"])
    assert [h["t"] for h, _ in replies(alpha.core)] == ["restore_job"]
    assert alpha.call("cancel_restore_job", job_id=job["id"])["status"] == "cancelled"
    assert [h["t"] for h, _ in replies(alpha.core)] == ["job_cancel"]
    send(alpha.core, "job_next", job=job["id"], cursor="")  # it took it anyway: refused
    assert [h["code"] for h, _ in replies(alpha.core) if h["t"] == "error"] == ["CONFLICT"]
