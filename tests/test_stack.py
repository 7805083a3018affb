"""The whole stack end to end: run_all.py, bridge and mock as real processes over real sockets."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from client.connection import BridgeClient, BridgeUnreachable
from client.download import download
from client.events import EventFollower
from protocol.catalogue import OPERATIONS, REAL_ONLY_OPERATIONS
from protocol.codec import encode
from protocol.envelope import encode_header, request_frames
from protocol.shapes import SHAPE_BY_NAME
from tests.conftest import ROOT, Stack, ok, wait_until

pytestmark = pytest.mark.timeout(120)


def first_ids(client: BridgeClient) -> tuple[dict[str, Any], dict[str, Any]]:
    clients = ok(client.call("get_clients"))["items"]
    with_files = next(c for c in clients if c["files_count"] > 0)
    file = ok(client.call("get_files", {"client_id": with_files["id"], "limit": 5}))["items"][0]
    return with_files, file


def test_every_operation_end_to_end(shared_stack: Stack, tmp_path: Path) -> None:
    with shared_stack.client() as c:
        client, file = first_ids(c)
        args: dict[str, dict[str, Any]] = {
            "get_client_details": {"client_id": client["id"]},
            "resolve_client": {"client_id_or_name": client["name"]},
            "get_files": {"client_id": client["id"], "filters": {"sort": "-size"}},
            "get_client_files": {"client_id": client["id"]},
            "verify_file": {"file_id": file["id"]},
            "get_table_data": {"table_name": "clients", "limit": 3},
            "get_logs": {"level": "INFO", "limit": 5},
            "events_since": {"seq": 0},
            "login": {"username": "admin", "password": "not the password"},
            "list_snapshots": {"client_id": client["id"]},
            "find_files": {"query": file["name"]},
            "get_file_versions": {"file_id": file["id"]},
            "get_restore_job": {"job_id": "no-such-job"},
        }
        snapshot = ok(c.call("list_snapshots", args["list_snapshots"]))["items"][0]
        args["get_snapshot"] = args["browse_snapshot"] = {"snapshot_id": snapshot["id"]}
        # Writes and downloads have tests of their own; the real server's only operations have no
        # backend in a mock-only stack; a sign-in is the GUI's (an API key may not sign anyone in).
        refused = dict.fromkeys(REAL_ONLY_OPERATIONS, "BACKEND_UNAVAILABLE") | {
            "login": "FORBIDDEN",
            "get_restore_job": "NOT_FOUND",  # no job yet; restore jobs have tests of their own
        }
        for op in OPERATIONS:
            if op.is_write or op.streaming:
                continue
            reply = c.call(op.name, args.get(op.name, {}))
            if op.name in refused:
                assert reply["error_code"] == refused[op.name], (op.name, reply)
                continue
            assert reply["success"], (op.name, reply)
            assert reply["mode"] == ("bridge" if op.handled_by == "bridge" else "mock"), op.name
        assert ok(c.call("get_clients"))["total"] == 45
        assert set(ok(c.call("get_clients"))["items"][0]) == SHAPE_BY_NAME["Client"].field_names
        assert set(file) == SHAPE_BY_NAME["File"].field_names
        assert set(ok(c.call("get_server_status"))) == SHAPE_BY_NAME["ServerStatus"].field_names
        assert set(ok(c.call("get_system_status"))) == SHAPE_BY_NAME["SystemStatus"].field_names
        assert set(ok(c.call("bridge_status"))) == SHAPE_BY_NAME["BridgeStatus"].field_names

        dest = tmp_path / "restored.bin"
        seen: list[int] = []
        download_args = {"file_id": file["id"], "destination_path": str(dest)}
        reply = download(c, "download_file", download_args, progress=lambda done, total: seen.append(done))
        assert ok(reply)["sha256"] == file["sha256"]
        assert hashlib.sha256(dest.read_bytes()).hexdigest() == file["sha256"] and dest.stat().st_size == file["size"]
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
        missing = download(
            c, "download_file", {**args, "destination_path": str(tmp_path / "no" / "such" / "dir" / "f")}
        )
        assert missing["error_code"] == "BAD_REQUEST" and missing["mode"] == "local"
        gone = download(c, "download_file", {"file_id": "no-such-file", "destination_path": str(tmp_path / "x")})
        assert gone["error_code"] == "NOT_FOUND" and not (tmp_path / "x").exists()


def test_writes_cascade_and_update_row_is_reflected(make_stack) -> None:
    stack = make_stack()
    with stack.client() as c:
        client, file = first_ids(c)
        status_before = ok(c.call("get_server_status"))
        deleted = ok(c.call("delete_client", {"client_id": client["id"]}))
        assert deleted["deleted_files"] == client["files_count"]
        assert c.call("get_client_details", {"client_id": client["id"]})["error_code"] == "NOT_FOUND"
        assert c.call("get_files", {"client_id": client["id"]})["error_code"] == "NOT_FOUND"
        assert ok(c.call("get_files", {"filters": {"search": file["name"]}, "limit": 1000}))["items"] == [] or all(
            f["client_id"] != client["id"]
            for f in ok(c.call("get_files", {"filters": {"search": file["name"]}}))["items"]
        )
        status_after = ok(c.call("get_server_status"))
        assert status_after["clients_total"] == status_before["clients_total"] - 1

        other = ok(c.call("get_clients"))["items"][0]
        ok(
            c.call(
                "update_row",
                {"table_name": "clients", "row_id": other["id"], "updated_data": {"name": "renamed-by-test"}},
            )
        )
        names = {x["id"]: x["name"] for x in ok(c.call("get_clients"))["items"]}
        assert names[other["id"]] == "renamed-by-test"
        forbidden = c.call("update_row", {"table_name": "files", "row_id": "x", "updated_data": {"sha256": "0"}})
        assert forbidden["error_code"] in ("FORBIDDEN", "NOT_FOUND")


def test_bad_input_gets_clear_errors_and_service_continues(shared_stack: Stack) -> None:
    with shared_stack.client() as c:

        def raw(frames: list[bytes]) -> dict[str, Any]:
            c.sock.send_multipart(frames)
            got = c.receive(10.0)
            assert got is not None, "no reply to bad input"
            _header, body = got
            from protocol.codec import decode

            return decode(body)

        assert raw([b"\xc1garbage", b""])["error_code"] == "BAD_REQUEST"
        assert (
            raw([encode({"v": 7, "kind": "request", "id": "a", "op": "x"}), b""])["error_code"] == "UNSUPPORTED_VERSION"
        )
        assert raw([encode({"v": 1, "kind": "request", "op": "get_clients"}), b""])["error_code"] == "BAD_REQUEST"
        assert (
            raw([encode({"v": 1, "kind": "request", "id": 3, "op": "get_clients"}), b""])["error_code"] == "BAD_REQUEST"
        )
        assert raw(request_frames("u1", "format_disk"))["error_code"] == "UNKNOWN_OPERATION"
        assert raw(request_frames("t1", "get_files", {"limit": "ten"}))["error_code"] == "BAD_REQUEST"
        assert raw([request_frames("b1", "get_clients")[0], b"\xc1"])["error_code"] == "BAD_REQUEST"
        assert (
            raw([encode_header("request", id="big", op="get_clients"), b"\x00" * (16 * 1024 * 1024 + 10)])["error_code"]
            == "PAYLOAD_TOO_LARGE"
        )
        hostile = raw(request_frames("h1", "get_table_data", {"table_name": "x; drop table clients"}))
        assert hostile["error_code"] == "BAD_REQUEST" and "table" in hostile["message"]
        assert raw(request_frames("n1", "get_table_data", {"table_name": "no_such_table"}))["error_code"] == "NOT_FOUND"
        assert raw(request_frames("n2", "delete_file", {"file_id": "does-not-exist"}))["error_code"] == "NOT_FOUND"
        assert ok(c.call("test_connection"))["pong"] is True
    assert all(b["alive"] for b in shared_stack.status()["backends"])


def test_late_subscriber_gets_missed_events_without_gaps(shared_stack: Stack) -> None:
    start = shared_stack.status()["latest_seq"]
    wait_until(lambda: shared_stack.status()["latest_seq"] >= start + 5, 30, 0.1, "five events")
    with shared_stack.client() as c:
        follower = EventFollower(c, since=start)
        got: list[dict[str, Any]] = []
        while len(got) < 8:
            item = follower.next(10.0)
            assert isinstance(item, dict), item
            got.append(item)
        follower.close()
    seqs = [e["seq"] for e in got]
    assert seqs == list(range(start + 1, start + 9))
    assert any(e["topic"] == "activity" and e["mode"] == "mock" for e in got)


def test_persistence_across_restart_and_no_growth(make_stack, tmp_path: Path) -> None:
    data_dir = tmp_path / "persist"
    first = make_stack("--tick", "3600", data_dir=data_dir)
    with first.client() as c:
        client, _ = first_ids(c)
        ok(c.call("delete_client", {"client_id": client["id"]}))
        total = ok(c.call("get_files", {"limit": 1}))["total"]
    assert first.stop() == 0
    second = make_stack("--tick", "3600", data_dir=data_dir)
    with second.client() as c:
        assert ok(c.call("get_clients"))["total"] == 44
        assert c.call("get_client_details", {"client_id": client["id"]})["error_code"] == "NOT_FOUND"
        assert ok(c.call("get_files", {"limit": 1}))["total"] == total


def test_kill_9_mock_gets_quick_errors_then_comes_back_with_its_data(make_stack) -> None:
    stack = make_stack("--tick", "3600")
    with stack.client() as c:
        client, _ = first_ids(c)
        ok(c.call("delete_client", {"client_id": client["id"]}))  # acknowledged, then the crash
        pid = stack.backend("mock")["pid"]
        os.kill(pid, signal.SIGKILL)
        t0 = time.monotonic()
        reply = c.call("get_clients", timeout=30)
        # Either the crash was already noticed (fast error) or the restarted mock answered.
        if not reply["success"]:
            assert reply["error_code"] == "BACKEND_UNAVAILABLE"
            assert time.monotonic() - t0 < 5.0
        wait_until(lambda: (b := stack.backend("mock")) and b["alive"] and b["pid"] != pid, 30, 0.1, "mock restarted")
        clients = ok(c.call("get_clients"))
        assert clients["total"] == 44 and all(x["id"] != client["id"] for x in clients["items"])


def test_same_seed_and_clock_give_identical_replies(make_stack) -> None:
    extra = ("--seed", "7", "--clock", "2026-01-01T00:00:00+00:00", "--tick", "3600")
    replies = []
    for _ in range(2):
        stack = make_stack(*extra)
        with stack.client() as c:
            client, file = first_ids(c)
            seq = [
                c.call("get_clients"),
                c.call("get_files", {"offset": 10, "limit": 50}),
                c.call("get_client_details", {"client_id": client["id"]}),
                c.call("verify_file", {"file_id": file["id"]}),
                c.call("delete_file", {"file_id": file["id"]}),
                c.call("get_recent_activity", {"limit": 20}),
                c.call("get_server_status"),
                c.call("get_database_info"),
                c.call("get_logs", {"limit": 20}),
            ]
            replies.append(seq)
        stack.stop()
    assert replies[0] == replies[1]


def test_duration_exits_zero(tmp_path: Path) -> None:
    stack = Stack(tmp_path, "--duration", "3")
    stack.data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(stack.argv, cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"stack.stopped" in proc.stderr


def test_unreachable_bridge_is_reported_not_hung() -> None:
    from tests.conftest import free_port

    with BridgeClient(f"tcp://127.0.0.1:{free_port()}", connect_timeout=0.5) as c:
        t0 = time.monotonic()
        with pytest.raises(BridgeUnreachable):
            c.call("get_clients")
        assert time.monotonic() - t0 < 3


def test_bridgectl_commands(shared_stack: Stack) -> None:
    env = shared_stack.env()

    def ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "client.bridgectl", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    import json

    got = ctl("call", "get_clients")
    assert got.returncode == 0, got.stderr
    data = json.loads(got.stdout)
    assert data["mode"] == "mock" and data["data"]["total"] >= 44
    hostile = ctl("call", "get_table_data", "--arg", "table_name=x; drop table clients")
    assert hostile.returncode == 1 and json.loads(hostile.stdout)["error_code"] == "BAD_REQUEST"
    events = ctl("events", "--count", "3")
    assert events.returncode == 0 and len([json.loads(line) for line in events.stdout.splitlines()]) == 3
    status = ctl("status")
    assert status.returncode == 0 and "mock" in status.stdout and "alive" in status.stdout
    assert "real     not expected" in status.stdout  # the shared stack is mock-only
    dead = ctl("--endpoint", "tcp://127.0.0.1:1", "--connect-timeout", "0.3", "call", "get_clients")
    assert dead.returncode == 2 and "cannot connect" in dead.stderr and "Traceback" not in dead.stderr
