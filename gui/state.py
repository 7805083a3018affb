"""Per-session state: values by key, their loading and error flags, and subscribers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger()

Subscriber = Callable[[str, Any], Awaitable[None] | None]
ServerOperation = Callable[[], Awaitable[dict[str, Any]]]

# The keys views use; a view may add its own.
CLIENTS = "clients"
FILES = "files"
STATUS = "status"
SYSTEM = "system"
ACTIVITY = "activity"
LOGS = "logs"
DATABASE = "database"
TABLE = "table"
CONNECTION = "connection"
DATA_SOURCE = "data_source"


@dataclass(slots=True)
class Entry:
    value: Any = None
    loading: bool = False
    error: dict[str, Any] | None = None  # the failed reply, when the last load failed
    version: int = 0


class StateStore:
    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}
        self._subscribers: dict[str, list[Subscriber]] = {}

    def entry(self, key: str) -> Entry:
        return self._entries.setdefault(key, Entry())

    def get(self, key: str, default: Any = None) -> Any:
        entry = self._entries.get(key)
        return default if entry is None or entry.value is None else entry.value

    def subscribe(self, key: str, subscriber: Subscriber) -> Callable[[], None]:
        self._subscribers.setdefault(key, []).append(subscriber)

        def unsubscribe() -> None:
            subs = self._subscribers.get(key, [])
            if subscriber in subs:
                subs.remove(subscriber)

        return unsubscribe

    async def set(self, key: str, value: Any) -> None:
        entry = self.entry(key)
        if entry.error is None and entry.value is not None and entry.value == value:
            return  # a refresh that changed nothing re-renders nothing
        entry.value = value
        entry.error = None
        entry.version += 1
        await self._notify(key)

    async def set_loading(self, key: str, loading: bool) -> None:
        self.entry(key).loading = loading
        await self._notify(key)

    async def set_error(self, key: str, reply: dict[str, Any]) -> None:
        self.entry(key).error = reply
        await self._notify(key)

    async def _notify(self, key: str) -> None:
        for subscriber in list(self._subscribers.get(key, [])):
            try:
                result = subscriber(key, self._entries[key].value)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("gui.subscriber_failed", key=key)

    async def server_mediated_update(self, key: str, value: Any, server_operation: ServerOperation) -> dict[str, Any]:
        """Apply ``value`` to ``key`` only through the server: on success the key holds what the
        server returned (or ``value`` when the reply carries no data); on failure the key is
        unchanged, its error is set, and the failed reply is returned as is."""
        try:
            reply = await server_operation()
        except Exception as exc:  # a bug in the operation itself must still not look like success
            log.exception("gui.server_operation_crashed", key=key)
            reply = {
                "success": False,
                "message": f"{type(exc).__name__}: {exc}",
                "error_code": "INTERNAL",
                "mode": "local",
            }
        if reply.get("success") is True:
            data = reply.get("data")
            await self.set(key, value if data is None else data)
        else:
            await self.set_error(key, reply)
        return reply
