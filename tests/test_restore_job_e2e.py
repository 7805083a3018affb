"""restore_to_agent end to end: a real server, a real --watch agent, the console through the bridge.

The agent backs up its sample folder (the demo agent's), a file is deleted on its machine,
and restore_to_agent brings it back with the right bytes, its mode and a verified result; the
whole folder restored elsewhere matches it file for file, each with the permission bits it was
backed up with (a setuid bit never comes back); the job's progress reaches the console as
restore.job events through the bridge.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.agent.sample import ensure_sample
from client.connection import BridgeClient
from protocol.events import RESTORE_JOB
from tests.conftest import ROOT, ok, wait_until
from tests.test_server_e2e import RealServer, bridge_stack, client_named, server

__all__ = ["bridge_stack", "server"]  # the fixtures, imported for this module's tests

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def agent(server: RealServer, tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """The demo agent: backs up its sample folder once, then stays connected (it would back up again in 10 min)."""
    sample = tmp_path / "sample"
    assert ensure_sample(sample)
    (sample / "todo.txt").chmod(0o640)
    first, second = sorted(p for p in sample.rglob("*") if p.is_file() and p.name != "todo.txt")[:2]
    first.chmod(0o4750)  # setuid: kept in the backup's bits, never restored
    assert first.stat().st_mode & 0o4000  # the owner may set it: the agent sees it
    second.chmod(0o444)
    argv = server.agent_argv("backup", str(sample), "--name", "demo-agent", "--watch", "600", config=tmp_path / "agent")
    log = open(tmp_path / "agent.log", "w")  # noqa: SIM115 - closed below, after the process
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        yield sample, proc
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def finished(c: BridgeClient, job_id: str) -> dict[str, Any] | None:
    job = ok(c.call("get_restore_job", {"job_id": job_id}))
    return job if job["status"] not in ("queued", "running") else None


def modes(root: Path) -> dict[str, int]:
    """Each file's permission bits (what a restore gives back: never setuid, setgid or sticky)."""
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in root.rglob("*") if p.is_file()}


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_restore_to_agent_brings_a_deleted_file_back(
    server: RealServer, agent: tuple[Path, subprocess.Popen[str]], tmp_path: Path
) -> None:
    sample, proc = agent
    before = tree(sample)
    with server.stack.client() as c:
        start_seq = ok(c.call("bridge_status"))["latest_seq"]
        client = wait_until(lambda: _client(c), 30, 0.2, "the demo agent's client")
        run = wait_until(lambda: _complete_run(c, client["id"]), 30, 0.2, "the demo agent's first run")
        assert run["files_total"] == len(before)

        todo = sample / "todo.txt"
        todo.unlink()  # lost on the agent's machine
        args = {"snapshot_id": run["id"], "paths": [str(todo)], "destination": str(sample)}
        queued = ok(c.call("restore_to_agent", args))
        assert (queued["status"], queued["files_total"], queued["overwrite"]) == ("queued", 1, "skip")
        job = wait_until(lambda: finished(c, queued["id"]), 30, 0.1, "the restore job's end")
        assert (job["status"], job["files_restored"], job["files_failed"], job["problems"]) == ("complete", 1, 0, [])
        assert todo.exists() and tree(sample) == before
        assert todo.stat().st_mode & 0o7777 == 0o640

        # The whole folder again into the same place: everything is there now, so all of it is skipped.
        again = ok(c.call("restore_to_agent", {**args, "paths": [str(sample)], "destination": str(sample.parent)}))
        kept = wait_until(lambda: finished(c, again["id"]), 30, 0.1, "the second job's end")
        assert (kept["files_skipped"], kept["files_restored"]) == (len(before), 0)
        assert {p["code"] for p in kept["problems"]} == {"EXISTS"} and tree(sample) == before

        # And elsewhere: file for file the folder as it was backed up.
        elsewhere = tmp_path / "restored"
        third = ok(c.call("restore_to_agent", {**args, "paths": [str(sample)], "destination": str(elsewhere)}))
        copy = wait_until(lambda: finished(c, third["id"]), 30, 0.1, "the third job's end")
        assert (copy["status"], copy["files_restored"], copy["bytes_restored"]) == (
            "complete",
            len(before),
            run["bytes_total"],
        )
        assert tree(elsewhere / "sample") == before
        restored = elsewhere / "sample"
        assert modes(restored) == modes(sample) and 0o750 in modes(restored).values()
        assert not [p for p in restored.rglob("*") if p.is_file() and p.stat().st_mode & 0o7000]
        assert not [p for p in elsewhere.rglob("*") if p.name.endswith(".part")]

        events = ok(c.call("events_since", {"seq": start_seq}))["events"]
        changes = [
            e["data"]["change"] for e in events if e["topic"] == RESTORE_JOB and e["data"]["job_id"] == queued["id"]
        ]
        assert changes[0] == "queued" and "started" in changes and changes[-1] == "ended"
        assert all(e["mode"] == "real" for e in events if e["topic"] == RESTORE_JOB)
    assert proc.poll() is None  # the agent is still connected, waiting for its next run or job


def _client(c: BridgeClient) -> dict[str, Any] | None:
    try:
        return client_named(c, "demo-agent")
    except StopIteration:
        return None


def _complete_run(c: BridgeClient, client_id: str) -> dict[str, Any] | None:
    runs = ok(c.call("list_snapshots", {"client_id": client_id, "status": "complete"}))["items"]
    return runs[0] if runs else None
