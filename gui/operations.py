"""View helpers: load data into the store, or perform an action, in a few lines.

A view registers a loader per state key (how to fetch it); ``load_data_operation``
fetches one key with loading and error state; ``action_operation`` runs a write,
tells the operator how it went (message and error_code on failure, never a traceback)
and refreshes the keys the action touched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import structlog

from gui.state import StateStore

log = structlog.get_logger()

ServerOperation = Callable[..., Awaitable[dict[str, Any]]]
Loader = Callable[[], Awaitable[dict[str, Any]]]


class Notifier(Protocol):
    async def notify(self, message: str, *, error: bool = False, error_code: str | None = None) -> None: ...


def failure_text(reply: dict[str, Any]) -> str:
    code = reply.get("error_code") or "ERROR"
    return f"{reply.get('message') or 'the operation failed'} [{code}]"


class ViewContext:
    def __init__(self, store: StateStore, notifier: Notifier) -> None:
        self.store = store
        self.notifier = notifier
        self._loaders: dict[str, Loader] = {}
        self._fallbacks: dict[str, Any] = {}

    def register_loader(self, state_key: str, loader: Loader, fallback_data: Any = None) -> None:
        self._loaders[state_key] = loader
        self._fallbacks[state_key] = fallback_data

    async def load_data_operation(
        self,
        state_key: str,
        server_operation: Loader | None = None,
        fallback_data: Any = None,
        *,
        notify_errors: bool = False,
    ) -> dict[str, Any]:
        """Fetch ``state_key`` (with the given or registered loader) into the store.

        On failure the key keeps its last good value (or ``fallback_data`` when it has none)
        and records the error, which the view shows beside the data."""
        loader = server_operation or self._loaders.get(state_key)
        if loader is None:
            raise KeyError(f"no loader for state key {state_key!r}")
        if fallback_data is None:
            fallback_data = self._fallbacks.get(state_key)
        await self.store.set_loading(state_key, True)
        try:
            reply = await self.store.server_mediated_update(state_key, None, loader)
            if not reply.get("success") and self.store.get(state_key) is None and fallback_data is not None:
                entry = self.store.entry(state_key)
                entry.value = fallback_data
            if not reply.get("success") and notify_errors:
                await self.notifier.notify(
                    f"Loading {state_key} failed: {failure_text(reply)}", error=True, error_code=reply.get("error_code")
                )
            return reply
        finally:
            await self.store.set_loading(state_key, False)

    @property
    def loaded_keys(self) -> list[str]:
        return list(self._loaders)

    async def refresh(self, keys: Iterable[str]) -> None:
        """Reload every listed key that has a loader, concurrently."""
        wanted = [k for k in dict.fromkeys(keys) if k in self._loaders]
        await asyncio.gather(*(self.load_data_operation(k) for k in wanted))

    async def refresh_all(self) -> None:
        await self.refresh(list(self._loaders))

    async def action_operation(
        self,
        action_name: str,
        server_operation: ServerOperation,
        operation_data: dict[str, Any] | None = None,
        success_message: str | None = None,
        refresh_keys: Iterable[str] = (),
        on_success: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Run a write; show its outcome; refresh ``refresh_keys`` after a success.

        ``on_success`` runs before the outcome is shown (e.g. to close the dialog the action came from)."""
        try:
            reply = await server_operation(**(operation_data or {}))
        except Exception as exc:
            log.exception("gui.action_crashed", action=action_name)
            reply = {
                "success": False,
                "message": f"{action_name} failed: {type(exc).__name__}: {exc}",
                "error_code": "INTERNAL",
                "mode": "local",
            }
        if reply.get("success") is True:
            if on_success is not None:
                on_success()
            await self.notifier.notify(success_message or reply.get("message") or f"{action_name} done")
            await self.refresh(refresh_keys)
        else:
            log.info("gui.action_failed", action=action_name, error_code=reply.get("error_code"))
            await self.notifier.notify(
                f"{action_name} failed: {failure_text(reply)}", error=True, error_code=reply.get("error_code")
            )
        return reply
