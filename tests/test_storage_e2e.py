"""Storage faults end to end: a real agent process against a real server whose disk fills up, and a
lost blob found by the scrub and healed by the next backup (bridge, server and agents as processes)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Stack, ok, wait_until
from tests.full_disk import fill_after, free_space
from tests.test_server_e2e import RealServer, sha

pytestmark = pytest.mark.timeout(180)

EXIT_STORAGE_FULL = 9  # docs/agent-protocol.md, "Agent exit codes"


@pytest.fixture(scope="module")
def bridge_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A bridge and a mock the real servers of these tests attach to."""
    stack = Stack(tmp_path_factory.mktemp("bridge"), "--tick", "3600").start()
    yield stack
    stack.stop()


def folder_of(root: Path, count: int, size: int) -> dict[str, bytes]:
    root.mkdir()
    files = {f"part-{n}.bin": os.urandom(size) for n in range(count)}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def test_a_full_disk_ends_the_backup_with_its_exit_status_and_the_server_goes_on(
    bridge_stack: Stack, tmp_path: Path
) -> None:
    server = RealServer(bridge_stack, tmp_path / "data").start("--server-class", "tests.full_disk:FullDiskServer")
    try:
        folder = tmp_path / "folder"
        files = folder_of(folder, 6, 700_000)
        fill_after(server.root, 1_500_000)  # two files fit, the third meets a full disk
        started = time.monotonic()
        run = server.agent("backup", str(folder), "--name", "filler", config=tmp_path / "agent", timeout=60)
        elapsed = time.monotonic() - started
        assert run.code == EXIT_STORAGE_FULL, run.stderr[-3000:]
        assert "server storage full" in run.stderr and "Traceback" not in run.stderr
        assert elapsed < 30
        assert server.proc is not None and server.proc.poll() is None  # the server goes on
        wait_until(lambda: server.temporaries() == [], 10, 0.05, "no temporary blob left")
        log = server.log_path.read_text()
        assert "agent_message_crashed" not in log and "Traceback" not in log
        with bridge_stack.client() as c:
            status = c.call("get_server_status")
            assert status["mode"] == "real" and status["data"]["running"] is True
            activity = ok(c.call("get_recent_activity", {"limit": 50}))["items"]
            full = [a for a in activity if a["type"] == "storage_full"]
            assert len(full) == 1 and full[0]["level"] == "ERROR"  # once, however many chunks failed
            stored_before = ok(c.call("get_files"))["total"]
        assert 1 <= stored_before < len(files)
        free_space(server.root)  # space comes back: the next run sends what is missing
        again = server.agent("backup", str(folder), "--name", "filler", config=tmp_path / "agent", timeout=60)
        summary = again.summary
        assert (summary["sent"], summary["unchanged"], summary["failed"]) == (
            len(files) - stored_before,
            stored_before,
            0,
        )
        with bridge_stack.client() as c:
            stored = ok(c.call("get_files", {"limit": 100}))["items"]
            assert sorted((f["name"], f["sha256"]) for f in stored) == sorted((n, sha(d)) for n, d in files.items())
        assert server.temporaries() == []
    finally:
        server.stop()


def test_a_lost_blob_is_found_by_the_scrub_and_sent_again(bridge_stack: Stack, tmp_path: Path) -> None:
    server = RealServer(bridge_stack, tmp_path / "data").start()
    try:
        folder = tmp_path / "folder"
        files = folder_of(folder, 3, 50_000)
        assert server.agent("backup", str(folder), "--name", "scrubbed", config=tmp_path / "agent").summary["sent"] == 3
        lost = "part-1.bin"
        blob = server.root / "blobs" / sha(files[lost])[:2] / sha(files[lost])[2:]
        blob.unlink()
        with bridge_stack.client() as c:
            report = ok(c.call("scrub_storage"))
            assert report["complete"] is True and report["damaged_total"] == 1
            (problem,) = report["damaged"]
            assert problem["path"].endswith(lost) and problem["problem"] == "missing"
            marked = ok(c.call("get_files", {"filters": {"status": "error"}}))["items"]
            assert [f["name"] for f in marked] == [lost]
        again = server.agent("backup", str(folder), "--name", "scrubbed", config=tmp_path / "agent").summary
        assert (again["sent"], again["unchanged"]) == (1, 2)  # the lost one, and only it
        with bridge_stack.client() as c:
            verdict = ok(c.call("verify_file", {"file_id": problem["file_id"]}))
            assert verdict["ok"] is True and blob.exists()
            assert ok(c.call("scrub_storage"))["damaged_total"] == 0
    finally:
        server.stop()
