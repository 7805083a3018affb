"""The console's page: a banner that is always visible, a navigation rail, and the views."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import flet as ft
import structlog

from client.async_connection import ConnectionState
from gui.app_context import AppContext, SnackNotifier
from gui.session import GuiSession
from gui.views.activity import ActivityView
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


class Banner:
    """Connection state and data source, from the client's state and the replies' and events' mode."""

    def __init__(self, app: AppContext) -> None:
        self.app = app
        self.connection = ft.Text("disconnected", color=ft.Colors.WHITE, weight=ft.FontWeight.BOLD)
        self.source = ft.Text("source unknown", color=ft.Colors.WHITE, weight=ft.FontWeight.BOLD)
        self.connection_box = ft.Container(
            ft.Semantics(identifier="connection-state", content=self.connection),
            padding=ft.Padding.symmetric(horizontal=10, vertical=4),
            border_radius=12,
        )
        self.source_box = ft.Container(
            ft.Semantics(identifier="data-source", content=self.source),
            padding=ft.Padding.symmetric(horizontal=10, vertical=4),
            border_radius=12,
        )
        self.endpoint = ft.Text(app.session.endpoint, size=12)
        self.control = ft.Container(
            ft.Row(
                [
                    ft.Icon(ft.Icons.BACKUP),
                    ft.Text("Backup console", weight=ft.FontWeight.BOLD, size=16),
                    ft.Container(expand=True),
                    self.endpoint,
                    self.connection_box,
                    self.source_box,
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


def make_main(endpoint: str, export_dir: Path) -> Callable[[ft.Page], Awaitable[None]]:
    async def main(page: ft.Page) -> None:
        page.title = "Backup console"
        page.padding = 0
        notifier = SnackNotifier(page)
        session = GuiSession(endpoint, notifier)
        app = AppContext(page, session, notifier)
        banner = Banner(app)
        views: list[View] = [
            DashboardView(app),
            ClientsView(app),
            FilesView(app),
            DatabaseView(app),
            ActivityView(app, export_dir),
            SettingsView(app),
        ]
        content = ft.Container(views[0].root, expand=True, padding=16)
        current = {"view": views[0]}

        async def select(e: ft.Event[ft.NavigationRail]) -> None:
            view = views[e.control.selected_index or 0]
            await current["view"].hide()
            current["view"] = view
            content.content = view.root
            content.update()
            await view.show()

        rail = ft.NavigationRail(
            selected_index=0,
            label_type=ft.NavigationRailLabelType.ALL,
            on_change=select,
            destinations=[ft.NavigationRailDestination(icon=v.icon, label=v.title) for v in views],
        )
        page.add(
            ft.Column(
                [
                    banner.control,
                    ft.Row(
                        [rail, ft.VerticalDivider(width=1), content],
                        expand=True,
                        vertical_alignment=ft.CrossAxisAlignment.START,
                    ),
                ],
                expand=True,
                spacing=0,
            )
        )

        async def closed(e: ft.Event[ft.Page]) -> None:
            log.info("gui.session_closed")
            await session.close()

        # A reload disconnects and reconnects the same session, so only on_close (after the
        # session timeout) means the tab is gone for good.
        page.on_close = closed

        async def left(e: ft.Event[ft.Page]) -> None:
            await session.browser_left()

        async def back(e: ft.Event[ft.Page]) -> None:
            await session.browser_back()

        page.on_disconnect = left
        page.on_connect = back
        await session.start()
        log.info("gui.session_started", endpoint=endpoint)
        await views[0].show()

    return main
