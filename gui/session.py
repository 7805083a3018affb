"""One GUI session (one browser tab): its connection, state, view context and live updates.

Everything the session starts in the background is owned: its own small tasks and the
views' pollers by ``tasks``, scheduled reloads by the view context, the connection's and
the event follower's by those objects; ``close`` ends them all.
"""

from __future__ import annotations

import structlog

from client.async_connection import ConnectionState
from client.async_events import AsyncEventFollower
from client.facade import ServerBridge
from client.tasks import TaskSet
from gui.live import LiveUpdates
from gui.operations import Notifier, ViewContext
from gui.state import StateStore
from protocol.modes import BACKEND_MODES
from protocol.responses import Reply
from protocol.views import ViewKey

log = structlog.get_logger()


class GuiSession:
    def __init__(self, endpoint: str, notifier: Notifier) -> None:
        self.store = StateStore()
        self.ctx = ViewContext(self.store, notifier)
        self.tasks = TaskSet("gui-session")
        self.live = LiveUpdates(self.ctx, lambda: self.bridge.session)
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
        await self.store.set(ViewKey.CONNECTION, ConnectionState.DISCONNECTED.value)
        await self.bridge.start()
        await self.events.start()

    async def close(self) -> None:
        await self.events.close()  # first: no event may schedule work on a closed context
        await self.ctx.close()
        await self.bridge.close()  # then no reply can start a task
        await self.tasks.close()

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
        await self.store.set(ViewKey.CONNECTION, state.value)
        if state is ConnectionState.CONNECTED:
            # Whatever happened while we were away: show the current truth.
            self.ctx.schedule(self.ctx.loaded_keys)

    def _observe_reply(self, reply: Reply) -> None:
        mode = reply["mode"]
        if mode in BACKEND_MODES and mode != self._observed_mode:
            self._observed_mode = mode
            self.tasks.spawn(self.store.set(ViewKey.DATA_SOURCE, mode), "show-data-source")
