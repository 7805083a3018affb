"""A view: built once, rendered from the store, loaded when shown, updated live while visible.

A change to what a shown view draws renders it at once (copying values into controls is cheap)
and marks it for the tab's next frame (gui/frames.py), which sends what changed, once for any
number of changes (``changed_controls``: the whole view unless the view knows better; Flet's
diff of it is what costs). A hidden view renders, sends and loads nothing: its keys are marked
stale, and showing it loads them.

Every write control is gated by the signed-in role and by the bridge's state (no writes while
the real server is unavailable): a view renders its gates anew whenever that state changes."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import flet as ft
import structlog

from client.facade import ServerBridge
from gui.app_context import AppContext
from gui.operations import ViewContext
from gui.outage import BridgeState
from gui.views.widgets import RowCache, action_button
from protocol.views import ViewKey

log = structlog.get_logger()

T = TypeVar("T")
ClickHandler = Callable[[ft.Event[Any]], None]


class View:
    title = ""
    icon: ft.IconData = ft.Icons.CIRCLE
    keys: tuple[str, ...] = ()  # state keys this view renders (and reloads when shown)
    reads: str | None = None  # the operation the view needs to open at all (None: any signed-in user)

    @classmethod
    def opens_for(cls, app: AppContext) -> bool:
        return cls.reads is None or app.gate(cls.reads).allowed

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.visible = False
        self.root = self.build()
        self._writes_blocked = False
        app.session.ctx.claim(self.keys)
        for key in self.keys:
            app.session.store.subscribe(key, self._on_change)
        # The bridge's state gates every write control (and the dashboard greys what is stale).
        app.session.store.subscribe(ViewKey.BRIDGE_STATE, self._on_bridge_state)

    @property
    def ctx(self) -> ViewContext:
        return self.app.session.ctx

    @property
    def bridge(self) -> ServerBridge:
        """The session's current facade. A reconnect replaces it, so loaders and actions look it
        up when they run (``lambda: self.bridge.op_async()``), never keep a bound method."""
        return self.app.session.bridge

    def build(self) -> ft.Control:
        raise NotImplementedError

    def render(self) -> None:
        """Copy the store's values into the controls (no update() here)."""
        raise NotImplementedError

    def changed_controls(self) -> Sequence[ft.Control]:
        """What ``render`` may have changed, to send: the whole view, unless the view knows better."""
        return (self.root,)

    def invalidate(self) -> None:
        """Draw this view in the tab's next frame."""
        self.app.session.frames.invalidate(self)

    def flush(self) -> None:
        """Send what the renders since the last frame changed (the frame calls it while the view is shown)."""
        try:
            for control in self.changed_controls():
                control.update()
        except Exception:  # a closed page or a detached control must not break the store
            log.debug("gui.update_skipped", view=self.title)

    def _draw(self) -> None:
        """Render from the store now; the next frame sends it."""
        try:
            self.render()
        except Exception:  # a bug in one view must not break the store's other subscribers
            log.exception("gui.render_failed", view=self.title)
        self.invalidate()

    async def show(self) -> None:
        self.visible = True
        self._draw()
        await self.ctx.show(self.keys)

    async def hide(self) -> None:
        self.visible = False
        self.ctx.hide(self.keys)

    async def resolve_typed_client(self, text: str) -> dict[str, Any] | None:
        """The client an operator typed (an id or a name); None, after saying so, when there is none."""
        reply = await self.bridge.resolve_client_async(client_id_or_name=text)
        if not reply["success"]:
            await self.app.notifier.notify(
                f"No such client: {reply.get('message')} [{reply.get('error_code')}]",
                error=True,
                error_code=reply.get("error_code"),
            )
            return None
        client: dict[str, Any] = reply["data"]
        return client

    def action(
        self,
        icon: ft.IconData,
        op: str,
        label: str,
        identifier: str,
        handler: Callable[[T], Coroutine[Any, Any, None]],
        item: T,
        *,
        disabled: bool = False,
    ) -> ft.Control:
        """A row's icon button that runs ``op``: disabled, with a tooltip naming the role needed,
        when the signed-in user's role may not run it."""
        gate = self.app.gate(op, label)
        return action_button(
            icon, gate.tooltip or label, identifier, self.run_on_click(handler, item), disabled or not gate.allowed
        )

    def guard(self, control: ft.Control, op: str, *, disabled: bool = False) -> bool:
        """Disable ``control`` (tooltip: the role needed, or the outage) when the user may not run ``op``
        now, or when ``disabled`` (the view's own reason); returns whether the gate allows it. Called
        at each render, so the control follows the gate both ways."""
        gate = self.app.gate(op)
        control.disabled, control.tooltip = disabled or not gate.allowed, gate.tooltip
        return gate.allowed

    def run_on_click(self, handler: Callable[[T], Coroutine[Any, Any, None]], item: T) -> ClickHandler:
        """A click handler that runs ``handler(item)`` (a row's action) as a task the session owns."""

        def click(e: ft.Event[Any]) -> None:
            # The task sends what it changes: Flet's update of the whole page after a handler that
            # changed nothing yet would only diff it (tens of ms a click on a shared 2-core machine).
            ft.context.mark_update_called()
            self.app.session.tasks.spawn(handler(item), f"{self.title.lower()}-action")

        return click

    async def _on_bridge_state(self, key: str, state: Any) -> None:
        blocked = isinstance(state, BridgeState) and state.writes_blocked
        if blocked != self._writes_blocked:
            self._writes_blocked = blocked
            # The list views keep their built rows in ``row_cache``; their actions were gated by the old state.
            cache = getattr(self, "row_cache", None)
            if isinstance(cache, RowCache):
                cache.clear()
        await self._on_change(key, state)

    async def _on_change(self, key: str, value: Any) -> None:
        if self.visible:
            self._draw()

    def error_line(self, key: str) -> str:
        entry = self.app.session.store.entry(key)
        if entry.error:
            return f"{entry.error.get('message')} [{entry.error.get('error_code')}]"
        return ""
