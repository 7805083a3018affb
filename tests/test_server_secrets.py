"""The real server's secrets without sockets: the enrollment token never logged, shown and rotated
by admins only through the catalogue, log files private, enrollment that cannot hijack a client,
and delete_client revoking the client's key for good."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
import zmq

from actors.server.core import BackupServer, ServerConfig
from actors.server.keys import REFUSALS_PER_PERIOD, REVOKED_FILE, TOKEN_FILE, RevokedKeys, read_allow_list
from actors.server.logs import MASK, PrivateRotatingFileHandler
from runtime.curve_keys import enrollment_keypair, load_or_create
from tests.test_server_core import CTX, FakeAgent, call, enrolled_agent

pytestmark = pytest.mark.timeout(60)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BackupServer]:
    core = BackupServer(ServerConfig(tmp_path))
    yield core
    core.close()


def everything_said(core: BackupServer) -> str:
    """Every trace the server leaves for an operator: its log (store and file), activity, events."""
    logs = call(core, "get_logs", limit=1000)["items"]
    activity = call(core, "get_recent_activity", limit=1000)["items"]
    files = "".join(p.read_text() for p in (core.config.root / "logs").glob("*.log*"))
    return json.dumps([logs, activity, core.drain_events()], default=str) + files


def test_the_token_is_in_its_private_file_and_nowhere_in_logs_activity_or_events(
    server: BackupServer, tmp_path: Path
) -> None:
    token_file = tmp_path / "server" / "keys" / TOKEN_FILE
    assert token_file.read_text().strip() == server.token and mode_of(token_file) == 0o600
    created = call(server, "get_logs", text="enrollment_token")["items"]
    assert [e["event"] for e in created] == ["server.enrollment_token_created"]
    assert str(token_file) in created[0]["message"]
    assert server.token not in everything_said(server)


def test_log_files_and_their_folder_are_private_including_rotated_ones(server: BackupServer, tmp_path: Path) -> None:
    logs = tmp_path / "server" / "logs"
    assert mode_of(logs) == 0o700 and mode_of(logs / "server.log") == 0o600
    small = tmp_path / "rotating" / "x.log"
    small.parent.mkdir()
    small.write_text("from an older version\n")
    small.chmod(0o644)
    handler = PrivateRotatingFileHandler(small, maxBytes=64, backupCount=2, encoding="utf-8")
    logger = logging.getLogger("test-private-rotation")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for n in range(20):
            logger.warning("line %d with some padding to rotate", n)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(small.parent.iterdir())
    assert len(files) == 3 and all(mode_of(f) == 0o600 for f in files), [(f.name, oct(mode_of(f))) for f in files]


def test_a_token_logged_by_mistake_is_masked_everywhere(server: BackupServer) -> None:
    structlog.get_logger().warning("careless.line", detail=f"token is {server.token}!", error=ValueError(server.token))
    said = everything_said(server)
    assert server.token not in said and MASK in said


def test_rotation_refuses_the_old_token_at_once_and_stores_the_new_one(server: BackupServer, tmp_path: Path) -> None:
    old_key = enrollment_keypair(server.token)[0].decode()
    assert server.keyring.callback("agents", old_key.encode()) is True
    old = server.token
    rotated = call(server, "rotate_enrollment_token")
    assert rotated["token"] == server.token != old
    assert (tmp_path / "server" / "keys" / TOKEN_FILE).read_text().strip() == server.token
    assert server.keyring.callback("agents", old_key.encode()) is False
    assert server.keyring.callback("agents", enrollment_keypair(server.token)[0]) is True
    # A connection made with the old token before the rotation can no longer enroll anybody.
    public, _ = load_or_create(tmp_path / "late", "agent")
    late = FakeAgent(server, old_key, b"old-token-connection")
    (answer,) = late.send("enroll", public_key=public.decode(), name="late", hostname="h", platform="p", version="1")
    assert answer.type == "error" and not call(server, "get_clients")["items"]
    assert old not in everything_said(server) and server.token not in everything_said(server)
    assert call(server, "get_enrollment_token")["token"] == server.token


def test_the_token_survives_a_restart_and_rotation_persists(tmp_path: Path) -> None:
    first = BackupServer(ServerConfig(tmp_path, log_file=False))
    try:
        rotated = first.handle("rotate_enrollment_token", {}, CTX)
        assert isinstance(rotated, dict)
    finally:
        first.close()
    again = BackupServer(ServerConfig(tmp_path, log_file=False))
    try:
        assert again.token == rotated["data"]["token"]
    finally:
        again.close()


def test_enrolling_a_key_another_client_holds_is_refused_and_changes_nothing(
    server: BackupServer, tmp_path: Path
) -> None:
    victim = enrolled_agent(server, tmp_path, "victim")
    victim.hello("victim")
    before = call(server, "get_clients")["items"]
    thief = FakeAgent(server, enrollment_keypair(server.token)[0].decode(), b"thief")
    (refused,) = thief.send(
        "enroll", public_key=victim.key, name="HIJACKED-NAME", hostname="evil", platform="p", version="1"
    )
    assert (refused.type, refused["code"]) == ("error", "CONFLICT")
    after = call(server, "get_clients")["items"]
    assert [(c["id"], c["name"], c["hostname"]) for c in after] == [(c["id"], c["name"], c["hostname"]) for c in before]
    assert "enrollment_refused" in [a["type"] for a in call(server, "get_recent_activity")["items"]]
    # The same agent repeating its own enrollment (its answer was lost) gets its id back, unchanged.
    (again,) = thief.send("enroll", public_key=victim.key, name="victim", hostname="lap", platform="Linux", version="1")
    assert again.type == "enrolled" and again["client_id"] == before[0]["id"]


def test_a_deleted_client_cannot_come_back_with_the_standing_token(server: BackupServer, tmp_path: Path) -> None:
    agent = enrolled_agent(server, tmp_path, "gone")
    agent.hello("gone")
    client_id = call(server, "get_clients")["items"][0]["id"]
    call(server, "delete_client", client_id=client_id)
    assert server.keyring.callback("agents", agent.key.encode()) is False
    enroller = FakeAgent(server, enrollment_keypair(server.token)[0].decode(), b"re-enroll")
    (refused,) = enroller.send("enroll", public_key=agent.key, name="gone", hostname="h", platform="p", version="1")
    assert (refused.type, refused["code"]) == ("error", "FORBIDDEN")
    assert call(server, "get_clients")["total"] == 0
    revoked = tmp_path / "server" / "keys" / REVOKED_FILE
    assert agent.key in revoked.read_text() and mode_of(revoked) == 0o600
    server.close()
    restarted = BackupServer(ServerConfig(tmp_path, log_file=False))
    try:  # the revocation is kept across restarts
        assert restarted.keyring.callback("agents", agent.key.encode()) is False
        assert restarted.keyring.revoked(agent.key)
    finally:
        restarted.close()


def test_a_flood_of_unknown_keys_cannot_flush_the_activity(server: BackupServer, tmp_path: Path) -> None:
    for n in range(200):
        public, _ = load_or_create(tmp_path / "flood" / str(n), "agent")
        assert server.keyring.callback("agents", public) is False
    server.tick()
    refused = [a for a in call(server, "get_recent_activity", limit=1000)["items"] if a["type"] == "agent_refused"]
    assert len(refused) == REFUSALS_PER_PERIOD + 1
    assert f"{200 - REFUSALS_PER_PERIOD} more" in refused[0]["message"]


def test_key_lists_keep_keys_with_a_hash_sign(tmp_path: Path) -> None:
    """z85 keys may contain '#': a comment is what follows a key, or a line that is not a key."""

    def key_where(good: Callable[[str], bool]) -> str:
        while not good(public := zmq.curve_keypair()[0].decode()):
            pass
        return public

    keys = [key_where(lambda k: "#" in k), key_where(lambda k: k.count("#") > 1)]
    listed = tmp_path / "allowed"
    listed.write_text(f"# the lab's agents\n{keys[0]}  # lab-1\n\n{keys[1]}\nnot-a-key\n")
    assert read_allow_list(listed) == set(keys)
    revoked = RevokedKeys(tmp_path / "revoked")
    revoked.add(keys[0], "client lab-1 deleted")
    assert RevokedKeys(tmp_path / "revoked").keys == {keys[0]}
