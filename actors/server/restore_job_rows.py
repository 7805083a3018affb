"""How the real server keeps a restore job: its ``restore_jobs`` row, read and written, and what an agent may
report about it (counts, problems), checked before any of it is stored.

``checkpoint`` is where an interrupted job resumes (``{cursor, counts}`` as JSON, the counts as
of the agent's last ``job_checkpoint``); ``queued_at`` is when the job last began to wait for
its agent (created, or queued again when its agent went mid-job), from which it expires.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from actors.backends.restore_plan import COUNT_FIELDS, RestoreJob, problem
from actors.server.db import iso
from protocol.agent_messages import AgentProtocolError
from protocol.catalogue_restore_jobs import PROBLEM_CODES
from protocol.errors import ErrorCode, ProtocolError

MAX_REASON = 500
COLUMNS = (
    "id, client_id, snapshot_id, paths, destination, overwrite, status, created_at, started_at, ended_at, "
    "files_total, bytes_total, files_done, bytes_done, files_restored, bytes_restored, files_skipped, files_failed, "
    "checkpoint, problems, error"
)


def job_of(row: sqlite3.Row) -> RestoreJob:
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


def checkpoint_of(text: str) -> tuple[str, dict[str, int]]:
    """(cursor, counts) an interrupted job resumes from ('' and zeros: from the start)."""
    if not text:
        return "", dict.fromkeys(COUNT_FIELDS, 0)
    doc = json.loads(text)
    return doc["cursor"], doc["counts"]


def load(conn: sqlite3.Connection, job_id: str) -> sqlite3.Row:
    key = int(job_id) if job_id.isascii() and job_id.isdigit() and len(job_id) < 19 else None
    row = None
    if key is not None:
        row = conn.execute(f"SELECT {COLUMNS} FROM restore_jobs WHERE id = ?", (key,)).fetchone()
    if row is None:
        raise ProtocolError(ErrorCode.NOT_FOUND, f"restore job {job_id[:100]!r} not found", job_id=job_id[:100])
    return row


def save(
    conn: sqlite3.Connection, job: RestoreJob, checkpoint: str | None = None, queued_at: str | None = None
) -> None:
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
    if queued_at is not None:
        sets += ", queued_at = ?"
        params.append(queued_at)
    conn.execute(f"UPDATE restore_jobs SET {sets} WHERE id = ?", [*params, int(job.id)])


def counts_of(raw: Any) -> dict[str, int]:
    """The cumulative counts an agent reported (job_checkpoint, job_stopped)."""
    if not isinstance(raw, dict) or set(raw) != set(COUNT_FIELDS):
        raise AgentProtocolError(f"restore counts must have exactly {', '.join(COUNT_FIELDS)}")
    return {k: count(raw[k]) for k in COUNT_FIELDS}


def count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise AgentProtocolError("restore counts are non-negative integers")
    return value


def problems_of(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list):
        raise AgentProtocolError("restore problems are a list")
    return [_problem(p) for p in raw]


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
