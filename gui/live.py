"""What each event means for a session's state: direct updates and keys to refresh.

Refreshes are debounced (bursts of events become one reload per key) and run in the
background, so a burst never stalls the session.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import structlog

from client.sequencer import Delivery, Resync
from gui import state as keys
from gui.operations import ViewContext

log = structlog.get_logger()

DEBOUNCE_S = 0.05
ACTIVITY_KEEP = 200

TOPIC_KEYS: dict[str, tuple[str, ...]] = {
    "client.changed": (keys.CLIENTS, keys.STATUS, keys.TABLE, keys.DATABASE),
    "file.changed": (keys.FILES, keys.CLIENTS, keys.STATUS, keys.TABLE, keys.DATABASE),
    "server.changed": (keys.STATUS,),
    "activity": (keys.LOGS,),
}
WRITE_KEYS: dict[str, tuple[str, ...]] = {
    "disconnect_client": (keys.CLIENTS, keys.STATUS),
    "delete_client": (keys.CLIENTS, keys.FILES, keys.STATUS, keys.DATABASE, keys.TABLE),
    "delete_file": (keys.FILES, keys.CLIENTS, keys.STATUS, keys.DATABASE, keys.TABLE),
    "verify_file": (keys.FILES,),
    "update_row": (keys.CLIENTS, keys.FILES, keys.DATABASE, keys.TABLE),
    "delete_row": (keys.CLIENTS, keys.FILES, keys.STATUS, keys.DATABASE, keys.TABLE),
    "start_server": (keys.STATUS,),
    "stop_server": (keys.STATUS,),
}


class LiveUpdates:
    def __init__(self, ctx: ViewContext) -> None:
        self.ctx = ctx
        self._dirty: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self.applied = 0  # events applied (for diagnostics and tests)
        self.suspended = False  # no browser attached: note changes, render nothing

    async def suspend(self) -> None:
        self.suspended = True

    async def resume(self) -> None:
        """A browser is attached again: show the current truth."""
        self.suspended = False
        self.schedule(self.ctx.loaded_keys)

    async def on_delivery(self, delivery: Delivery) -> None:
        if isinstance(delivery, Resync):
            log.info("gui.resync", reason=delivery.reason)
            await self.ctx.refresh_all()
            return
        self.applied += 1
        if self.suspended:
            return  # resume() reloads everything anyway
        topic = delivery.get("topic", "")
        data: dict[str, Any] = delivery.get("data") or {}
        store = self.ctx.store
        source = store.get(keys.DATA_SOURCE)
        if delivery.get("mode") in ("real", "mock") and source in ("real", "mock") and delivery["mode"] != source:
            # Both backends publish; only the one whose data is on screen describes it.
            return
        if topic == "client.changed":
            await self._patch(keys.CLIENTS, data.get("client_id"), data.get("client"))
        elif topic == "file.changed":
            await self._patch(keys.FILES, data.get("file_id"), data.get("file"))
        if topic == "activity":
            items = [data, *store.get(keys.ACTIVITY, [])][:ACTIVITY_KEEP]
            await store.set(keys.ACTIVITY, items)
        elif topic == "server.changed" and isinstance(data.get("status"), dict):
            await store.set(keys.STATUS, data["status"])
        elif topic == "bridge.mode":
            await store.set(keys.DATA_SOURCE, data.get("mode"))
            self.schedule(self.ctx.loaded_keys)  # the source of truth changed: reload what is shown
            return
        elif topic == "bridge.write":
            self.schedule(WRITE_KEYS.get(data.get("op", ""), ()))
            return
        self.schedule(TOPIC_KEYS.get(topic, ()))

    async def _patch(self, key: str, item_id: Any, record: dict[str, Any] | None) -> None:
        """Show a changed or deleted record at once if it is on the page shown; the debounced
        reload that follows settles order, filters and totals."""
        page = self.ctx.store.get(key)
        if not page or item_id is None:
            return
        items = page["items"]
        index = next((i for i, item in enumerate(items) if item.get("id") == item_id), None)
        if index is None:
            return
        if record is None:
            patched = {**page, "items": items[:index] + items[index + 1 :], "total": max(0, page["total"] - 1)}
        else:
            patched = {**page, "items": [*items[:index], record, *items[index + 1 :]]}
        await self.ctx.store.set(key, patched)

    def schedule(self, state_keys: Iterable[str]) -> None:
        self._dirty.update(state_keys)
        if self._dirty and (self._flush is None or self._flush.done()):
            self._flush = asyncio.create_task(self._flush_later())

    async def _flush_later(self) -> None:
        await asyncio.sleep(DEBOUNCE_S)
        dirty, self._dirty = self._dirty, set()
        await self.ctx.refresh(dirty)
        if self._dirty:
            self._flush = asyncio.create_task(self._flush_later())

    async def close(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flush
