"""BackupServer without sockets: schema, shapes, the agent protocol driven message by message, blobs, logs."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from actors.backends.api import RequestContext, StreamReply
from actors.server.core import BackupServer, ServerConfig
from actors.server.db import LATEST_VERSION, MIGRATIONS, connect, migrate
from protocol.agent_messages import SERVER_TO_AGENT, Message, decode_message, encode_message
from protocol.catalogue import BACKEND_OPERATIONS
from protocol.errors import ErrorCode, ProtocolError
from protocol.shapes import SHAPE_BY_NAME
from runtime.curve_keys import enrollment_keypair, load_or_create

pytestmark = pytest.mark.timeout(60)
CTX = RequestContext("req", None)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeAgent:
    """Talks to the core's AgentGateway as the shell would, one message at a time."""

    def __init__(self, core: BackupServer, key: str, route: bytes) -> None:
        self.core, self.key, self.route = core, key, route

    def send(self, type_: str, body: bytes = b"", **fields: Any) -> list[Message]:
        gateway = self.core.agents
        gateway.on_message(self.route, encode_message(type_, body, **fields), self.key, "10.0.0.7")
        gateway.end_of_batch()
        return [
            decode_message(frames, SERVER_TO_AGENT) for route, frames in gateway.drain_outbox() if route == self.route
        ]

    def hello(self, name: str = "laptop") -> Message:
        (welcome,) = self.send("hello", name=name, hostname="lap", platform="Linux", version="1")
        assert welcome.type == "welcome", welcome
        return welcome

    def put(
        self,
        path: str,
        data: bytes,
        upload: str = "u1",
        chunk: int = 4,
        declared: str | None = None,
        mtime_ns: int = 1_700_000_000_000_000_000,
    ) -> list[Message]:
        out: list[Message] = []
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
        for index, piece in enumerate(pieces):
            last = index == len(pieces) - 1
            extra: dict[str, Any] = {"path": path, "size": len(data), "mtime_ns": mtime_ns} if index == 0 else {}
            if last:
                extra["sha256"] = declared or sha(data)
            out += self.send("chunk", piece, u=upload, i=index, o=index * chunk, last=last, **extra)
        return out


@pytest.fixture
def core(tmp_path: Path) -> Iterator[BackupServer]:
    server = BackupServer(ServerConfig(tmp_path, log_file=False))
    server.agents.clock = FakeClock()
    yield server
    server.close()


def enrolled_agent(core: BackupServer, tmp_path: Path, name: str = "agent") -> FakeAgent:
    public, _ = load_or_create(tmp_path / name, "agent")
    enroller = FakeAgent(core, enrollment_keypair(core.token)[0].decode(), b"enroll-" + name.encode())
    (reply,) = enroller.send("enroll", public_key=public.decode(), name=name, hostname="h", platform="p", version="1")
    assert reply.type == "enrolled"
    return FakeAgent(core, public.decode(), b"route-" + name.encode())


def call(core: BackupServer, op: str, **args: Any) -> Any:
    reply = core.handle(op, args, CTX)
    assert isinstance(reply, dict) and reply["success"], reply
    assert reply["mode"] == "real"
    return reply["data"]


def code(core: BackupServer, op: str, **args: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        core.handle(op, args, CTX)
    return info.value.code.value


def test_schema_wal_foreign_keys_and_migrations(core: BackupServer, tmp_path: Path) -> None:
    assert set(core.operations()) == set(BACKEND_OPERATIONS)
    conn = connect(tmp_path / "server" / "backup.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == LATEST_VERSION
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"files_name", "files_size", "files_modified", "clients_name", "file_versions_sha256"} <= indexes
    from datetime import datetime

    assert migrate(conn, datetime.now(UTC)) == LATEST_VERSION  # nothing to redo
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == len(MIGRATIONS)
    conn.execute("INSERT INTO schema_version VALUES (999, '2030-01-01T00:00:00.000000+00:00')")
    with pytest.raises(RuntimeError, match="newer"):
        migrate(conn, datetime.now(UTC))
    conn.close()


def test_enroll_hello_upload_and_shapes(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    welcome = agent.hello()
    assert welcome["window"] >= 1 and welcome["chunk_size"] >= 1
    (result,) = agent.send("manifest", batch=1, entries=[["/home/u/a.txt", 11, 5, None]])
    assert (result.type, result["send"]) == ("manifest_result", [0])
    replies = agent.put("/home/u/a.txt", b"hello world")
    stored = next(m for m in replies if m.type == "stored")
    credits = sum(m["n"] for m in replies if m.type == "credit")
    assert credits == 3  # every chunk's credit comes back
    assert stored["sha256"] == sha(b"hello world") and stored["version"] == 1

    client = call(core, "get_clients")["items"][0]
    assert set(client) == SHAPE_BY_NAME["Client"].field_names
    assert (client["status"], client["ip_address"], client["files_count"], client["total_size"]) == (
        "connected",
        "10.0.0.7",
        1,
        11,
    )
    file = call(core, "get_files")["items"][0]
    assert set(file) == SHAPE_BY_NAME["File"].field_names
    assert (file["name"], file["path"], file["size"], file["status"]) == ("a.txt", "/home/u/a.txt", 11, "uploaded")
    assert set(call(core, "get_server_status")) == SHAPE_BY_NAME["ServerStatus"].field_names
    assert set(call(core, "get_system_status")) == SHAPE_BY_NAME["SystemStatus"].field_names
    assert set(call(core, "get_recent_activity")["items"][0]) == SHAPE_BY_NAME["Activity"].field_names
    assert set(call(core, "get_logs")["items"][0]) == SHAPE_BY_NAME["LogEntry"].field_names
    details = call(core, "get_client_details", client_id=client["id"])
    assert details["files_summary"] == {
        "count": 1,
        "total_size": 11,
        "by_status": {"uploading": 0, "uploaded": 1, "verified": 0, "error": 0},
    }
    assert call(core, "resolve_client", client_id_or_name="LAPTOP")["id"] == client["id"]
    assert core.get_all_clients_from_db()[0]["id"] == client["id"]
    assert core.get_files(client["id"])[0]["id"] == file["id"] == core.get_files()[0]["id"]

    core.tick()  # agents' status changes go out once per tick, however many hellos there were
    topics = [t for t, _ in core.drain_events()]
    assert {"client.changed", "file.changed", "activity", "server.changed"} <= set(topics)

    stream = core.handle("download_file", {"file_id": file["id"], "destination_path": "/tmp/x"}, CTX)
    assert isinstance(stream, StreamReply) and stream.read_at(0, 100) == b"hello world"
    assert stream.final()["data"]["sha256"] == sha(b"hello world")


def test_incremental_decisions_versions_and_dedup(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    agent.put("/d/a", b"one", mtime_ns=10)
    entries = [
        ["/d/a", 3, 10, None],
        ["/d/a", 3, 11, None],
        ["/d/a", 4, 10, None],
        ["/d/a", 3, 12, sha(b"one")],
        ["/d/copy", 3, 10, sha(b"one")],
        ["/d/new", 3, 10, sha(b"two")],
    ]
    (result,) = agent.send("manifest", batch=7, entries=entries)
    assert result["batch"] == 7
    # unchanged / same size new time -> hash please / other size / same hash (touched) / own content / new
    assert (result["skip"], result["need_hash"], result["send"], result["linked"]) == ([0, 3], [1], [2, 5], [4])
    files = {f["path"]: f for f in call(core, "get_files")["items"]}
    assert files["/d/copy"]["sha256"] == sha(b"one")
    agent.put("/d/a", b"uno!", upload="u2")
    a = next(f for f in call(core, "get_files")["items"] if f["path"] == "/d/a")
    assert (a["backup_count"], a["size"]) == (2, 4)
    assert len([p for p in (core.config.root / "blobs").rglob("*") if p.is_file()]) == 2


@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "/home/../etc/passwd", "/a//b", "/a/./b", "relative/x", "", "/bad\nname", "C:\\Users\\..\\x"],
)
def test_hostile_paths_are_refused(core: BackupServer, tmp_path: Path, path: str) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    (result,) = agent.send("manifest", batch=1, entries=[[path, 1, 1, None]])
    assert result["refused"] and result["refused"][0][0] == 0 and not result["send"]
    failed = [m for m in agent.put(path, b"x") if m.type == "failed"]
    assert failed and "path" in failed[0]["message"]
    assert call(core, "get_files")["total"] == 0
    assert list((core.config.root / "blobs" / "tmp").iterdir()) == []


def test_bad_uploads_leave_nothing(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    mismatch = agent.put("/x/a", b"content", declared="0" * 64)
    assert [m["code"] for m in mismatch if m.type == "failed"] == ["HASH_MISMATCH"]
    agent.send("chunk", b"abc", u="u9", i=0, o=0, last=False, path="/x/b", size=3, mtime_ns=1)
    (failed, *_) = agent.send("chunk", b"def", u="u9", i=5, o=3, last=True, sha256=sha(b"abcdef"))
    assert failed.type == "failed" and "out of order" in failed["message"]
    short = agent.send("chunk", b"ab", u="u10", i=0, o=0, last=True, path="/x/c", size=3, mtime_ns=1, sha256=sha(b"ab"))
    assert [m["code"] for m in short if m.type == "failed"] == ["SIZE_MISMATCH"]
    assert call(core, "get_files")["total"] == 0
    assert list((core.config.root / "blobs" / "tmp").iterdir()) == []
    assert [p for p in (core.config.root / "blobs").rglob("*") if p.is_file()] == []


def test_flow_control_is_enforced(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    window = agent.hello()["window"]
    gateway = core.agents
    frames = [
        encode_message("chunk", b"x", u=f"u{i}", i=0, o=0, last=False, path=f"/f/{i}", size=2, mtime_ns=1)
        for i in range(window + 1)
    ]
    for f in frames:  # one burst, no credit returned in between
        gateway.on_message(agent.route, f, agent.key, None)
    replies = [decode_message(fr, SERVER_TO_AGENT) for _, fr in gateway.drain_outbox()]
    assert any(m.type == "error" and m["code"] == "CREDIT_EXCEEDED" for m in replies)
    assert any(m.type == "disconnect" for m in replies)
    assert not gateway.has_session(call(core, "get_clients")["items"][0]["id"])


def test_sessions_enrollment_only_and_liveness(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    (no_session,) = agent.send("heartbeat")
    assert (no_session.type, no_session["code"]) == ("error", "NO_SESSION")
    enroller = FakeAgent(core, enrollment_keypair(core.token)[0].decode(), b"e2")
    (forbidden,) = enroller.send("hello", name="x", hostname="", platform="", version="")
    assert forbidden["code"] == "FORBIDDEN"
    (bad,) = enroller.send("enroll", public_key="not-a-key", name="x", hostname="", platform="", version="")
    assert bad["code"] == "BAD_REQUEST"
    (garbage,) = agent.send("nonsense")
    assert garbage["code"] == "BAD_REQUEST"
    agent.hello()
    assert agent.send("heartbeat")[0].type == "pong"
    client_id = call(core, "get_clients")["items"][0]["id"]
    clock = core.agents.clock
    assert isinstance(clock, FakeClock)
    clock.t += 2.0
    core.tick()
    assert call(core, "get_client_details", client_id=client_id)["client"]["status"] == "connected"
    clock.t += 2.0  # now more than three heartbeats (3 x 1 s) without a word
    core.tick()
    client = call(core, "get_client_details", client_id=client_id)["client"]
    assert (client["status"], client["connected_at"]) == ("disconnected", None)
    assert agent.send("heartbeat")[0]["code"] == "NO_SESSION"


def test_disconnect_delete_and_key_revocation(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    agent.put("/d/a", b"shared")
    agent.put("/d/b", b"shared", upload="u2")
    agent.put("/d/c", b"own", upload="u3")
    client_id = call(core, "get_clients")["items"][0]["id"]
    assert call(core, "disconnect_client", client_id=client_id)["client"]["status"] == "disconnected"
    assert [m.type for _, fr in core.agents.drain_outbox() for m in [decode_message(fr, SERVER_TO_AGENT)]] == [
        "disconnect"
    ]
    assert code(core, "disconnect_client", client_id=client_id) == "CONFLICT"
    agent.hello()
    files = {f["path"]: f for f in call(core, "get_files")["items"]}
    assert call(core, "delete_file", file_id=files["/d/a"]["id"])["freed_bytes"] == 0  # blob still used by /d/b
    assert call(core, "verify_file", file_id=files["/d/b"]["id"])["ok"] is True
    assert call(core, "delete_file", file_id=files["/d/c"]["id"])["freed_bytes"] == 3
    deleted = call(core, "delete_client", client_id=client_id)
    assert (deleted["deleted_files"], deleted["freed_bytes"]) == (1, 6)
    assert [p for p in (core.config.root / "blobs").rglob("*") if p.is_file()] == []
    assert not core.keyring.allowed(agent.key)
    assert core.keyring.callback("agents", agent.key.encode()) is False
    assert code(core, "get_client_details", client_id=client_id) == "NOT_FOUND"


def test_verify_reports_corruption_and_missing_content(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    agent.put("/v/a", b"precious bytes")
    file = call(core, "get_files")["items"][0]
    blob = core.blobs.path_for(file["sha256"])
    blob.write_bytes(b"precious bytez")
    verdict = call(core, "verify_file", file_id=file["id"])
    assert (verdict["ok"], verdict["status"], verdict["actual_sha256"]) == (False, "error", sha(b"precious bytez"))
    assert call(core, "get_files", filters={"status": "error"})["total"] == 1
    blob.unlink()
    missing = call(core, "verify_file", file_id=file["id"])
    assert (missing["ok"], missing["actual_sha256"]) == (False, "")
    assert code(core, "download_file", file_id=file["id"], destination_path="/tmp/x") == "FILE_DAMAGED"
    assert code(core, "download_file", file_id=file["id"], destination_path="../x") == "BAD_REQUEST"
    assert code(core, "verify_file", file_id="nope") == "NOT_FOUND"


def test_start_stop_conflicts_and_persist(core: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    assert code(core, "start_server") == "CONFLICT"
    stopped = call(core, "stop_server")
    assert (stopped["running"], stopped["started_at"], stopped["clients_connected"]) == (False, None, 0)
    assert code(core, "stop_server") == "CONFLICT"
    (refused,) = [m for m in agent.send("hello", name="n", hostname="", platform="", version="") if m.type == "error"]
    assert refused["code"] == "STOPPED"
    core.close()
    reopened = BackupServer(ServerConfig(tmp_path, log_file=False))
    try:
        assert reopened.get_server_status()["running"] is False  # the operator's stop survives a restart
        assert reopened.start_server()["running"] is True
    finally:
        reopened.close()


def test_logs_filter_and_rotating_file(tmp_path: Path) -> None:
    server = BackupServer(ServerConfig(tmp_path))
    try:
        warnings = call(server, "get_logs", level="WARNING")
        assert warnings["items"] and all(e["level"] in ("WARNING", "ERROR", "CRITICAL") for e in warnings["items"])
        token = call(server, "get_logs", text="enrollment_token")["items"]
        assert [e["event"] for e in token] == ["server.enrollment_token_created"]
        assert server.token not in str(token)  # where it is, never what it is
        paged = call(server, "get_logs", limit=2, offset=1)
        assert len(paged["items"]) == 2 and paged["total"] >= 3
    finally:
        server.close()
    assert "server.opened" in (tmp_path / "server" / "logs" / "server.log").read_text()
    again = BackupServer(ServerConfig(tmp_path, log_file=False))
    try:  # the token is generated and logged once, then read from the data directory
        assert not call(again, "get_logs", text="enrollment_token")["items"]
        assert again.token == (tmp_path / "server" / "keys" / "enroll_token").read_text().strip()
    finally:
        again.close()


def test_crash_leftovers_are_removed_and_stale_sessions_reset(tmp_path: Path) -> None:
    first = BackupServer(ServerConfig(tmp_path, log_file=False))
    agent = enrolled_agent(first, tmp_path)
    agent.hello()
    agent.send("chunk", b"partial", u="u1", i=0, o=0, last=False, path="/p/big", size=100, mtime_ns=1)
    tmp = first.config.root / "blobs" / "tmp"
    assert len(list(tmp.iterdir())) == 1
    first.conn.close()  # a crash: no close(), the session row still says connected
    second = BackupServer(ServerConfig(tmp_path, log_file=False))
    try:
        assert list(tmp.iterdir()) == []
        assert second.get_all_clients_from_db()[0]["status"] == "disconnected"
        assert second.get_files() == []
        db = sqlite3.connect(second.config.root / "backup.db")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
    finally:
        second.close()


def test_agent_restore_protocol_own_files_only(core: BackupServer, tmp_path: Path) -> None:
    owner = enrolled_agent(core, tmp_path, "owner")
    owner.hello("owner")
    data = bytes(range(256)) * 50
    owner.put("/r/data.bin", data, chunk=4096)
    file = call(core, "get_files")["items"][0]
    core.agents.settings = type(core.agents.settings)(window=2, chunk_size=1000)
    meta, *chunks = owner.send("fetch", r="r1", file_id=file["id"])
    assert (meta.type, meta["size"], meta["name"]) == ("fetch_meta", len(data), "data.bin")
    assert [m.type for m in chunks] == ["data", "data"]  # the window: two chunks, then wait for acks
    got = b"".join(m.body for m in chunks)
    index = 2
    while True:
        replies = owner.send("fetch_ack", r="r1", i=index - 2)
        got += b"".join(m.body for m in replies if m.type == "data")
        index += sum(m.type == "data" for m in replies)
        if any(m.type == "fetch_end" for m in replies):
            break
    assert got == data
    other = enrolled_agent(core, tmp_path, "other")
    other.hello("other")
    (refused,) = other.send("fetch", r="r2", file_id=file["id"])
    assert (refused["code"], refused["ref"]) == ("FORBIDDEN", "r2")
    (missing,) = other.send("fetch", r="r3", file_id="nope")
    assert missing["code"] == "NOT_FOUND"


def test_unknown_operation_and_bad_arguments(core: BackupServer) -> None:
    assert code(core, "format_disk") == ErrorCode.UNKNOWN_OPERATION.value
    assert code(core, "get_files", limit="ten") == "BAD_REQUEST"
    assert code(core, "get_files", filters={"sort": "sha256"}) == "BAD_REQUEST"
    assert code(core, "get_client_files", client_id="nobody") == "NOT_FOUND"
    assert code(core, "resolve_client", client_id_or_name="nobody") == "NOT_FOUND"
