"""cancel_restore_job end to end: a real server, a real --watch agent, the console through the bridge.

The agent backs up a folder of many small files; a restore of all of it elsewhere is cancelled
while it runs. The agent stops between two files: the job ends cancelled with its counts so
far, every file it restored is there whole (its bytes are the backed-up ones), nothing half
written is left, and the rest never came.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.connection import BridgeClient
from protocol.events import RESTORE_JOB
from tests.conftest import ROOT, ok, wait_until
from tests.test_restore_job_e2e import _complete_run, tree
from tests.test_server_e2e import RealServer, bridge_stack, client_named, server

__all__ = ["bridge_stack", "server"]  # the fixtures, imported for this module's tests

pytestmark = pytest.mark.timeout(180)

FILES = 1500  # small files: each is fetched, fsynced, read back and renamed, so the job lasts a few seconds


@pytest.fixture
def agent(server: RealServer, tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "many"
    for n in range(FILES):
        sub = folder / f"d{n // 500:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{n:05d}.txt").write_bytes(f"file {n}\n".encode() * 20)
    argv = server.agent_argv("backup", str(folder), "--name", "many-agent", "--watch", "600", config=tmp_path / "agent")
    log = open(tmp_path / "agent.log", "w")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        yield folder
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_a_running_restore_is_cancelled_between_two_files(server: RealServer, agent: Path, tmp_path: Path) -> None:
    before = tree(agent)
    with server.stack.client() as c:
        client = wait_until(lambda: _named_client(c), 30, 0.2, "the agent's client")
        run = wait_until(lambda: _complete_run(c, client["id"]), 60, 0.2, "the agent's first run")
        assert run["files_total"] == FILES
        elsewhere = tmp_path / "restored"
        args = {"snapshot_id": run["id"], "paths": [str(agent)], "destination": str(elsewhere)}
        start_seq = ok(c.call("bridge_status"))["latest_seq"]  # after the backup's thousands of file events
        queued = ok(c.call("restore_to_agent", args))

        def under_way() -> dict[str, Any] | None:
            job = ok(c.call("get_restore_job", {"job_id": queued["id"]}))
            assert job["status"] in ("queued", "running"), job
            return job if job["files_done"] >= 50 else None

        wait_until(under_way, 60, 0.02, "the job under way")
        asked = ok(c.call("cancel_restore_job", {"job_id": queued["id"]}))
        assert asked["status"] == "cancelling"

        def ended() -> dict[str, Any] | None:
            job = ok(c.call("get_restore_job", {"job_id": queued["id"]}))
            return job if job["status"] not in ("running", "cancelling") else None

        job = wait_until(ended, 30, 0.05, "the job's end")
        assert job["status"] == "cancelled", job
        assert 50 <= job["files_done"] < FILES and job["files_failed"] == job["files_skipped"] == 0
        assert job["files_restored"] == job["files_done"]
        restored = tree(elsewhere / agent.name)
        # Exactly what the job counts was written, each file whole; nothing half written was left.
        assert len(restored) == job["files_restored"]
        assert all(before[name] == digest for name, digest in restored.items())
        assert not [p for p in elsewhere.rglob("*") if p.name.startswith(".") or p.name.endswith(".part")]
        refused = c.call("cancel_restore_job", {"job_id": queued["id"]})
        assert refused["error_code"] == "CONFLICT" and "already ended (cancelled" in refused["message"]

        events = ok(c.call("events_since", {"seq": start_seq}))["events"]
        changes = [
            (e["data"]["change"], e["data"]["job"]["status"])
            for e in events
            if e["topic"] == RESTORE_JOB and e["data"]["job_id"] == queued["id"]
        ]
        assert ("cancelling", "cancelling") in changes and changes[-1] == ("ended", "cancelled")
        activity = ok(c.call("get_recent_activity", {"limit": 20}))["items"]
        assert any(a["type"] == "restore_cancelled" for a in activity)


def _named_client(c: BridgeClient) -> dict[str, Any] | None:
    try:
        return client_named(c, "many-agent")
    except StopIteration:
        return None
