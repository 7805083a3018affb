"""Restore jobs on the real server: queued by the console, carried out by the client's agent.

A job is a ``restore_jobs`` row. It is offered (``restore_job``) to its client's agent when
queued while the agent is connected, and at every hello while it waits. The agent drives
it: ``job_next`` asks for the next batch of files after a cursor (the first one marks the
job running), ``job_progress`` reports bytes as they are written, ``job_checkpoint`` what
became of a finished batch (the cursor and counts the job resumes from if the agent goes
away: it is queued again and re-offered at the next hello, as after a server restart) and,
with ``end``, the result; ``job_failed`` says the job could not run at all. Every change is a
``restore.job`` event, progress at most every PROGRESS_EVERY_S per job.

``cancel_restore_job`` ends a queued job at once; a running one becomes ``cancelling`` and its
agent gets ``job_cancel``: it stops between two files and says so with ``job_stopped`` (its
counts so far), and the job ends ``cancelled``. An agent that ignores ``job_cancel`` is stopped
at its next ``job_next``, and one that goes away ends the job too. A job queued (created, or
queued again) for longer than ``expiry_s`` ends ``expired``: nothing waits forever.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog

from actors.backends.filters import page
from actors.backends.restore_plan import (
    RestoreJob,
    already_ended,
    checked_destination,
    expiry_reason,
    still_running,
    summary,
)
from actors.server import restore_items
from actors.server.db import iso, transaction
from actors.server.restore_job_rows import (
    COLUMNS,
    MAX_REASON,
    checkpoint_of,
    count,
    counts_of,
    job_of,
    load,
    problems_of,
    save,
)
from actors.server.sessions import AgentOutbox, AgentSession
from actors.server.snapshot_queries import get_snapshot
from actors.server.store import Store
from protocol.agent_messages import AgentProtocolError, Message
from protocol.catalogue_restore_jobs import ENDED_STATUSES, QUEUED_EXPIRY_S
from protocol.errors import ErrorCode, ProtocolError
from protocol.events import RESTORE_JOB

log = structlog.get_logger()

PROGRESS_EVERY_S = 0.5
EXPIRY_CHECK_S = 60.0  # how often (server time) queued jobs are looked at for expiry: a minute late is fine


class RestoreJobs:
    def __init__(
        self,
        store: Store,
        outbox: AgentOutbox,
        sessions: dict[str, AgentSession],
        clock: Callable[[], float] = time.monotonic,
        expiry_s: float = QUEUED_EXPIRY_S,
    ) -> None:
        self.store = store
        self.conn = store.conn
        self.outbox = outbox
        self.sessions = sessions  # the gateway's sessions by client: who can be offered a job now
        self.clock = clock
        self.expiry_s = expiry_s  # a job queued this long (server time) expires
        self._expiry_checked = store.now() - timedelta(seconds=EXPIRY_CHECK_S)
        self._evented: dict[str, float] = {}  # job id -> when its last progress event went out
        self._held: dict[str, None] = {}  # jobs whose progress the throttle held back: flush sends it
        # Sessions never survive a restart: their jobs wait again, or end if they were being cancelled.
        for row in self.conn.execute(
            f"SELECT {COLUMNS} FROM restore_jobs WHERE status IN ('running', 'cancelling')"
        ).fetchall():
            self._agent_gone(job_of(row), row["checkpoint"])

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
                "queued_at, files_total, bytes_total) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (
                    snapshot["client_id"],
                    number,
                    json.dumps(args["paths"]),
                    destination,
                    args["overwrite"],
                    iso(now),
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

    def cancel(self, job_id: str) -> dict[str, Any]:
        """A queued job ends now; a running one is told to its agent, which stops between two files."""
        job = self._load(job_id)
        if job.status in ENDED_STATUSES:
            raise already_ended(job)
        session = self.sessions.get(job.client_id)
        if job.status == "queued":
            job.stop(self.store.now(), "cancelled")
            self._finished(job, None, "INFO", "restore_cancelled")
        elif job.status == "running":
            job.status = "cancelling"
            self._save(job)
            self._event(job, "cancelling")
            log.info("server.restore_job_cancelling", job=job.id, client_id=job.client_id)
        if session is not None:  # also drops a queued job's offer the agent still holds
            self.outbox.send(session.route, "job_cancel", job=job.id)
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
            f"SELECT {COLUMNS} FROM restore_jobs {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, args["limit"], args["offset"]],
        ).fetchall()
        return page([job_of(r).to_dict() for r in rows], total, args["offset"], args["limit"])

    def handlers(self) -> dict[str, Callable[[dict[str, Any]], tuple[Any, str]]]:
        return {
            "restore_to_agent": lambda a: (self.create(a), "Restore queued"),
            "cancel_restore_job": lambda a: self._cancel_op(a["job_id"]),
            "get_restore_job": lambda a: (self.get(a["job_id"]), "Restore job"),
            "list_restore_jobs": lambda a: (self.list(a), "Restore jobs"),
        }

    def _cancel_op(self, job_id: str) -> tuple[dict[str, Any], str]:
        job = self.cancel(job_id)
        return job, "Restore cancelled" if job["status"] == "cancelled" else "Restore cancelling: the agent stops"

    # -- the agents --

    def session_started(self, session: AgentSession) -> None:
        """Offer the client's waiting jobs, oldest first (the agent takes them one at a time)."""
        rows = self.conn.execute(
            f"SELECT {COLUMNS} FROM restore_jobs WHERE client_id = ? AND status = 'queued' ORDER BY id",
            (session.client_id,),
        ).fetchall()
        for row in rows:
            self._offer(session, job_of(row), row["checkpoint"])

    def session_ended(self, client_id: str) -> None:
        rows = self.conn.execute(
            f"SELECT {COLUMNS} FROM restore_jobs WHERE client_id = ? AND status IN ('running', 'cancelling')",
            (client_id,),
        ).fetchall()
        for row in rows:
            self._agent_gone(job_of(row), row["checkpoint"])

    def on_next(self, session: AgentSession, msg: Message) -> None:
        job, checkpoint = self._of(session, msg)
        if job.status == "cancelling":
            # An agent that did not act on job_cancel (an older one) stops here, between two batches.
            self._cancelled(job, checkpoint_of(checkpoint)[1])
            raise AgentProtocolError(f"restore job {job.id} was cancelled", ErrorCode.CONFLICT.value)
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
        job, _ = self._of(session, msg)
        job.counts["files_done"], job.counts["bytes_done"] = count(msg["files_done"]), count(msg["bytes_done"])
        self._save(job)
        self._event(job, "progress")

    def on_checkpoint(self, session: AgentSession, msg: Message) -> None:
        job, _ = self._of(session, msg)
        job.counts = counts_of(msg["counts"])
        job.add_problems(problems_of(msg["problems"]))
        checkpoint = json.dumps({"cursor": msg["cursor"], "counts": job.counts})
        if msg["end"]:  # the last file was done before the agent saw a cancel: the job is whole
            job.end(self.store.now())
            self._finished(job, checkpoint, "WARNING" if job.status == "partial" else "INFO")
        else:
            self._save(job, checkpoint)
            self._event(job, "progress")

    def on_stopped(self, session: AgentSession, msg: Message) -> None:
        """The agent stopped a job it was told to cancel, between two files: what it did is final."""
        job, _ = self._of(session, msg)
        if job.status != "cancelling":
            raise AgentProtocolError(f"restore job {job.id} was not cancelled", ErrorCode.CONFLICT.value)
        job.add_problems(problems_of(msg["problems"]))
        self._cancelled(job, counts_of(msg["counts"]))

    def on_failed(self, session: AgentSession, msg: Message) -> None:
        job, _ = self._of(session, msg)
        job.fail(self.store.now(), f"{msg['code']}: {msg['message'][:MAX_REASON]}")
        self._finished(job, None, "ERROR")

    # -- time --

    def flush(self) -> None:
        """The server's tick: send the progress the throttle held back (a job that paused is shown as it is),
        and end the jobs that waited too long for their agent."""
        held, self._held = self._held, {}
        for job_id in held:
            try:
                job = self._load(job_id)
            except ProtocolError:
                continue  # its client was deleted meanwhile
            if job.status == "running":
                self._event(job, "progress")
        now = self.store.now()
        if now - self._expiry_checked >= timedelta(seconds=EXPIRY_CHECK_S):
            self._expiry_checked = now
            self.expire()

    def expire(self) -> int:
        """End every job queued for longer than ``expiry_s``; how many."""
        now = self.store.now()
        rows = self.conn.execute(
            f"SELECT {COLUMNS} FROM restore_jobs WHERE status = 'queued' AND queued_at < ? ORDER BY id",
            (iso(now - timedelta(seconds=self.expiry_s)),),
        ).fetchall()
        for row in rows:
            job = job_of(row)
            job.counts = checkpoint_of(row["checkpoint"])[1]
            job.stop(now, "expired", expiry_reason(self.expiry_s / 3600))
            self._finished(job, None, "WARNING", "restore_expired")
            session = self.sessions.get(job.client_id)
            if session is not None:  # connected but busy all along: drop the offer it holds
                self.outbox.send(session.route, "job_cancel", job=job.id)
        return len(rows)

    # -- plumbing --

    def _of(self, session: AgentSession, msg: Message) -> tuple[RestoreJob, str]:
        """The job a message is about (and its checkpoint), of the agent's own client, not ended."""
        try:
            row = load(self.conn, msg["job"])
        except ProtocolError:
            raise AgentProtocolError(f"restore job {msg['job'][:40]!r} not found", ErrorCode.NOT_FOUND.value) from None
        job = job_of(row)
        if job.client_id != session.client_id:
            raise AgentProtocolError("an agent carries out only its own client's restores", ErrorCode.FORBIDDEN.value)
        if job.status in ENDED_STATUSES:
            raise AgentProtocolError(f"restore job {job.id} has ended ({job.status})", ErrorCode.CONFLICT.value)
        return job, row["checkpoint"]

    def _load(self, job_id: str) -> RestoreJob:
        return job_of(load(self.conn, job_id))

    def _save(self, job: RestoreJob, checkpoint: str | None = None, queued: bool = False) -> None:
        save(self.conn, job, checkpoint, iso(self.store.now()) if queued else None)

    def _offer(self, session: AgentSession, job: RestoreJob, checkpoint: str) -> None:
        cursor, counts = checkpoint_of(checkpoint)
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

    def _agent_gone(self, job: RestoreJob, checkpoint: str) -> None:
        """The agent went mid-job. A running job goes back to what its last checkpoint says, waiting for the next
        hello; one being cancelled ends there (what the agent wrote after that checkpoint stays, uncounted)."""
        counts = checkpoint_of(checkpoint)[1]
        if job.status == "cancelling":
            self._cancelled(job, counts)
            return
        job.status = "queued"
        job.counts = counts
        self._save(job, queued=True)
        self._event(job, "requeued")

    def _cancelled(self, job: RestoreJob, counts: dict[str, int]) -> None:
        job.counts = counts
        job.stop(self.store.now(), "cancelled")
        self._finished(job, None, "INFO", "restore_cancelled")

    def _finished(self, job: RestoreJob, checkpoint: str | None, level: str, type_: str = "restore_completed") -> None:
        self._save(job, checkpoint)
        self.store.record(type_, level, summary(job), client_id=job.client_id, logger="backup.restore")
        self._event(job, "ended")
        self._evented.pop(job.id, None)
        self._held.pop(job.id, None)

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
