"""What each event means for a session's state: direct updates and keys to reload.

Reloads go through ``ViewContext.schedule`` (debounced, in the background), so a burst
of events never stalls the session and becomes one reload per key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from client.sequencer import Delivery, Resync
from gui.operations import ViewContext
from gui.outage import BridgeState
from protocol.catalogue import CATALOGUE
from protocol.events import (
    ACTIVITY,
    BRIDGE_MODE,
    BRIDGE_WRITE,
    CLIENT_CHANGED,
    FILE_CHANGED,
    RESTORE_JOB,
    SERVER_CHANGED,
    SNAPSHOT_ENDED,
)
from protocol.views import ViewKey

log = structlog.get_logger()

ACTIVITY_KEEP = 200
# The newest snapshot.ended (a backup run ended). The views that list one client's runs (its page, the
# Restore view's timeline) have no loaders to schedule: they follow this key and reload their own list
# when the run was of the client they show.
RUN_ENDED_KEY = "live.run_ended"
# The newest restore.job event (it carries the whole job): an open restore dialog follows its job by
# it instead of asking the server every second.
RESTORE_JOB_KEY = "live.restore_job"

# What the backends' change events make stale (whoever caused the change: an agent, the
# demo's evolution, another console). What a write makes stale is the catalogue's.
TOPIC_KEYS: dict[str, tuple[ViewKey, ...]] = {
    CLIENT_CHANGED: (ViewKey.CLIENTS, ViewKey.STATUS, ViewKey.TABLE, ViewKey.DATABASE),
    FILE_CHANGED: (ViewKey.FILES, ViewKey.CLIENTS, ViewKey.STATUS, ViewKey.TABLE, ViewKey.DATABASE),
    SERVER_CHANGED: (ViewKey.STATUS,),
    ACTIVITY: (ViewKey.LOGS,),
}


class LiveUpdates:
    def __init__(self, ctx: ViewContext, own_session: Callable[[], str]) -> None:
        self.ctx = ctx
        self.own_session = own_session  # the bridge session this console's requests carry
        self.applied = 0  # events applied (for diagnostics and tests)
        self.suspended = False  # no browser attached: note changes, render nothing

    async def suspend(self) -> None:
        self.suspended = True

    async def resume(self) -> None:
        """A browser is attached again: show the current truth."""
        self.suspended = False
        self.ctx.schedule(self.ctx.loaded_keys)

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
        known = store.get(ViewKey.BRIDGE_STATE)
        state = known if isinstance(known, BridgeState) else BridgeState()
        mode = delivery.get("mode")
        if topic == BRIDGE_MODE:
            # The one state every tab follows: the pill, the outage banner and the write gates.
            await store.set(ViewKey.BRIDGE_STATE, state.updated(data))
            self.ctx.schedule(self.ctx.loaded_keys)  # the source of truth changed: reload what is shown
            return
        if isinstance(mode, str) and not state.describes(mode):
            return
        if topic == CLIENT_CHANGED:
            await self._patch(ViewKey.CLIENTS, data.get("client_id"), data.get("client"))
        elif topic == FILE_CHANGED:
            await self._patch(ViewKey.FILES, data.get("file_id"), data.get("file"))
        if topic == ACTIVITY:
            items = [data, *store.get(ViewKey.ACTIVITY, [])][:ACTIVITY_KEEP]
            await store.set(ViewKey.ACTIVITY, items)
        elif topic == SERVER_CHANGED and isinstance(data.get("status"), dict):
            await store.set(ViewKey.STATUS, data["status"])
        elif topic == SNAPSHOT_ENDED:
            await store.set(RUN_ENDED_KEY, data)
        elif topic == RESTORE_JOB:
            await store.set(RESTORE_JOB_KEY, data)
        elif topic == BRIDGE_WRITE:
            self._on_write(data)
            return
        self.ctx.schedule(TOPIC_KEYS.get(topic, ()))

    def _on_write(self, data: dict[str, Any]) -> None:
        """Another console's write: reload what the catalogue says it changed.

        This console's own writes were reloaded by ViewContext.write_operation as soon as
        their reply came (the writer sees the result at once, without waiting for the
        event); reloading again here would only repeat it. Other consoles learn of the
        write from this notice alone."""
        if data.get("session") == self.own_session():
            return
        operation = CATALOGUE.get(str(data.get("op", "")))
        # A plugin operation declares nothing: anything shown may have changed.
        self.ctx.schedule(operation.refreshes if operation is not None else self.ctx.loaded_keys)

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
