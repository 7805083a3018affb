"""The audit trail: append-only JSON lines in ``<data-dir>/bridge/audit.log``.

Each record is written and fsynced before the reply it belongs to leaves the bridge, so
an acknowledged write is always in the trail, across restarts and kill -9. A line torn
by a crash mid-write was never acknowledged: it is cut off when the log is opened, and
a reader skips any line it cannot parse. Records are read newest first, filtered and
paged; without a filter the count of records is kept in memory, so the newest page
costs only the bytes it shows.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

from actors.bridge.auth.files import iso, parse_time
from runtime.credentials import PRIVATE_FILE, private_dir

log = structlog.get_logger()

FILE = "audit.log"
BLOCK = 64 * 1024
MAX_ARGS_BYTES = 8 * 1024  # a record's arguments beyond this are summarised, not stored


def _bounded(value: Any) -> Any:
    text = json.dumps(value, default=str)
    if len(text) <= MAX_ARGS_BYTES:
        return value
    return {"truncated": True, "bytes": len(text)}


class AuditLog:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()  # the ZAP thread appends refusals too
        private_dir(path.parent)
        self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
        self._count = self._recover()

    def _recover(self) -> int:
        """Cut a torn last line; return the number of records."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return 0
        count = 0
        last_newline = -1
        with open(self.path, "rb") as stream:
            offset = 0
            while chunk := stream.read(BLOCK):
                count += chunk.count(b"\n")
                index = chunk.rfind(b"\n")
                if index >= 0:
                    last_newline = offset + index
                offset += len(chunk)
        if last_newline + 1 != size:
            os.ftruncate(self._fd, last_newline + 1)
            os.fsync(self._fd)
            log.warning("bridge.audit_torn_line_cut", path=str(self.path), bytes=size - last_newline - 1)
        return count

    def __len__(self) -> int:
        return self._count

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Stamp, write and fsync one record; returns it as written."""
        entry = {"ts": iso(self.clock()), **record}
        for name in ("args", "ids"):
            if name in entry:
                entry[name] = _bounded(entry[name])
        line = (json.dumps(entry, default=str, separators=(",", ":")) + "\n").encode("utf-8")
        with self._lock:
            view = memoryview(line)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
            self._count += 1
        return entry

    def close(self) -> None:
        with self._lock:
            os.close(self._fd)

    def _newest_first(self) -> Iterator[dict[str, Any]]:
        with open(self.path, "rb") as stream:
            position = stream.seek(0, os.SEEK_END)
            rest = b""
            while position > 0:
                step = min(BLOCK, position)
                position -= step
                stream.seek(position)
                lines = (stream.read(step) + rest).split(b"\n")
                rest = lines[0]
                for line in reversed(lines[1:]):
                    if record := _parse(line):
                        yield record
            if record := _parse(rest):
                yield record

    def page(
        self,
        offset: int = 0,
        limit: int = 50,
        *,
        user: str | None = None,
        op: str | None = None,
        outcome: str | None = None,
        since: float | None = None,
    ) -> dict[str, Any]:
        """Records newest first, filtered; ``{items, total, offset, limit}``."""
        since_text = iso(since) if since is not None else None
        filtered = any(v is not None for v in (user, op, outcome, since_text))
        items: list[dict[str, Any]] = []
        total = 0
        for record in self._newest_first():
            if filtered and not _matches(record, user, op, outcome, since_text):
                if since_text is not None and str(record.get("ts", "")) < since_text:
                    break  # newest first: everything further is older still
                continue
            if offset <= total < offset + limit:
                items.append(_for_reply(record))
            total += 1
            if not filtered and total >= offset + limit:
                total = self._count
                break
        return {"items": items, "total": total, "offset": offset, "limit": limit}


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _matches(record: dict[str, Any], user: str | None, op: str | None, outcome: str | None, since: str | None) -> bool:
    who = record.get("who")
    return (
        (user is None or (isinstance(who, dict) and who.get("user") == user))
        and (op is None or record.get("op") == op)
        and (outcome is None or record.get("outcome") == outcome)
        and (since is None or str(record.get("ts", "")) >= since)
    )


def _for_reply(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    out["ts"] = parse_time(record.get("ts"))
    return out
