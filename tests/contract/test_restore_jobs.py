"""Restore jobs: restore_to_agent queues a job, alpha's agent carries it out, and both backends say the same.

alpha has one complete run of its three seeded files. The real server's job is carried out
by the test playing alpha's agent (tests/contract/restore_agent.py), the mock's by its own
simulated agent over ticks; what is on alpha's disk is its files in either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors.mock.actions import set_client_status
from actors.mock.core import MockCore
from actors.server.core import BackupServer
from protocol.agent_messages import encode_message
from protocol.catalogue_restore_jobs import RESTORE_JOB_SHAPES
from protocol.events import RESTORE_JOB
from tests.contract.harness import FILES, MODES, Backend, close, covers, make_backend
from tests.contract.restore_agent import RealAgent, advance_mock, carry_out, outcome, replies, send
from tests.contract.runs import backup_run, seeded

pytestmark = pytest.mark.timeout(30)

NOTES, REPORT, CAT = "/home/alpha/notes.txt", "/home/alpha/Report.pdf", "/home/alpha/photos/cat.jpg"
ALL_BYTES = 11 + 300 + 5000
SHAPE = RESTORE_JOB_SHAPES[0].field_names


def _alpha(mode: str, tmp_path: Any) -> Iterator[Backend]:
    backend = make_backend(mode, tmp_path)
    backup_run(backend, [seeded(NOTES), seeded(REPORT), seeded(CAT)])
    backend.events()
    yield backend
    close(backend)


@pytest.fixture(params=MODES)
def alpha(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Backend]:
    yield from _alpha(request.param, tmp_path)


@pytest.fixture
def real_alpha(tmp_path: Any) -> Iterator[Backend]:
    """Agents exist on the real server only: what it accepts from them."""
    yield from _alpha("real", tmp_path)


def snapshot_id(backend: Backend) -> str:
    return str(backend.call("list_snapshots", client_id=backend.clients["alpha"])["items"][0]["id"])


def restore(backend: Backend, paths: list[str], destination: str = "/restore", **more: Any) -> dict[str, Any]:
    return backend.call(
        "restore_to_agent", snapshot_id=snapshot_id(backend), paths=paths, destination=destination, **more
    )


def job_events(backend: Backend) -> list[tuple[str, str]]:
    return [(d["change"], d["job"]["status"]) for t, d in backend.events() if t == RESTORE_JOB]


@covers("restore_to_agent", "get_restore_job", "list_restore_jobs")
def test_a_job_is_queued_then_carried_out_by_the_agent(alpha: Backend) -> None:
    job = restore(alpha, ["/home/alpha"])
    assert set(job) == SHAPE
    assert (job["status"], job["files_total"], job["bytes_total"], job["files_done"]) == ("queued", 3, ALL_BYTES, 0)
    assert (job["client_id"], job["snapshot_id"], job["paths"]) == (
        alpha.clients["alpha"],
        snapshot_id(alpha),
        ["/home/alpha"],
    )
    assert (job["destination"], job["overwrite"], job["started_at"], job["problems"]) == ("/restore", "skip", None, [])
    assert alpha.call("get_restore_job", job_id=job["id"]) == job
    assert job_events(alpha)[0] == ("queued", "queued")
    ended = carry_out(alpha, job["id"])
    assert set(ended) == SHAPE
    assert outcome(ended) == ("complete", 3, ALL_BYTES, 3, ALL_BYTES, 3, ALL_BYTES, 0, 0, [])
    assert ended["started_at"] is not None and ended["ended_at"] is not None and ended["error"] is None
    changes = job_events(alpha)
    assert changes[0] == ("started", "running") and changes[-1] == ("ended", "complete")
    listed = alpha.call("list_restore_jobs", client_id=alpha.clients["alpha"])
    assert (listed["total"], listed["items"]) == (1, [ended])
    assert alpha.call("list_restore_jobs", status="complete")["items"] == [ended]
    assert alpha.call("list_restore_jobs", status="queued")["total"] == 0
    assert "restore_completed" in [a["type"] for a in alpha.call("get_recent_activity")["items"]]


@covers("restore_to_agent")
def test_the_overwrite_policy_decides_about_files_already_there(alpha: Backend) -> None:
    # Into alpha's own folder: notes.txt is still there on its disk.
    skip = carry_out(alpha, restore(alpha, [NOTES], "/home/alpha")["id"])
    assert outcome(skip) == ("complete", 1, 11, 1, 11, 0, 0, 1, 0, [(NOTES, "skipped", "EXISTS")])
    for policy in ("overwrite", "rename"):
        done = carry_out(alpha, restore(alpha, [NOTES], "/home/alpha", overwrite=policy)["id"])
        assert outcome(done) == ("complete", 1, 11, 1, 11, 1, 11, 0, 0, []), policy
    elsewhere = carry_out(alpha, restore(alpha, [NOTES], "/somewhere/else")["id"])
    assert outcome(elsewhere)[0:6] == ("complete", 1, 11, 1, 11, 1)


@covers("restore_to_agent")
def test_content_that_no_longer_matches_fails_as_a_hash_mismatch(alpha: Backend) -> None:
    cat = alpha.files[CAT]
    if isinstance(alpha.core, BackupServer):  # the same size, other bytes: damage the agent can only see by hashing
        sha = alpha.core.conn.execute("SELECT sha256 FROM files WHERE id = ?", (cat,)).fetchone()[0]
        alpha.core.blobs.path_for(sha).write_bytes(b"x" * FILES[CAT].size)
    else:
        alpha.corrupt(cat)
    job = carry_out(alpha, restore(alpha, ["/home/alpha"])["id"])
    assert outcome(job) == ("partial", 3, ALL_BYTES, 3, ALL_BYTES, 2, 311, 0, 1, [(CAT, "failed", "HASH_MISMATCH")])
    assert job["problems"][0]["reason"]


@covers("restore_to_agent", "get_restore_job")
def test_a_job_waits_while_the_agent_is_away_and_resumes_when_it_is_back(alpha: Backend) -> None:
    alpha.call("disconnect_client", client_id=alpha.clients["alpha"])
    if isinstance(alpha.core, BackupServer):
        replies(alpha.core)  # the disconnect
    job = restore(alpha, ["/home/alpha/photos", NOTES])
    assert (job["files_total"], job["bytes_total"]) == (2, 5011)
    if isinstance(alpha.core, MockCore):
        advance_mock(alpha, times=5)
    else:
        assert replies(alpha.core) == []  # nobody to offer it to
    assert alpha.call("get_restore_job", job_id=job["id"])["status"] == "queued"
    _come_back(alpha)
    ended = carry_out(alpha, job["id"])
    assert outcome(ended) == ("complete", 2, 5011, 2, 5011, 2, 5011, 0, 0, [])


@covers("restore_to_agent")
def test_an_agent_lost_mid_job_leaves_it_queued_and_it_ends_the_same(alpha: Backend) -> None:
    job = restore(alpha, ["/home/alpha"])
    if isinstance(alpha.core, MockCore):
        advance_mock(alpha, seconds=0.0001)  # started, a few hundred bytes of the first file
        assert alpha.call("get_restore_job", job_id=job["id"])["status"] == "running"
    else:
        RealAgent(alpha).carry_out(job["id"], stop_after_batches=1)  # a batch handled, never checkpointed
        assert alpha.call("get_restore_job", job_id=job["id"])["files_done"] == 3
    alpha.call("disconnect_client", client_id=alpha.clients["alpha"])
    waiting = alpha.call("get_restore_job", job_id=job["id"]) if alpha.mode == "real" else None
    if isinstance(alpha.core, MockCore):
        advance_mock(alpha)
        waiting = alpha.call("get_restore_job", job_id=job["id"])
    assert waiting is not None and waiting["status"] == "queued"
    assert ("requeued", "queued") in job_events(alpha)
    _come_back(alpha)
    assert outcome(carry_out(alpha, job["id"])) == ("complete", 3, ALL_BYTES, 3, ALL_BYTES, 3, ALL_BYTES, 0, 0, [])


def _come_back(backend: Backend) -> None:
    """alpha's agent connects again: a new session (real), its client connected (mock)."""
    if isinstance(backend.core, BackupServer):
        hello = {"name": "alpha", "hostname": "alpha.lab.internal", "platform": "Ubuntu 24.04", "version": "1.4.0"}
        send(backend.core, "hello", route=b"route-alpha", **hello)
    else:
        world = backend.core.world
        set_client_status(world, world.clients[backend.clients["alpha"]], "connected")


@covers("restore_to_agent", "get_restore_job", "list_restore_jobs")
def test_refused_requests(alpha: Backend) -> None:
    sid = snapshot_id(alpha)

    def code(**changed: Any) -> str:
        return alpha.error(
            "restore_to_agent", **{"snapshot_id": sid, "paths": ["/home/alpha"], "destination": "/r", **changed}
        )

    assert code(snapshot_id="999999") == "NOT_FOUND"
    assert code(paths=["/home/alpha/none.txt"]) == "NOT_FOUND"
    assert code(paths=["/home/beta"]) == "NOT_FOUND"
    assert code(paths=["home/alpha"]) == "BAD_REQUEST"
    assert code(paths=["/home/../etc"]) == "BAD_REQUEST"
    assert code(paths=[]) == "BAD_REQUEST"
    for destination in ("relative/dir", "/tmp/../etc", "", "/tmp/\x01x", "C:relative"):
        assert code(destination=destination) == "BAD_REQUEST", destination
    assert code(overwrite="clobber") == "BAD_REQUEST"
    assert alpha.error("get_restore_job", job_id="999999") == "NOT_FOUND"
    assert alpha.error("get_restore_job", job_id="x") == "NOT_FOUND"
    assert alpha.error("list_restore_jobs", client_id="no-such-client") == "NOT_FOUND"
    assert alpha.error("list_restore_jobs", status="lost") == "BAD_REQUEST"
    assert alpha.call("list_restore_jobs")["total"] == 0


@covers("restore_to_agent")
def test_a_snapshot_still_running_cannot_be_restored_from(alpha: Backend) -> None:
    if isinstance(alpha.core, BackupServer):
        send(alpha.core, "manifest", batch=1, entries=[[NOTES, 11, 0, None]])  # a new run opens
    else:
        alpha.core.world.history.begin(alpha.clients["alpha"], alpha.core.world.now())
    running = alpha.call("list_snapshots", client_id=alpha.clients["alpha"])["items"][0]
    assert running["status"] == "running"
    args = {"snapshot_id": running["id"], "paths": ["/"], "destination": "/r"}
    assert alpha.error("restore_to_agent", **args) == "CONFLICT"


def test_an_agent_cannot_touch_another_clients_job(real_alpha: Backend) -> None:
    alpha = real_alpha
    assert isinstance(alpha.core, BackupServer)
    job = restore(alpha, ["/home/alpha"])
    beta = "contract-key-Beta-Workstation"
    hello = encode_message("hello", name="Beta", hostname="b", platform="p", version="1")
    alpha.core.agents.on_message(b"route-beta", hello, beta, "10.0.0.2")
    replies(alpha.core)
    alpha.core.agents.on_message(b"route-beta", encode_message("job_next", job=job["id"], cursor=""), beta, "10.0.0.2")
    errors = [h for h, _ in replies(alpha.core) if h["t"] == "error"]
    assert [(e["code"], e["ref"]) for e in errors] == [("FORBIDDEN", job["id"])]
    send(alpha.core, "job_next", job=job["id"], cursor='[0, "/x", ')  # not a cursor this server gave
    assert [h["code"] for h, _ in replies(alpha.core) if h["t"] == "error"] == ["BAD_REQUEST"]
    assert alpha.call("get_restore_job", job_id=job["id"])["status"] == "running"  # taken by the first job_next
