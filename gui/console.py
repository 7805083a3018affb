"""The signed-in console: a banner that is always visible, a navigation rail, and the views.

Built anew at each sign-in for that user: the views a role may not open are not in the
rail (the Audit view is for admins), and every control is gated by the user's role.
What the console says about its data (the pill, the outage banner under the top bar, a
view's mock-data label) follows the bridge's state, the same for every tab (gui/outage.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import flet as ft
import structlog

from client.async_connection import ConnectionState
from gui.app_context import AppContext
from gui.outage import BridgeState, Shown, Tone, banner_text, mock_label, oldest_stale, source_pill
from gui.views.activity import ActivityView
from gui.views.audit import AuditView
from gui.views.base import View
from gui.views.client_page import ClientPage
from gui.views.clients import ClientsView
from gui.views.dashboard import DashboardView
from gui.views.database import DatabaseView
from gui.views.files import FilesView
from gui.views.navigator import ConsoleNavigator
from gui.views.restore import RestoreView
from gui.views.settings import SettingsView
from protocol.responses import Reply
from protocol.views import ViewKey

log = structlog.get_logger()

CONNECTION_COLORS: dict[str, ft.Colors] = {
    ConnectionState.CONNECTED: ft.Colors.GREEN_700,
    ConnectionState.RECONNECTING: ft.Colors.AMBER_800,
    ConnectionState.DISCONNECTED: ft.Colors.RED_700,
}
TONE_COLORS: dict[Tone, ft.Colors] = {
    Tone.LIVE: ft.Colors.GREEN_700,
    Tone.DEMO: ft.Colors.BLUE_700,
    Tone.MOCK: ft.Colors.ORANGE_800,
    Tone.STALE: ft.Colors.AMBER_900,
    Tone.NONE: ft.Colors.RED_700,
    Tone.UNKNOWN: ft.Colors.GREY_700,
}
OUTAGE_COLOR = ft.Colors.RED_800


def one_line(text: ft.Text) -> ft.Text:
    """``text`` on one line, cut with an ellipsis where its box ends (its full value stays in the
    accessibility tree)."""
    text.max_lines, text.no_wrap, text.overflow = 1, True, ft.TextOverflow.ELLIPSIS
    return text


def pill(text: ft.Text, identifier: str) -> ft.Container:
    return ft.Container(
        ft.Semantics(identifier=identifier, content=one_line(text)),
        padding=ft.Padding.symmetric(horizontal=10, vertical=4),
        border_radius=12,
    )


class DataSource:
    """The bridge state and where the shown data came from, as the store holds them."""

    def __init__(self, app: AppContext) -> None:
        self.store = app.session.store

    @property
    def state(self) -> BridgeState:
        known = self.store.get(ViewKey.BRIDGE_STATE)
        return known if isinstance(known, BridgeState) else BridgeState()

    @property
    def shown(self) -> dict[str, Shown]:
        provenance: dict[str, Shown] = self.store.get(ViewKey.PROVENANCE) or {}
        return provenance

    @property
    def as_of(self) -> datetime | None:
        return oldest_stale(self.shown.values())

    def follow(self, subscriber: Callable[[str, Any], Awaitable[None]]) -> None:
        self.store.subscribe(ViewKey.BRIDGE_STATE, subscriber)
        self.store.subscribe(ViewKey.PROVENANCE, subscriber)


def refresh_control(control: ft.Control) -> None:
    try:
        control.update()
    except Exception:  # a closed page or a detached control must not break the store
        log.debug("gui.console_update_skipped")


class OutageBanner:
    """Full width under the top bar while the real server is unavailable: since when, and how old the data is."""

    def __init__(self, app: AppContext) -> None:
        self.source = DataSource(app)
        self.text = ft.Text("", color=ft.Colors.WHITE, weight=ft.FontWeight.BOLD)
        self.control = ft.Container(
            ft.Row(
                [
                    ft.Icon(ft.Icons.CLOUD_OFF, color=ft.Colors.WHITE),
                    ft.Semantics(identifier="outage-banner", content=self.text),
                ],
                spacing=10,
            ),
            bgcolor=OUTAGE_COLOR,
            padding=ft.Padding.symmetric(horizontal=14, vertical=8),
            visible=False,
        )
        self.source.follow(self._changed)
        self.render()

    def render(self) -> bool:
        """Copy the state into the control; returns whether anything shown changed."""
        text = banner_text(self.source.state, self.source.as_of)
        changed = (text or "") != self.text.value or (text is not None) != self.control.visible
        self.text.value, self.control.visible = text or "", text is not None
        return changed

    async def _changed(self, key: str, value: Any) -> None:
        if self.render():
            refresh_control(self.control)


class Banner:
    """Who is signed in, the connection state and the data source (the bridge's state).

    Sign out is the bar's last control, outside any flexible part, so nothing can push it out of the
    window: what sits between the title and it (endpoint, pills, user) is one right-aligned group
    that takes the width left and wraps onto another line when it does not fit, and in which no
    text can be wider than that width (one line, ellipsis). In a plain row each of them was given
    unbounded width, so a pill that came out wide (a long state text, or in one full-suite run a
    text the browser's renderer mis-measured under load) pushed the user and Sign out off-screen.
    """

    def __init__(self, app: AppContext, on_sign_out: Callable[[], Awaitable[None]]) -> None:
        self.app = app
        self.on_sign_out = on_sign_out
        self.connection = ft.Text("disconnected", color=ft.Colors.WHITE, weight=ft.FontWeight.BOLD)
        self.source = ft.Text("source unknown", color=ft.Colors.WHITE, weight=ft.FontWeight.BOLD)
        self.connection_box = pill(self.connection, "connection-state")
        self.source_box = pill(self.source, "data-source")
        self.endpoint = one_line(ft.Text(app.session.endpoint, size=12))
        user = app.session.user
        self.user = one_line(ft.Text(user.label if user else "", weight=ft.FontWeight.W_500))
        status = ft.Row(
            [
                self.endpoint,
                self.connection_box,
                self.source_box,
                ft.Icon(ft.Icons.PERSON),
                ft.Semantics(identifier="signed-in-user", content=self.user),
            ],
            wrap=True,
            alignment=ft.MainAxisAlignment.END,
            spacing=12,
            run_spacing=6,
            expand=True,
        )
        self.control = ft.Container(
            ft.Row(
                [
                    ft.Icon(ft.Icons.BACKUP),
                    ft.Text("Backup console", weight=ft.FontWeight.BOLD, size=16, no_wrap=True),
                    status,
                    ft.OutlinedButton("Sign out", icon=ft.Icons.LOGOUT, on_click=self.sign_out),
                ],
                spacing=12,
            ),
            padding=ft.Padding.symmetric(horizontal=14, vertical=8),
            bgcolor=ft.Colors.SURFACE_CONTAINER_HIGHEST,
        )
        app.session.store.subscribe(ViewKey.CONNECTION, self._changed)
        self.data_source = DataSource(app)
        self.data_source.follow(self._changed)
        self.render()

    async def sign_out(self, e: ft.Event[ft.OutlinedButton]) -> None:
        await self.on_sign_out()

    def render(self) -> None:
        store = self.app.session.store
        state = store.get(ViewKey.CONNECTION, ConnectionState.DISCONNECTED.value)
        self.connection.value = state
        self.connection_box.bgcolor = CONNECTION_COLORS.get(state, ft.Colors.GREY_700)
        shown = source_pill(self.data_source.state, self.data_source.as_of)
        self.source.value, self.source_box.bgcolor = shown.text, TONE_COLORS[shown.tone]
        self.endpoint.value = self.app.session.endpoint

    async def _changed(self, key: str, value: Any) -> None:
        self.render()
        refresh_control(self.control)


class Console:
    def __init__(self, app: AppContext, on_sign_out: Callable[[], Awaitable[None]]) -> None:
        self.app = app
        # Registered before the views, so the first reload of everything reads the bridge state first.
        app.session.ctx.register_loader(ViewKey.BRIDGE_STATE, self.load_bridge_state)
        self.banner = Banner(app, on_sign_out)
        self.outage = OutageBanner(app)
        candidates: list[View] = [
            DashboardView(app),
            ClientsView(app),
            FilesView(app),
            RestoreView(app),
            DatabaseView(app),
            ActivityView(app, app.session.config.export_dir),
            AuditView(app),
            SettingsView(app),
        ]
        # A view whose data the role may not read is not offered at all (not even disabled).
        self.views = [v for v in candidates if v.opens_for(app)]
        self.current = self.views[0]
        # A client's page is not in the rail: the Clients view (and the navigator) open it.
        app.navigator = ConsoleNavigator(self.views, ClientPage(app), self.go, app.notifier)
        self.data_source = DataSource(app)
        self.label = ft.Text("", color=ft.Colors.WHITE, weight=ft.FontWeight.BOLD)
        self.label_box = ft.Container(
            ft.Semantics(identifier="data-label", content=self.label),
            bgcolor=TONE_COLORS[Tone.MOCK],
            padding=ft.Padding.symmetric(horizontal=10, vertical=4),
            border_radius=6,
            visible=False,
        )
        self.content = ft.Container(self.current.root, expand=True)
        self.data_source.follow(self._source_changed)
        self.rail = ft.NavigationRail(
            selected_index=0,
            label_type=ft.NavigationRailLabelType.ALL,
            on_change=self.select,
            destinations=[ft.NavigationRailDestination(icon=v.icon, label=v.title) for v in self.views],
        )
        self.root = ft.Column(
            [
                self.banner.control,
                self.outage.control,
                ft.Row(
                    [
                        self.rail,
                        ft.VerticalDivider(width=1),
                        ft.Container(ft.Column([self.label_box, self.content], expand=True), expand=True, padding=16),
                    ],
                    expand=True,
                    vertical_alignment=ft.CrossAxisAlignment.START,
                ),
            ],
            expand=True,
            spacing=0,
        )

    async def load_bridge_state(self) -> Reply:
        reply = await self.app.session.bridge.bridge_status_async()
        if reply["success"]:
            reply["data"] = self.data_source.state.updated(reply["data"])  # the store keeps what the console follows
        return reply

    async def start(self) -> None:
        await self.app.session.ctx.refresh([ViewKey.BRIDGE_STATE])
        await self.current.show()

    async def select(self, e: ft.Event[ft.NavigationRail]) -> None:
        await self.go(self.views[e.control.selected_index or 0])

    async def go(self, view: View) -> None:
        """Show ``view``: a rail destination (the rail follows) or a page outside the rail, such as a client's."""
        await self.current.hide()
        self.current = view
        if view in self.views:
            self.rail.selected_index = self.views.index(view)
            self.rail.update()
        self.content.content = view.root
        self.render_label()
        self.content.update()
        self.label_box.update()
        # Whatever the view's show() draws reaches the tab in the next frame, even when its loads
        # bring nothing new (a view that shows itself without View.show does not ask for one).
        view.invalidate()
        await view.show()

    def render_label(self) -> bool:
        """The shown view's mock-data label; returns whether it changed."""
        shown = self.data_source.shown
        text = mock_label(self.data_source.state, [shown.get(key) for key in self.current.keys])
        changed = (text or "") != self.label.value or (text is not None) != self.label_box.visible
        self.label.value, self.label_box.visible = text or "", text is not None
        return changed

    async def _source_changed(self, key: str, value: Any) -> None:
        if self.render_label():
            refresh_control(self.label_box)

    async def stop(self) -> None:
        await self.current.hide()
