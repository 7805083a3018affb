"""Trust end to end, against real processes: every bridge socket refuses strangers, roles hold through
bridgectl's own commands, a forged backend never speaks, and a whole run leaves no secret in any log.

The stack's data directory sits where the default data directory is for a bridgectl run with
``XDG_DATA_HOME`` set, so "no flag on the stack's machine" is tested as a user would do it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from client.connection import BridgeClient, BridgeUnreachable
from protocol.catalogue import BACKEND_OPERATIONS
from protocol.envelope import HEARTBEAT, READY, REQUEST, decode_header, encode_header, request_frames
from runtime.credentials import ENV_CONNECTION, ConnectionFile, KeyPair
from tests.conftest import ROOT, Stack, ok, wait_until

pytestmark = [pytest.mark.timeout(180), pytest.mark.processes]

SILENCE_S = 2.0  # how long a refused peer is watched for any message
ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    xdg = tmp_path_factory.mktemp("xdg")
    running = Stack(xdg / "backup-console", "--tick", "0.3").start()
    yield running
    running.stop()


def ctl(
    stack: Stack, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.bridgectl", *args],
        cwd=ROOT,
        env=env if env is not None else stack.env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def stranger(kind: int, endpoint: str, curve: ConnectionFile | None) -> zmq.Socket[bytes]:
    """A socket of someone the bridge does not know: no CURVE at all, or a key nobody allowed."""
    sock = ctx.socket(kind)
    sock.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        curve.apply_client(sock)
    if kind == zmq.SUB:
        sock.setsockopt(zmq.SUBSCRIBE, b"")
    sock.connect(endpoint)
    return sock


def unknown_key(stack: Stack) -> ConnectionFile:
    """The admin's file with a fresh key pair: the right bridge, an unknown key."""
    pair = KeyPair.generate()
    return ConnectionFile.from_json(
        {**stack.connection.to_json(), "public_key": pair.public, "secret_key": pair.secret}
    )


def offer(sock: zmq.Socket[bytes], frames: list[bytes]) -> None:
    """Send if the socket lets us: a peer the bridge refused may never get a connection to send on."""
    with contextlib.suppress(zmq.Again):
        sock.send_multipart(frames, zmq.NOBLOCK)


def hears_anything(sock: zmq.Socket[bytes], seconds: float = SILENCE_S) -> bool:
    return bool(sock.poll(int(seconds * 1000)))


@pytest.mark.parametrize("who", ["no keys", "unknown key"])
def test_no_bridge_socket_answers_a_stranger(stack: Stack, who: str) -> None:
    admin = stack.connection
    curve = None if who == "no keys" else unknown_key(stack)
    frontend = stranger(zmq.DEALER, admin.frontend, curve)
    events = stranger(zmq.SUB, admin.events, curve)
    tap = stranger(zmq.SUB, admin.tap, curve)
    backend = stranger(zmq.DEALER, admin.backend, curve)
    # The same sockets with the admin's key do hear something in the same time: the silence is a refusal.
    control_events = stranger(zmq.SUB, admin.events, admin)
    control_tap = stranger(zmq.SUB, admin.tap, admin)
    try:
        deadline = time.monotonic() + SILENCE_S
        with stack.client() as c:
            while time.monotonic() < deadline:  # keep trying; meanwhile traffic for the tap
                offer(frontend, request_frames(f"stranger-{time.monotonic()}", "get_clients"))
                offer(backend, [b"", encode_header(READY, name="server", mode="real", ops=["get_clients"]), b""])
                ok(c.call("get_server_status"))
                time.sleep(0.1)
        assert hears_anything(control_events, 5) and hears_anything(control_tap, 5)
        for name, sock in (("frontend", frontend), ("events", events), ("tap", tap), ("backend", backend)):
            assert not hears_anything(sock, 0.2), f"the {name} socket answered a peer with {who}"
        assert "server" not in [b["name"] for b in stack.status()["backends"]]
    finally:
        for sock in (frontend, events, tap, backend, control_events, control_tap):
            sock.close(0)


def test_a_viewer_is_forbidden_to_delete_and_the_audit_names_them(stack: Stack, tmp_path: Path) -> None:
    added = ctl(stack, "user", "add", "vera", "--role", "viewer")
    assert added.returncode == 0, added.stderr
    password = added.stdout.strip()
    assert len(password) >= 12 and "shown this once" in added.stderr
    viewer_file = tmp_path / "vera.json"
    made = ctl(stack, "key", "new", "--user", "vera", "--role", "viewer", "--label", "test", "--out", str(viewer_file))
    assert made.returncode == 0, made.stderr
    assert oct(viewer_file.stat().st_mode & 0o777) == "0o600"
    viewer = ConnectionFile.load(viewer_file)
    assert (viewer.user, viewer.role, viewer.bridge_public_key) == (
        "vera",
        "viewer",
        stack.connection.bridge_public_key,
    )
    with stack.client() as admin:
        victim = ok(admin.call("get_clients"))["items"][0]
    as_viewer = dict(os.environ, **{ENV_CONNECTION: str(viewer_file)})
    reads = ctl(stack, "call", "get_clients", env=as_viewer)
    assert reads.returncode == 0, reads.stderr
    refused = ctl(stack, "call", "delete_client", "--arg", f"client_id={victim['id']}", env=as_viewer)
    reply = json.loads(refused.stdout)
    assert refused.returncode == 1 and reply["error_code"] == "FORBIDDEN" and "admin" in reply["message"]
    assert ctl(stack, "user", "list", env=as_viewer).returncode == 1  # administration is admin's too
    with stack.client() as admin:
        assert ok(admin.call("get_client_details", {"client_id": victim["id"]}))["client"]["id"] == victim["id"]
        audit = ok(admin.call("get_audit_log", {"op": "delete_client", "user": "vera"}))["items"]
    assert audit and audit[0]["outcome"] == "FORBIDDEN" and audit[0]["who"]["user"] == "vera"
    assert audit[0]["ids"] == {"client_id": victim["id"]}
    revoked = ctl(stack, "key", "revoke", str(viewer.key_id))
    assert revoked.returncode == 0, revoked.stderr
    gone = ctl(stack, "--connect-timeout", "1", "call", "get_clients", env=as_viewer)
    assert gone.returncode == 1 and "refused" in gone.stderr and "Traceback" not in gone.stderr


@pytest.mark.parametrize("forger", ["unknown key", "the mock's key"])
def test_a_forged_real_backend_is_refused_and_never_heard(stack: Stack, forger: str) -> None:
    curve = unknown_key(stack) if forger == "unknown key" else stack.connection_of("mock")
    forged = stranger(zmq.DEALER, stack.connection.backend, curve)
    ready = encode_header(READY, name="server", mode="real", ops=sorted(BACKEND_OPERATIONS), pid=os.getpid())
    kinds: list[str] = []
    try:
        with stack.client() as c:
            for _ in range(15):
                offer(forged, [b"", ready, b""])
                offer(forged, [b"", encode_header(HEARTBEAT), b""])
                reply = c.call("get_clients")
                assert reply["success"] and reply["mode"] == "mock", reply
                while forged.poll(0):  # a request here could be answered with forged data
                    frames = forged.recv_multipart()
                    kinds.append(decode_header(frames[1]).kind)
                time.sleep(0.1)
            backends = {(b["name"], b["mode"]) for b in stack.status()["backends"]}
            assert ("server", "real") not in backends and ok(c.call("bridge_status"))["mode"] == "mock"
    finally:
        forged.close(0)
    assert REQUEST not in kinds, kinds
    if forger == "the mock's key":  # the real mock, whose key was borrowed, is still the one serving
        wait_until(lambda: (b := stack.backend("mock")) and b["alive"], 10, 0.1, "the mock still alive")


def test_bridgectl_needs_no_flag_on_the_stacks_machine(stack: Stack) -> None:
    env = {k: v for k, v in os.environ.items() if k not in (ENV_CONNECTION, "BRIDGE_ENDPOINT")}
    env["XDG_DATA_HOME"] = str(stack.data_dir.parent)
    got = ctl(stack, "call", "get_clients", env=env)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["data"]["total"] >= 44
    elsewhere = dict(env, XDG_DATA_HOME=str(stack.data_dir.parent / "nowhere"))
    missing = ctl(stack, "call", "get_clients", env=elsewhere)
    assert missing.returncode == 2 and "run_all.py" in missing.stderr and "Traceback" not in missing.stderr


def secrets_of(data_dir: Path) -> dict[str, str]:
    found = {"admin password": (data_dir / "credentials" / "admin-password").read_text().strip()}
    for path in (data_dir / "credentials").glob("*.json"):
        found[f"secret key of {path.name}"] = ConnectionFile.load(path).secret_key
    return found


def test_a_full_run_leaves_no_secret_in_any_log(tmp_path: Path) -> None:
    # --duration bounds the run should the test fail half way; it ends with SIGTERM, as cleanly, once checked.
    stack = Stack(tmp_path / "run", "--duration", "120", real=True)
    stack.start(backend="server")
    seen: dict[str, str] = {}
    try:
        shown = ctl(stack, "token", "show")
        assert shown.returncode == 0, shown.stderr
        seen["first enrollment token"] = shown.stdout.strip()
        rotated = ctl(stack, "token", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        seen["rotated enrollment token"] = rotated.stdout.strip()
        assert seen["rotated enrollment token"] != seen["first enrollment token"]
        added = ctl(
            stack, "user", "add", "otto", "--role", "operator", "--password-stdin", stdin="a chosen password 1\n"
        )
        assert added.returncode == 0
        with stack.client() as c:
            logs = ok(c.call("get_logs", {"text": "enrollment", "limit": 100}))
            assert logs["items"], "the server logs where the token is"
        # Sign-ins carry passwords: through the GUI's key, as the console does, a failed one and a good one.
        with BridgeClient(connection=stack.connection_of("gui")) as gui:
            wrong = gui.call("login", {"username": "otto", "password": "not otto's password"})
            assert wrong["error_code"] == "UNAUTHENTICATED"
            session = ok(gui.call("login", {"username": "otto", "password": "a chosen password 1"}))
            seen["session token"] = session["token"]
            gui.auth = session["token"]
            assert ok(gui.call("whoami"))["user"] == "otto"
    finally:
        code = stack.stop()
    assert code == 0, stack.log()
    seen |= secrets_of(stack.data_dir)
    logs = [p for p in stack.data_dir.rglob("*") if p.is_file() and (".log" in p.name or p.parent.name == "logs")]
    assert {p.name for p in logs} >= {"stack.log", "server.log", "audit.log"}, logs
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [name for name, secret in seen.items() if secret and secret in text]
        assert not leaked, f"{path} holds {leaked}"
    audit = [json.loads(line) for line in (stack.data_dir / "bridge" / "audit.log").read_text().splitlines()]
    assert any(r["op"] == "rotate_enrollment_token" and r["outcome"] == "ok" for r in audit)
    assert {r["outcome"] for r in audit if r["op"] == "login"} == {"ok", "UNAUTHENTICATED"}


def test_a_client_with_another_stacks_file_is_told_so(stack: Stack, tmp_path: Path) -> None:
    other = ConnectionFile.from_json({**stack.connection.to_json(), "bridge_public_key": KeyPair.generate().public})
    with BridgeClient(connection=other, connect_timeout=1.0) as client, pytest.raises(BridgeUnreachable) as failed:
        client.call("get_clients")
    assert "bridge_public_key" in str(failed.value)


def test_a_backend_allowed_with_bridgectl_joins_under_its_name_and_leaves_when_revoked(
    stack: Stack, tmp_path: Path
) -> None:
    made = ctl(stack, "backend", "allow", "--name", "mock2", "--mode", "mock", "--out", str(tmp_path / "mock2.json"))
    assert made.returncode == 0, made.stderr
    assert ConnectionFile.load(tmp_path / "mock2.json").name == "mock2"
    listed = ctl(stack, "backend", "list")
    assert listed.returncode == 0 and "mock2" in listed.stdout
    argv = ["-m", "actors.mock", "--connection", str(tmp_path / "mock2.json"), "--no-persist", "--tick", "3600"]
    second = subprocess.Popen([sys.executable, *argv, "--data-dir", str(tmp_path)], cwd=ROOT)
    try:
        wait_until(lambda: (b := stack.backend("mock2")) and b["alive"], 30, 0.1, "mock2 registered")
        revoked = ctl(stack, "backend", "revoke", str(tmp_path / "mock2.json"))
        assert revoked.returncode == 0, revoked.stderr
        wait_until(lambda: not (b := stack.backend("mock2")) or not b["alive"], 10, 0.1, "mock2 gone")
        assert stack.backend("mock") is not None
    finally:
        second.terminate()
        second.wait(20)
