"""Per-session state: values by key, their loading and error flags, and subscribers.

The keys views use are ``protocol.views.ViewKey`` (the catalogue names them in each
write's ``refreshes``); a view may add its own.

Subscribers hear of what a view draws: a new value, a new error, a fallback. The loading
flag is kept for whoever asks but notifies nobody: no view draws it, and with many tabs
open every notification is a render per tab (a load used to cost three: loading on, the
value, loading off).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from client.errors import local_error
from protocol.errors import ErrorCode
from protocol.responses import Reply

log = structlog.get_logger()

Subscriber = Callable[[str, Any], Awaitable[None] | None]
ServerOperation = Callable[[], Awaitable[Reply]]


@dataclass(slots=True)
class StoreEntry:
    value: Any = None
    loading: bool = False
    error: Reply | None = None  # the failed reply, when the last load failed
    version: int = 0


class StateStore:
    def __init__(self) -> None:
        self._entries: dict[str, StoreEntry] = {}
        self._subscribers: dict[str, list[Subscriber]] = {}

    def entry(self, key: str) -> StoreEntry:
        return self._entries.setdefault(key, StoreEntry())

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

    def keep(self, key: str, value: Any) -> None:
        """Hold ``value`` without telling subscribers: for a change nothing on screen draws."""
        entry = self.entry(key)
        entry.value = value
        entry.version += 1

    def set_loading(self, key: str, loading: bool) -> None:
        self.entry(key).loading = loading

    async def set_fallback(self, key: str, value: Any) -> None:
        """Show ``value`` for a key that has none (its first load failed); its error stays."""
        entry = self.entry(key)
        if entry.value is None:
            entry.value = value
            await self._notify(key)

    async def set_error(self, key: str, reply: Reply) -> None:
        self.entry(key).error = reply
        await self._notify(key)

    async def _notify(self, key: str) -> None:
        for subscriber in list(self._subscribers.get(key, [])):
            try:
                result = subscriber(key, self._entries[key].value)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("gui.subscriber_failed", key=key)

    async def server_mediated_update(self, key: str, value: Any, server_operation: ServerOperation) -> Reply:
        """Apply ``value`` to ``key`` only through the server: on success the key holds what the
        server returned (or ``value`` when the reply carries no data); on failure the key is
        unchanged, its error is set, and the failed reply is returned as is."""
        try:
            reply = await server_operation()
        except Exception as exc:  # a bug in the operation itself must still not look like success
            log.exception("gui.server_operation_crashed", key=key)
            reply = local_error(ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        if reply.get("success") is True:
            data = reply.get("data")
            await self.set(key, value if data is None else data)
        else:
            await self.set_error(key, reply)
        return reply
