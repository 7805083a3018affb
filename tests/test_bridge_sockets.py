"""The bridge process alone, on real sockets: strangers get nothing from any of its four sockets,
a forged backend registration serves nobody, and the tap gives admins every message minus secrets."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq

from protocol.codec import decode
from protocol.envelope import READY, encode_header, request_frames
from runtime.credentials import ConnectionFile, StackPaths, load_key_pair
from tests.conftest import ROOT, free_port, wait_until

pytestmark = [pytest.mark.processes, pytest.mark.timeout(60)]

SILENCE_MS = 600  # how long "gets nothing" waits


@dataclass
class Bridge:
    data_dir: Path
    endpoints: dict[str, str]
    admin: ConnectionFile
    ctx: zmq.Context[zmq.Socket[bytes]]

    def socket(self, kind: int, endpoint: str, keys: tuple[bytes, bytes] | None) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            sock.curve_serverkey = self.admin.bridge_public_key.encode()
            sock.curve_publickey, sock.curve_secretkey = keys
        sock.connect(self.endpoints[endpoint])
        return sock

    def call(
        self, sock: zmq.Socket[bytes], op: str, args: dict[str, Any] | None = None, wait_ms: int = 3000
    ) -> dict[str, Any] | None:
        sock.send_multipart(request_frames(f"{op}-{free_port()}", op, args))
        if not sock.poll(wait_ms):
            return None
        reply: dict[str, Any] = decode(sock.recv_multipart()[1])
        return reply

    def admin_socket(self) -> zmq.Socket[bytes]:
        return self.socket(zmq.DEALER, "frontend", (self.admin.public_key.encode(), self.admin.secret_key.encode()))


@pytest.fixture
def bridge(tmp_path: Path) -> Iterator[Bridge]:
    endpoints = {name: f"tcp://127.0.0.1:{free_port()}" for name in ("frontend", "events", "backend", "tap")}
    data_dir = tmp_path / "data"
    argv = [sys.executable, "-m", "actors.bridge", "--data-dir", str(data_dir)]
    for name, endpoint in endpoints.items():
        argv += [f"--{name}", endpoint]
    log = open(tmp_path / "bridge.log", "wb")  # noqa: SIM115 - the child writes to it
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        admin_file = StackPaths(data_dir).admin_connection
        wait_until(lambda: admin_file.exists() and proc.poll() is None, 20, what="the bridge's bootstrap")
        bridge = Bridge(data_dir, endpoints, ConnectionFile.load(admin_file), ctx)
        probe = bridge.admin_socket()
        wait_until(lambda: bridge.call(probe, "whoami", wait_ms=500), 20, what="the bridge to answer")
        probe.close()
        yield bridge
    finally:
        ctx.destroy(linger=0)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def stranger() -> tuple[bytes, bytes]:
    public, secret = zmq.curve_keypair()
    return public, secret


def test_strangers_get_nothing_from_the_frontend(bridge: Bridge) -> None:
    for keys in (None, stranger()):
        sock = bridge.socket(zmq.DEALER, "frontend", keys)
        assert bridge.call(sock, "bridge_status", wait_ms=SILENCE_MS) is None
    admin = bridge.admin_socket()
    reply = bridge.call(admin, "get_audit_log", {"op": "connect"})
    assert reply is not None and reply["data"]["total"] >= 1  # the unknown key was recorded


def test_strangers_get_no_events_and_no_tap(bridge: Bridge) -> None:
    listeners = [
        bridge.socket(zmq.SUB, "events", None),
        bridge.socket(zmq.SUB, "events", stranger()),
        bridge.socket(zmq.SUB, "tap", None),
        bridge.socket(zmq.SUB, "tap", stranger()),
    ]
    viewer_key = _viewer_key(bridge)
    viewer_tap = bridge.socket(zmq.SUB, "tap", viewer_key)
    viewer_events = bridge.socket(zmq.SUB, "events", viewer_key)
    admin_tap = bridge.socket(zmq.SUB, "tap", (bridge.admin.public_key.encode(), bridge.admin.secret_key.encode()))
    for sock in (*listeners, viewer_tap, viewer_events, admin_tap):
        sock.subscribe(b"")
    admin = bridge.admin_socket()

    def writes_seen() -> bool:
        bridge.call(admin, "user_add", {"name": f"u{free_port()}", "role": "viewer", "password": "a secret pass"})
        return bool(viewer_events.poll(200)) and bool(admin_tap.poll(200))

    wait_until(writes_seen, 15, what="events reaching a viewer and the tap reaching an admin")
    tapped = b"".join(b"".join(admin_tap.recv_multipart()) for _ in range(3) if admin_tap.poll(500))
    assert tapped and b"a secret pass" not in tapped
    for sock in (*listeners, viewer_tap):
        assert not sock.poll(SILENCE_MS)


def _viewer_key(bridge: Bridge) -> tuple[bytes, bytes]:
    admin = bridge.admin_socket()
    assert (bridge.call(admin, "user_add", {"name": "vera", "role": "viewer"}) or {}).get("success")
    key = (bridge.call(admin, "key_new", {"user": "vera"}) or {})["data"]
    return key["public_key"].encode(), key["secret_key"].encode()


def test_a_forged_backend_registration_serves_nobody(bridge: Bridge) -> None:
    mock = load_key_pair(StackPaths(bridge.data_dir).keys, "mock")
    forgers = [
        (bridge.socket(zmq.DEALER, "backend", None), "server", "real"),
        (bridge.socket(zmq.DEALER, "backend", stranger()), "server", "real"),
        # An allow-listed mock key claiming to be the real server.
        (bridge.socket(zmq.DEALER, "backend", (mock.public.encode(), mock.secret.encode())), "server", "real"),
    ]
    for sock, name, mode in forgers:
        sock.send_multipart([b"", encode_header(READY, name=name, mode=mode, ops=["get_clients"]), b""])
    admin = bridge.admin_socket()
    status = bridge.call(admin, "bridge_status")
    assert status is not None and status["data"]["backends"] == [] and status["data"]["mode"] == "none"
    reply = bridge.call(admin, "get_clients")
    assert reply is not None and reply["error_code"] == "BACKEND_UNAVAILABLE"
    for sock, _, _ in forgers:
        assert not sock.poll(SILENCE_MS)  # never sent a request, a heartbeat or anything else
    audit = bridge.call(admin, "get_audit_log", {"op": "ready"})
    assert audit is not None and audit["data"]["total"] == 1
