"""Carrying out a restore job in either backend, for the contract suite.

The mock's own simulated agent does it over ticks (``advance``). For the real server the
test plays alpha's agent over its session, message by message, the way actors/agent's
JobRun does (the real agent is run by tests/test_restore_job_e2e.py): take the offer, ask
for batches, fetch each file's version, hash it, and report what became of it. What is on
the client's disk is the client's own files, the rule the mock simulates too, so both
backends can be held to the same results.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from actors.backends.dbview import path_key
from actors.mock.core import MockCore
from actors.mock.restore_jobs import target_path
from actors.server.core import BackupServer
from protocol.agent_messages import encode_message
from protocol.codec import decode
from tests.contract.harness import Backend

ROUTE, KEY = b"route-alpha", "contract-key-alpha"  # the harness's session of alpha
COUNTS = ("files_done", "bytes_done", "files_restored", "bytes_restored", "files_skipped", "files_failed")


def send(core: BackupServer, type_: str, route: bytes = ROUTE, **fields: Any) -> None:
    core.agents.on_message(route, encode_message(type_, **fields), KEY, "10.0.0.1")


def replies(core: BackupServer) -> list[tuple[dict[str, Any], bytes]]:
    return [(decode(bytes(frames[0])), bytes(frames[1])) for _route, frames in core.agents.drain_outbox()]


def on_disk(backend: Backend) -> set[str]:
    """Path keys of what the client's disk holds: its files as the backend knows them."""
    files = backend.call("get_client_files", client_id=backend.clients["alpha"])["items"]
    return {path_key(f["path"]) for f in files}


class RealAgent:
    """alpha's agent, by hand: offers it saw, and what it wrote where (members it restored)."""

    def __init__(self, backend: Backend) -> None:
        assert isinstance(backend.core, BackupServer)
        self.backend = backend
        self.core = backend.core
        self.offers: dict[str, dict[str, Any]] = {}
        self.written: dict[str, bytes] = {}  # target path -> bytes
        self.batches = 0

    def take(self) -> None:
        for header, _ in replies(self.core):
            if header["t"] == "restore_job":
                self.offers[header["job"]] = header

    def carry_out(
        self,
        job_id: str,
        stop_after_batches: int | None = None,
        before_file: Callable[[int], None] | None = None,
    ) -> None:
        """Do the job from its offer's cursor; ``stop_after_batches``: go away before checkpointing that many;
        ``before_file(n)`` runs before the file after the n-th (a console's request meanwhile). A job_cancel
        stops the job between two files, as the agent does."""
        self.take()
        offer = self.offers.pop(job_id)
        disk = on_disk(self.backend) | set(self.written)
        counts, cursor = dict(offer["counts"]), offer["cursor"]
        handled = 0
        while True:
            send(self.core, "job_next", job=job_id, cursor=cursor)
            batch = next(h for h, _ in replies(self.core) if h["t"] == "job_items")
            problems: list[list[str]] = []
            for path, member, file_id, version, size, sha, _mtime, _mode in batch["items"]:
                if before_file is not None:
                    before_file(handled)
                if any(h["t"] == "job_cancel" and h["job"] == job_id for h, _ in replies(self.core)):
                    send(self.core, "job_stopped", job=job_id, counts=counts, problems=problems)
                    return
                handled += 1
                target = path_key(target_path(offer["destination"], member))
                counts["files_done"] += 1
                counts["bytes_done"] += size
                if target in disk and offer["overwrite"] == "skip":
                    counts["files_skipped"] += 1
                    problems.append([path, "skipped", "EXISTS", "already there"])
                    continue
                data = self._fetch(file_id, version)
                if data is None or hashlib.sha256(data).hexdigest() != sha or len(data) != size:
                    counts["files_failed"] += 1
                    code = "CONTENT_MISSING" if data is None else "HASH_MISMATCH"
                    problems.append([path, "failed", code, "not what the version holds"])
                    continue
                counts["files_restored"] += 1
                counts["bytes_restored"] += size
                self.written[target] = data
                disk.add(target)
                send(
                    self.core,
                    "job_progress",
                    job=job_id,
                    files_done=counts["files_done"],
                    bytes_done=counts["bytes_done"],
                )
            self.batches += 1
            if stop_after_batches is not None and self.batches >= stop_after_batches:
                return
            cursor = batch["cursor"]
            end = batch["end"]
            send(self.core, "job_checkpoint", job=job_id, cursor=cursor, counts=counts, problems=problems, end=end)
            if end:
                return

    def _fetch(self, file_id: str, version: int) -> bytes | None:
        send(self.core, "fetch", r="f1", file_id=file_id, version=version)
        data = b""
        while True:
            out = replies(self.core)
            if any(h["t"] == "error" and h.get("ref") == "f1" for h, _ in out):
                return None
            for header, body in out:
                if header["t"] == "data":
                    data += body
                    send(self.core, "fetch_ack", r="f1", i=header["i"])
            if any(h["t"] == "fetch_end" for h, _ in out):
                return data


def advance_mock(backend: Backend, seconds: float = 1.0, times: int = 1) -> None:
    assert isinstance(backend.core, MockCore)
    world = backend.core.world
    for _ in range(times):
        world.clock.advance(seconds)
        world.restore_jobs.advance(world, seconds)


def carry_out(backend: Backend, job_id: str) -> dict[str, Any]:
    """The job done by alpha's agent (real) or the mock's simulated one; the job as it ended."""
    if backend.mode == "real":
        RealAgent(backend).carry_out(job_id)
    else:
        for _ in range(100):
            advance_mock(backend)
            if backend.call("get_restore_job", job_id=job_id)["status"] not in ("queued", "running"):
                break
    return backend.call("get_restore_job", job_id=job_id)


def outcome(job: dict[str, Any]) -> tuple[Any, ...]:
    """What a job ended as, ids and times aside: comparable across backends."""
    problems = [(p["path"], p["outcome"], p["code"]) for p in job["problems"]]
    return job["status"], job["files_total"], job["bytes_total"], *(job[k] for k in COUNTS), problems
