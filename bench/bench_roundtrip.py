"""Round trip and pipelined throughput: bridge -> mock against raw pyzmq baselines, same run.

    python bench/bench_roundtrip.py [--rounds 3] [--requests 2000] [--pipelined 20000] [--window 100]

Baselines: a raw DEALER -> ROUTER echo, and a raw two-hop relay (DEALER -> Python
relay -> ROUTER echo), both carrying the very frames of a ``test_connection`` request,
each once in plain text and once with CURVE on every hop. The bridge always runs with
CURVE and ZAP (the product), so the ratios give the cost of authentication twice: CURVE
over plain for raw pyzmq, and the bridge over both kinds of baseline. Each measurement
runs ``--rounds`` times, interleaved; medians and ratios are printed as JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    admin_connection,
    emit,
    free_port,
    install_cleanup,
    median,
    percentile,
    spawn,
    stack_credentials,
    stop,
    wait_ready,
)
from protocol.envelope import request_frames
from runtime.credentials import KeyPair, load_key_pair, save_key_pair

REPLY_TIMEOUT_MS = 30_000  # a round trip takes well under a millisecond; 30 s means something is stuck


def curve_server(sock: zmq.Socket[bytes], pair: KeyPair | None) -> None:
    """A CURVE server with ``pair`` (no ZAP handler: any client key is accepted), or plain text."""
    if pair is not None:
        sock.curve_server = True
        sock.curve_publickey, sock.curve_secretkey = pair.public.encode(), pair.secret.encode()


def curve_client(sock: zmq.Socket[bytes], server_public: str | None, pair: KeyPair) -> None:
    if server_public is not None:
        sock.curve_serverkey = server_public.encode()
        sock.curve_publickey, sock.curve_secretkey = pair.public.encode(), pair.secret.encode()


def keys_of(keys_dir: str | None, name: str) -> KeyPair | None:
    """The key pair NAME the benchmark saved in ``keys_dir`` (None: plain text); never on argv."""
    return load_key_pair(Path(keys_dir), name) if keys_dir else None


def serve_echo(port: int, keys_dir: str | None) -> None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
    curve_server(sock, keys_of(keys_dir, "echo"))
    sock.bind(f"tcp://127.0.0.1:{port}")
    while True:
        if sock.poll(1000):
            for _ in range(500):
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                sock.send_multipart(frames)


def serve_relay(front_port: int, back_port: int, keys_dir: str | None) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    relay, echo = keys_of(keys_dir, "relay"), keys_of(keys_dir, "echo")
    front = ctx.socket(zmq.ROUTER)
    curve_server(front, relay)
    front.bind(f"tcp://127.0.0.1:{front_port}")
    back = ctx.socket(zmq.DEALER)
    if relay is not None and echo is not None:
        curve_client(back, echo.public, relay)
    back.connect(f"tcp://127.0.0.1:{back_port}")
    poller = zmq.Poller()
    poller.register(front, zmq.POLLIN)
    poller.register(back, zmq.POLLIN)
    while True:
        ready = dict(poller.poll(1000))
        for src, dst in ((front, back), (back, front)):
            if src in ready:
                for _ in range(500):
                    try:
                        frames = src.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    # Read the header like a real relay would, forward the body untouched.
                    dst.send_multipart(frames)


@dataclass(frozen=True)
class Target:
    """Where to send, and how the socket authenticates (CURVE with a server key, or plain)."""

    endpoint: str
    secure: Callable[[zmq.Socket[bytes]], None] = lambda sock: None


class Requester:
    """Requests to one endpoint; a reply that takes REPLY_TIMEOUT_MS fails the benchmark.

    The deadline is the socket's RCVTIMEO/SNDTIMEO rather than a poll before each recv, so
    it adds no system call to the round trips being measured.
    """

    def __init__(self, target: Target) -> None:
        self.endpoint = target.endpoint
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        target.secure(self.sock)
        self.sock.setsockopt(zmq.ROUTING_ID, uuid.uuid4().hex.encode())
        self.sock.setsockopt(zmq.RCVTIMEO, REPLY_TIMEOUT_MS)
        self.sock.setsockopt(zmq.SNDTIMEO, REPLY_TIMEOUT_MS)
        self.sock.connect(self.endpoint)

    def frames(self, i: int) -> list[bytes]:
        return request_frames(f"{i:032x}", "test_connection", {}, session="bench")

    def round_trips(self, n: int) -> list[float]:
        times = []
        for i in range(n):
            t0 = time.perf_counter()
            self.sock.send_multipart(self.frames(i))
            self.sock.recv_multipart()
            times.append(time.perf_counter() - t0)
        return times

    def pipelined(self, n: int, window: int) -> float:
        sent = received = 0
        t0 = time.perf_counter()
        while received < n:
            while sent < n and sent - received < window:
                self.sock.send_multipart(self.frames(sent))
                sent += 1
            self.sock.recv_multipart()
            received += 1
            while received < n and self.sock.poll(0):
                self.sock.recv_multipart()
                received += 1
        return n / (time.perf_counter() - t0)

    def close(self) -> None:
        self.sock.close(0)


def measure(target: Target, requests: int, pipelined: int, window: int) -> dict[str, float]:
    endpoint = target.endpoint
    req = Requester(target)
    try:
        req.round_trips(200)  # warm up connections and caches
        times = req.round_trips(requests)
        rate = req.pipelined(pipelined, window)
    except zmq.Again:
        raise TimeoutError(f"{endpoint}: no reply within {REPLY_TIMEOUT_MS // 1000}s") from None
    finally:
        req.close()
    return {"p50_us": percentile(times, 50) * 1e6, "p99_us": percentile(times, 99) * 1e6, "throughput_per_s": rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--pipelined", type=int, default=20000)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--serve-echo", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-relay", type=int, nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--keys", help=argparse.SUPPRESS)  # a folder of key pairs: the server runs CURVE
    ns = parser.parse_args()
    if ns.serve_echo:
        serve_echo(ns.serve_echo, ns.keys)
        return 0
    if ns.serve_relay:
        front_port, back_port = ns.serve_relay
        serve_relay(front_port, back_port, ns.keys)
        return 0
    install_cleanup()
    medians = run(ns)
    emit(
        {
            "benchmark": "roundtrip",
            "op": "test_connection",
            "rounds": ns.rounds,
            "requests": ns.requests,
            "pipelined": ns.pipelined,
            "window": ns.window,
            "results": medians,
            **judge(medians),
        }
    )
    return 0


def run(ns: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Every target measured ``--rounds`` times, interleaved; the median of each measure."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-rt-"))
    keys = data_dir / "bench-keys"
    for name in ("echo", "relay"):
        save_key_pair(keys, name, KeyPair.generate())
    client_pair = KeyPair.generate()
    ports = {name: free_port() for name in ("echo", "relay", "relay_echo", "echo_c", "relay_c", "relay_echo_c")}
    front, events, back = free_port(), free_port(), free_port()
    creds = stack_credentials(data_dir, front, events, back)
    admin = admin_connection(creds)
    bridge_argv = ["--frontend", f"tcp://127.0.0.1:{front}", "--events", f"tcp://127.0.0.1:{events}"]
    bridge_argv += ["--backend", f"tcp://127.0.0.1:{back}", "--tap", "none", "--data-dir", str(data_dir)]
    bridge = spawn("-m", "actors.bridge", *bridge_argv, "--log-level", "WARNING")
    mock_argv = ["--connection", str(creds.connections["mock"]), "--no-persist", "--tick", "3600"]
    mock = spawn("-m", "actors.mock", *mock_argv, "--data-dir", str(data_dir), "--log-level", "WARNING")
    curve = ("--keys", str(keys))
    procs = [
        bridge,
        mock,
        spawn("bench/bench_roundtrip.py", "--serve-echo", str(ports["echo"])),
        spawn("bench/bench_roundtrip.py", "--serve-echo", str(ports["relay_echo"])),
        spawn("bench/bench_roundtrip.py", "--serve-relay", str(ports["relay"]), str(ports["relay_echo"])),
        spawn("bench/bench_roundtrip.py", "--serve-echo", str(ports["echo_c"]), *curve),
        spawn("bench/bench_roundtrip.py", "--serve-echo", str(ports["relay_echo_c"]), *curve),
        spawn("bench/bench_roundtrip.py", "--serve-relay", str(ports["relay_c"]), str(ports["relay_echo_c"]), *curve),
    ]
    echo_public, relay_public = load_key_pair(keys, "echo").public, load_key_pair(keys, "relay").public

    def curve_to(public: str) -> Callable[[zmq.Socket[bytes]], None]:
        return lambda sock: curve_client(sock, public, client_pair)

    targets = {
        "raw_dealer_router": Target(f"tcp://127.0.0.1:{ports['echo']}"),
        "raw_dealer_router_curve": Target(f"tcp://127.0.0.1:{ports['echo_c']}", curve_to(echo_public)),
        "raw_two_hop_relay": Target(f"tcp://127.0.0.1:{ports['relay']}"),
        "raw_two_hop_relay_curve": Target(f"tcp://127.0.0.1:{ports['relay_c']}", curve_to(relay_public)),
        "bridge_mock": Target(admin.frontend, admin.apply_client),
    }
    try:
        wait_ready(admin, "mock", proc=mock)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for _ in range(ns.rounds):
            for name, target in targets.items():
                runs[name].append(measure(target, ns.requests, ns.pipelined, ns.window))
    finally:
        stop(*procs)
    return {name: {k: median([r[k] for r in rs]) for k in rs[0]} for name, rs in runs.items()}


def judge(medians: dict[str, dict[str, float]]) -> dict[str, object]:
    raw, relay, served = medians["raw_dealer_router"], medians["raw_two_hop_relay"], medians["bridge_mock"]
    raw_c, relay_c = medians["raw_dealer_router_curve"], medians["raw_two_hop_relay_curve"]
    ratios = {
        "bridge_p50_over_raw_p50": served["p50_us"] / raw["p50_us"],
        "bridge_p50_over_relay_p50": served["p50_us"] / relay["p50_us"],
        "bridge_throughput_over_raw": served["throughput_per_s"] / raw["throughput_per_s"],
        "bridge_throughput_over_relay": served["throughput_per_s"] / relay["throughput_per_s"],
        # Like for like: the bridge (CURVE on both of its hops) against raw pyzmq with CURVE too.
        "bridge_p50_over_curve_relay_p50": served["p50_us"] / relay_c["p50_us"],
        "bridge_throughput_over_curve_relay": served["throughput_per_s"] / relay_c["throughput_per_s"],
    }
    # The cost of authentication itself: CURVE over plain text for the same raw sockets.
    authentication = {
        "curve_p50_over_plain_raw": raw_c["p50_us"] / raw["p50_us"],
        "curve_throughput_over_plain_raw": raw_c["throughput_per_s"] / raw["throughput_per_s"],
        "curve_p50_over_plain_relay": relay_c["p50_us"] / relay["p50_us"],
        "curve_throughput_over_plain_relay": relay_c["throughput_per_s"] / relay["throughput_per_s"],
    }
    return {
        "ratios": ratios,
        "authentication_cost": authentication,
        # The targets were set before authentication: they compare the bridge with plain raw pyzmq.
        "targets": {"bridge_p50_over_raw_p50_max": 2.2, "bridge_throughput_over_raw_min": 0.40},
        "targets_met": {
            "p50": ratios["bridge_p50_over_raw_p50"] <= 2.2,
            "throughput": ratios["bridge_throughput_over_raw"] >= 0.40,
        },
    }


if __name__ == "__main__":
    raise SystemExit(main())
