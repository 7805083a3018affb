"""One GUI session (one browser tab): its connection, state, view context and live updates."""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from client.async_connection import ConnectionState
from client.async_events import AsyncEventFollower
from client.facade import ServerBridge
from gui import state as keys
from gui.live import LiveUpdates
from gui.operations import Notifier, ViewContext
from gui.state import StateStore

log = structlog.get_logger()


class Session:
    def __init__(self, endpoint: str, notifier: Notifier) -> None:
        self.store = StateStore()
        self.ctx = ViewContext(self.store, notifier)
        self.live = LiveUpdates(self.ctx)
        self._connect(endpoint)

    def _connect(self, endpoint: str) -> None:
        self.bridge = ServerBridge(endpoint)
        self.events = AsyncEventFollower(self.bridge.async_client, self.live.on_delivery)
        self._observed_mode: str | None = None
        self.bridge.async_client.add_state_listener(self._on_connection)
        self.bridge.async_client.reply_observers.append(self._observe_reply)

    @property
    def endpoint(self) -> str:
        return self.bridge.endpoint

    async def start(self) -> None:
        await self.store.set(keys.CONNECTION, ConnectionState.DISCONNECTED.value)
        await self.bridge.start()
        await self.events.start()

    async def close(self) -> None:
        await self.live.close()
        await self.events.close()
        await self.bridge.close()

    async def browser_left(self) -> None:
        """The tab disconnected (closed, or reloading): stop rendering until it is back."""
        await self.live.suspend()

    async def browser_back(self) -> None:
        await self.live.resume()

    async def reconnect(self, endpoint: str) -> None:
        """Attach this session to another bridge; everything shown is reloaded from there."""
        await self.events.close()
        await self.bridge.close()
        self._connect(endpoint)
        await self.start()
        await self.ctx.refresh_all()

    async def _on_connection(self, state: ConnectionState) -> None:
        await self.store.set(keys.CONNECTION, state.value)
        if state is ConnectionState.CONNECTED:
            # Whatever happened while we were away: show the current truth.
            self.live.schedule(self.ctx.loaded_keys)

    def _observe_reply(self, reply: dict[str, Any]) -> None:
        mode = reply.get("mode")
        if mode in ("real", "mock") and mode != self._observed_mode:
            self._observed_mode = mode
            asyncio.get_running_loop().create_task(self.store.set(keys.DATA_SOURCE, mode))
