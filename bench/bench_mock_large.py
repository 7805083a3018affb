"""get_clients and get_files through bridge -> mock with 10,000 clients and 100,000 files.

    python bench/bench_mock_large.py [--clients 10000] [--files 100000] [--calls 50]

Each call is timed end to end (client -> bridge -> mock -> bridge -> client). The
``test_connection`` round trip of the same run is the baseline, so the ratios show what
the data work itself costs. Prints JSON.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
from client.connection import BridgeClient


def timed(client: BridgeClient, op: str, args: dict[str, Any], calls: int) -> dict[str, float]:
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        reply = client.call(op, args, timeout=30)
        times.append(time.perf_counter() - t0)
        if not reply["success"]:
            raise RuntimeError(f"{op} failed: {reply}")
    return {"p50_ms": percentile(times, 50) * 1e3, "p95_ms": percentile(times, 95) * 1e3}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=50)
    ns = parser.parse_args()
    install_cleanup()
    front, events, back = free_port(), free_port(), free_port()
    data_dir = tempfile.mkdtemp(prefix="bench-large-")
    creds = stack_credentials(Path(data_dir), front, events, back)
    admin = admin_connection(creds)
    bridge = spawn(
        "-m",
        "actors.bridge",
        "--data-dir",
        data_dir,
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
    t0 = time.perf_counter()
    mock = spawn(
        "-m",
        "actors.mock",
        "--connection",
        str(creds.connections["mock"]),
        "--data-dir",
        data_dir,
        "--tick",
        "3600",
        "--clients",
        str(ns.clients),
        "--files",
        str(ns.files),
        "--log-level",
        "WARNING",
    )
    rng = random.Random(1)
    try:
        wait_ready(admin, "mock", timeout=300, proc=mock)
        startup_s = time.perf_counter() - t0
        with BridgeClient(connection=admin) as client:
            middle = client.call("get_clients", {"limit": 1, "offset": ns.clients // 2}, timeout=30)["data"]
            some_client = middle["items"][0]["id"]
            cases: dict[str, tuple[str, dict[str, Any]]] = {
                "get_clients_default_page_1000": ("get_clients", {}),
                "get_clients_page_100": ("get_clients", {"offset": 5000, "limit": 100}),
                "get_clients_search": ("get_clients", {"search": "srv", "limit": 100}),
                "get_files_page_100": ("get_files", {"offset": rng.randrange(ns.files - 100), "limit": 100}),
                "get_files_search_filter": (
                    "get_files",
                    {"limit": 100, "filters": {"search": "report", "status": "verified"}},
                ),
                "get_files_sorted_by_size": ("get_files", {"limit": 100, "filters": {"sort": "-size"}}),
                "get_files_one_client": ("get_files", {"client_id": some_client, "limit": 100}),
            }
            results = {name: timed(client, op, args, ns.calls) for name, (op, args) in cases.items()}
            results["test_connection"] = timed(client, "test_connection", {}, ns.calls)
    finally:
        stop(mock, bridge)
    base = results["test_connection"]["p50_ms"]
    emit(
        {
            "benchmark": "mock_large",
            "clients": ns.clients,
            "files": ns.files,
            "calls_per_case": ns.calls,
            "first_start_with_generation_s": round(startup_s, 2),
            "results": results,
            "p50_over_test_connection": {k: v["p50_ms"] / base for k, v in results.items()},
            "target_p50_ms": 50,
            "targets_met": {k: v["p50_ms"] <= 50 for k, v in results.items()},
            "median_p50_ms": median([v["p50_ms"] for v in results.values()]),
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
