"""The server's own log, served by get_logs: structlog events copied into a bounded store.

``install_capture`` puts a processor in front of the renderer of the current structlog
configuration: every event the process logs (any thread, the ZAP thread included) is
copied into the in-memory ``LogStore`` and, when a file is given, appended as a JSON
line to a size-rotated file in the data directory (0600: logs name clients, paths and
addresses). Secrets the server holds (the enrollment token) are registered with
``redact``: the processor masks them wherever they appear, in the store, the file and
the console output alike, so no mistake elsewhere can put one in a log. Otherwise it
passes the event on unchanged.
"""

from __future__ import annotations

import itertools
import json
import logging
import logging.handlers
import threading
from collections import OrderedDict, deque
from collections.abc import MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from protocol.catalogue import LOG_LEVELS
from runtime.credentials import open_private

MASK = "[redacted]"
MAX_SECRETS = 16  # the current token and a few rotated ones

LOG_LIMIT = 5000
FILE_BYTES = 5 * 1024 * 1024
FILE_BACKUPS = 3
_RANK = {level: rank for rank, level in enumerate(LOG_LEVELS)}
_LEVEL_ALIASES = {"WARN": "WARNING", "EXCEPTION": "ERROR", "FATAL": "CRITICAL", "MSG": "INFO"}
# Keys that are the entry's own fields or noise in a one-line message.
_NOT_IN_MESSAGE = frozenset({"event", "level", "timestamp", "actor", "logger", "client_id", "exc_info", "_record"})


class LogStore:
    """A bounded, thread-safe ring of LogEntry dicts, newest last."""

    def __init__(self, limit: int = LOG_LIMIT, file: Path | None = None) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=limit)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._secrets: OrderedDict[str, None] = OrderedDict()
        self._file_logger: logging.Logger | None = None
        if file is not None:
            handler = PrivateRotatingFileHandler(file, maxBytes=FILE_BYTES, backupCount=FILE_BACKUPS, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            # A private logger: stdlib logging elsewhere in the process stays untouched.
            self._file_logger = logging.getLogger(f"backup-server-file-{id(self)}")
            self._file_logger.propagate = False
            self._file_logger.setLevel(logging.DEBUG)
            self._file_logger.addHandler(handler)

    def redact(self, secret: str) -> None:
        """Mask ``secret`` in every event logged from now on."""
        if not secret:
            return
        with self._lock:
            self._secrets[secret] = None
            while len(self._secrets) > MAX_SECRETS:
                self._secrets.popitem(last=False)

    def scrub(self, fields: MutableMapping[str, Any]) -> None:
        """Replace the registered secrets inside the event's text values, in place."""
        secrets = list(self._secrets)
        if not secrets:
            return
        for name, value in fields.items():
            text = value if isinstance(value, str) else None
            if text is None and isinstance(value, BaseException | list | tuple | dict):
                text = repr(value)  # an exception or a container may quote a secret too
            if text is not None and any(secret in text for secret in secrets):
                for secret in secrets:
                    text = text.replace(secret, MASK)
                fields[name] = text

    def add(self, level: str, event: str, fields: MutableMapping[str, Any]) -> None:
        level = _LEVEL_ALIASES.get(level.upper(), level.upper())
        if level not in _RANK:
            level = "INFO"
        message = str(
            fields.get("message")
            or " ".join(f"{k}={_short(v)}" for k, v in fields.items() if k not in _NOT_IN_MESSAGE and k != "message")
        )
        client_id = fields.get("client_id")
        entry: dict[str, Any] = {
            "id": "",
            "timestamp": datetime.now(UTC),
            "level": level,
            "logger": str(fields.get("logger") or "backup.server"),
            "event": event,
            "message": message,
            "client_id": client_id if isinstance(client_id, str) else None,
        }
        with self._lock:
            entry["id"] = f"log-{next(self._ids)}"
            self._entries.append(entry)
        if self._file_logger is not None:
            line = {**entry, "timestamp": entry["timestamp"].isoformat()}
            self._file_logger.log(logging.getLevelName(level), json.dumps(line, default=str))

    def query(self, level: str | None, text: str | None, offset: int, limit: int) -> dict[str, Any]:
        minimum = _RANK[level] if level else 0
        needle = (text or "").lower()
        with self._lock:
            entries = list(self._entries)
        matched = [
            e
            for e in reversed(entries)
            if _RANK[e["level"]] >= minimum
            and (not needle or needle in e["event"].lower() or needle in e["message"].lower())
        ]
        return {
            "items": [dict(e) for e in matched[offset : offset + limit]],
            "total": len(matched),
            "offset": offset,
            "limit": limit,
        }

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        if self._file_logger is not None:
            for handler in list(self._file_logger.handlers):
                handler.close()
                self._file_logger.removeHandler(handler)


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Every file it opens (the first and each one after a rotation) is readable by its owner only."""

    def _open(self) -> Any:
        return open_private(Path(self.baseFilename), self.encoding, self.errors)


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


class _Capture:
    """The structlog processor; marked so a second install replaces the first."""

    def __init__(self, store: LogStore) -> None:
        self.store = store

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        try:
            self.store.scrub(event_dict)
            level = str(event_dict.get("level") or method_name)
            self.store.add(level, str(event_dict.get("event", "")), event_dict)
        except Exception:  # logging must never break the caller
            pass
        return event_dict


def install_capture(store: LogStore) -> None:
    """Copy every structlog event of this process into ``store`` (replacing an earlier capture)."""
    processors = structlog.get_config()["processors"]
    # In place: loggers already bound (cache_logger_on_first_use) share this very list.
    processors[:] = [p for p in processors if not isinstance(p, _Capture)]
    # Before the renderer (the last processor), after level/timestamp were added.
    processors.insert(max(0, len(processors) - 1), _Capture(store))
