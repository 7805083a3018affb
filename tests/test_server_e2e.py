"""The real backup server end to end: bridge + mock (run_all --mock-only), the server and agents
as real processes over real sockets (CURVE on the agents' side)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.connection import BridgeClient
from client.download import download
from protocol.shapes import SHAPE_BY_NAME
from tests.conftest import ROOT, Stack, free_port, ok, wait_until

pytestmark = pytest.mark.timeout(120)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class RealServer:
    """``python -m actors.server`` on its own data directory and agent port, attached to a stack's bridge."""

    def __init__(self, stack: Stack, data_dir: Path) -> None:
        self.stack = stack
        self.data_dir = data_dir
        self.agents = f"tcp://127.0.0.1:{free_port()}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    def start(self, *extra: str) -> RealServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # A --mock-only stack expects no real server: allow its key (from now on the bridge expects it).
        key = self.stack.connection_of("server").public_key
        with self.stack.client() as c:
            ok(c.call("backend_allow", {"public_key": key, "name": "server", "mode": "real"}))
        argv = [
            sys.executable,
            "-m",
            "actors.server",
            "--connection",
            str(self.stack.paths.connection("server")),
            "--agents",
            self.agents,
            "--data-dir",
            str(self.data_dir),
            "--log-json",
            "--log-level",
            "DEBUG",
            *extra,
        ]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        pid = self.proc.pid
        wait_until(
            lambda: (b := self.stack.backend("server")) and b["alive"] and b["pid"] == pid,
            20,
            0.05,
            "server registered",
        )
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def root(self) -> Path:
        return self.data_dir / "server"

    @property
    def token(self) -> str:
        return (self.root / "keys" / "enroll_token").read_text().strip()

    def blobs(self) -> list[Path]:
        return [p for d in (self.root / "blobs").iterdir() if d.name != "tmp" for p in d.iterdir()]

    def temporaries(self) -> list[Path]:
        return list((self.root / "blobs" / "tmp").iterdir())

    def largest_temporary(self) -> int:
        sizes = [0]
        for path in self.temporaries():
            with contextlib.suppress(FileNotFoundError):  # committed or aborted in between
                sizes.append(path.stat().st_size)
        return max(sizes)

    def agent_argv(self, command: str, *args: str, config: Path, token: bool = True) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "actors.agent",
            command,
            *args,
            "--server",
            self.agents,
            "--data-dir",
            str(self.data_dir),
            "--config-dir",
            str(config),
            "--log-json",
            "--connect-timeout",
            "3",
        ]
        return argv + ([f"--enroll-token={self.token}"] if token else [])

    def agent(self, command: str, *args: str, config: Path, token: bool = True, timeout: float = 60) -> AgentRun:
        proc = subprocess.run(
            self.agent_argv(command, *args, config=config, token=token),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return AgentRun(proc.returncode, proc.stderr)


class AgentRun:
    def __init__(self, code: int, stderr: str) -> None:
        self.code = code
        self.stderr = stderr

    def event(self, name: str) -> dict[str, Any]:
        for line in self.stderr.splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                record = json.loads(line)
                if record.get("event") == name:
                    return record
        raise AssertionError(f"no {name} in agent output:\n{self.stderr[-3000:]}")

    @property
    def summary(self) -> dict[str, Any]:
        assert self.code == 0, self.stderr[-3000:]
        return self.event("agent.backup_done")


@pytest.fixture(scope="module")
def bridge_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # Policy reads: test_kill_9_mid_upload_then_fallback_and_the_agent_completes checks the fallback to the mock.
    stack = Stack(tmp_path_factory.mktemp("bridge"), "--tick", "3600", "--policy", "reads").start()
    yield stack
    stack.stop()


@pytest.fixture
def server(bridge_stack: Stack, tmp_path: Path) -> Iterator[RealServer]:
    real = RealServer(bridge_stack, tmp_path / "data").start()
    yield real
    real.stop()


def make_folder(root: Path) -> dict[str, bytes]:
    files = {
        "docs/readme.md": b"# hello\n",
        "docs/report.csv": b"a,b\n1,2\n" * 100,
        "docs/empty.txt": b"",
        "photos/cat.bin": os.urandom(300_000),
        "photos/copy-of-readme.md": b"# hello\n",  # same content as docs/readme.md: one blob
        "deep/a/b/c/note.txt": "naïve café ✓".encode(),
        "big.bin": os.urandom(3 * 1024 * 1024 + 17),  # several chunks
    }
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def client_named(c: BridgeClient, name: str) -> dict[str, Any]:
    reply = c.call("get_clients", {"search": name})
    assert reply["mode"] == "real", reply
    return next(x for x in ok(reply)["items"] if x["name"] == name)


def test_backup_incremental_versions_and_restores(server: RealServer, tmp_path: Path) -> None:
    folder = tmp_path / "home"
    files = make_folder(folder)
    (folder / "link").symlink_to(folder / "docs")  # not followed
    config = tmp_path / "agent"
    first = server.agent("backup", str(folder), "--name", "laptop", config=config).summary
    assert (first["files"], first["sent"], first["failed"]) == (len(files), len(files), 0)
    assert first["bytes_sent"] == sum(len(v) for v in files.values())

    with server.stack.client() as c:
        client = client_named(c, "laptop")
        assert set(client) == SHAPE_BY_NAME["Client"].field_names
        assert client["files_count"] == len(files) and client["total_size"] == sum(len(v) for v in files.values())
        assert client["status"] == "disconnected"  # the one-shot agent said bye
        listed = ok(c.call("get_files", {"client_id": client["id"], "limit": 1000}))["items"]
        assert set(listed[0]) == SHAPE_BY_NAME["File"].field_names
        by_path = {f["path"]: f for f in listed}
        for rel, data in files.items():
            f = by_path[str(folder / rel)]
            assert (f["size"], f["sha256"], f["status"], f["backup_count"]) == (len(data), sha(data), "uploaded", 1)
        assert len(server.blobs()) == len(files) - 1  # the duplicate readme is stored once
        assert set(ok(c.call("get_server_status"))) == SHAPE_BY_NAME["ServerStatus"].field_names
        assert set(ok(c.call("get_system_status"))) == SHAPE_BY_NAME["SystemStatus"].field_names
        activity = ok(c.call("get_recent_activity", {"limit": 50}))["items"]
        assert set(activity[0]) == SHAPE_BY_NAME["Activity"].field_names
        assert {"client_connected", "backup_started", "backup_completed", "client_disconnected"} <= {
            a["type"] for a in activity
        }
        logs = ok(c.call("get_logs", {"text": "backup", "limit": 20}))
        assert logs["total"] > 0 and set(logs["items"][0]) == SHAPE_BY_NAME["LogEntry"].field_names

    second = server.agent("backup", str(folder), "--name", "laptop", config=config).summary
    assert (second["sent"], second["bytes_sent"], second["unchanged"]) == (0, 0, len(files))

    (folder / "docs/report.csv").write_bytes(b"changed\n")
    os.utime(folder / "docs/readme.md", ns=(1_000_000_000, 1_000_000_000))  # touched, same content
    third = server.agent("backup", str(folder), "--name", "laptop", config=config).summary
    assert (third["sent"], third["bytes_sent"], third["unchanged"]) == (1, len(b"changed\n"), len(files) - 1)

    with server.stack.client() as c:
        report = next(f for f in ok(c.call("get_files", {"filters": {"search": "report.csv"}}))["items"])
        assert (report["size"], report["sha256"], report["backup_count"]) == (8, sha(b"changed\n"), 2)
        versions = ok(c.call("get_table_data", {"table_name": "file_versions", "limit": 1000}))["rows"]
        assert sorted(v["version"] for v in versions if v["file_id"] == report["id"]) == [1, 2]

        big = next(f for f in ok(c.call("get_files", {"filters": {"search": "big.bin"}}))["items"])
        dest = tmp_path / "restored-big.bin"
        fetched = ok(download(c, "download_file", {"file_id": big["id"], "destination_path": str(dest)}))
        assert fetched["sha256"] == sha(files["big.bin"])
        assert dest.read_bytes() == files["big.bin"]
        hostile = c.call("download_file", {"file_id": big["id"], "destination_path": "/tmp/../etc/passwd"})
        assert hostile["error_code"] == "BAD_REQUEST" and hostile["mode"] == "real"

    out = tmp_path / "out"
    out.mkdir()
    restored = server.agent("restore", big["id"], str(out), config=config)
    assert restored.code == 0, restored.stderr[-2000:]
    assert (out / "big.bin").read_bytes() == files["big.bin"]
    traversal = server.agent("restore", big["id"], str(out / ".." / "escaped.bin"), config=config)
    assert traversal.code == 2 and "'..'" in traversal.stderr and not (tmp_path / "escaped.bin").exists()
    missing = server.agent("restore", "no-such-file", str(out / "x"), config=config)
    assert missing.code == 5 and not (out / "x").exists()
    assert not list(out.glob("*.part")) and not list(out.glob(".*"))


def test_unknown_key_is_refused_and_wrong_token_too(server: RealServer, tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    t0 = time.monotonic()
    refused = server.agent("backup", str(folder), config=tmp_path / "stranger", token=False)
    assert refused.code == 4 and "refused our key (not enrolled?)" in refused.stderr
    assert time.monotonic() - t0 < 10
    argv = [*server.agent_argv("backup", str(folder), config=tmp_path / "stranger", token=False), "--enroll-token=nope"]
    wrong = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert wrong.returncode == 4 and "enrollment token" in wrong.stderr
    with server.stack.client() as c:
        assert ok(c.call("get_clients"))["total"] == 0
        wait_until(
            lambda: any(a["type"] == "agent_refused" for a in ok(c.call("get_recent_activity"))["items"]),
            10,
            0.1,
            "refusal in the activity log",
        )
    missing = server.agent("backup", str(tmp_path / "nope"), config=tmp_path / "stranger")
    assert missing.code == 2 and "path not found" in missing.stderr
    # argparse keeps the last of a repeated option: point this one at a port nobody listens on.
    argv = server.agent_argv("backup", str(folder), config=tmp_path / "x", token=False)
    argv += ["--server", f"tcp://127.0.0.1:{free_port()}", "--connect-timeout", "1"]
    dead = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert dead.returncode == 3 and "cannot reach the backup server" in dead.stderr


def test_verify_detects_corruption_delete_cascades(server: RealServer, tmp_path: Path) -> None:
    folder = tmp_path / "home"
    files = make_folder(folder)
    config = tmp_path / "agent"
    assert server.agent("backup", str(folder), "--name", "desk", config=config).summary["failed"] == 0
    with server.stack.client() as c:
        client = client_named(c, "desk")
        listed = {f["path"]: f for f in ok(c.call("get_files", {"client_id": client["id"], "limit": 100}))["items"]}
        cat = listed[str(folder / "photos/cat.bin")]
        assert ok(c.call("verify_file", {"file_id": cat["id"]}))["ok"] is True
        blob = server.root / "blobs" / cat["sha256"][:2] / cat["sha256"][2:]
        data = bytearray(blob.read_bytes())
        data[1000] ^= 0xFF
        blob.write_bytes(bytes(data))
        verdict = ok(c.call("verify_file", {"file_id": cat["id"]}))
        assert (verdict["ok"], verdict["status"], verdict["expected_sha256"]) == (False, "error", cat["sha256"])
        assert verdict["actual_sha256"] == sha(bytes(data))
        assert ok(c.call("get_files", {"filters": {"status": "error"}}))["items"][0]["id"] == cat["id"]

    healed = server.agent("backup", str(folder), "--name", "desk", config=config).summary
    assert healed["sent"] == 1  # the file whose verification failed is asked for again
    with server.stack.client() as c:
        assert ok(c.call("verify_file", {"file_id": cat["id"]}))["ok"] is True
        readme = listed[str(folder / "docs/readme.md")]
        freed = ok(c.call("delete_file", {"file_id": readme["id"]}))
        assert freed["freed_bytes"] == 0  # its blob is shared with copy-of-readme.md
        copy = listed[str(folder / "photos/copy-of-readme.md")]
        assert ok(c.call("verify_file", {"file_id": copy["id"]}))["ok"] is True
        deleted = ok(c.call("delete_client", {"client_id": client["id"]}))
        assert deleted["deleted_files"] == len(files) - 1 and deleted["freed_bytes"] > 0
        assert c.call("get_files", {"client_id": client["id"]})["error_code"] == "NOT_FOUND"
        assert ok(c.call("get_table_data", {"table_name": "file_versions"}))["total"] == 0
    assert server.blobs() == []
    again = server.agent("backup", str(folder), config=config, token=False)
    assert again.code == 4  # deleting a client revokes its key


def test_kill_9_mid_upload_then_fallback_and_the_agent_completes(server: RealServer, tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    content = os.urandom(12 * 1024 * 1024)
    (folder / "video.bin").write_bytes(content)
    config = tmp_path / "agent"
    argv = server.agent_argv(
        "backup", str(folder), "--name", "slow", "--bandwidth-limit", "3072", "--retry-for", "60", config=config
    )
    agent = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: server.largest_temporary() > 2 * 1024 * 1024, 30, 0.05, "upload under way")
        server.kill()
        assert not (server.root / "blobs" / sha(content)[:2] / sha(content)[2:]).exists()
        db = sqlite3.connect(server.root / "backup.db")
        assert db.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 0
        db.close()

        with server.stack.client() as c:
            wait_until(lambda: c.call("get_clients")["mode"] == "mock", 15, 0.2, "reads fall back to the mock")
            write = c.call("delete_client", {"client_id": "whatever"})
            assert write["success"] is False and write["error_code"] == "BACKEND_UNAVAILABLE"
            server.start()
            wait_until(lambda: c.call("get_clients")["mode"] == "real", 15, 0.2, "real again")
        _, err = agent.communicate(timeout=60)
        assert agent.returncode == 0, err[-3000:]
        assert '"agent.session_lost"' in err
    finally:
        if agent.poll() is None:
            agent.kill()
    with server.stack.client() as c:
        files = ok(c.call("get_files"))["items"]
        assert [(f["name"], f["size"], f["sha256"]) for f in files] == [("video.bin", len(content), sha(content))]
        assert ok(c.call("verify_file", {"file_id": files[0]["id"]}))["ok"] is True
    assert server.temporaries() == []


def test_disconnect_heartbeats_stop_and_start(server: RealServer, tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "a.txt").write_text("watch me")
    config = tmp_path / "agent"
    argv = server.agent_argv("backup", str(folder), "--name", "watcher", "--watch", "2", config=config)
    agent = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with server.stack.client() as c:

            def status() -> str:
                items = ok(c.call("get_clients", {"search": "watcher"}))["items"]
                return items[0]["status"] if items else "absent"

            wait_until(lambda: status() == "connected", 20, 0.1, "watcher connected")
            client = client_named(c, "watcher")
            gone = ok(c.call("disconnect_client", {"client_id": client["id"]}))["client"]
            assert gone["status"] == "disconnected" and gone["connected_at"] is None
            assert agent.poll() is None  # a watching agent waits for its next cycle
            wait_until(lambda: status() == "connected", 20, 0.1, "watcher reconnected")

            stopped = ok(c.call("stop_server"))
            assert stopped["running"] is False and stopped["clients_connected"] == 0
            assert c.call("stop_server")["error_code"] == "CONFLICT"
            refused = server.agent("backup", str(folder), config=tmp_path / "other")
            assert refused.code == 7 and "not accepting agents" in refused.stderr
            assert ok(c.call("start_server"))["running"] is True
            wait_until(lambda: status() == "connected", 20, 0.1, "watcher back after start")

            agent.kill()  # no goodbye: three missed heartbeats mark it disconnected
            agent.wait()
            t0 = time.monotonic()
            wait_until(lambda: status() == "disconnected", 10, 0.1, "heartbeat timeout")
            assert time.monotonic() - t0 < 6
            assert c.call("disconnect_client", {"client_id": client["id"]})["error_code"] == "CONFLICT"
    finally:
        if agent.poll() is None:
            agent.kill()


def test_hostile_names_through_the_bridge(server: RealServer, tmp_path: Path) -> None:
    folder = tmp_path / "h"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    assert server.agent("backup", str(folder), "--name", "target", config=tmp_path / "agent").summary["failed"] == 0
    with server.stack.client() as c:
        client = client_named(c, "target")
        file = ok(c.call("get_files"))["items"][0]
        cases = [
            ("get_table_data", {"table_name": "x; drop table clients"}, "BAD_REQUEST"),
            ("get_table_data", {"table_name": "Clients"}, "BAD_REQUEST"),
            ("get_table_data", {"table_name": "sqlite_master"}, "NOT_FOUND"),
            ("get_table_data", {"table_name": "no_such_table"}, "NOT_FOUND"),
            (
                "update_row",
                {"table_name": "clients", "row_id": client["id"], "updated_data": {"name = 'x'; --": "y"}},
                "BAD_REQUEST",
            ),
            (
                "update_row",
                {"table_name": "clients", "row_id": client["id"], "updated_data": {"public_key": "k"}},
                "FORBIDDEN",
            ),
            (
                "update_row",
                {"table_name": "files", "row_id": file["id"], "updated_data": {"sha256": "0" * 64}},
                "FORBIDDEN",
            ),
            ("update_row", {"table_name": "files", "row_id": file["id"], "updated_data": {"size": 1}}, "FORBIDDEN"),
            ("update_row", {"table_name": "files", "row_id": file["id"], "updated_data": {"id": "x"}}, "FORBIDDEN"),
            (
                "update_row",
                {"table_name": "clients", "row_id": client["id"], "updated_data": {"name": 5}},
                "BAD_REQUEST",
            ),
            (
                "update_row",
                {"table_name": "files", "row_id": file["id"], "updated_data": {"path": "/a/../../etc/passwd"}},
                "BAD_REQUEST",
            ),
            (
                "update_row",
                {"table_name": "files", "row_id": file["id"], "updated_data": {"name": "../passwd"}},
                "BAD_REQUEST",
            ),
            ("delete_row", {"table_name": "settings", "row_id": "accepting"}, "FORBIDDEN"),
            ("delete_row", {"table_name": "schema_version", "row_id": 1}, "NOT_FOUND"),  # no key: not in the view
            ("delete_row", {"table_name": "clients", "row_id": "' OR 1=1 --"}, "NOT_FOUND"),
        ]
        for op, args, code in cases:
            reply = c.call(op, args)
            assert (reply["error_code"], reply["mode"]) == (code, "real"), (op, args, reply)
        renamed = ok(
            c.call("update_row", {"table_name": "files", "row_id": file["id"], "updated_data": {"name": "renamed.txt"}})
        )["row"]
        assert renamed["path"].endswith("/renamed.txt") and renamed["name"] == "renamed.txt"
        assert ok(c.call("get_clients"))["total"] == 1
        info = ok(c.call("get_database_info"))
        assert {"clients", "files", "file_versions", "activity"} <= {t["name"] for t in info["tables"]}
        assert info["path"] == "server/backup.db"


def test_run_all_starts_the_real_server_and_a_demo_agent(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "all")
    stack.argv.remove("--mock-only")
    stack.argv += ["--agents-port", str(free_port())]
    stack.start(backend="server")
    try:
        with stack.client() as c:

            def demo() -> dict[str, Any] | None:
                reply = c.call("get_clients")
                items = reply["data"]["items"] if reply["success"] and reply["mode"] == "real" else []
                return next((x for x in items if x["name"] == "demo-agent" and x["files_count"] >= 25), None)

            client = wait_until(demo, 30, 0.2, "demo agent's backup")
            assert client["status"] == "connected"  # --watch keeps it connected
            sample = [p for p in (tmp_path / "all" / "sample").rglob("*") if p.is_file()]
            assert len(sample) == client["files_count"]
    finally:
        assert stack.stop() == 0


GUARDED_AGENT = """
import builtins, sys
from actors.agent import cli as agent
from actors.agent import backup as agent_backup

def guarded_open(path, *args, **kw):
    if str(path).endswith("secret.txt"):
        raise PermissionError(13, "Permission denied", str(path))
    return builtins.open(path, *args, **kw)

agent_backup.open = guarded_open
raise SystemExit(agent.main(sys.argv[1:]))
"""


def test_unreadable_files_are_skipped_and_reported(server: RealServer, tmp_path: Path) -> None:
    # The tests run as root, which reads any file: the agent runs with an open() that
    # refuses one file, as a file without read permission would.
    folder = tmp_path / "u"
    folder.mkdir()
    (folder / "ok.txt").write_text("fine")
    (folder / "secret.txt").write_text("locked")
    argv = server.agent_argv("backup", str(folder), "--name", "picky", config=tmp_path / "agent")
    proc = subprocess.run(
        [sys.executable, "-c", GUARDED_AGENT, *argv[3:]], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert AgentRun(proc.returncode, proc.stderr).summary["skipped"] == 1
    with server.stack.client() as c:
        files = ok(c.call("get_files"))["items"]
        assert [f["name"] for f in files] == ["ok.txt"]
        activity = ok(c.call("get_recent_activity", {"limit": 20}))["items"]
        skipped = [a for a in activity if a["type"] == "file_skipped"]
        assert skipped and "secret.txt" in skipped[0]["message"] and "Permission denied" in skipped[0]["message"]
        done = next(a for a in activity if a["type"] == "backup_completed")
        assert done["level"] == "WARNING" and "1 skipped" in done["message"]


class TaggedServer:
    """A core plugged in with --server-class: any class taking a ServerConfig and offering BackendCore."""

    def __new__(cls, config: Any) -> Any:
        from actors.server.core import BackupServer

        core = BackupServer(config)
        core.host = "plugged-in"
        return core


def test_server_class_is_pluggable(bridge_stack: Stack, tmp_path: Path) -> None:
    real = RealServer(bridge_stack, tmp_path / "data").start("--server-class", "tests.test_server_e2e:TaggedServer")
    try:
        with bridge_stack.client() as c:
            status = c.call("get_server_status")
            assert status["mode"] == "real" and status["data"]["host"] == "plugged-in"
    finally:
        real.stop()
