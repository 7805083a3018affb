"""One GUI session: one browser tab's connection to the bridge, from its login page to sign-out.

The tab's own connection (the GUI process's CURVE key) first carries only ``login``. A
successful sign-in gives a token that every later request carries (header ``auth``), so
the bridge runs them with that user's name and role; only then do live updates start.
Signing out, or the bridge answering UNAUTHENTICATED (the session expired or was ended),
ends this object: the app opens a fresh one for the login page, so nothing of one user's
state (store, views, tasks, download links) survives into the next sign-in.

Everything the session starts in the background is owned: its own small tasks and the
views' pollers by ``tasks``, scheduled reloads by the view context, the connection's and
the event follower's by those objects; ``close`` ends them all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from client.async_connection import ConnectionState
from client.async_events import AsyncEventFollower
from client.facade import ServerBridge
from client.tasks import TaskSet
from gui.auth import LoginOutcome, SignedIn, login_outcome
from gui.config import GuiConfig
from gui.frames import Frames
from gui.live import LiveUpdates
from gui.operations import Notifier, ViewContext
from gui.state import StateStore
from protocol.errors import ErrorCode
from protocol.responses import Reply
from protocol.views import ViewKey

log = structlog.get_logger()

Expired = Callable[[], Coroutine[Any, Any, None]]

FOLLOWER_CLOSE_S = 0.5


class GuiSession:
    def __init__(self, config: GuiConfig, notifier: Notifier) -> None:
        self.config = config
        self.store = StateStore()
        self.ctx = ViewContext(self.store, notifier)
        self.tasks = TaskSet("gui-session")
        # How the views reach the tab: a frame at a time (the app tells it how to see the tab's backlog).
        self.frames = Frames(self.tasks.spawn)
        self.live = LiveUpdates(self.ctx, lambda: self.bridge.session)
        self.user: SignedIn | None = None
        self.key = uuid.uuid4().hex  # this sign-in's id: what its download links are bound to
        self.on_expired: Expired | None = None  # the app's way back to the login page
        self._expiring = False
        self._connect(config.endpoint)

    def _connect(self, endpoint: str | None) -> None:
        self.bridge = ServerBridge(endpoint, connection=self.config.connection)
        self.events = AsyncEventFollower(self.bridge.async_client, self.live.on_delivery)
        self.bridge.async_client.add_state_listener(self._on_connection)
        self.bridge.async_client.reply_observers.append(self._observe_reply)
        if self.user is not None:
            self.bridge.async_client.auth = self.user.token

    @property
    def endpoint(self) -> str:
        return self.bridge.endpoint

    async def start(self) -> None:
        await self.store.set(ViewKey.CONNECTION, ConnectionState.DISCONNECTED.value)
        await self.bridge.start()

    # ------------------------------------------------------------------ sign-in
    async def sign_in(self, username: str, password: str, code: str | None, remote_address: str | None) -> LoginOutcome:
        reply = await self.bridge.login_async(username, password, totp=code or None, remote_address=remote_address)
        outcome = login_outcome(reply)
        if isinstance(outcome, SignedIn):
            self.user = outcome
            self.bridge.async_client.auth = outcome.token
            log.info("gui.signed_in", user=outcome.user, role=outcome.role.value)
            await self.events.start()
        else:
            log.info("gui.sign_in_refused", user=username, error_code=reply.get("error_code"))
        return outcome

    async def sign_out(self) -> None:
        if self.user is not None:
            reply = await self.bridge.logout_async()
            log.info("gui.signed_out", user=self.user.user, ended=reply["success"])
        await self.close()

    async def save_settings(self, changes: dict[str, object]) -> Reply:
        """Merge ``changes`` into the signed-in user's settings on the bridge (they follow the user)."""
        reply = await self.bridge.set_settings_async(changes)
        if reply["success"] and self.user is not None:
            settings = (reply["data"] or {}).get("settings", {**self.user.settings, **changes})
            self.user = SignedIn(self.user.user, self.user.role, self.user.token, self.user.expires_at, settings)
        return reply

    # ------------------------------------------------------------------ lifecycle
    async def close(self) -> None:
        self.user = None
        self.config.links.revoke(self.key)
        await self._close_events()  # first: no event may schedule work on a closed context
        await self.ctx.close()
        await self.bridge.close()  # then no reply can start a task
        await self.tasks.close()

    async def _close_events(self) -> None:
        # The follower's close cancels its task once. On Python 3.11, asyncio.wait_for drops a
        # cancellation that lands in the turn its result does (a reply, an event) and the task runs
        # on; closing would then wait forever. Closing again cancels again, and this time it lands.
        closing = self.tasks.spawn(self.events.close(), "close-events")
        while True:
            done, _ = await asyncio.wait({closing}, timeout=FOLLOWER_CLOSE_S)
            if done:
                return
            log.warning("gui.event_follower_cancelled_again")
            self.tasks.spawn(self.events.close(), "close-events-again")

    async def browser_left(self) -> None:
        """The tab disconnected (closed, or reloading): stop rendering until it is back."""
        self.frames.pause()
        await self.live.suspend()

    async def browser_back(self) -> None:
        self.frames.resume()
        await self.live.resume()

    async def reconnect(self, endpoint: str) -> None:
        """Attach this session to another address of the bridge; everything shown is reloaded from there.
        The sign-in carries over: the token is bound to this GUI's key, not to the socket."""
        await self._close_events()
        await self.bridge.close()
        self._connect(endpoint)
        await self.start()
        await self.events.start()
        await self.ctx.refresh_all()

    async def _on_connection(self, state: ConnectionState) -> None:
        await self.store.set(ViewKey.CONNECTION, state.value)
        if state is ConnectionState.CONNECTED and self.user is not None:
            # Whatever happened while we were away: show the current truth.
            self.ctx.schedule(self.ctx.loaded_keys)

    def _observe_reply(self, reply: Reply) -> None:
        if reply.get("error_code") == ErrorCode.UNAUTHENTICATED and self.user is not None and not self._expiring:
            # The bridge no longer knows this session (expired, ended elsewhere, bridge restarted):
            # no further request can succeed, so the tab goes back to its login page.
            self._expiring = True
            log.info("gui.session_expired", user=self.user.user)
            if self.on_expired is not None:
                self.tasks.spawn(self.on_expired(), "session-expired")
