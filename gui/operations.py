"""View helpers: load data into the store, or perform a write, in a few lines; reloads.

A view registers a loader per state key (how to fetch it); ``load_data_operation``
fetches one key with loading and error state; ``action_operation`` runs a write, tells
the operator how it went (message and error_code on failure, never a traceback) and
reloads what the catalogue says the write changed (``Operation.refreshes``: the one
place that knows). ``refresh`` reloads now; ``schedule`` reloads soon, debounced, so a
burst of events becomes one reload per key. A reload that starts covers every change
notified before it, so it takes its keys off the schedule: a write followed by the
backend's change events reloads each key once, not twice.

Only what is shown is reloaded. A key a view draws is *claimed* by it and loaded only while
one of its views is shown (``show`` / ``hide``); a change to a key no shown view draws marks
it ``stale`` instead, and the view loads it when it is shown again. Keys no view claims (the
bridge state the banner follows) are always loaded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import structlog

from client.errors import local_error
from client.tasks import TaskSet
from gui.outage import BridgeState, Shown, disagrees, shown_after
from gui.state import StateStore
from protocol.catalogue import get_operation
from protocol.errors import ErrorCode
from protocol.responses import Reply
from protocol.views import ViewKey

log = structlog.get_logger()

DEBOUNCE_S = 0.05

Loader = Callable[[], Awaitable[Reply]]
WriteCall = Callable[[], Awaitable[Reply]]
Outcome = Callable[[Reply], Awaitable[None]]


class Notifier(Protocol):
    async def notify(self, message: str, *, error: bool = False, error_code: str | None = None) -> None: ...


def failure_text(reply: Reply) -> str:
    code = reply.get("error_code") or "ERROR"
    return f"{reply.get('message') or 'the operation failed'} [{code}]"


class ViewContext:
    def __init__(self, store: StateStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier
        self._loaders: dict[str, Loader] = {}
        self._fallbacks: dict[str, Any] = {}
        self._scheduled: set[str] = set()
        self._flush: asyncio.Task[None] | None = None
        self._claimed: set[str] = set()  # keys some view draws: loaded only while one of them is shown
        self._shown: dict[str, int] = {}  # key -> how many shown views draw it
        self.stale: set[str] = set()  # claimed keys that changed while no view drawing them was shown
        self.tasks = TaskSet("view-context")

    def register_loader(self, state_key: str, loader: Loader, fallback_data: Any = None) -> None:
        self._loaders[state_key] = loader
        self._fallbacks[state_key] = fallback_data

    def claim(self, keys: Iterable[str]) -> None:
        """These keys are drawn by a view: load them only while a view drawing them is shown."""
        self._claimed.update(keys)

    async def show(self, keys: Iterable[str]) -> None:
        """A view drawing ``keys`` is shown: they follow changes again, and are loaded now."""
        wanted = list(dict.fromkeys(keys))
        for key in wanted:
            self._shown[key] = self._shown.get(key, 0) + 1
        await self.refresh(wanted)

    def hide(self, keys: Iterable[str]) -> None:
        for key in dict.fromkeys(keys):
            if self._shown.get(key, 0) > 0:
                self._shown[key] -= 1

    def shown(self, key: str) -> bool:
        """Is ``key`` drawn on screen now (or drawn by no view at all, so always followed)?"""
        return key not in self._claimed or self._shown.get(key, 0) > 0

    def _due(self, keys: Iterable[str]) -> list[str]:
        """Of ``keys`` with a loader, those to load now; the others are marked stale."""
        due = []
        for key in dict.fromkeys(keys):
            if key not in self._loaders:
                continue
            if self.shown(key):
                due.append(key)
            else:
                self.stale.add(key)
        return due

    async def load_data_operation(
        self,
        state_key: str,
        server_operation: Loader | None = None,
        fallback_data: Any = None,
        *,
        notify_errors: bool = False,
    ) -> Reply:
        """Fetch ``state_key`` (with the given or registered loader) into the store.

        On failure the key keeps its last good value (or ``fallback_data`` when it has none)
        and records the error, which the view shows beside the data."""
        loader = server_operation or self._loaders.get(state_key)
        if loader is None:
            raise KeyError(f"no loader for state key {state_key!r}")
        if fallback_data is None:
            fallback_data = self._fallbacks.get(state_key)
        self.store.set_loading(state_key, True)
        self.stale.discard(state_key)  # this load sees every change notified so far
        try:
            reply = await self.store.server_mediated_update(state_key, None, loader)
            await self._observe(state_key, reply)
            if not reply["success"] and fallback_data is not None:
                await self.store.set_fallback(state_key, fallback_data)
            if not reply["success"] and notify_errors:
                await self.notifier.notify(
                    f"Loading {state_key} failed: {failure_text(reply)}", error=True, error_code=reply.get("error_code")
                )
            return reply
        finally:
            self.store.set_loading(state_key, False)

    async def _observe(self, state_key: str, reply: Reply) -> None:
        """Note where the key's value now comes from; a reply that contradicts the bridge state
        the console follows (its event not here yet, or lost) has that state read again."""
        shown: dict[str, Shown] = self.store.get(ViewKey.PROVENANCE) or {}
        before = shown.get(state_key)
        now = shown_after(reply, before)
        if now != before:
            changed = {k: v for k, v in shown.items() if k != state_key}
            provenance = changed if now is None else {**changed, state_key: now}
            if (
                now is not None
                and before is not None
                and not now.stale
                and not before.stale
                and now.mode == before.mode
            ):
                # Only the time of a current answer moved: nothing on screen says it (an outage would,
                # from the time kept here), so no tab redraws its banner for every reload.
                self.store.keep(ViewKey.PROVENANCE, provenance)
            else:
                await self.store.set(ViewKey.PROVENANCE, provenance)
        state = self.store.get(ViewKey.BRIDGE_STATE)
        if isinstance(state, BridgeState) and state_key != ViewKey.BRIDGE_STATE and disagrees(state, reply):
            self.schedule([ViewKey.BRIDGE_STATE])

    @property
    def idle(self) -> bool:
        """No reload scheduled or on its way."""
        return not self._scheduled and (self._flush is None or self._flush.done())

    @property
    def loaded_keys(self) -> list[str]:
        return list(self._loaders)

    async def refresh(self, keys: Iterable[str]) -> None:
        """Reload every listed key that has a loader, now and concurrently."""
        wanted = [k for k in dict.fromkeys(keys) if k in self._loaders]
        self._scheduled.difference_update(wanted)  # this reload sees every change notified so far
        await asyncio.gather(*(self.load_data_operation(k) for k in wanted))

    async def refresh_all(self) -> None:
        """Everything may have changed: reload what is shown now, mark the rest stale."""
        await self.refresh(self._due(self._loaders))

    def schedule(self, keys: Iterable[str]) -> None:
        """Reload these keys soon (after DEBOUNCE_S), once however often they are scheduled meanwhile;
        those no shown view draws are only marked stale."""
        self._scheduled.update(self._due(keys))
        if self._scheduled and (self._flush is None or self._flush.done()):
            self._flush = self.tasks.spawn(self._flush_later(), "scheduled-reload")

    async def _flush_later(self) -> None:
        while self._scheduled:
            await asyncio.sleep(DEBOUNCE_S)
            due, self._scheduled = self._scheduled, set()
            await self.refresh(self._due(due))  # a view hidden meanwhile no longer wants its keys

    async def close(self) -> None:
        await self.tasks.close()

    async def write_operation(self, op: str, call: WriteCall, outcome: Outcome | None = None) -> Reply:
        """Run the write ``op`` through ``call``; ``outcome`` sees the reply (to tell the operator);
        after a success the keys the catalogue lists in the operation's ``refreshes`` are reloaded."""
        operation = get_operation(op)
        if not operation.is_write:
            raise ValueError(f"{op} is not a write; load it with load_data_operation")
        try:
            reply = await call()
        except Exception as exc:  # a bug in the call itself must still not look like success
            log.exception("gui.write_crashed", op=op)
            reply = local_error(ErrorCode.INTERNAL, f"{op} failed: {type(exc).__name__}: {exc}")
        if outcome is not None:
            await outcome(reply)
        if reply["success"]:
            # The writer's screen is reloaded here, at once; the bridge.write notice of this
            # same session is then ignored (gui/live.py), so each key is reloaded once.
            await self.refresh(self._due(operation.refreshes))
        return reply

    async def action_operation(
        self,
        action_name: str,
        op: str,
        call: WriteCall,
        success_message: str | None = None,
        on_success: Callable[[], object] | None = None,
    ) -> Reply:
        """Run a write; show its outcome; reload what it changed after a success.

        ``on_success`` runs before the outcome is shown (e.g. to close the dialog the action came from)."""

        async def tell(reply: Reply) -> None:
            if reply["success"]:
                if on_success is not None:
                    on_success()
                await self.notifier.notify(success_message or reply["message"] or f"{action_name} done")
            else:
                log.info("gui.action_failed", action=action_name, error_code=reply.get("error_code"))
                await self.notifier.notify(
                    f"{action_name} failed: {failure_text(reply)}", error=True, error_code=reply.get("error_code")
                )

        return await self.write_operation(op, call, tell)
