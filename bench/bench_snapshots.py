"""browse_snapshot of a snapshot holding a million files, through the server core and at the bridge.

    python bench/bench_snapshots.py [--files 1000000] [--wide 10000] [--calls 50] [--no-bridge]

The dataset is made directly in a fresh server database: one client, ``--files`` files
(``/data/pNN/dNN/fNN.bin``, 100 per folder, and one wide folder ``/data/wide`` of
``--wide`` files) with one version each, then one run recorded through the server's own
run recorder (``Runs.manifest`` in batches of 500, as an agent's manifests arrive, and
``Runs.finish``), so the write path is timed too. Then each case is called ``--calls``
times through ``BackupServer.handle`` and, unless ``--no-bridge``, end to end through a
bridge and the real server as processes (client -> bridge -> server -> bridge -> client);
``test_connection`` of the same run is the baseline. Prints JSON with p50/p95 per case.
Target (issue 11): browse_snapshot p50 <= 100 ms at the bridge.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.backends.api import RequestContext
from actors.server.core import BackupServer, ServerConfig
from actors.server.db import iso, transaction
from bench.common import (
    admin_connection,
    emit,
    free_port,
    install_cleanup,
    percentile,
    spawn,
    stack_credentials,
    stop,
    wait_ready,
)
from client.connection import BridgeClient
from protocol.agent_messages import MAX_BATCH
from runtime.bootstrap import Bootstrap

CTX = RequestContext("bench", None)
PER_FOLDER = 100
TARGET_P50_MS = 100.0


def layout(files: int, wide: int) -> list[str]:
    """The dataset's paths: 100 per leaf folder, 100 leaf folders per top folder, plus the wide folder."""
    paths = [f"/data/wide/w{i:06d}.bin" for i in range(min(wide, files))]
    for n in range(files - len(paths)):
        leaf, index = divmod(n, PER_FOLDER)
        top, sub = divmod(leaf, 100)
        paths.append(f"/data/p{top:03d}/d{sub:02d}/f{index:02d}.bin")
    return paths


def make_dataset(core: BackupServer, paths: list[str]) -> dict[str, float]:
    """Files and versions in bulk SQL, then one run through the run recorder; returns the timings."""
    client_id, _ = core.store.register_client(
        "bench-key",
        {
            "name": "million",
            "hostname": "million",
            "ip_address": "10.0.0.1",
            "platform": "Linux",
            "agent_version": "bench",
        },
    )
    now = iso(datetime.now(UTC))
    t0 = time.perf_counter()
    with transaction(core.conn):
        core.conn.executemany(
            "INSERT INTO files (id, client_id, path, name, size, mtime_ns, sha256, status, backup_count, created_at, "
            "modified_at, last_backup) VALUES (?, ?, ?, ?, ?, 0, ?, 'uploaded', 1, ?, ?, ?)",
            (
                (f"f{i:08d}", client_id, p, p.rsplit("/", 1)[1], 1000 + i % 5000, f"{i:064x}", now, now, now)
                for i, p in enumerate(paths)
            ),
        )
        core.conn.executemany(
            "INSERT INTO file_versions (file_id, version, size, mtime_ns, sha256, backed_up_at) "
            "VALUES (?, 1, ?, 0, ?, ?)",
            ((f"f{i:08d}", 1000 + i % 5000, f"{i:064x}", now) for i in range(len(paths))),
        )
    catalog_s = time.perf_counter() - t0
    runs = core.agents.runs
    t0 = time.perf_counter()
    for batch, start in enumerate(range(0, len(paths), MAX_BATCH), 1):
        chunk = paths[start : start + MAX_BATCH]
        entries = [[p, 0, 0, None] for p in chunk]
        result: dict[str, list[Any]] = {"send": [], "need_hash": [], "skip": [], "refused": []}
        result["linked"] = list(range(len(chunk)))
        runs.manifest(client_id, batch, entries, result)
    record_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    runs.finish(client_id, {"root": "/data", "files": len(paths), "skipped": 0, "failed": 0})
    close_s = time.perf_counter() - t0
    return {"catalog_rows_s": catalog_s, "record_run_s": record_s, "close_run_s": close_s}


def leaf(paths: list[str]) -> str:
    """A leaf folder in the middle of the dataset."""
    return paths[len(paths) // 2].rsplit("/", 1)[0]


def cases(snapshot_id: str, client_id: str, paths: list[str], wide: int) -> dict[str, tuple[str, dict[str, Any]]]:
    browse = "browse_snapshot"
    out: dict[str, tuple[str, dict[str, Any]]] = {
        "browse_top": (browse, {"snapshot_id": snapshot_id, "path": "/"}),
        "browse_folder_of_folders": (browse, {"snapshot_id": snapshot_id, "path": "/data"}),
        "browse_folder_of_100_files": (browse, {"snapshot_id": snapshot_id, "path": leaf(paths)}),
        "list_snapshots": ("list_snapshots", {"client_id": client_id}),
        "get_file_versions": ("get_file_versions", {"client_id": client_id, "path": paths[len(paths) // 2]}),
        "test_connection": ("test_connection", {}),
        # Substring searches scan: timed with --find-calls, reported, no target.
        "find_files_in_snapshot": ("find_files", {"query": "f07.bin", "snapshot_id": snapshot_id, "limit": 100}),
        "find_files_everywhere": ("find_files", {"query": "w0042", "limit": 100}),
    }
    if wide:
        out["browse_wide_first_1000"] = (browse, {"snapshot_id": snapshot_id, "path": "/data/wide", "limit": 1000})
        out["browse_wide_last_page_100"] = (
            browse,
            {"snapshot_id": snapshot_id, "path": "/data/wide", "offset": max(0, wide - 100), "limit": 100},
        )
    return out


def tree_size(core: BackupServer) -> int | None:
    """Bytes the snapshot's tree takes (its two tables and their indexes); None without SQLite's dbstat."""
    try:
        row = core.conn.execute(
            "SELECT SUM(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_master "
            "WHERE tbl_name IN ('snapshot_dirs', 'snapshot_files'))"
        ).fetchone()
    except sqlite3.Error:
        return None
    return int(row[0] or 0)


def timed(
    call: Callable[[str, dict[str, Any]], Mapping[str, Any]], op: str, args: dict[str, Any], n: int
) -> dict[str, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        reply = call(op, args)
        times.append(time.perf_counter() - t0)
        if not reply["success"]:
            raise RuntimeError(f"{op} failed: {reply}")
    return {"p50_ms": round(percentile(times, 50) * 1e3, 3), "p95_ms": round(percentile(times, 95) * 1e3, 3)}


def calls_for(name: str, n: int, find_calls: int) -> int:
    return find_calls if name.startswith("find_files") else n


def through_core(
    core: BackupServer, todo: dict[str, tuple[str, dict[str, Any]]], n: int, find_calls: int
) -> dict[str, Any]:
    def call(op: str, args: dict[str, Any]) -> dict[str, Any]:
        reply = core.handle(op, args, CTX)
        assert isinstance(reply, dict)
        return reply

    return {name: timed(call, op, args, calls_for(name, n, find_calls)) for name, (op, args) in todo.items()}


@contextlib.contextmanager
def real_stack(work: Path, server_dir: Path) -> Iterator[Bootstrap]:
    """A bridge and the real server on ``server_dir`` as processes (credentials under ``work/stack``),
    once the server has registered; stopped afterwards."""
    front, back, events = free_port(), free_port(), free_port()
    creds = stack_credentials(work / "stack", front, events, back, real=True)
    bridge = spawn(
        "-m",
        "actors.bridge",
        "--data-dir",
        str(work / "stack"),
        "--frontend",
        f"tcp://127.0.0.1:{front}",
        "--backend",
        f"tcp://127.0.0.1:{back}",
        "--events",
        f"tcp://127.0.0.1:{events}",
        "--tap",
        "none",
        "--log-level",
        "WARNING",
        log=work / "bridge.log",
    )
    server = spawn(
        "-m",
        "actors.server",
        "--connection",
        str(creds.connections["server"]),
        "--agents",
        f"tcp://127.0.0.1:{free_port()}",
        "--data-dir",
        str(server_dir),
        "--log-level",
        "WARNING",
        log=work / "server.log",
    )
    try:
        wait_ready(admin_connection(creds), "server", timeout=300, proc=server, log=work / "server.log")
        yield creds
    finally:
        stop(server, bridge)


def through_bridge(
    work: Path, server_dir: Path, todo: dict[str, tuple[str, dict[str, Any]]], n: int, find_calls: int
) -> dict[str, Any]:
    with real_stack(work, server_dir) as creds, BridgeClient(connection=admin_connection(creds)) as client:
        return {
            name: timed(lambda o, a: client.call(o, a, timeout=30), op, args, calls_for(name, n, find_calls))
            for name, (op, args) in todo.items()
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--wide", type=int, default=10_000, help="files in the one wide folder (part of --files)")
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--find-calls", type=int, default=5, help="calls of each find_files case (they scan)")
    parser.add_argument("--no-bridge", action="store_true", help="time through the core only")
    ns = parser.parse_args()
    install_cleanup()
    work = Path(tempfile.mkdtemp(prefix="bench-snapshots-"))
    server_dir = work / "server-data"
    try:
        core = BackupServer(ServerConfig(server_dir, log_file=False, scrub_interval_s=0))
        try:
            paths = layout(ns.files, ns.wide)
            made = make_dataset(core, paths)
            client_id = core.conn.execute("SELECT id FROM clients").fetchone()[0]
            snapshot_id = str(core.conn.execute("SELECT MAX(id) FROM snapshots").fetchone()[0])
            folders = core.conn.execute("SELECT COUNT(*) FROM snapshot_dirs").fetchone()[0]
            todo = cases(snapshot_id, client_id, paths, ns.wide)
            core_results = through_core(core, todo, ns.calls, ns.find_calls)
            snapshot = core.handle("get_snapshot", {"snapshot_id": snapshot_id}, CTX)
            assert isinstance(snapshot, dict) and snapshot["data"]["files_total"] == ns.files, snapshot
            tree_bytes = tree_size(core)
        finally:
            core.close()
        db_bytes = (server_dir / "server" / "backup.db").stat().st_size
        bridge_results = {} if ns.no_bridge else through_bridge(work, server_dir, todo, ns.calls, ns.find_calls)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    browses = [k for k in todo if k.startswith("browse")]
    at_bridge = bridge_results or core_results
    emit(
        {
            "benchmark": "snapshots",
            "files": ns.files,
            "folders": folders,
            "wide_folder_files": ns.wide,
            "calls_per_case": ns.calls,
            "database_bytes": db_bytes,
            "snapshot_tree_bytes": tree_bytes,
            "snapshot_tree_bytes_per_file": round(tree_bytes / ns.files, 1) if tree_bytes else None,
            "dataset_s": {k: round(v, 2) for k, v in made.items()},
            "record_run_files_per_s": round(ns.files / made["record_run_s"]),
            "core": core_results,
            "bridge": bridge_results,
            "median_browse_p50_ms": {
                "core": round(sorted(core_results[k]["p50_ms"] for k in browses)[len(browses) // 2], 3),
                "bridge": round(sorted(at_bridge[k]["p50_ms"] for k in browses)[len(browses) // 2], 3)
                if bridge_results
                else None,
            },
            "target_p50_ms": TARGET_P50_MS,
            "targets_met": {k: at_bridge[k]["p50_ms"] <= TARGET_P50_MS for k in browses},
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
