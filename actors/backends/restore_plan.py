"""What a restore job is and how its selection becomes files, the same in both backends.

A job restores the selected folders and files of one snapshot under a destination on the
client's machine. Files are named from the folder holding the whole selection, as
download_archive names its members (``/home/ada/docs`` gives ``docs/…``, ``/`` gives
``home/…``, a drive ``C:`` gives ``C/…``; ``/home/ada/docs`` with ``/home/bob`` gives
``ada/docs/…`` and ``bob/…``); an item inside another selected one is taken once. Files go in one order in both backends: by selected item, then
folder path, then name (code points, SQLite's BINARY). The mock simulates the agent's part;
the real server hands it to the agent, whose results come back in the same counters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actors.backends.snapshot_paths import bad_path, folder_to_browse
from protocol.catalogue_restore_jobs import PROBLEMS_LISTED
from protocol.catalogue_snapshots import ROOT
from protocol.errors import ErrorCode, ProtocolError
from protocol.restore_rules import MEMBER_SEPARATOR, check_destination

_DRIVE = re.compile(r"[A-Za-z]:([\\/]|$)")
COUNT_FIELDS = ("files_done", "bytes_done", "files_restored", "bytes_restored", "files_skipped", "files_failed")


def checked_destination(destination: str) -> str:
    """The destination as given, or BAD_REQUEST saying why no agent could restore into it."""
    problem = check_destination(destination)
    if problem:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"destination {destination[:200]!r} {problem}",
            argument="destination",
        )
    return destination


def selection_path(path: str) -> str:
    """A selected path as the snapshot's tree names it (a folder's trailing separator dropped)."""
    if path in ("", ROOT):
        return ROOT
    try:
        return folder_to_browse(path)
    except ProtocolError:
        raise bad_path(path, "is not a path a snapshot could hold") from None


def components(path: str) -> list[str]:
    """The names from the top down: ``/home/ada`` -> [home, ada]; ``C:\\Users`` -> [C, Users]."""
    if path == ROOT:
        return []
    if _DRIVE.match(path):
        return [path[0], *(p for p in re.split(r"[\\/]", path[3:]) if p)]
    return [p for p in path[1:].split("/") if p]


def contains(folder: str, path: str) -> bool:
    """Whether ``path`` lies below ``folder`` (the top holds everything)."""
    if folder == ROOT:
        return path != ROOT
    if path == folder:
        return False
    seps = "\\/" if _DRIVE.match(folder) else "/"
    if folder[-1] in seps:  # a drive's root, C:\\
        return path.startswith(folder)
    return path.startswith(folder) and path[len(folder)] in seps


def normalized(paths: list[str]) -> list[str]:
    """The selected items in the order given, each once, those inside another selected one left out."""
    unique = list(dict.fromkeys(selection_path(p) for p in paths))
    return [p for p in unique if not any(contains(other, p) for other in unique if other != p)]


def member_base(selection: list[str]) -> int:
    """How many leading names every file shares: those of the folder holding the whole selection."""
    parents = [components(p)[:-1] for p in selection]
    if not parents:
        return 0
    depth = min(len(p) for p in parents)
    for n in range(depth):
        if len({p[n] for p in parents}) > 1:
            return n
    return depth


def member_of(path: str, base: int) -> str:
    """Where a file goes below the destination: its names after the ``base`` the selection shares."""
    return MEMBER_SEPARATOR.join(components(path)[base:])


def not_in_snapshot(snapshot_id: str, path: str) -> ProtocolError:
    return ProtocolError(
        ErrorCode.NOT_FOUND,
        f"snapshot {snapshot_id} holds no folder or file {path[:200]!r}",
        snapshot_id=snapshot_id,
        path=path[:200],
    )


def already_ended(job: RestoreJob) -> ProtocolError:
    """CONFLICT for cancelling a job that is over, saying how it ended."""
    how = f"{job.status} at {job.ended_at.isoformat() if job.ended_at else '?'}"
    return ProtocolError(
        ErrorCode.CONFLICT,
        f"restore job {job.id} already ended ({how}): there is nothing left to cancel",
        job_id=job.id,
        status=job.status,
    )


def expiry_reason(hours: float) -> str:
    return f"its client's agent did not come for it within {hours:g} h of it being queued"


def still_running(snapshot_id: str) -> ProtocolError:
    return ProtocolError(
        ErrorCode.CONFLICT,
        f"snapshot {snapshot_id} is still running: restore from it once its run ended",
        snapshot_id=snapshot_id,
    )


@dataclass
class RestoreJob:
    """One job as both backends keep it; ``to_dict`` is the RestoreJob shape."""

    id: str
    client_id: str
    snapshot_id: str
    paths: list[str]
    destination: str
    overwrite: str
    created_at: datetime
    files_total: int
    bytes_total: int
    status: str = "queued"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_FIELDS, 0))
    problems: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None

    def add_problems(self, problems: list[dict[str, str]]) -> None:
        """Keep the first PROBLEMS_LISTED; the counters count them all."""
        room = PROBLEMS_LISTED - len(self.problems)
        if room > 0:
            self.problems.extend(problems[:room])

    def end(self, at: datetime) -> None:
        """The last file was handled: complete, or partial when some failed. The totals become what was found
        (a file deleted from the server while the job waited is no longer part of its snapshot)."""
        self.status = "partial" if self.counts["files_failed"] else "complete"
        self.ended_at = at
        self.files_total, self.bytes_total = self.counts["files_done"], self.counts["bytes_done"]

    def fail(self, at: datetime, error: str) -> None:
        self.status, self.ended_at, self.error = "failed", at, error

    def stop(self, at: datetime, status: str, error: str | None = None) -> None:
        """Ended before its last file (``cancelled`` or ``expired``): the counts stay what was done."""
        self.status, self.ended_at, self.error = status, at, error

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "snapshot_id": self.snapshot_id,
            "paths": list(self.paths),
            "destination": self.destination,
            "overwrite": self.overwrite,
            "status": self.status,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "files_total": self.files_total,
            "bytes_total": self.bytes_total,
            **self.counts,
            "problems": [dict(p) for p in self.problems],
            "error": self.error,
        }


def problem(path: str, outcome: str, code: str, reason: str) -> dict[str, str]:
    return {"path": path, "outcome": outcome, "code": code, "reason": reason}


def summary(job: RestoreJob) -> str:
    """One line for the activity log when a job ends."""
    c = job.counts
    if job.status == "failed":
        return f"Restore {job.id} to {job.destination} failed: {job.error}"
    if job.status == "expired":
        return f"Restore {job.id} to {job.destination} expired: {job.error}"
    if job.status == "cancelled":
        return (
            f"Restore {job.id} to {job.destination} cancelled after {c['files_done']} of {job.files_total} files: "
            f"{c['files_restored']} restored and verified (kept), {c['files_skipped']} skipped, "
            f"{c['files_failed']} failed"
        )
    return (
        f"Restore {job.id} to {job.destination} {job.status}: {c['files_restored']} files restored and verified "
        f"({c['bytes_restored']} bytes), {c['files_skipped']} skipped, {c['files_failed']} failed"
    )
