"""Agents at scale (issue 10, item 11): a real server under bursts of connecting agents.

A bridge and a backup server on free ports. Simulated agents, each with its own CURVE key
pair, enroll with the server's token, say hello and heartbeat every second, as the real
agent does; they arrive in bursts (``--burst`` at once) up to ``--agents``. After each burst
the fleet is held for ``--hold`` seconds while a separate process calls the console's
``get_server_status`` and ``get_clients`` in a loop. Per step it reports:

* ``false_disconnects``: live agents the server dropped (a NO_SESSION answer to a heartbeat,
  or a ``disconnect``), though the simulator sent every heartbeat;
* ``sim_late_max_s``: how late the simulator itself was with a heartbeat (it must stay well
  under the server's 3 s liveness, or a loss would be the simulator's fault);
* ``welcome_p99_s``: hello to welcome, over the burst;
* ``console_p50_ms`` / ``console_p99_ms``: the console's calls, beside the baseline taken
  with no agent in the same run;
* ``server_cpu``: the server's CPU seconds per wall second.

Goal (issue 10): 2,000 agents in bursts of 500 with 0 false disconnects, console p99 ≤ 100 ms.
Not simulated: backups (every agent only heartbeats).

    python bench/bench_agents.py [--agents 2000] [--burst 500] [--hold 8]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_backup import Servers
from bench.common import ROOT, emit, install_cleanup, percentile
from client.connection import BridgeClient
from protocol.agent_messages import HEARTBEAT_S, NO_SESSION, SERVER_TO_AGENT, decode_message, encode_message
from runtime.credentials import ConnectionFile
from runtime.curve_keys import enrollment_keypair, load_public

ENROLL_WAIT_S = 120.0
POLL_MS = 20


@dataclass
class SimAgent:
    name: str
    public: bytes
    secret: bytes
    sock: zmq.Socket[bytes] | None = None
    hello_at: float = 0.0
    welcomed_at: float | None = None
    next_beat: float = 0.0
    lost: int = 0


@dataclass
class StepStats:
    false_disconnects: int = 0
    late: list[float] = field(default_factory=list)
    welcomes: list[float] = field(default_factory=list)


class Fleet:
    """Every simulated agent in one poll loop: their sockets, heartbeats and what the server answers."""

    def __init__(self, endpoint: str, server_key: bytes, token: str) -> None:
        self.endpoint, self.server_key, self.token = endpoint, server_key, token
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context(io_threads=2)
        self.ctx.max_sockets = 20_000
        self.agents: list[SimAgent] = []
        self.by_sock: dict[zmq.Socket[bytes], SimAgent] = {}
        self.poller = zmq.Poller()

    def _socket(self, public: bytes, secret: bytes) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(zmq.DEALER)
        sock.curve_serverkey = self.server_key
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.endpoint)
        return sock

    def enroll(self, n: int) -> list[SimAgent]:
        """``n`` new key pairs registered through one connection keyed by the token (pipelined)."""
        enroller = self._socket(*enrollment_keypair(self.token))
        fresh: list[SimAgent] = []
        for _ in range(n):
            public, secret = zmq.curve_keypair()
            agent = SimAgent(f"sim-{len(self.agents) + len(fresh):05d}", public, secret)
            enroller.send_multipart(
                encode_message(
                    "enroll", public_key=public.decode(), name=agent.name, hostname="sim", platform="bench", version="1"
                )
            )
            fresh.append(agent)
        deadline = time.monotonic() + ENROLL_WAIT_S
        enrolled = 0
        while enrolled < n:
            if not enroller.poll(max(1, int((deadline - time.monotonic()) * 1000))):
                raise TimeoutError(f"only {enrolled} of {n} enrollments answered within {ENROLL_WAIT_S:.0f}s")
            msg = decode_message(enroller.recv_multipart(), SERVER_TO_AGENT)
            if msg.type != "enrolled":
                raise RuntimeError(f"enrollment refused: {msg.fields}")
            enrolled += 1
        enroller.close(0)
        return fresh

    def arrive(self, burst: list[SimAgent]) -> None:
        """The burst connects and says hello all at once (queued until each handshake is done)."""
        now = time.monotonic()
        for agent in burst:
            agent.sock = self._socket(agent.public, agent.secret)
            agent.hello_at = now
            self._hello(agent)
            self.by_sock[agent.sock] = agent
            self.poller.register(agent.sock, zmq.POLLIN)
            self.agents.append(agent)

    def _hello(self, agent: SimAgent) -> None:
        assert agent.sock is not None
        agent.sock.send_multipart(
            encode_message("hello", name=agent.name, hostname="sim", platform="bench", version="1")
        )

    def run(self, seconds: float, stats: StepStats) -> None:
        end = time.monotonic() + seconds
        while (now := time.monotonic()) < end:
            for sock, _ in self.poller.poll(POLL_MS):
                self._receive(self.by_sock[sock], stats)
            now = time.monotonic()
            for agent in self.agents:
                if agent.welcomed_at is not None and agent.next_beat <= now:
                    stats.late.append(now - agent.next_beat)
                    assert agent.sock is not None
                    agent.sock.send_multipart(encode_message("heartbeat"))
                    agent.next_beat += HEARTBEAT_S

    def _receive(self, agent: SimAgent, stats: StepStats) -> None:
        assert agent.sock is not None
        while True:
            try:
                msg = decode_message(agent.sock.recv_multipart(zmq.NOBLOCK), SERVER_TO_AGENT)
            except zmq.Again:
                return
            now = time.monotonic()
            if msg.type == "welcome":
                if agent.welcomed_at is None:
                    stats.welcomes.append(now - agent.hello_at)
                agent.welcomed_at = now
                # Spread over the second, as agents that started at different moments are.
                agent.next_beat = now + random.uniform(0, HEARTBEAT_S)
            elif self._dropped(msg.type, msg.get("code")) and agent.welcomed_at is not None:
                # Dropped while live: a false disconnect. It says hello again, as the real agent does.
                stats.false_disconnects += 1
                agent.lost += 1
                agent.welcomed_at = None
                agent.hello_at = now
                self._hello(agent)

    @staticmethod
    def _dropped(type_: str, code: object) -> bool:
        return (type_ == "error" and code == NO_SESSION) or type_ == "disconnect"

    def close(self) -> None:
        for agent in self.agents:
            if agent.sock is not None:
                agent.sock.close(0)
        self.ctx.term()


def probe(connection: Path, seconds: float) -> None:
    """The console's side, in its own process: status and first page of clients, timed, in a loop."""
    latencies = []
    with BridgeClient(connection=ConnectionFile.load(connection)) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for op, args in (("get_server_status", {}), ("get_clients", {"limit": 50})):
                t0 = time.perf_counter()
                reply = client.call(op, args, timeout=10)
                latencies.append((time.perf_counter() - t0) * 1000)
                if not reply["success"]:
                    raise RuntimeError(f"{op}: {reply['error_code']} {reply['message']}")
            time.sleep(0.05)
    sys.stdout.write(json.dumps(latencies))


def start_probe(connection: Path, seconds: float) -> subprocess.Popen[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--probe", str(connection), str(seconds)]
    return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)


def probe_result(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"the console probe failed ({proc.returncode})")
    values: list[float] = json.loads(out)
    return {
        "console_calls": len(values),
        "console_p50_ms": round(percentile(values, 50), 2),
        "console_p99_ms": round(percentile(values, 99), 2),
    }


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def step(fleet: Fleet, servers: Servers, server: psutil.Process, hold: float, burst: list[SimAgent]) -> dict[str, Any]:
    admin = servers.creds.admin_connection
    assert admin is not None
    stats = StepStats()
    console = start_probe(admin, hold)
    cpu0, t0 = cpu_seconds(server), time.monotonic()
    fleet.arrive(burst)
    fleet.run(hold, stats)
    cpu = (cpu_seconds(server) - cpu0) / (time.monotonic() - t0)
    return {
        "agents": len(fleet.agents),
        "welcomed": sum(a.welcomed_at is not None for a in fleet.agents),
        "false_disconnects": stats.false_disconnects,
        "sim_late_max_s": round(max(stats.late, default=0.0), 3),
        "welcome_p99_s": round(percentile(stats.welcomes, 99), 3) if stats.welcomes else None,
        "server_cpu": round(cpu, 2),
        **probe_result(console),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--hold", type=float, default=8.0, help="seconds each step is held after its burst")
    parser.add_argument("--probe", nargs=2, metavar=("CONNECTION", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        probe(Path(args.probe[0]), float(args.probe[1]))
        return 0
    install_cleanup()
    with tempfile.TemporaryDirectory(prefix="bench-agents-") as tmp:
        servers = Servers(Path(tmp))
        try:
            servers.fresh_server()
            assert servers.server is not None
            server = psutil.Process(servers.server.pid)
            keys = servers.data_dir / "server" / "keys"
            token = (keys / "enroll_token").read_text().strip()
            fleet = Fleet(servers.agents, load_public(keys / "server.key"), token)
            try:
                fresh = fleet.enroll(args.agents)
                baseline = step(fleet, servers, server, args.hold, [])
                steps = [
                    step(fleet, servers, server, args.hold, fresh[i : i + args.burst])
                    for i in range(0, args.agents, args.burst)
                ]
            finally:
                fleet.close()
        finally:
            servers.close()
    last = steps[-1] if steps else baseline
    emit(
        {
            "agents": args.agents,
            "burst": args.burst,
            "baseline": baseline,
            "steps": steps,
            "false_disconnects": sum(s["false_disconnects"] for s in steps),
            "console_p99_ms": max((s["console_p99_ms"] for s in steps), default=None),
            "console_p99_vs_baseline": round(last["console_p99_ms"] / max(baseline["console_p99_ms"], 0.01), 1),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
