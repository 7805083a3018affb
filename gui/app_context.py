"""What every view gets: the page, the session, and small UI services (notify, confirm, gate)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import flet as ft

from gui.auth import Gate, gate
from gui.navigation import Navigator
from gui.outage import BridgeState
from gui.session import GuiSession
from protocol.views import ViewKey

ERROR_COLOR = ft.Colors.RED_700


class SnackNotifier:
    """Shows outcomes as snack bars: errors in red with their error_code."""

    def __init__(self, page: ft.Page) -> None:
        self.page = page
        self.last: str = ""

    async def notify(self, message: str, *, error: bool = False, error_code: str | None = None) -> None:
        self.last = message
        snack = ft.SnackBar(
            ft.Semantics(identifier="snackbar", content=ft.Text(message, color=ft.Colors.WHITE if error else None)),
            bgcolor=ERROR_COLOR if error else None,
            duration=ft.Duration(seconds=6 if error else 3),
            show_close_icon=error,
        )
        self.page.show_dialog(snack)


@dataclass
class AppContext:
    page: ft.Page
    session: GuiSession
    notifier: SnackNotifier
    navigator: Navigator | None = None  # set by the console: how a view opens another (a client's page...)

    def gate(self, op: str, label: str | None = None) -> Gate:
        """May the signed-in user run ``op`` now? (the catalogue's role for ``op``, and for a write the
        bridge's state: none while the real server is unavailable)"""
        user = self.session.user
        known = self.session.store.get(ViewKey.BRIDGE_STATE)
        bridge = known if isinstance(known, BridgeState) else None
        return gate(user.role if user is not None else None, op, label, bridge)

    async def confirm(self, title: str, text: str, confirm_label: str = "Delete") -> bool:
        """A modal confirmation; True when the operator confirms."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def close(result: bool) -> None:
            self.page.pop_dialog()
            if not answer.done():
                answer.set_result(result)

        dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text(title),
            content=ft.Text(text),
            actions=[
                ft.TextButton("Cancel", on_click=lambda e: close(False)),
                ft.FilledButton(
                    confirm_label,
                    on_click=lambda e: close(True),
                    style=ft.ButtonStyle(bgcolor=ERROR_COLOR) if confirm_label == "Delete" else None,
                ),
            ],
            on_dismiss=lambda e: None if answer.done() else answer.set_result(False),
        )
        self.page.show_dialog(dialog)
        return await answer
