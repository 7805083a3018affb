"""Recording and replaying message streams: run_all --record, bridgectl record/replay/recording, --replay."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from client.download import download
from client.replay import load
from protocol.catalogue import OPERATIONS, REAL_ONLY_OPERATIONS
from protocol.codec import encode
from protocol.recording import read_recording
from tests.cassettes import MOCK_ARGS, Cassette
from tests.conftest import ROOT, Stack, ok, wait_until
from tests.gui_harness import FletServer, admin_password, by_id, expect, gui_args, open_signed_in

pytestmark = pytest.mark.timeout(150)


def ctl(*args: str, stack: Stack | None = None) -> subprocess.CompletedProcess[str]:
    """bridgectl, as the admin of ``stack`` (its connection file; its endpoint comes with it)."""
    env = stack.env() if stack is not None else dict(os.environ)
    return subprocess.run(
        [sys.executable, "-m", "client.bridgectl", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def scripted_session(stack: Stack, tmp_path: Path) -> None:
    with stack.client() as c:
        clients = ok(c.call("get_clients"))["items"]
        file = ok(c.call("get_files", {"client_id": clients[0]["id"], "limit": 5}))["items"][0]
        ok(c.call("get_client_details", {"client_id": clients[0]["id"]}))
        ok(c.call("verify_file", {"file_id": file["id"]}))
        ok(download(c, "download_file", {"file_id": file["id"], "destination_path": str(tmp_path / "restored.bin")}))
        ok(c.call("delete_client", {"client_id": clients[1]["id"]}))
        assert c.call("get_table_data", {"table_name": "x; drop table clients"})["error_code"] == "BAD_REQUEST"
        ok(c.call("get_clients"))
        ok(c.call("get_system_status"))


def record_session(tmp_path: Path) -> Path:
    recording = tmp_path / "session.rec"
    stack = Stack(tmp_path / "recorded", *MOCK_ARGS, "--tick", "3600", "--record", str(recording)).start()
    scripted_session(stack, tmp_path)
    assert stack.stop() == 0
    return recording


def test_record_then_replay_against_the_same_seed_has_no_mismatch(tmp_path: Path, make_stack) -> None:
    recording = record_session(tmp_path)
    fresh = make_stack(*MOCK_ARGS, "--tick", "3600")
    result = ctl("replay", str(recording), stack=fresh)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b0 mismatch", result.stdout)

    shown = ctl("recording", "show", str(recording))
    summary = json.loads(shown.stdout)
    assert summary["seed"] == 7 and summary["per_op"]["delete_client"] == 1 and summary["streams"] == 1
    assert summary["failures_per_op"] == {"get_table_data": 1} and summary["events"] > 0
    lines = ctl("recording", "show", str(recording), "--json").stdout.splitlines()
    assert {json.loads(line)["direction"] for line in lines} == {"client->bridge", "bridge->client", "event"}


def test_a_changed_reply_is_reported_with_a_readable_diff(tmp_path: Path, make_stack) -> None:
    recording = record_session(tmp_path)
    with open(recording, "rb") as stream:
        header, stream_entries = read_recording(stream)
        entries = list(stream_entries)
    changed = tmp_path / "changed.rec"
    with open(changed, "wb") as out:
        out.write(encode(header))
        done = False
        for entry in entries:
            body = entry.envelope["body"]
            if (
                not done
                and entry.direction == "bridge->client"
                and isinstance(body, dict)
                and isinstance(body.get("data"), dict)
                and "items" in body["data"]
                and body["data"]["items"]
            ):
                body["data"]["items"][0]["name"] = "tampered-name"
                done = True
            out.write(encode({"t": entry.t, "direction": entry.direction, "envelope": entry.envelope}))
    assert done
    fresh = make_stack(*MOCK_ARGS, "--tick", "3600")
    result = ctl("replay", str(changed), stack=fresh)
    assert result.returncode == 1
    assert (
        "MISMATCH" in result.stdout and "reply.data.items[0].name: recorded 'tampered-name', replayed" in result.stdout
    )


def test_truncated_or_corrupt_recordings_name_the_offset(tmp_path: Path) -> None:
    recording = record_session(tmp_path)
    data = recording.read_bytes()
    truncated = tmp_path / "truncated.rec"
    truncated.write_bytes(data[: len(data) - 7])
    result = ctl("recording", "show", str(truncated))
    assert result.returncode == 1 and re.search(r"truncated inside an entry \(at byte offset \d+\)", result.stderr)
    corrupt = tmp_path / "corrupt.rec"
    corrupt.write_bytes(data[:200] + b"\xc1" * 16 + data[216:])
    result = ctl("recording", "show", str(corrupt))
    assert result.returncode == 1 and "byte offset" in result.stderr and "Traceback" not in result.stderr
    garbage = tmp_path / "garbage.rec"
    garbage.write_bytes(b"not a recording")
    result = ctl("replay", str(garbage), "--against", "tcp://127.0.0.1:1")
    assert result.returncode == 1 and "byte offset 0" in result.stderr


def test_bridgectl_record_attaches_to_a_running_stack(shared_stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "tap.rec"
    recorder = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "client.bridgectl",
            "record",
            str(out),
            "--count",
            "20",
        ],
        cwd=ROOT,
        env=shared_stack.env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: out.exists() and out.stat().st_size > 0, 20, 0.05, "recording header")
    with shared_stack.client() as c:
        for _ in range(5):
            ok(c.call("get_server_status"))
    assert recorder.wait(60) == 0, recorder.stderr.read() if recorder.stderr else ""
    index = load(out)
    assert [e.op for e in index.exchanges].count("get_server_status") >= 1 or index.events
    with open(out, "rb") as stream:
        _, entries = read_recording(stream)
        assert len(list(entries)) == 20


def test_replay_backend_answers_from_the_recording(tmp_path: Path, make_stack) -> None:
    recording = record_session(tmp_path)
    index = load(recording)
    recorded_clients = next(e.reply for e in index.exchanges if e.op == "get_clients")
    assert recorded_clients is not None
    stack = make_stack("--replay", str(recording))
    with stack.client() as c:
        first = c.call("get_clients")
        assert first["data"] == recorded_clients["data"] and first["mode"] == "mock"
        assert c.call("get_clients")["data"]["total"] == recorded_clients["data"]["total"] - 1  # after the delete
        missing = c.call("get_logs")
        assert missing["error_code"] == "NOT_RECORDED" and "get_logs" in missing["message"]
        file = next(e for e in index.exchanges if e.op == "download_file")
        again = {"file_id": file.args["file_id"], "destination_path": str(tmp_path / "again.bin")}
        reply = download(c, "download_file", again)
        assert ok(reply)["sha256"] == hashlib.sha256((tmp_path / "again.bin").read_bytes()).hexdigest()
    strict = make_stack("--replay", str(recording), "--replay-order", "strict")
    with strict.client() as c:
        wrong = c.call("verify_file", {"file_id": "x"})
        assert wrong["error_code"] == "NOT_RECORDED" and "expected get_clients" in wrong["message"]
        assert c.call("get_clients")["success"]


@pytest.mark.cassette("mock_session")
def test_mock_session_touching_every_operation(cassette: Cassette, tmp_path: Path) -> None:
    """Replays tests/recordings/mock_session.rec (re-record: make test ARGS='--record-cassettes -k mock_session')."""
    with cassette.stack.client() as c:
        clients = ok(c.call("get_clients", {"limit": 100}))["items"]
        victim, other = clients[0], clients[1]
        file = ok(c.call("get_files", {"client_id": other["id"], "limit": 3}))["items"][0]
        calls: dict[str, dict[str, Any]] = {
            "get_client_details": {"client_id": other["id"]},
            "resolve_client": {"client_id_or_name": other["name"]},
            "get_files": {"filters": {"status": "verified"}},
            "get_client_files": {"client_id": other["id"]},
            "verify_file": {"file_id": file["id"]},
            "scrub_storage": {},
            "get_database_info": {},
            "get_table_data": {"table_name": "files", "limit": 5},
            "update_row": {"table_name": "clients", "row_id": other["id"], "updated_data": {"name": "cassette-name"}},
            "get_server_status": {},
            "get_system_status": {},
            "get_recent_activity": {"limit": 10},
            "stop_server": {},
            "start_server": {},
            "get_logs": {"limit": 10},
            "test_connection": {},
            "delete_file": {"file_id": file["id"]},
        }
        connected = next((x for x in clients if x["status"] == "connected"), None)
        if connected is not None:  # first: stop_server disconnects every client
            calls = {"disconnect_client": {"client_id": connected["id"]}, **calls}
        runs = ok(c.call("list_snapshots", {"client_id": other["id"]}))["items"]
        for op, args in (
            ("get_snapshot", {"snapshot_id": runs[0]["id"]}),
            ("browse_snapshot", {"snapshot_id": runs[0]["id"], "path": "/"}),
            ("find_files", {"query": file["name"], "snapshot_id": runs[0]["id"]}),
            ("get_file_versions", {"file_id": file["id"]}),
        ):
            ok(c.call(op, args))
        ended = next(r for r in runs if r["status"] != "running")  # a running one cannot be restored from
        one = ok(c.call("find_files", {"query": "", "snapshot_id": ended["id"], "limit": 1}))["items"][0]["path"]
        archive = {"snapshot_id": ended["id"], "paths": [one], "destination_path": str(tmp_path / "a.tar")}
        ok(download(c, "download_archive", archive))
        job = ok(c.call("restore_to_agent", {"snapshot_id": ended["id"], "paths": ["/"], "destination": "/restored"}))
        ok(c.call("get_restore_job", {"job_id": job["id"]}))
        ok(c.call("list_restore_jobs", {"client_id": other["id"]}))
        cancel = c.call("cancel_restore_job", {"job_id": job["id"]})  # a job ended meanwhile is CONFLICT
        assert cancel["success"] or cancel["error_code"] == "CONFLICT", cancel
        for op, args in calls.items():
            ok(c.call(op, args))
        first = ok(c.call("get_files", {"limit": 1}))["items"][0]["id"]
        ok(download(c, "download_file", {"file_id": first, "destination_path": str(tmp_path / "f.bin")}))
        deleted = ok(c.call("delete_client", {"client_id": victim["id"]}))
        assert deleted["client_id"] == victim["id"]
        assert c.call("get_client_details", {"client_id": victim["id"]})["error_code"] == "NOT_FOUND"
        rows = ok(c.call("get_table_data", {"table_name": "clients", "limit": 100}))["rows"]
        ok(c.call("delete_row", {"table_name": "clients", "row_id": rows[-1]["id"]}))
        names = {x["name"] for x in ok(c.call("get_clients", {"limit": 100}))["items"]}
        assert "cassette-name" in names and victim["name"] not in names
    touched = {e.op for e in load(cassette.path).exchanges} if not cassette.recording else set()
    if touched:
        backend_ops = {op.name for op in OPERATIONS if op.handled_by == "backend"} - REAL_ONLY_OPERATIONS
        assert backend_ops <= touched | ({"disconnect_client"} if connected is None else set())


@pytest.mark.cassette("gui_activity", tick=0.3)
def test_gui_shows_a_replayed_event_stream(cassette: Cassette, browser) -> None:
    """The dashboard of a GUI attached to a replayed stack shows the recorded activity."""
    stack = cassette.stack
    with stack.client() as c:
        if cassette.recording:
            for op, args in (
                ("get_server_status", {}),
                ("get_system_status", {}),
                ("get_recent_activity", {"limit": 50}),
            ):
                ok(c.call(op, args))
            start = stack.status()["latest_seq"]
            wait_until(lambda: stack.status()["latest_seq"] >= start + 20, 30, 0.1, "recorded activity")
            return
    index = load(cassette.path)
    first_request = min(e.t for e in index.exchanges)
    later = [e.data["message"] for e in index.events if e.topic == "activity" and e.t > first_request]
    assert later, "the cassette holds no activity after its first request"
    with FletServer(
        module="gui", args=gui_args(stack.data_dir, stack.endpoint), log_path=cassette.stack.data_dir / "gui.log"
    ) as gui:
        page = open_signed_in(browser, gui.url, "admin", admin_password(stack.data_dir), "admin")
        expect(by_id(page, "data-source")).to_have_text("DEMO DATA", timeout=15_000)
        expect(by_id(page, "recent-activity")).to_contain_text(later[-1], timeout=20_000)
        page.context.close()


@pytest.mark.cassette("real_backup_session", real=True)
def test_real_server_backup_session(cassette: Cassette, tmp_path: Path) -> None:
    """The demo agent's backup seen through the real server (replays tests/recordings/real_backup_session.rec)."""
    with cassette.stack.client() as c:

        def backed_up() -> bool:
            reply = c.call("get_server_status")
            return reply["success"] and reply["mode"] == "real" and reply["data"]["files_total"] >= 29

        wait_until(backed_up, 60, 0.2, "the demo agent's first backup")
        clients = c.call("get_clients")
        assert clients["mode"] == "real" and [x["name"] for x in clients["data"]["items"]] == ["demo-agent"]
        files = ok(c.call("get_files", {"client_id": clients["data"]["items"][0]["id"], "limit": 100}))
        assert files["total"] >= 29 and all(f["status"] in ("uploaded", "verified") for f in files["items"])
        file = files["items"][0]
        verified = ok(c.call("verify_file", {"file_id": file["id"]}))
        assert verified["ok"] and verified["actual_sha256"] == file["sha256"]
        target = {"file_id": file["id"], "destination_path": str(tmp_path / "restored")}
        restored = ok(download(c, "download_file", target))
        assert hashlib.sha256((tmp_path / "restored").read_bytes()).hexdigest() == restored["sha256"] == file["sha256"]
        tables = {t["name"] for t in ok(c.call("get_database_info"))["tables"]}
        assert {"clients", "files"} <= tables
        assert c.call("get_table_data", {"table_name": "clients; drop"})["error_code"] == "BAD_REQUEST"
