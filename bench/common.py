"""Helpers for benchmarks: processes on free ports, percentiles, JSON output."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def spawn(*argv: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


def wait_ready(endpoint: str, backend: str, timeout: float = 120.0) -> None:
    sys.path.insert(0, str(ROOT))
    from client.connection import BridgeClient, BridgeUnreachable

    deadline = time.monotonic() + timeout
    with BridgeClient(endpoint, connect_timeout=0.5) as client:
        while time.monotonic() < deadline:
            try:
                data = client.call("bridge_status", timeout=1.0)["data"]
                if any(b["name"] == backend and b["alive"] for b in data["backends"]):
                    return
            except BridgeUnreachable:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{backend} did not register at {endpoint} within {timeout}s")
