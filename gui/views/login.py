"""The login page: the only thing a tab shows until a user signed in.

"Username", "Password" and, for a user with TOTP, "Code" (shown when the bridge answers
that a code is needed). A refusal is shown on the page as the bridge words it
(throttling says how long to wait); the fields keep what was typed except a refused
password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import flet as ft

from gui.auth import SignedIn
from gui.session import GuiSession

ERROR = ft.Colors.RED_700
FIELD_WIDTH = 320


class LoginPage:
    def __init__(
        self,
        page: ft.Page,
        session: GuiSession,
        on_signed_in: Callable[[], Awaitable[None]],
        message: str = "",
        error: bool = False,
    ) -> None:
        self.page = page
        self.session = session
        self.on_signed_in = on_signed_in
        self.busy = False
        self.username = ft.TextField(label="Username", width=FIELD_WIDTH, autofocus=True, on_submit=self.submit)
        self.password = ft.TextField(
            label="Password", width=FIELD_WIDTH, password=True, can_reveal_password=True, on_submit=self.submit
        )
        self.code = ft.TextField(
            label="Code",
            keyboard_type=ft.KeyboardType.NUMBER,
            width=FIELD_WIDTH,
            visible=False,
            on_submit=self.submit,
        )
        self.message = ft.Text(message, color=ERROR if error else None, width=FIELD_WIDTH)
        self.button = ft.FilledButton("Sign in", width=FIELD_WIDTH, on_click=self.submit)
        form = ft.Column(
            [
                ft.Row([ft.Icon(ft.Icons.BACKUP), ft.Text("Backup console", size=22, weight=ft.FontWeight.BOLD)]),
                ft.Text(f"Sign in to {session.endpoint}", size=12),
                self.username,
                self.password,
                self.code,
                ft.Semantics(identifier="login-message", content=self.message),
                self.button,
            ],
            tight=True,
            spacing=14,
        )
        self.root = ft.Container(
            ft.Card(ft.Container(form, padding=28), width=FIELD_WIDTH + 2 * 28 + 8),
            alignment=ft.Alignment.CENTER,
            expand=True,
        )

    async def submit(self, e: ft.Event[Any]) -> None:
        if self.busy:
            return
        username = (self.username.value or "").strip()
        password = self.password.value or ""
        if not username or not password:
            self._say("Enter your username and password.", error=True)
            return
        self.busy, self.button.disabled = True, True
        self._say("Signing in…")
        try:
            outcome = await self.session.sign_in(
                username, password, (self.code.value or "").strip() or None, self.page.client_ip or None
            )
        finally:
            self.busy, self.button.disabled = False, False
        if isinstance(outcome, SignedIn):
            await self.on_signed_in()
            return
        if outcome.needs_code:
            self.code.visible = True  # keep the password: the code is what is missing
        elif outcome.wrong_credentials:
            self.password.value = ""
        self._say(outcome.message, error=True)

    def _say(self, text: str, *, error: bool = False) -> None:
        self.message.value = text
        self.message.color = ERROR if error else None
        with contextlib.suppress(RuntimeError):  # the tab went away meanwhile
            self.root.update()
