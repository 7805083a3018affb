"""Full storage on the server: how it is recognised, and how it is reported without flooding anyone.

A full disk (or quota) shows up as ENOSPC/EDQUOT from the blob store and as SQLITE_FULL
("database or disk is full") from SQLite. Either is a fact about the server, not a bug:
the request or upload that met it fails with STORAGE_FULL, nothing partial is kept, and
operators hear about it through one ``storage_full`` activity entry (level ERROR) per
minute at most, however many chunks and writes keep failing in between.
"""

from __future__ import annotations

import errno
import itertools
import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import structlog

from protocol.events import ACTIVITY

log = structlog.get_logger()

STORAGE_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL = 13  # the primary result code behind "database or disk is full"
REPORT_EVERY_S = 60.0  # an agent pushing 16 chunks a turn must not write 16 activity rows a turn
QUOTED_ERROR_CHARS = 200


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or quota) under the database or the blobs is full."""
    if isinstance(exc, OSError):
        return exc.errno in STORAGE_FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == SQLITE_FULL
    return False


def describe(exc: BaseException) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return text[:QUOTED_ERROR_CHARS]


class StorageAlarm:
    """Turns full-storage failures into a rate-limited ``storage_full`` activity entry and log line."""

    def __init__(
        self,
        record: Callable[..., Any],
        emit: Callable[[str, dict[str, Any]], None],
        now: Callable[[], datetime],
        *,
        clock: Callable[[], float] = time.monotonic,
        every_s: float = REPORT_EVERY_S,
    ) -> None:
        self._record = record
        self._emit = emit
        self._now = now
        self._clock = clock
        self._every_s = every_s
        self._last: float | None = None
        self._suppressed = 0
        self._fallback_ids = itertools.count(1)
        self.occurrences = 0

    def report(self, where: str, exc: BaseException) -> None:
        """One more failure because storage is full; reported now unless one was reported recently."""
        self.occurrences += 1
        moment = self._clock()
        if self._last is not None and moment - self._last < self._every_s:
            self._suppressed += 1
            log.debug("server.storage_full_again", where=where, error=describe(exc))
            return
        self._last = moment
        more = f" ({self._suppressed} more failures since the last report)" if self._suppressed else ""
        self._suppressed = 0
        message = f"Server storage is full: {where} failed ({describe(exc)}){more}; free space on the server"
        try:
            self._record("storage_full", "ERROR", message, logger="backup.storage")
        except Exception as again:
            if not is_storage_full(again):
                raise
            # The activity table lives on the full disk too: the consoles still get the event.
            log.error("activity.storage_full", message=message, logger="backup.storage", recorded=False)
            self._emit(
                ACTIVITY,
                {
                    "id": f"storage_full-{next(self._fallback_ids)}",
                    "timestamp": self._now(),
                    "type": "storage_full",
                    "level": "ERROR",
                    "client_id": None,
                    "file_id": None,
                    "message": message,
                },
            )
