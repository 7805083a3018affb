"""Round trip and pipelined throughput: bridge -> mock against raw pyzmq baselines, same run.

    python bench/bench_roundtrip.py [--rounds 3] [--requests 2000] [--pipelined 20000] [--window 100]

Baselines: a raw DEALER -> ROUTER echo, and a raw two-hop relay (DEALER -> Python
relay -> ROUTER echo), both carrying the very frames of a ``test_connection`` request.
Each measurement runs ``--rounds`` times, interleaved; medians and ratios are printed
as JSON.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, free_port, install_cleanup, median, percentile, spawn, stop, wait_ready
from protocol.envelope import request_frames

REPLY_TIMEOUT_MS = 30_000  # a round trip takes well under a millisecond; 30 s means something is stuck


def serve_echo(port: int) -> None:
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind(f"tcp://127.0.0.1:{port}")
    while True:
        if sock.poll(1000):
            for _ in range(500):
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                sock.send_multipart(frames)


def serve_relay(front_port: int, back_port: int) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    front = ctx.socket(zmq.ROUTER)
    front.bind(f"tcp://127.0.0.1:{front_port}")
    back = ctx.socket(zmq.DEALER)
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


class Requester:
    """Requests to one endpoint; a reply that takes REPLY_TIMEOUT_MS fails the benchmark.

    The deadline is the socket's RCVTIMEO/SNDTIMEO rather than a poll before each recv, so
    it adds no system call to the round trips being measured.
    """

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.ROUTING_ID, uuid.uuid4().hex.encode())
        self.sock.setsockopt(zmq.RCVTIMEO, REPLY_TIMEOUT_MS)
        self.sock.setsockopt(zmq.SNDTIMEO, REPLY_TIMEOUT_MS)
        self.sock.connect(endpoint)

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


def measure(endpoint: str, requests: int, pipelined: int, window: int) -> dict[str, float]:
    req = Requester(endpoint)
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
    ns = parser.parse_args()
    if ns.serve_echo:
        serve_echo(ns.serve_echo)
        return 0
    if ns.serve_relay:
        serve_relay(*ns.serve_relay)
        return 0
    install_cleanup()

    echo_port, relay_front, relay_echo = free_port(), free_port(), free_port()
    front, events, back = free_port(), free_port(), free_port()
    data_dir = tempfile.mkdtemp(prefix="bench-rt-")
    bridge = spawn(
        "-m",
        "actors.bridge",
        "--frontend",
        f"tcp://127.0.0.1:{front}",
        "--events",
        f"tcp://127.0.0.1:{events}",
        "--backend",
        f"tcp://127.0.0.1:{back}",
        "--tap",
        "none",
        "--log-level",
        "WARNING",
    )
    mock = spawn(
        "-m",
        "actors.mock",
        "--bridge",
        f"tcp://127.0.0.1:{back}",
        "--no-persist",
        "--tick",
        "3600",
        "--data-dir",
        data_dir,
        "--log-level",
        "WARNING",
    )
    procs = [
        bridge,
        mock,
        spawn("bench/bench_roundtrip.py", "--serve-echo", str(echo_port)),
        spawn("bench/bench_roundtrip.py", "--serve-echo", str(relay_echo)),
        spawn("bench/bench_roundtrip.py", "--serve-relay", str(relay_front), str(relay_echo)),
    ]
    try:
        wait_ready(f"tcp://127.0.0.1:{front}", "mock", proc=mock)
        targets = {
            "raw_dealer_router": f"tcp://127.0.0.1:{echo_port}",
            "raw_two_hop_relay": f"tcp://127.0.0.1:{relay_front}",
            "bridge_mock": f"tcp://127.0.0.1:{front}",
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
        for _ in range(ns.rounds):
            for name, endpoint in targets.items():
                runs[name].append(measure(endpoint, ns.requests, ns.pipelined, ns.window))
    finally:
        stop(*procs)
    result: dict[str, object] = {
        "benchmark": "roundtrip",
        "op": "test_connection",
        "rounds": ns.rounds,
        "requests": ns.requests,
        "pipelined": ns.pipelined,
        "window": ns.window,
    }
    medians = {name: {k: median([r[k] for r in rs]) for k in rs[0]} for name, rs in runs.items()}
    result["results"] = medians
    raw, relay, served = medians["raw_dealer_router"], medians["raw_two_hop_relay"], medians["bridge_mock"]
    ratios = {
        "bridge_p50_over_raw_p50": served["p50_us"] / raw["p50_us"],
        "bridge_p50_over_relay_p50": served["p50_us"] / relay["p50_us"],
        "bridge_throughput_over_raw": served["throughput_per_s"] / raw["throughput_per_s"],
        "bridge_throughput_over_relay": served["throughput_per_s"] / relay["throughput_per_s"],
    }
    result["ratios"] = ratios
    result["targets"] = {"bridge_p50_over_raw_p50_max": 2.2, "bridge_throughput_over_raw_min": 0.40}
    result["targets_met"] = {
        "p50": ratios["bridge_p50_over_raw_p50"] <= 2.2,
        "throughput": ratios["bridge_throughput_over_raw"] >= 0.40,
    }
    emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
