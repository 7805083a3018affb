"""Restore jobs on the real server: queued by the console, carried out by the client's agent.

A job is a ``restore_jobs`` row. It is offered (``restore_job``) to its client's agent when
queued while the agent is connected, and at every hello while it waits. The agent drives
it: ``job_next`` asks for the next batch of files after a cursor (the first one marks the
job running), ``job_progress`` reports bytes as they are written, ``job_checkpoint`` what
became of a finished batch (the cursor and counts the job resumes from if the agent goes
away: it is queued again and re-offered at the next hello, as after a server restart) and,
with ``end``, the result; ``job_failed`` says the job could not run at all. Every change is a
``restore.job`` event, progress at most every PROGRESS_EVERY_S per job.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

import structlog

from actors.backends.filters import page
from actors.backends.restore_plan import COUNT_FIELDS, RestoreJob, checked_destination, problem, still_running, summary
from actors.server import restore_items
from actors.server.db import iso, transaction
from actors.server.sessions import AgentOutbox, AgentSession
from actors.server.snapshot_queries import get_snapshot
from actors.server.store import Store
from protocol.agent_messages import AgentProtocolError, Message
from protocol.catalogue_restore_jobs import ENDED_STATUSES, PROBLEM_CODES
from protocol.errors import ErrorCode, ProtocolError
from protocol.events import RESTORE_JOB

log = structlog.get_logger()

PROGRESS_EVERY_S = 0.5
MAX_REASON = 500
_COLUMNS = (
    "id, client_id, snapshot_id, paths, destination, overwrite, status, created_at, started_at, ended_at, "
    "files_total, bytes_total, files_done, bytes_done, files_restored, bytes_restored, files_skipped, files_failed, "
    "checkpoint, problems, error"
)


def _job(row: sqlite3.Row) -> RestoreJob:
    job = RestoreJob(
        id=str(row["id"]),
        client_id=row["client_id"],
        snapshot_id=str(row["snapshot_id"]),
        paths=json.loads(row["paths"]),
        destination=row["destination"],
        overwrite=row["overwrite"],
        created_at=row["created_at"],
        files_total=row["files_total"],
        bytes_total=row["bytes_total"],
        status=row["status"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        problems=json.loads(row["problems"]),
        error=row["error"],
    )
    job.counts = {k: row[k] for k in COUNT_FIELDS}
    return job


def _checkpoint(text: str) -> tuple[str, dict[str, int]]:
    """(cursor, counts) an interrupted job resumes from ('' and zeros: from the start)."""
    if not text:
        return "", dict.fromkeys(COUNT_FIELDS, 0)
    doc = json.loads(text)
    return doc["cursor"], doc["counts"]


class RestoreJobs:
    def __init__(
        self,
        store: Store,
        outbox: AgentOutbox,
        sessions: dict[str, AgentSession],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.conn = store.conn
        self.outbox = outbox
        self.sessions = sessions  # the gateway's sessions by client: who can be offered a job now
        self.clock = clock
        self._evented: dict[str, float] = {}  # job id -> when its last progress event went out
        self._held: dict[str, None] = {}  # jobs whose progress the throttle held back: flush sends it
        for row in self.conn.execute(f"SELECT {_COLUMNS} FROM restore_jobs WHERE status = 'running'").fetchall():
            self._requeue(_job(row), row["checkpoint"])  # sessions never survive a restart; their jobs wait

    # -- the console's operations --

    def create(self, args: dict[str, Any]) -> dict[str, Any]:
        snapshot = get_snapshot(self.conn, args["snapshot_id"])
        if snapshot["status"] == "running":
            raise still_running(snapshot["id"])
        destination = checked_destination(args["destination"])
        number = int(snapshot["id"])
        selection = restore_items.select(self.conn, number, snapshot["id"], args["paths"])
        files, size = restore_items.totals(self.conn, number, selection)
        now = self.store.now()
        with transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO restore_jobs (client_id, snapshot_id, paths, destination, overwrite, status, created_at, "
                "files_total, bytes_total) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                (
                    snapshot["client_id"],
                    number,
                    json.dumps(args["paths"]),
                    destination,
                    args["overwrite"],
                    iso(now),
                    files,
                    size,
                ),
            )
        job = self._load(str(cur.lastrowid))
        name = self.conn.execute("SELECT name FROM clients WHERE id = ?", (job.client_id,)).fetchone()[0]
        self.store.record(
            "restore_queued",
            "INFO",
            f"Restore {job.id} of {files} files from snapshot {job.snapshot_id} to {destination} on {name} queued",
            client_id=job.client_id,
            logger="backup.restore",
        )
        self._event(job, "queued")
        session = self.sessions.get(job.client_id)
        if session is not None:
            self._offer(session, job, "")
        return job.to_dict()

    def get(self, job_id: str) -> dict[str, Any]:
        return self._load(job_id).to_dict()

    def list(self, args: dict[str, Any]) -> dict[str, Any]:
        where, params = [], []
        if args.get("client_id") is not None:
            if self.conn.execute("SELECT 1 FROM clients WHERE id = ?", (args["client_id"],)).fetchone() is None:
                raise ProtocolError(ErrorCode.NOT_FOUND, f"client {args['client_id']!r} not found")
            where.append("client_id = ?")
            params.append(args["client_id"])
        if args.get("status") is not None:
            where.append("status = ?")
            params.append(args["status"])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        total = self.conn.execute(f"SELECT COUNT(*) FROM restore_jobs {clause}", params).fetchone()[0]
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM restore_jobs {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, args["limit"], args["offset"]],
        ).fetchall()
        return page([_job(r).to_dict() for r in rows], total, args["offset"], args["limit"])

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], tuple[Any, str]]]:
        return {
            "restore_to_agent": lambda a: (self.create(a), "Restore queued"),
            "get_restore_job": lambda a: (self.get(a["job_id"]), "Restore job"),
            "list_restore_jobs": lambda a: (self.list(a), "Restore jobs"),
        }

    # -- the agents --

    def session_started(self, session: AgentSession) -> None:
        """Offer the client's waiting jobs, oldest first (the agent takes them one at a time)."""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM restore_jobs WHERE client_id = ? AND status = 'queued' ORDER BY id",
            (session.client_id,),
        ).fetchall()
        for row in rows:
            self._offer(session, _job(row), row["checkpoint"])

    def session_ended(self, client_id: str) -> None:
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM restore_jobs WHERE client_id = ? AND status = 'running'", (client_id,)
        ).fetchall()
        for row in rows:
            self._requeue(_job(row), row["checkpoint"])

    def on_next(self, session: AgentSession, msg: Message) -> None:
        job = self._of(session, msg)
        if job.status == "queued":
            job.status, job.started_at = "running", job.started_at or self.store.now()
            self._save(job)
            self._event(job, "started")
        number = int(job.snapshot_id)
        # A selected file deleted since (its versions with it) is no longer part of the snapshot: left out.
        selection = restore_items.select(self.conn, number, job.snapshot_id, job.paths, strict=False)
        items, cursor, end = restore_items.batch(self.conn, number, selection, msg["cursor"])
        self.outbox.send(session.route, "job_items", job=job.id, items=items, cursor=cursor, end=end)

    def on_progress(self, session: AgentSession, msg: Message) -> None:
        job = self._of(session, msg)
        job.counts["files_done"], job.counts["bytes_done"] = _count(msg["files_done"]), _count(msg["bytes_done"])
        self._save(job)
        self._event(job, "progress")

    def on_checkpoint(self, session: AgentSession, msg: Message) -> None:
        job = self._of(session, msg)
        counts = msg["counts"]
        if set(counts) != set(COUNT_FIELDS):
            raise AgentProtocolError(f"job_checkpoint counts must have exactly {', '.join(COUNT_FIELDS)}")
        job.counts = {k: _count(counts[k]) for k in COUNT_FIELDS}
        job.add_problems([_problem(p) for p in msg["problems"]])
        checkpoint = json.dumps({"cursor": msg["cursor"], "counts": job.counts})
        if msg["end"]:
            job.end(self.store.now())
            self._finished(job, checkpoint, "WARNING" if job.status == "partial" else "INFO")
        else:
            self._save(job, checkpoint)
            self._event(job, "progress")

    def on_failed(self, session: AgentSession, msg: Message) -> None:
        job = self._of(session, msg)
        job.fail(self.store.now(), f"{msg['code']}: {msg['message'][:MAX_REASON]}")
        self._finished(job, None, "ERROR")

    # -- plumbing --

    def _of(self, session: AgentSession, msg: Message) -> RestoreJob:
        """The running or queued job a message is about, of the agent's own client."""
        try:
            job = self._load(msg["job"])
        except ProtocolError:
            raise AgentProtocolError(f"restore job {msg['job'][:40]!r} not found", ErrorCode.NOT_FOUND.value) from None
        if job.client_id != session.client_id:
            raise AgentProtocolError("an agent carries out only its own client's restores", ErrorCode.FORBIDDEN.value)
        if job.status in ENDED_STATUSES:
            raise AgentProtocolError(f"restore job {job.id} has ended ({job.status})", ErrorCode.CONFLICT.value)
        return job

    def _load(self, job_id: str) -> RestoreJob:
        key = int(job_id) if job_id.isascii() and job_id.isdigit() and len(job_id) < 19 else None
        row = None
        if key is not None:
            row = self.conn.execute(f"SELECT {_COLUMNS} FROM restore_jobs WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"restore job {job_id[:100]!r} not found", job_id=job_id[:100])
        return _job(row)

    def _save(self, job: RestoreJob, checkpoint: str | None = None) -> None:
        c = job.counts
        sets = (
            "status = ?, started_at = ?, ended_at = ?, files_total = ?, bytes_total = ?, files_done = ?, "
            "bytes_done = ?, files_restored = ?, bytes_restored = ?, files_skipped = ?, files_failed = ?, "
            "problems = ?, error = ?"
        )
        params: list[Any] = [
            job.status,
            iso(job.started_at) if job.started_at else None,
            iso(job.ended_at) if job.ended_at else None,
            job.files_total,
            job.bytes_total,
            *(c[k] for k in COUNT_FIELDS),
            json.dumps(job.problems),
            job.error,
        ]
        if checkpoint is not None:
            sets += ", checkpoint = ?"
            params.append(checkpoint)
        self.conn.execute(f"UPDATE restore_jobs SET {sets} WHERE id = ?", [*params, int(job.id)])

    def _offer(self, session: AgentSession, job: RestoreJob, checkpoint: str) -> None:
        cursor, counts = _checkpoint(checkpoint)
        self.outbox.send(
            session.route,
            "restore_job",
            job=job.id,
            destination=job.destination,
            overwrite=job.overwrite,
            files_total=job.files_total,
            bytes_total=job.bytes_total,
            cursor=cursor,
            counts=counts,
        )

    def _requeue(self, job: RestoreJob, checkpoint: str) -> None:
        """The agent went mid-job: back to what its last checkpoint says, waiting for the next hello."""
        job.status = "queued"
        job.counts = _checkpoint(checkpoint)[1]
        self._save(job)
        self._event(job, "requeued")

    def _finished(self, job: RestoreJob, checkpoint: str | None, level: str) -> None:
        self._save(job, checkpoint)
        self.store.record("restore_completed", level, summary(job), client_id=job.client_id, logger="backup.restore")
        self._event(job, "ended")
        self._evented.pop(job.id, None)
        self._held.pop(job.id, None)

    def flush(self) -> None:
        """Send the progress the throttle held back (the server's tick): a job that paused is shown as it is."""
        held, self._held = self._held, {}
        for job_id in held:
            try:
                job = self._load(job_id)
            except ProtocolError:
                continue  # its client was deleted meanwhile
            if job.status == "running":
                self._event(job, "progress")

    def _event(self, job: RestoreJob, change: str) -> None:
        if change == "progress":
            now = self.clock()
            if now - self._evented.get(job.id, -PROGRESS_EVERY_S) < PROGRESS_EVERY_S:
                self._held[job.id] = None
                return
            self._evented[job.id] = now
            self._held.pop(job.id, None)
        self.store.emit(
            RESTORE_JOB, {"job_id": job.id, "client_id": job.client_id, "change": change, "job": job.to_dict()}
        )


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise AgentProtocolError("restore counts are non-negative integers")
    return value


def _problem(raw: Any) -> dict[str, str]:
    """A skipped or failed file as the agent reported it: [path, outcome, code, reason]."""
    if (
        not isinstance(raw, list)
        or len(raw) != 4
        or not all(isinstance(x, str) for x in raw)
        or raw[1] not in ("skipped", "failed")
        or raw[2] not in PROBLEM_CODES
    ):
        raise AgentProtocolError("a restore problem is [path, skipped|failed, code, reason]")
    return problem(raw[0][:4096], raw[1], raw[2], raw[3][:MAX_REASON])
