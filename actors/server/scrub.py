"""The storage scrub: re-hash every stored blob and mark the files whose content is missing or damaged.

A blob can vanish or rot on disk while its files still say "uploaded"; only a scrub (or a
verify of that one file) notices. A pass walks the distinct SHA-256s of the files in
order, re-hashes each blob and, when what is stored no longer hashes to its name (or is
gone, or cannot be read), marks every file with that content ``error`` (the status a
failed verification gives), emits ``file.changed`` and an activity entry, and lists it in
the pass's report. The agent's next backup then sends those files again (a file in
``error`` is never skipped), which heals the blob.

Passes run in bounded slices so they never stall the server's single loop: a few tens of
milliseconds per tick when periodic (``ServerConfig.scrub_interval_s``, default a day,
0 = off; the time of the last completed pass is kept in the settings table, so restarts
do not postpone it), at most a second per call of the ``scrub_storage`` operation, which
starts a pass or continues the one under way and answers with the pass's report
(``complete: false`` while it goes on in the background).
"""

from __future__ import annotations

import hashlib
import io
import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import structlog

from actors.backends.file_errors import scrub_failed, scrub_problem
from actors.server.blobs import BlobStore
from actors.server.db import iso, transaction
from actors.server.faults import describe, is_storage_full
from actors.server.store import Store

log = structlog.get_logger()

DEFAULT_INTERVAL_S = 24 * 3600.0
SLICE_S = 0.05  # per tick (every 0.5 s): a tenth of the loop's time at most
ON_DEMAND_S = 1.0  # an operator's call holds the loop this long at most (agents are judged lost after 3 s)
READ_SIZE = 1 << 20  # hashed between two looks at the clock: well under a millisecond
HASHES_PER_QUERY = 256
LISTED_PROBLEMS = 1000  # in a reply; damaged_total counts them all
ACTIVITY_ROWS_PER_PASS = 20  # then one line in the pass's summary: a lost folder must not flush the history
LAST_PASS_SETTING = "scrub_finished_at"


@dataclass(frozen=True, slots=True)
class Problem:
    file_id: str
    client_id: str
    path: str
    sha256: str
    problem: str  # missing, damaged or unreadable
    actual_sha256: str  # what the stored bytes hash to now ("" when missing or unreadable)


@dataclass
class _Reading:
    """A blob being re-hashed across slices."""

    sha256: str
    files: int
    file: io.FileIO
    digest: Any = field(default_factory=hashlib.sha256)


@dataclass
class ScrubPass:
    trigger: str  # schedule or operator
    started_at: datetime
    after: str = ""  # every hash up to this one is queued or checked
    queue: deque[tuple[str, int]] = field(default_factory=deque)  # (sha256, files with it)
    exhausted: bool = False
    reading: _Reading | None = None
    retried: set[str] = field(default_factory=set)
    blobs_checked: int = 0
    files_checked: int = 0
    bytes_checked: int = 0
    damaged_total: int = 0
    problems: list[Problem] = field(default_factory=list)
    activity_rows: int = 0
    finished_at: datetime | None = None

    def report(self) -> dict[str, Any]:
        return {
            "complete": self.finished_at is not None,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "blobs_checked": self.blobs_checked,
            "files_checked": self.files_checked,
            "bytes_checked": self.bytes_checked,
            "damaged_total": self.damaged_total,
            "damaged": [asdict(p) for p in self.problems],
        }


class Scrubber:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        slice_s: float = SLICE_S,
        demand_s: float = ON_DEMAND_S,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.interval_s = interval_s
        self.slice_s = slice_s
        self.demand_s = demand_s
        self.timer = timer
        self.current: ScrubPass | None = None
        self.last_finished: datetime | None = None  # also in the settings table, when it can be written
        if interval_s > 0 and not store.setting(LAST_PASS_SETTING, ""):
            # A new store counts as checked now: the first periodic pass comes one interval later.
            self.last_finished = store.now()
            self._remember(self.last_finished)

    # -- when --

    def due(self) -> bool:
        if self.interval_s <= 0:
            return False
        last = self.last_finished
        if last is None:
            stored = self.store.setting(LAST_PASS_SETTING, "")
            if not stored:
                return True
            last = datetime.fromisoformat(stored)
        return (self.store.now() - last).total_seconds() >= self.interval_s

    def tick(self) -> None:
        """One slice of the pass under way, or the start of a due one."""
        if self.current is None:
            if not self.due():
                return
            self.current = self._start("schedule")
        try:
            self._work(self.current, self.slice_s)
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            # The marks could not be written: the pass waits where it is and tries again next tick.
            self.store.storage_alarm.report("the storage scrub", exc)

    def run_now(self) -> dict[str, Any]:
        """The operator's scrub: start a pass (or go on with the one under way) for a bounded time."""
        scrub = self.current or self._start("operator")
        self.current = scrub
        self._work(scrub, self.demand_s)
        return scrub.report()

    def close(self) -> None:
        if self.current is not None and self.current.reading is not None:
            self.current.reading.file.close()

    # -- the pass --

    def _start(self, trigger: str) -> ScrubPass:
        log.info("server.scrub_started", trigger=trigger)
        return ScrubPass(trigger, self.store.now())

    def _work(self, scrub: ScrubPass, budget_s: float) -> None:
        deadline = self.timer() + budget_s
        while True:  # at least one step per call, however small the budget
            if not self._step(scrub):
                self._finish(scrub)
                return
            if self.timer() >= deadline:
                return

    def _step(self, scrub: ScrubPass) -> bool:
        """Hash one piece, open one blob or fetch more hashes; False when the pass is done."""
        if scrub.reading is not None:
            self._read(scrub, scrub.reading)
        elif scrub.queue:
            sha, files = scrub.queue.popleft()
            self._open(scrub, sha, files)
        elif not scrub.exhausted:
            rows = self.store.conn.execute(
                "SELECT sha256, COUNT(*) FROM files WHERE sha256 > ? GROUP BY sha256 ORDER BY sha256 LIMIT ?",
                (scrub.after, HASHES_PER_QUERY),
            ).fetchall()
            scrub.queue.extend((r[0], r[1]) for r in rows)
            scrub.exhausted = len(rows) < HASHES_PER_QUERY
            if rows:
                scrub.after = rows[-1][0]
        else:
            return False
        return True

    def _open(self, scrub: ScrubPass, sha: str, files: int) -> None:
        try:
            handle = open(self.blobs.path_for(sha), "rb", buffering=0)  # noqa: SIM115 - closed when read whole
        except (FileNotFoundError, ValueError):  # ValueError: a damaged row names no blob at all
            self._conclude(scrub, sha, files, "missing", "")
            return
        except OSError as exc:
            log.warning("server.scrub_unreadable", sha256=sha, error=describe(exc))
            self._conclude(scrub, sha, files, "unreadable", "")
            return
        scrub.reading = _Reading(sha, files, handle)

    def _read(self, scrub: ScrubPass, reading: _Reading) -> None:
        try:
            data = reading.file.read(READ_SIZE)
        except OSError as exc:
            reading.file.close()
            scrub.reading = None
            log.warning("server.scrub_unreadable", sha256=reading.sha256, error=describe(exc))
            self._conclude(scrub, reading.sha256, reading.files, "unreadable", "")
            return
        if data:
            reading.digest.update(data)
            scrub.bytes_checked += len(data)
            return
        scrub.reading = None
        actual = reading.digest.hexdigest()
        replaced = actual != reading.sha256 and self._replaced_since_opened(reading)
        reading.file.close()
        if replaced and reading.sha256 not in scrub.retried:
            # A fresh upload of the same content renamed a new blob over the one being read
            # (that heals it): check the new one rather than blame its files for the old one.
            scrub.retried.add(reading.sha256)
            scrub.queue.appendleft((reading.sha256, reading.files))
            return
        self._conclude(scrub, reading.sha256, reading.files, "damaged", actual)

    def _replaced_since_opened(self, reading: _Reading) -> bool:
        opened = os.fstat(reading.file.fileno())
        try:
            now = os.stat(self.blobs.path_for(reading.sha256))
        except FileNotFoundError:
            return False
        return (now.st_dev, now.st_ino) != (opened.st_dev, opened.st_ino)

    def _conclude(self, scrub: ScrubPass, sha: str, files: int, problem: str, actual: str) -> None:
        if actual != sha:
            try:
                self._mark(scrub, sha, problem, actual)
            except Exception:
                scrub.queue.appendleft((sha, files))  # nothing was marked: checked again next time
                raise
        scrub.blobs_checked += 1
        scrub.files_checked += files

    def _mark(self, scrub: ScrubPass, sha: str, problem: str, actual: str) -> None:
        conn = self.store.conn
        rows = conn.execute("SELECT id, client_id, path, status FROM files WHERE sha256 = ?", (sha,)).fetchall()
        fresh = [r for r in rows if r["status"] != "error"]
        if fresh:
            with transaction(conn):  # the only step that may fail: everything after it is told, not stored
                conn.execute(
                    "UPDATE files SET status = 'error', error_message = ?, last_verified = ? "
                    "WHERE sha256 = ? AND status != 'error'",
                    (scrub_failed(sha, problem, actual), iso(self.store.now()), sha),
                )
        for r in rows:
            scrub.damaged_total += 1
            if len(scrub.problems) < LISTED_PROBLEMS:
                scrub.problems.append(Problem(r["id"], r["client_id"], r["path"], sha, problem, actual))
        for r in fresh:  # marked by this pass: watchers and the history hear it once
            self.store.file_changed(dict(r), "updated")
            scrub.activity_rows += 1
            if scrub.activity_rows <= ACTIVITY_ROWS_PER_PASS:
                self._record(
                    "scrub_damaged",
                    "ERROR",
                    f"{r['path']}: {scrub_problem(sha, problem, actual)}; marked error, "
                    "the agent's next backup sends it again",
                    client_id=r["client_id"],
                    file_id=r["id"],
                )

    def _record(self, type_: str, level: str, message: str, **ids: str) -> None:
        try:
            self.store.record(type_, level, message, logger="backup.verify", **ids)
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            self.store.storage_alarm.report("recording the scrub's findings", exc)

    def _finish(self, scrub: ScrubPass) -> None:
        scrub.finished_at = self.last_finished = self.store.now()
        self.current = None
        unlisted = scrub.activity_rows - ACTIVITY_ROWS_PER_PASS
        more = f" ({unlisted} more newly marked, not listed one by one)" if unlisted > 0 else ""
        self._record(
            "scrub_completed",
            "ERROR" if scrub.damaged_total else "INFO",
            f"Storage scrub ({scrub.trigger}): {scrub.blobs_checked} blobs of {scrub.files_checked} files checked "
            f"({scrub.bytes_checked} bytes); {scrub.damaged_total} files with missing or damaged content{more}",
        )
        self._remember(scrub.finished_at)
        log.info(
            "server.scrub_finished",
            trigger=scrub.trigger,
            blobs=scrub.blobs_checked,
            files=scrub.files_checked,
            bytes=scrub.bytes_checked,
            damaged=scrub.damaged_total,
            seconds=round((scrub.finished_at - scrub.started_at).total_seconds(), 3),
        )

    def _remember(self, moment: datetime) -> None:
        try:
            self.store.set_setting(LAST_PASS_SETTING, iso(moment))
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            self.store.storage_alarm.report("remembering the scrub's time", exc)  # kept in memory meanwhile
