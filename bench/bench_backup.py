"""Agent -> server backup over loopback with CURVE, against a raw baseline on the same data, same run.

    python bench/bench_backup.py [--big-mb 200] [--small 10000] [--rounds 3]

Measured, each ``--rounds`` times, interleaved, medians reported as JSON:
* one big file and many small files backed up by ``python -m actors.agent`` to a fresh
  ``python -m actors.server`` (a bridge runs too: the server is a real backend). The
  time is the agent's own (``agent.backup_done`` ``seconds``: scan, manifest, transfer,
  commit), so process start-up and enrollment are not counted; the wall time of the
  whole agent process is reported beside it.
* the baseline on the same files: read, SHA-256, write a copy, with the same durability
  as the server (fsync each file, rename, fsync the folder) and without it.
* verify_file through the bridge on the big file against a raw read + SHA-256 of its blob.
* for context, the ceiling of the transport itself: raw pyzmq DEALER -> ROUTER with CURVE
  between two processes, 1 MiB messages from memory, window 16, with and without SHA-256
  on both ends (no files, no protocol).
Data sits in the page cache for every contender; ``os.sync()`` runs before each one so
none pays for the previous one's dirty pages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    ROOT,
    admin_connection,
    emit,
    free_port,
    install_cleanup,
    log_tail,
    median,
    spawn,
    stack_credentials,
    stop,
    wait_exit,
    wait_ready,
)
from client.connection import BridgeClient
from runtime.fsutil import fsync_dir

BLOCK = 1024 * 1024
SINK_KEYS_ENV = "BENCH_SINK_CURVE_KEYS"
DONE = b"done"
CONNECT_TIMEOUT_S = 30.0  # a fresh Python process binding a socket, then a CURVE handshake
ACK_TIMEOUT_MS = 30_000  # one 1 MiB message over loopback takes milliseconds; 30 s means stuck
SINK_IDLE_MS = 30_000
SINK_EXIT_S = 30.0
AGENT_TIMEOUT_S = 900.0  # a backup run of the default data takes well under a minute


def make_data(root: Path, big_mb: int, small: int) -> tuple[Path, Path, int, int]:
    big_dir = root / "big"
    big_dir.mkdir(parents=True)
    with open(big_dir / "big.bin", "wb") as f:
        for _ in range(big_mb):
            f.write(os.urandom(BLOCK))
    small_dir = root / "small"
    total = 0
    for i in range(small):
        path = small_dir / f"d{i // 500:03d}" / f"file-{i:05d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(512 + (i * 7919) % 7680)  # 0.5 .. 8 KiB
        path.write_bytes(data)
        total += len(data)
    return big_dir, small_dir, big_mb * BLOCK, total


def baseline(source: Path, dest: Path, durable: bool) -> float:
    """Plain copy + SHA-256 of every file under ``source``; returns seconds."""
    dest.mkdir(parents=True)
    buf = bytearray(BLOCK)
    view = memoryview(buf)
    t0 = time.perf_counter()
    for directory, _, files in os.walk(source):
        for name in sorted(files):
            src = os.path.join(directory, name)
            h = hashlib.sha256()
            tmp = dest / (name + ".part")
            with open(src, "rb", buffering=0) as fin, open(tmp, "wb", buffering=0) as fout:
                while n := fin.readinto(buf):
                    h.update(view[:n])
                    fout.write(view[:n])
                if durable:
                    os.fsync(fout.fileno())
            final = dest / h.hexdigest()
            os.replace(tmp, final)
            if durable:
                fsync_dir(dest)
    return time.perf_counter() - t0


def serve_sink(port: int, total: int, hashed: bool) -> None:
    """The receiving end of ``raw_curve`` (its own process): ack each message, hash if asked."""
    public, secret = os.environ[SINK_KEYS_ENV].encode().split()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.curve_server = True
    sock.curve_publickey, sock.curve_secretkey = public, secret
    sock.setsockopt(zmq.RCVTIMEO, SINK_IDLE_MS)  # a sender that vanished must not leave the sink waiting for ever
    sock.bind(f"tcp://127.0.0.1:{port}")
    h = hashlib.sha256()
    got = 0
    while got < total:
        route, frame = sock.recv_multipart(copy=False)
        if hashed:
            h.update(frame.buffer)
        got += len(frame.buffer)
        sock.send_multipart([route.bytes, b"ack"])
    # Exiting right after the last ack could drop it unsent (it once hung the sender for
    # 13 minutes). The sender says DONE only once it holds every ack, so after DONE nothing
    # of ours is in flight; linger covers the socket's close all the same.
    _, last = sock.recv_multipart()
    if last != DONE:
        raise RuntimeError(f"raw sink: expected {DONE!r} after {total} bytes, got {last[:20]!r}")
    sock.close(linger=SINK_IDLE_MS)
    ctx.term()


def raw_curve(total: int, hashed: bool, log: Path, window: int = 16) -> float:
    """Seconds to push ``total`` bytes through a CURVE DEALER -> ROUTER pair in another process."""
    server_public, server_secret = zmq.curve_keypair()
    client_public, client_secret = zmq.curve_keypair()
    port = free_port()
    sink = spawn(
        "bench/bench_backup.py",
        "--serve-sink",
        str(port),
        str(total),
        "1" if hashed else "0",
        env={SINK_KEYS_ENV: f"{server_public.decode()} {server_secret.decode()}"},  # not on argv: ps shows that
        log=log,
    )
    sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
    try:
        sock.curve_serverkey = server_public
        sock.curve_publickey, sock.curve_secretkey = client_public, client_secret
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.RCVTIMEO, ACK_TIMEOUT_MS)
        sock.setsockopt(zmq.SNDTIMEO, ACK_TIMEOUT_MS)
        sock.connect(f"tcp://127.0.0.1:{port}")
        blocks = [os.urandom(BLOCK) for _ in range(4)]
        n = total // BLOCK
        _await_sink(sock, sink, port, log)
        h = hashlib.sha256()
        t0 = time.perf_counter()
        sent = acked = 0
        try:
            while acked < n:
                while sent < n and sent - acked < window:
                    if hashed:
                        h.update(blocks[sent % 4])
                    sock.send(blocks[sent % 4], copy=False)
                    sent += 1
                sock.recv()
                acked += 1
        except zmq.Again:
            raise TimeoutError(
                f"raw sink: stalled for {ACK_TIMEOUT_MS // 1000}s with {acked} of {n} messages acked"
            ) from None
        took = time.perf_counter() - t0
        sock.send(DONE)
        code = wait_exit(sink, SINK_EXIT_S, "raw sink")
        if code != 0:
            raise RuntimeError(f"raw sink exited with code {code}: {log_tail(log)}")
        return took
    finally:
        sock.close(0)
        stop(sink)


def _await_sink(sock: zmq.Socket[bytes], sink: subprocess.Popen[bytes], port: int, log: Path) -> None:
    """Until the CURVE connection to the sink is up (IMMEDIATE: POLLOUT means connected)."""
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    while not sock.poll(100, zmq.POLLOUT):
        if sink.poll() is not None:
            raise RuntimeError(f"raw sink exited with code {sink.returncode} before accepting: {log_tail(log)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"raw sink: no CURVE connection to port {port} within {CONNECT_TIMEOUT_S:.0f}s")


class Servers:
    """A bridge for the whole run and a fresh backup server per measurement."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.frontend, self.backend, self.events = free_port(), free_port(), free_port()
        tap = free_port()
        # The bridge's stack (its keys, the server's connection file) outlives each fresh server.
        self.creds = stack_credentials(work / "stack", self.frontend, self.events, self.backend, tap, real=True)
        self.admin = admin_connection(self.creds)
        self.bridge = spawn(
            "-m",
            "actors.bridge",
            "--data-dir",
            str(work / "stack"),
            "--frontend",
            f"tcp://127.0.0.1:{self.frontend}",
            "--backend",
            f"tcp://127.0.0.1:{self.backend}",
            "--events",
            f"tcp://127.0.0.1:{self.events}",
            "--tap",
            f"tcp://127.0.0.1:{tap}",
            log=work / "bridge.log",
        )
        self.server: subprocess.Popen[bytes] | None = None
        self.data_dir = work / "server-data"
        self.agents = ""

    def fresh_server(self) -> None:
        self.stop_server()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.agents = f"tcp://127.0.0.1:{free_port()}"
        self.server = spawn(
            "-m",
            "actors.server",
            "--connection",
            str(self.creds.connections["server"]),
            "--agents",
            self.agents,
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "WARNING",
            log=self.work / "server.log",
        )
        wait_ready(self.admin, "server", proc=self.server, log=self.work / "server.log")
        pid = self.server.pid
        with BridgeClient(connection=self.admin) as c:  # the previous server of the same name may still be listed
            deadline = time.monotonic() + 30
            while not any(
                b["name"] == "server" and b["alive"] and b["pid"] == pid
                for b in c.call("bridge_status")["data"]["backends"]
            ):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the new server (pid {pid}) did not replace the previous one within 30s")
                time.sleep(0.05)

    def stop_server(self) -> None:
        if self.server is not None:
            stop(self.server)
            self.server = None

    def backup(self, folder: Path, config: Path) -> dict[str, Any]:
        token = (self.data_dir / "server" / "keys" / "enroll_token").read_text().strip()
        argv = [
            sys.executable,
            "-m",
            "actors.agent",
            "backup",
            str(folder),
            "--server",
            self.agents,
            "--data-dir",
            str(self.data_dir),
            "--config-dir",
            str(config),
            f"--enroll-token={token}",
            "--log-json",
            "--no-progress",
        ]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=AGENT_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
            raise TimeoutError(
                f"the agent's backup of {folder} did not finish within {AGENT_TIMEOUT_S:.0f}s: {err[-2000:]}"
            ) from None
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"agent failed ({proc.returncode}): {proc.stderr[-2000:]}")
        done = next(
            json.loads(line)
            for line in proc.stderr.splitlines()
            if line.startswith("{") and '"agent.backup_done"' in line
        )
        return {
            "seconds": done["seconds"],
            "wall_s": wall,
            "sent": done["sent"],
            "bytes_sent": done["bytes_sent"],
            "unchanged": done["unchanged"],
        }

    def verify_big(self) -> tuple[float, float]:
        with BridgeClient(connection=self.admin) as c:
            file = c.call("get_files", {"filters": {"search": "big.bin"}})["data"]["items"][0]
            t0 = time.perf_counter()
            reply = c.call("verify_file", {"file_id": file["id"]}, timeout=300)
            took = time.perf_counter() - t0
            assert reply["success"] and reply["data"]["ok"], reply
        blob = self.data_dir / "server" / "blobs" / file["sha256"][:2] / file["sha256"][2:]
        t0 = time.perf_counter()
        with open(blob, "rb", buffering=0) as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        raw = time.perf_counter() - t0
        assert digest == file["sha256"]
        return took, raw

    def close(self) -> None:
        self.stop_server()
        stop(self.bridge)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mb", type=int, default=200)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--serve-sink", nargs=3, metavar=("PORT", "BYTES", "HASHED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink:
        port, total, hashed = args.serve_sink
        serve_sink(int(port), int(total), hashed == "1")
        return
    install_cleanup()
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    results: dict[str, list[float]] = {
        k: []
        for k in (
            "big_agent_s",
            "big_wall_s",
            "big_base_durable_s",
            "big_base_plain_s",
            "small_agent_s",
            "small_wall_s",
            "small_base_durable_s",
            "small_base_plain_s",
            "small_incremental_s",
            "verify_s",
            "verify_raw_s",
            "raw_curve_s",
            "raw_curve_sha_s",
        )
    }
    servers = Servers(work)
    try:
        big_dir, small_dir, big_bytes, small_bytes = make_data(work / "data", args.big_mb, args.small)
        for round_ in range(args.rounds):
            results["raw_curve_s"].append(raw_curve(big_bytes, hashed=False, log=work / "raw-sink.log"))
            results["raw_curve_sha_s"].append(raw_curve(big_bytes, hashed=True, log=work / "raw-sink.log"))
            for name, folder in (("big", big_dir), ("small", small_dir)):
                for durable in (True, False):
                    out = work / f"copy-{name}-{durable}-{round_}"
                    os.sync()
                    results[f"{name}_base_{'durable' if durable else 'plain'}_s"].append(baseline(folder, out, durable))
                    shutil.rmtree(out)
                servers.fresh_server()
                os.sync()
                run = servers.backup(folder, work / f"agent-{name}-{round_}")
                assert run["sent"] == (1 if name == "big" else args.small), run
                results[f"{name}_agent_s"].append(run["seconds"])
                results[f"{name}_wall_s"].append(run["wall_s"])
                if name == "big":
                    took, raw = servers.verify_big()
                    results["verify_s"].append(took)
                    results["verify_raw_s"].append(raw)
                else:
                    again = servers.backup(folder, work / f"agent-{name}-{round_}")
                    assert again["bytes_sent"] == 0, again
                    results["small_incremental_s"].append(again["seconds"])
    finally:
        servers.close()
        shutil.rmtree(work, ignore_errors=True)
    m = {k: median(v) for k, v in results.items()}
    mb = 1e6
    emit(
        {
            "benchmark": "agent -> server backup over loopback with CURVE vs copy + SHA-256 on the same data",
            "rounds": args.rounds,
            "cpus": os.cpu_count(),
            "big_file": {
                "bytes": big_bytes,
                "backup_MBps": round(big_bytes / m["big_agent_s"] / mb, 1),
                "backup_s": round(m["big_agent_s"], 3),
                "agent_process_wall_s": round(m["big_wall_s"], 3),
                "baseline_copy_sha256_fsync_MBps": round(big_bytes / m["big_base_durable_s"] / mb, 1),
                "baseline_copy_sha256_MBps": round(big_bytes / m["big_base_plain_s"] / mb, 1),
                "ratio_vs_fsync_baseline": round(m["big_base_durable_s"] / m["big_agent_s"], 3),
                "ratio_vs_plain_baseline": round(m["big_base_plain_s"] / m["big_agent_s"], 3),
                "target": ">= 0.5 of the baseline",
                "each_round_backup_MBps": [round(big_bytes / t / mb, 1) for t in results["big_agent_s"]],
                "each_round_baseline_fsync_MBps": [round(big_bytes / t / mb, 1) for t in results["big_base_durable_s"]],
                "each_round_baseline_plain_MBps": [round(big_bytes / t / mb, 1) for t in results["big_base_plain_s"]],
            },
            "small_files": {
                "files": args.small,
                "bytes": small_bytes,
                "backup_files_per_s": round(args.small / m["small_agent_s"], 1),
                "backup_s": round(m["small_agent_s"], 3),
                "agent_process_wall_s": round(m["small_wall_s"], 3),
                "baseline_fsync_files_per_s": round(args.small / m["small_base_durable_s"], 1),
                "baseline_plain_files_per_s": round(args.small / m["small_base_plain_s"], 1),
                "ratio_vs_fsync_baseline": round(m["small_base_durable_s"] / m["small_agent_s"], 3),
                "incremental_rerun_s": round(m["small_incremental_s"], 3),
                "incremental_rerun_files_per_s": round(args.small / m["small_incremental_s"], 1),
            },
            "transport_ceiling": {
                "raw_pyzmq_curve_MBps": round(big_bytes / m["raw_curve_s"] / mb, 1),
                "raw_pyzmq_curve_sha256_both_ends_MBps": round(big_bytes / m["raw_curve_sha_s"] / mb, 1),
            },
            "verify_file": {
                "bytes": big_bytes,
                "through_bridge_MBps": round(big_bytes / m["verify_s"] / mb, 1),
                "raw_sha256_MBps": round(big_bytes / m["verify_raw_s"] / mb, 1),
                "ratio": round(m["verify_raw_s"] / m["verify_s"], 3),
            },
        }
    )


if __name__ == "__main__":
    main()
