"""The bridge's memory under the floods of issue 9: it must stay bounded, whatever a peer does.

A bridge and a mock on free ports (authenticated, as run_all makes them); the bridge's
RSS is read after each flood, beside the baseline taken in the same run:

* ``events_since``: two admin peers repeat ``events_since(seq=0)`` (the biggest reply the
  bridge builds itself), each with a fresh request id, so every reply enters the cache;
* ``big_replies``: ``get_files(limit=1000)`` with fresh ids (large replies from a backend);
* ``parked``: one peer sends 10,000 requests without reading a reply; meanwhile another
  peer's calls must still succeed (OVERLOADED goes to the greedy peer only);
* ``strangers``: 200 handshakes with random keys (refused by ZAP; counted, never kept);
* ``logins``: 500 wrong passwords through the GUI key (throttled, audited in bounds).

Prints JSON: RSS in MiB after each phase, its ratio to the baseline, and the checks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    admin_connection,
    emit,
    free_port,
    install_cleanup,
    spawn,
    stack_credentials,
    stop,
    wait_ready,
)
from client.connection import BridgeClient
from protocol.envelope import decode_header, request_frames
from runtime.credentials import ConnectionFile, KeyPair

REPLY_WAIT_MS = 30_000


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def dealer(ctx: zmq.Context[zmq.Socket[bytes]], conn: ConnectionFile) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, REPLY_WAIT_MS)
    conn.apply_client(sock)
    sock.connect(conn.frontend)
    return sock


def outcome(frames: list[bytes]) -> str:
    """ "ok" or the error code of a reply ``[header, body]``."""
    header = decode_header(frames[0])
    return "ok" if header.fields.get("ok") else str(header.fields.get("error_code"))


def pipelined(sock: zmq.Socket[bytes], op: str, args: dict[str, Any], count: int, window: int = 50) -> dict[str, int]:
    """Send ``count`` requests with fresh ids, ``window`` in flight; count the replies' outcomes."""
    sent = received = 0
    outcomes: dict[str, int] = {}
    while received < count:
        while sent < count and sent - received < window:
            sock.send_multipart(request_frames(uuid.uuid4().hex, op, args))
            sent += 1
        code = outcome(sock.recv_multipart())
        outcomes[code] = outcomes.get(code, 0) + 1
        received += 1
    return outcomes


def flood_parked(ctx: zmq.Context[zmq.Socket[bytes]], admin: ConnectionFile, count: int) -> dict[str, Any]:
    greedy = dealer(ctx, admin)
    for _ in range(count):
        greedy.send_multipart(request_frames(uuid.uuid4().hex, "get_clients", {"limit": 10}))
    with BridgeClient(connection=admin) as polite:
        answers = [polite.call("get_clients", {"limit": 10}) for _ in range(50)]
    greedy_codes: dict[str, int] = {}
    greedy.setsockopt(zmq.RCVTIMEO, 5000)
    try:
        for _ in range(count):
            code = outcome(greedy.recv_multipart())
            greedy_codes[code] = greedy_codes.get(code, 0) + 1
    except zmq.Again:
        pass
    greedy.close()
    return {
        "polite_ok": sum(1 for a in answers if a["success"]),
        "polite_calls": len(answers),
        "greedy_outcomes": greedy_codes,
    }


def flood_strangers(ctx: zmq.Context[zmq.Socket[bytes]], admin: ConnectionFile, count: int) -> int:
    """Handshakes with random keys; returns how many replies strangers got (must be 0)."""
    socks = []
    for _ in range(count):
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        pair = KeyPair.generate()
        sock.curve_serverkey = admin.bridge_public_key.encode("ascii")
        sock.curve_publickey = pair.public.encode("ascii")
        sock.curve_secretkey = pair.secret.encode("ascii")
        sock.connect(admin.frontend)
        sock.send_multipart(request_frames(uuid.uuid4().hex, "get_clients"), zmq.NOBLOCK)
        socks.append(sock)
    poller = zmq.Poller()
    for sock in socks:
        poller.register(sock, zmq.POLLIN)
    answered = len(poller.poll(2000))
    for sock in socks:
        sock.close()
    return answered


def flood_logins(gui: ConnectionFile, count: int) -> dict[str, int]:
    outcomes: dict[str, int] = {}
    with BridgeClient(connection=gui) as client:
        for _ in range(count):
            reply = client.call("login", {"username": "admin", "password": "wrong"})
            code = "ok" if reply["success"] else str(reply.get("error_code"))
            outcomes[code] = outcomes.get(code, 0) + 1
    return outcomes


def main() -> int:
    install_cleanup()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-since", type=int, default=3000, help="events_since calls per peer")
    parser.add_argument("--big-replies", type=int, default=1500, help="get_files(limit=1000) calls")
    parser.add_argument("--parked", type=int, default=10_000)
    parser.add_argument("--strangers", type=int, default=200)
    parser.add_argument("--logins", type=int, default=500)
    ns = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-floods-"))
    front, events, back = free_port(), free_port(), free_port()
    creds = stack_credentials(data_dir, front, events, back)
    admin = admin_connection(creds)
    gui = ConnectionFile.load(creds.connections["gui"])
    bridge = spawn(
        "-m", "actors.bridge", "--frontend", admin.frontend, "--events", admin.events, "--backend",
        f"tcp://127.0.0.1:{back}", "--tap", "none", "--data-dir", str(data_dir), "--log-level", "WARNING",
    )  # fmt: skip
    mock = spawn(
        "-m", "actors.mock", "--connection", str(creds.connections["mock"]), "--data-dir", str(data_dir),
        "--clients", "200", "--files", "5000", "--tick", "0.5", "--log-level", "WARNING",
    )  # fmt: skip
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    result: dict[str, Any] = {"benchmark": "bridge_floods", "rss_mib": {}, "checks": {}}
    try:
        wait_ready(admin, "mock", proc=mock)
        with BridgeClient(connection=admin) as c:  # fill the event ring a little first
            for _ in range(20):
                c.call("get_clients")
        time.sleep(2)  # a few ticks of events so events_since has something to return
        rss = result["rss_mib"]
        rss["baseline"] = rss_mib(bridge.pid)
        peers = [dealer(ctx, admin), dealer(ctx, admin)]
        for peer in peers:
            pipelined(peer, "events_since", {"seq": 0}, ns.events_since)
        rss["events_since"] = rss_mib(bridge.pid)
        result["checks"]["big_replies"] = pipelined(peers[0], "get_files", {"limit": 1000}, ns.big_replies, window=20)
        rss["big_replies"] = rss_mib(bridge.pid)
        for peer in peers:
            peer.close()
        result["checks"]["parked"] = flood_parked(ctx, admin, ns.parked)
        rss["parked"] = rss_mib(bridge.pid)
        result["checks"]["strangers_answered"] = flood_strangers(ctx, admin, ns.strangers)
        rss["strangers"] = rss_mib(bridge.pid)
        result["checks"]["logins"] = flood_logins(gui, ns.logins)
        rss["logins"] = rss_mib(bridge.pid)
        audit = data_dir / "bridge" / "audit.log"
        result["checks"]["audit_lines"] = sum(1 for _ in audit.open()) if audit.exists() else 0
        result["rss_ratio_to_baseline"] = {k: round(v / rss["baseline"], 2) for k, v in rss.items()}
        result["rss_mib"] = {k: round(v, 1) for k, v in rss.items()}
    finally:
        ctx.destroy(linger=0)
        stop(bridge, mock)
        shutil.rmtree(data_dir, ignore_errors=True)
    emit(result)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
