"""The mock's restore jobs: restore_to_agent queued, then carried out over ticks by a simulated agent.

The simulated agent works like the real one, at ``RATE`` bytes a second: one job at a time
per client, only while the client is connected and the server running (a job waits queued
otherwise, and goes back to queued when its client goes mid-job, keeping what it did).
A cancelled job that is running stops at the next tick, between two files (the file being
written is dropped, as the real agent drops its temporary); a job queued for
QUEUED_EXPIRY_S ends expired.
What it finds on the client's disk is the client's own files: a file restored where one of
them is (its original place, say) meets an existing file, so the overwrite policy decides;
content that no longer hashes to its version's SHA-256 (the ticker corrupts some) fails as
HASH_MISMATCH, as the real agent's check after writing would. Pure of the world's RNG:
a journal replay repeats it exactly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from actors.backends.dbview import path_key
from actors.backends.filters import page
from actors.backends.restore_plan import (
    RestoreJob,
    already_ended,
    checked_destination,
    contains,
    expiry_reason,
    member_base,
    member_of,
    normalized,
    not_in_snapshot,
    problem,
    still_running,
    summary,
)
from actors.backends.snapshot_paths import split
from actors.mock.content import content_sha256
from protocol.catalogue_restore_jobs import ENDED_STATUSES, EXISTS, HASH_MISMATCH, QUEUED_EXPIRY_S
from protocol.errors import ErrorCode, ProtocolError
from protocol.events import RESTORE_JOB

if TYPE_CHECKING:
    from actors.mock.history import Run
    from actors.mock.state import MockWorld

RATE = 8 * 1024 * 1024  # bytes a second the simulated agent writes
STATE_FORMAT = 1
_DRIVE = re.compile(r"[A-Za-z]:")


@dataclass
class Item:
    path: str  # in the snapshot
    member: str  # below the destination, /-separated
    file_id: str
    version: int


@dataclass
class MockJob:
    job: RestoreJob
    items: list[Item]
    queued_at: datetime  # when it last began to wait for its agent (created, or queued again): it expires from there
    position: int = 0  # items handled
    partial: int = 0  # bytes written of the item at ``position``
    kept: dict[str, None] = field(default_factory=dict)  # path keys restored by this job (it made them exist)


def target_path(destination: str, member: str) -> str:
    """Where a member lands on the client, in the destination's own separators."""
    sep = "\\" if _DRIVE.match(destination) and "/" not in destination[2:] else "/"
    base = destination if destination.endswith(("/", "\\")) else destination + sep
    return base + member.replace("/", sep)


class MockRestoreJobs:
    def __init__(self) -> None:
        self.jobs: dict[str, MockJob] = {}  # oldest first
        self.next_id = 1

    # -- the console's operations --

    def create(self, world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
        run = world.history.runs.get(args["snapshot_id"])
        if run is None:
            raise _not_found("snapshot", args["snapshot_id"])
        if run.status == "running":
            raise still_running(run.id)
        destination = checked_destination(args["destination"])
        items = _items(world, run, normalized(args["paths"]))
        sizes = [world.history.version(world.files[i.file_id], i.version) for i in items]
        job = RestoreJob(
            id=str(self.next_id),
            client_id=run.client_id,
            snapshot_id=run.id,
            paths=list(args["paths"]),
            destination=destination,
            overwrite=args["overwrite"],
            created_at=world.now(),
            files_total=len(items),
            bytes_total=sum(v.size for v in sizes if v is not None),
        )
        self.next_id += 1
        self.jobs[job.id] = MockJob(job, items, job.created_at)
        client = world.clients[run.client_id]
        world.record(
            "restore_queued",
            "INFO",
            f"Restore {job.id} of {len(items)} files from snapshot {run.id} to {destination} on {client.name} queued",
            client_id=client.id,
            logger="backup.restore",
        )
        _event(world, job, "queued")
        return job.to_dict()

    def get(self, world: MockWorld, job_id: str) -> dict[str, Any]:
        return self._find(world, job_id).job.to_dict()

    def cancel(self, world: MockWorld, job_id: str) -> dict[str, Any]:
        """A queued job ends now; a running one stops at the simulated agent's next tick."""
        mock = self._find(world, job_id)
        job = mock.job
        if job.status in ENDED_STATUSES:
            raise already_ended(job)
        if job.status == "queued":
            self._stop(world, mock, "cancelled")
        elif job.status == "running":
            job.status = "cancelling"
            _event(world, job, "cancelling")
        return job.to_dict()

    def _find(self, world: MockWorld, job_id: str) -> MockJob:
        found = self.jobs.get(job_id)
        if found is None or found.job.client_id not in world.clients:
            raise _not_found("restore job", job_id)
        return found

    def list(self, world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
        client_id, status = args.get("client_id"), args.get("status")
        if client_id is not None and client_id not in world.clients:
            raise _not_found("client", client_id)
        jobs = [
            m.job
            for m in reversed(self.jobs.values())
            if m.job.client_id in world.clients
            and (client_id is None or m.job.client_id == client_id)
            and (status is None or m.job.status == status)
        ]
        offset, limit = args["offset"], args["limit"]
        return page([j.to_dict() for j in jobs[offset : offset + limit]], len(jobs), offset, limit)

    # -- in the state document --

    def encode(self) -> dict[str, Any]:
        rows = []
        for m in self.jobs.values():
            j = m.job
            rows.append(
                [
                    [j.id, j.client_id, j.snapshot_id, j.paths, j.destination, j.overwrite, j.created_at],
                    [j.files_total, j.bytes_total, j.status, j.started_at, j.ended_at, j.counts, j.problems, j.error],
                    [[i.path, i.member, i.file_id, i.version] for i in m.items],
                    [m.position, m.partial, list(m.kept), m.queued_at],
                ]
            )
        return {"format": STATE_FORMAT, "next_id": self.next_id, "jobs": rows}

    @classmethod
    def decode(cls, doc: dict[str, Any] | None) -> MockRestoreJobs:
        """The jobs of a stored state (none in a state saved before jobs were kept)."""
        jobs = cls()
        if doc is None:
            return jobs
        if doc.get("format") != STATE_FORMAT:
            raise ValueError(f"restore jobs format {doc.get('format')!r} is not {STATE_FORMAT}")
        jobs.next_id = int(doc["next_id"])
        for head, state, items, progress in doc["jobs"]:
            job = RestoreJob(*head, *state[:2])
            job.status, job.started_at, job.ended_at, job.counts, job.problems, job.error = state[2:]
            # A state saved before jobs expired has no queued_at: a job waits from its creation.
            queued_at = progress[3] if len(progress) > 3 else job.created_at
            items_of = [Item(*i) for i in items]
            mock = MockJob(job, items_of, queued_at, progress[0], progress[1], dict.fromkeys(progress[2]))
            jobs.jobs[job.id] = mock
        return jobs

    # -- the simulated agents --

    def advance(self, world: MockWorld, seconds: float) -> None:
        """``seconds`` of work for every client's agent: start, move on, requeue or end jobs."""
        for job_id in [i for i, m in self.jobs.items() if m.job.client_id not in world.clients]:
            del self.jobs[job_id]  # its client was deleted, the job with it (as the real server's cascade)
        busy: set[str] = set()
        expiry = timedelta(seconds=QUEUED_EXPIRY_S)
        for mock in self.jobs.values():
            job = mock.job
            if job.status == "cancelling":  # between two files, or its agent went: either way it ends here
                self._stop(world, mock, "cancelled")
                continue
            if job.status == "queued" and world.now() - mock.queued_at >= expiry:
                self._stop(world, mock, "expired", expiry_reason(QUEUED_EXPIRY_S / 3600))
                continue
            if job.status in ENDED_STATUSES or job.client_id in busy:
                continue
            client = world.clients[job.client_id]
            present = client.status == "connected" and world.server.running
            if not present:
                if job.status == "running":
                    job.status = "queued"
                    mock.queued_at = world.now()
                    _event(world, job, "requeued")
                continue
            busy.add(job.client_id)
            if job.status == "queued":
                job.status = "running"
                job.started_at = job.started_at or world.now()
                _event(world, job, "started")
            self._work(world, mock, int(RATE * seconds))

    def _work(self, world: MockWorld, mock: MockJob, budget: int) -> None:
        job, c = mock.job, mock.job.counts
        while mock.position < len(mock.items) and budget > 0:
            item = mock.items[mock.position]
            record = world.files.get(item.file_id)
            version = world.history.version(record, item.version) if record is not None else None
            if record is None or version is None:  # deleted meanwhile: no longer part of the snapshot
                mock.position += 1
                continue
            target = path_key(target_path(job.destination, item.member))
            exists = (job.client_id, target) in world.taken_paths or target in mock.kept
            if exists and job.overwrite == "skip":
                self._handled(mock, version.size)
                c["files_skipped"] += 1
                job.add_problems([problem(item.path, "skipped", EXISTS, "a file is already there (policy skip)")])
                continue
            step = min(budget, version.size - mock.partial)
            budget -= step
            mock.partial += step
            c["bytes_done"] += step
            if mock.partial < version.size:
                break  # the rest of this file at the next tick
            content = world.history.content_version(record, version)
            mock.partial = 0
            mock.position += 1
            c["files_done"] += 1
            if content_sha256(world.seed, record.id, content, version.size) != version.sha256:
                c["files_failed"] += 1
                reason = "what was written does not hash to the version's SHA-256: nothing was kept"
                job.add_problems([problem(item.path, "failed", HASH_MISMATCH, reason)])
                continue
            c["files_restored"] += 1
            c["bytes_restored"] += version.size
            if not (exists and job.overwrite == "rename"):  # a renamed one went beside it
                mock.kept[target] = None
        if mock.position >= len(mock.items):
            job.end(world.now())
            level = "WARNING" if job.status == "partial" else "INFO"
            world.record("restore_completed", level, summary(job), client_id=job.client_id, logger="backup.restore")
            _event(world, job, "ended")
        else:
            _event(world, job, "progress")

    @staticmethod
    def _stop(world: MockWorld, mock: MockJob, status: str, error: str | None = None) -> None:
        """End a job before its last file: the file being written is dropped, what was done stays."""
        job = mock.job
        job.counts["bytes_done"] -= mock.partial
        mock.partial = 0
        job.stop(world.now(), status, error)
        level = "INFO" if status == "cancelled" else "WARNING"
        world.record(f"restore_{status}", level, summary(job), client_id=job.client_id, logger="backup.restore")
        _event(world, job, "ended")

    @staticmethod
    def _handled(mock: MockJob, size: int) -> None:
        mock.position += 1
        mock.job.counts["files_done"] += 1
        mock.job.counts["bytes_done"] += size


def _items(world: MockWorld, run: Run, selection: list[str]) -> list[Item]:
    """The files of the selection in the order both backends use: selected item, folder, name."""
    listed = [(path, entry) for path, entry in run.entries.items() if _resolves(world, entry[0], entry[1])]
    items: list[Item] = []
    base = member_base(selection)
    for selected in selection:
        if selected in run.entries and _resolves(world, *run.entries[selected][:2]):
            file_id, number, _size = run.entries[selected]
            items.append(Item(selected, member_of(selected, base), file_id, number))
        elif selected in run.folders:
            below = sorted((split(path), path, entry) for path, entry in listed if contains(selected, path))
            items.extend(Item(path, member_of(path, base), e[0], e[1]) for _key, path, e in below)
        else:
            raise not_in_snapshot(run.id, selected)
    return items


def _resolves(world: MockWorld, file_id: str, number: int) -> bool:
    record = world.files.get(file_id)
    return record is not None and world.history.version(record, number) is not None


def _not_found(what: str, key: str) -> ProtocolError:
    return ProtocolError(ErrorCode.NOT_FOUND, f"{what} {key[:100]!r} not found", id=key[:100])


def _event(world: MockWorld, job: RestoreJob, change: str) -> None:
    world.emit(RESTORE_JOB, {"job_id": job.id, "client_id": job.client_id, "change": change, "job": job.to_dict()})


def handlers(world: MockWorld) -> dict[str, Callable[[dict[str, Any]], tuple[Any, str]]]:
    """The catalogue's restore job operations, for the core's table of handlers."""
    jobs = world.restore_jobs
    return {
        "restore_to_agent": lambda a: (jobs.create(world, a), "Restore queued"),
        "cancel_restore_job": lambda a: _cancel_op(jobs.cancel(world, a["job_id"])),
        "get_restore_job": lambda a: (jobs.get(world, a["job_id"]), "Restore job"),
        "list_restore_jobs": lambda a: (jobs.list(world, a), "Restore jobs"),
    }


def _cancel_op(job: dict[str, Any]) -> tuple[dict[str, Any], str]:
    return job, "Restore cancelled" if job["status"] == "cancelled" else "Restore cancelling: the agent stops"
