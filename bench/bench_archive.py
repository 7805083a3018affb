"""download_archive through the bridge against GNU tar over the same files, on the same machine, in the same run.

    python bench/bench_archive.py [--small 2000] [--medium 100] [--large 4] [--runs 5] [--gzip-sample-mib 64]
                                  [--plan-files 100000]

The dataset is real files under a work folder (``--small`` of 4-64 KiB, ``--medium`` of 1-4 MiB,
``--large`` of 32 MiB; random bytes, as most backed-up content is already compressed) that are
also the real server's blobs (hard links, so both read the same page cache), recorded in a
fresh server database as one client's run. A bridge and the real server then run as processes
and ``download_archive`` of the whole folder is fetched ``--runs`` times by the client library
three ways, in turns: over the server's bulk lane (the request through the bridge, the bytes
straight from the server with the ticket it answered: protocol/lane.py), by its same-host door
(a Unix socket, no CURVE: ``lane_ipc``, what a client on the server's host as its user takes)
and by its CURVE door (``lane_tcp``, what a client elsewhere takes), and through the bridge
(client -> bridge -> server -> bridge -> client: chunks, acks); each member checked against its
recorded SHA-256 by the server, the file renamed into place after an fsync. They alternate with
``tar -cf`` of the same folder into the same file system, timed with and without an fsync of its
output. The archive is checked to unpack to the same files.

For where the time goes: the CPU seconds per GB of the server, the bridge and the client during
each way's runs and of tar during its runs, and download_file of the largest file (over the lane):
through the bridge every byte crosses two CURVE-encrypted hops, server -> bridge and bridge ->
client, so it is decrypted and encrypted again in the bridge; over the lane's CURVE door it
crosses one, over its same-host door none.

Also measured, to decide on compression: zlib (what gzip does) at levels 1 and 6 over a sample
of the dataset and over a text sample, in MB/s of one core and the ratio it reaches.

And how long the plan of an archive takes (made in the server's one loop before the first byte,
so it must stay well within the bridge's 3 s liveness limit): ``--plan-files`` files in one snapshot,
the most one archive takes (protocol/catalogue_restore.py MAX_ARCHIVE_FILES), through the core.

Prints JSON: medians, MB/s, the ratios to tar -cf (goal, issue 11: at least 0.5) and to tar then fsync.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.backends.api import RequestContext, StreamReply
from actors.server.core import BackupServer, ServerConfig
from bench.bench_snapshots import layout
from bench.bench_snapshots import make_dataset as make_catalog
from bench.common import (
    admin_connection,
    emit,
    free_port,
    install_cleanup,
    median,
    spawn,
    stack_credentials,
    stop,
    wait_ready,
)
from client.connection import BridgeClient
from client.download import download
from protocol.agent_messages import MAX_BATCH
from protocol.catalogue_restore import MAX_ARCHIVE_FILES

GOAL = 0.5  # of plain tar -cf's rate, the way a client library with a key pair takes on the server's host
WAYS = ("lane_ipc", "lane_tcp", "bridge")
DEFAULT_WAY = "lane_ipc"
MIB = 1 << 20
ROOT = "/bench/data"  # the folder as the client backed it up; on disk it is <work>/src/data


def sizes(small: int, medium: int, large: int, rng: random.Random) -> list[int]:
    return (
        [rng.randint(4 << 10, 64 << 10) for _ in range(small)]
        + [rng.randint(1 * MIB, 4 * MIB) for _ in range(medium)]
        + [32 * MIB] * large
    )


def make_files(src: Path, file_sizes: list[int]) -> list[tuple[str, int, int, str]]:
    """Write the files; returns (client path, size, mtime_ns, sha256) of each."""
    made = []
    for n, size in enumerate(file_sizes):
        rel = f"d{n // 100:03d}/f{n:05d}.bin"
        path = src / "data" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = os.urandom(size)
        path.write_bytes(data)
        made.append((f"{ROOT}/{rel}", size, path.stat().st_mtime_ns, hashlib.sha256(data).hexdigest()))
    return made


def record(core: BackupServer, src: Path, files: list[tuple[str, int, int, str]]) -> str:
    """The files as the server's catalog and blobs (hard links), and one run holding them; its snapshot id."""
    client_id, _ = core.store.register_client(
        "bench-key",
        {"name": "bench", "hostname": "bench", "ip_address": "10.0.0.1", "platform": "Linux", "agent_version": "b"},
    )
    for path, _size, _mtime, sha in files:
        blob = core.blobs.path_for(sha)
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.link(src / "data" / path.removeprefix(ROOT + "/"), blob)
    for start in range(0, len(files), MAX_BATCH):
        core.store.add_versions(client_id, files[start : start + MAX_BATCH])
    runs = core.agents.runs
    for batch, start in enumerate(range(0, len(files), MAX_BATCH), 1):
        chunk = files[start : start + MAX_BATCH]
        result: dict[str, list[Any]] = {"send": [], "need_hash": [], "skip": [], "refused": []}
        result["linked"] = list(range(len(chunk)))
        runs.manifest(client_id, batch, [list(f) for f in chunk], result)
    runs.finish(client_id, {"root": ROOT, "files": len(files), "skipped": 0, "failed": 0})
    return str(core.conn.execute("SELECT MAX(id) FROM snapshots").fetchone()[0])


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Cpu:
    """CPU seconds spent by named processes over the timed runs."""

    procs: dict[str, psutil.Process]
    spent: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        return {name: sum(p.cpu_times()[:2]) for name, p in self.procs.items()}

    def measure(self, run: Any) -> Any:
        before = self._now()
        result = run()
        for name, value in self._now().items():
            self.spent[name] = self.spent.get(name, 0.0) + value - before[name]
        return result

    def per_gb(self, nbytes: int) -> dict[str, float]:
        return {name: round(seconds / nbytes * 1e9, 2) for name, seconds in self.spent.items()}


def time_tar(src: Path, out: Path, sync: bool) -> tuple[float, float]:
    """(wall seconds, tar's CPU seconds)."""
    out.unlink(missing_ok=True)
    before = os.times()
    t0 = time.perf_counter()
    subprocess.run(["tar", "-cf", str(out), "-C", str(src), "data"], check=True)
    if sync:
        fsync_file(out)
    elapsed = time.perf_counter() - t0
    after = os.times()
    return elapsed, after.children_user + after.children_system - before.children_user - before.children_system


def time_download(
    client: BridgeClient, op: str, args: dict[str, Any], out: Path, way: str = DEFAULT_WAY
) -> tuple[float, dict[str, Any]]:
    out.unlink(missing_ok=True)
    client.use_lane = way != "bridge"
    client.lane_same_host = way == "lane_ipc"
    t0 = time.perf_counter()
    reply = download(client, op, {**args, "destination_path": str(out)}, timeout=60)
    elapsed = time.perf_counter() - t0
    if not reply["success"]:
        raise RuntimeError(f"{op} failed: {reply}")
    return elapsed, reply["data"]


def redeemed(server_log: Path) -> dict[str, int]:
    """Tickets the server's lane redeemed, by door."""
    lines = [line for line in server_log.read_text().splitlines() if "lane.ticket_redeemed" in line]
    return {door: sum(f"door={door}" in line for line in lines) for door in ("ipc", "tcp")}


def same_files(archive: Path, src: Path) -> int:
    """How many files the archive holds, each checked against its source."""
    count = 0
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile():
                got = tar.extractfile(member)
                assert got is not None and got.read() == (src / member.name).read_bytes(), member.name
                count += 1
    return count


def zlib_rate(data: bytes, level: int) -> dict[str, float]:
    t0 = time.perf_counter()
    packed = zlib.compress(data, level)
    elapsed = time.perf_counter() - t0
    return {"MBps": round(len(data) / elapsed / 1e6, 1), "ratio": round(len(packed) / len(data), 3)}


def compression(src: Path, sample_mib: int) -> dict[str, Any]:
    sample = bytearray()
    for path in sorted((src / "data").rglob("*.bin")):
        sample += path.read_bytes()
        if len(sample) >= sample_mib * MIB:
            break
    text = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_bytes()
    text = (text * (sample_mib * MIB // len(text) + 1))[: sample_mib * MIB]
    return {
        "sample_MiB": sample_mib,
        "dataset": {f"level_{lv}": zlib_rate(bytes(sample[: sample_mib * MIB]), lv) for lv in (1, 6)},
        "text": {f"level_{lv}": zlib_rate(text, lv) for lv in (1, 6)},
    }


def serve(work: Path, server_dir: Path) -> tuple[Any, list[Any]]:
    front, back, events = free_port(), free_port(), free_port()
    creds = stack_credentials(work / "stack", front, events, back, real=True)
    admin = admin_connection(creds)
    common = ["--log-level", "WARNING"]
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
        *common,
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
        "--scrub-interval",
        "0",
        "--log-level",
        "INFO",  # a line per ticket redeemed, naming its door: each way is checked to have taken its own
        log=work / "server.log",
    )
    wait_ready(admin, "server", timeout=120, proc=server, log=work / "server.log")
    return admin, [server, bridge]


def largest(server_dir: Path) -> str:
    core = BackupServer(ServerConfig(server_dir, log_file=False, scrub_interval_s=0))
    try:
        return str(core.conn.execute("SELECT id FROM files ORDER BY size DESC, id LIMIT 1").fetchone()[0])
    finally:
        core.close()


def plan_time(work: Path, files: int, repeat: int = 3) -> dict[str, float]:
    """Seconds to plan the archive of ``files`` files in one snapshot (their blobs sparse files of their size)."""
    core = BackupServer(ServerConfig(work / "plan-data", log_file=False, scrub_interval_s=0))
    try:
        make_catalog(core, layout(files, 0))
        for sha, size in core.conn.execute("SELECT sha256, size FROM file_versions"):
            blob = core.blobs.path_for(sha)
            blob.parent.mkdir(exist_ok=True)
            with open(blob, "wb") as f:
                f.truncate(size)
        snapshot_id = str(core.conn.execute("SELECT MAX(id) FROM snapshots").fetchone()[0])
        args = {"snapshot_id": snapshot_id, "paths": ["/data"], "destination_path": "plan.tar"}
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            stream = core.handle("download_archive", args, RequestContext("bench", None))
            times.append(time.perf_counter() - t0)
            assert isinstance(stream, StreamReply)
        return {"files": files, "median_s": round(median(times), 3), "max_s": round(max(times), 3)}
    finally:
        core.close()
        shutil.rmtree(work / "plan-data", ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=2000, help="files of 4-64 KiB")
    parser.add_argument("--medium", type=int, default=100, help="files of 1-4 MiB")
    parser.add_argument("--large", type=int, default=4, help="files of 32 MiB")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each (after one untimed warm-up)")
    parser.add_argument("--gzip-sample-mib", type=int, default=64)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--plan-files", type=int, default=MAX_ARCHIVE_FILES, help="0: skip the plan timing")
    ns = parser.parse_args()
    install_cleanup()
    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    src, server_dir = work / "src", work / "server-data"
    procs: list[Any] = []
    try:
        files = make_files(src, sizes(ns.small, ns.medium, ns.large, random.Random(ns.seed)))
        t0 = time.perf_counter()
        core = BackupServer(ServerConfig(server_dir, log_file=False, scrub_interval_s=0))
        try:
            snapshot_id = record(core, src, files)
        finally:
            core.close()
        record_s = time.perf_counter() - t0
        file_id = largest(server_dir)
        admin, procs = serve(work, server_dir)
        watched = {"server": psutil.Process(procs[0].pid), "bridge": psutil.Process(procs[1].pid)}
        cpu = {way: Cpu({**watched, "client": psutil.Process()}) for way in WAYS}
        ours: dict[str, list[float]] = {way: [] for way in WAYS}
        tar_plain, tar_synced, single = [], [], []
        tar_cpu = 0.0
        data: dict[str, Any] = {}
        archive_args = {"snapshot_id": snapshot_id, "paths": [ROOT]}
        with BridgeClient(connection=admin) as client:
            for n in range(ns.runs + 1):  # the first of each is a warm-up: caches, imports, the SQLite pages
                for way in WAYS:
                    out = work / f"{way}.tar"

                    def fetch(out: Path = out, way: str = way) -> tuple[float, dict[str, Any]]:
                        return time_download(client, "download_archive", archive_args, out, way)

                    elapsed, data = cpu[way].measure(fetch) if n else fetch()
                    if n:
                        ours[way].append(elapsed)
                plain, plain_cpu = time_tar(src, work / "tar.tar", sync=False)
                synced, _ = time_tar(src, work / "tar.tar", sync=True)
                one, one_data = time_download(client, "download_file", {"file_id": file_id}, work / "one.bin")
                if n:
                    tar_plain.append(plain)
                    tar_synced.append(synced)
                    single.append(one / one_data["size"])
                    tar_cpu += plain_cpu
        checked = same_files(work / f"{DEFAULT_WAY}.tar", src)
        doors = redeemed(work / "server.log")
        # lane_ipc's runs and every download_file on the same-host door, lane_tcp's on the CURVE door
        assert doors == {"ipc": 2 * (ns.runs + 1), "tcp": ns.runs + 1}, doors
        assert len({(work / f"{way}.tar").read_bytes() for way in WAYS}) == 1
        tar_size = (work / "tar.tar").stat().st_size
        packing = compression(src, ns.gzip_sample_mib)
        stop(*procs)
        procs = []
        planned = plan_time(work, ns.plan_files) if ns.plan_files else None
    finally:
        stop(*procs)
        shutil.rmtree(work, ignore_errors=True)
    size = data["size"]

    def rate(times: list[float], nbytes: int) -> dict[str, float]:
        return {"median_s": round(median(times), 3), "MBps": round(nbytes / median(times) / 1e6, 1)}

    ratio = {way: round(median(tar_plain) / median(ours[way]), 3) for way in WAYS}
    emit(
        {
            "benchmark": "archive",
            "files": len(files),
            "content_bytes": sum(f[1] for f in files),
            "archive_bytes": size,
            "tar_archive_bytes": tar_size,
            "files_checked_after_unpacking": checked,
            "record_dataset_s": round(record_s, 2),
            "runs": ns.runs,
            "download_archive": {way: rate(ours[way], size) for way in WAYS},
            "tar": rate(tar_plain, tar_size),
            "tar_then_fsync": rate(tar_synced, tar_size),
            "download_file_largest_MBps": round(1 / median(single) / 1e6, 1),
            "cpu_s_per_GB": {
                **{way: cpu[way].per_gb(size * ns.runs) for way in WAYS},
                "tar": round(tar_cpu / (tar_size * ns.runs) * 1e9, 2),
            },
            "ratio_to_tar": ratio,
            "ratio_to_tar_then_fsync": {way: round(median(tar_synced) / median(ours[way]), 3) for way in WAYS},
            "goal_ratio": GOAL,
            "goal_way": DEFAULT_WAY,
            "goal_met": ratio[DEFAULT_WAY] >= GOAL,
            "compression": packing,
            "plan": planned,
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
