"""The signed-in console: a banner that is always visible, a navigation rail, and the views.

Built anew at each sign-in for that user: the views a role may not open are not in the
rail (the Audit view is for admins), and every control is gated by the user's role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import flet as ft
import structlog

from client.async_connection import ConnectionState
from gui.app_context import AppContext
from gui.views.activity import ActivityView
from gui.views.audit import AuditView
from gui.views.base import View
from gui.views.clients import ClientsView
from gui.views.dashboard import DashboardView
from gui.views.database import DatabaseView
from gui.views.files import FilesView
from gui.views.settings import SettingsView
from protocol.modes import Mode
from protocol.views import ViewKey

log = structlog.get_logger()

CONNECTION_COLORS: dict[str, ft.Colors] = {
    ConnectionState.CONNECTED: ft.Colors.GREEN_700,
    ConnectionState.RECONNECTING: ft.Colors.AMBER_800,
    ConnectionState.DISCONNECTED: ft.Colors.RED_700,
}
SOURCE_TEXT: dict[str, tuple[str, ft.Colors]] = {
    Mode.REAL: ("LIVE · real server", ft.Colors.GREEN_700),
    Mode.MOCK: ("FALLBACK · mock data", ft.Colors.ORANGE_800),
    Mode.NONE: ("NO BACKEND", ft.Colors.RED_700),
}


def pill(text: ft.Text, identifier: str) -> ft.Container:
    return ft.Container(
        ft.Semantics(identifier=identifier, content=text),
        padding=ft.Padding.symmetric(horizontal=10, vertical=4),
        border_radius=12,
    )


class Banner:
    """Who is signed in, the connection state and the data source (from the replies' and events' mode)."""

    def __init__(self, app: AppContext, on_sign_out: Callable[[], Awaitable[None]]) -> None:
        self.app = app
        self.on_sign_out = on_sign_out
        self.connection = ft.Text("disconnected", color=ft.Colors.WHITE, weight=ft.FontWeight.BOLD)
        self.source = ft.Text("source unknown", color=ft.Colors.WHITE, weight=ft.FontWeight.BOLD)
        self.connection_box = pill(self.connection, "connection-state")
        self.source_box = pill(self.source, "data-source")
        self.endpoint = ft.Text(app.session.endpoint, size=12)
        user = app.session.user
        self.user = ft.Text(user.label if user else "", weight=ft.FontWeight.W_500)
        self.control = ft.Container(
            ft.Row(
                [
                    ft.Icon(ft.Icons.BACKUP),
                    ft.Text("Backup console", weight=ft.FontWeight.BOLD, size=16),
                    ft.Container(expand=True),
                    self.endpoint,
                    self.connection_box,
                    self.source_box,
                    ft.Icon(ft.Icons.PERSON),
                    ft.Semantics(identifier="signed-in-user", content=self.user),
                    ft.OutlinedButton("Sign out", icon=ft.Icons.LOGOUT, on_click=self.sign_out),
                ],
                spacing=12,
            ),
            padding=ft.Padding.symmetric(horizontal=14, vertical=8),
            bgcolor=ft.Colors.SURFACE_CONTAINER_HIGHEST,
        )
        store = app.session.store
        store.subscribe(ViewKey.CONNECTION, self._changed)
        store.subscribe(ViewKey.DATA_SOURCE, self._changed)
        self.render()

    async def sign_out(self, e: ft.Event[ft.OutlinedButton]) -> None:
        await self.on_sign_out()

    def render(self) -> None:
        store = self.app.session.store
        state = store.get(ViewKey.CONNECTION, ConnectionState.DISCONNECTED.value)
        self.connection.value = state
        self.connection_box.bgcolor = CONNECTION_COLORS.get(state, ft.Colors.GREY_700)
        text, color = SOURCE_TEXT.get(store.get(ViewKey.DATA_SOURCE), ("source unknown", ft.Colors.GREY_700))
        self.source.value, self.source_box.bgcolor = text, color
        self.endpoint.value = self.app.session.endpoint

    async def _changed(self, key: str, value: Any) -> None:
        self.render()
        try:
            self.control.update()
        except Exception:
            log.debug("gui.banner_update_skipped")


class Console:
    def __init__(self, app: AppContext, on_sign_out: Callable[[], Awaitable[None]]) -> None:
        self.app = app
        self.banner = Banner(app, on_sign_out)
        candidates: list[View] = [
            DashboardView(app),
            ClientsView(app),
            FilesView(app),
            DatabaseView(app),
            ActivityView(app, app.session.config.export_dir),
            AuditView(app),
            SettingsView(app),
        ]
        # A view whose data the role may not read is not offered at all (not even disabled).
        self.views = [v for v in candidates if v.opens_for(app)]
        self.current = self.views[0]
        self.content = ft.Container(self.current.root, expand=True, padding=16)
        self.rail = ft.NavigationRail(
            selected_index=0,
            label_type=ft.NavigationRailLabelType.ALL,
            on_change=self.select,
            destinations=[ft.NavigationRailDestination(icon=v.icon, label=v.title) for v in self.views],
        )
        self.root = ft.Column(
            [
                self.banner.control,
                ft.Row(
                    [self.rail, ft.VerticalDivider(width=1), self.content],
                    expand=True,
                    vertical_alignment=ft.CrossAxisAlignment.START,
                ),
            ],
            expand=True,
            spacing=0,
        )

    async def start(self) -> None:
        await self.current.show()

    async def select(self, e: ft.Event[ft.NavigationRail]) -> None:
        view = self.views[e.control.selected_index or 0]
        await self.current.hide()
        self.current = view
        self.content.content = view.root
        self.content.update()
        await view.show()

    async def stop(self) -> None:
        await self.current.hide()
