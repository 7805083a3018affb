"""Settings: which bridge to talk to, a connection test, and the theme.

The theme is a setting of the signed-in user, kept by the bridge (``set_settings``), so it
follows them to any browser and any GUI process."""

from __future__ import annotations

import time

import flet as ft

from gui.views.base import View

THEMES = {"light": ft.ThemeMode.LIGHT, "dark": ft.ThemeMode.DARK, "system": ft.ThemeMode.SYSTEM}
THEME_KEY = "theme"


def apply_theme(page: ft.Page, theme: object) -> None:
    """Show ``theme`` (a user's setting; anything unknown or missing is the system's)."""
    page.theme_mode = THEMES.get(str(theme), ft.ThemeMode.SYSTEM)


class SettingsView(View):
    title = "Settings"
    icon = ft.Icons.SETTINGS
    keys = ()

    def build(self) -> ft.Control:
        user = self.app.session.user
        theme = user.settings.get(THEME_KEY) if user is not None else None
        self.theme = str(theme) if theme in THEMES else "system"
        self.endpoint = ft.TextField(label="Bridge endpoint", value=self.app.session.endpoint, width=360)
        self.result = ft.Text("")
        return ft.Column(
            [
                ft.Text("Settings", size=22, weight=ft.FontWeight.BOLD),
                ft.Text("Connection", size=18, weight=ft.FontWeight.W_500),
                ft.Row(
                    [
                        self.endpoint,
                        ft.FilledButton("Connect", on_click=self.connect),
                        ft.OutlinedButton("Test connection", on_click=self.test),
                    ]
                ),
                ft.Semantics(identifier="connection-test-result", content=self.result),
                ft.Divider(),
                ft.Text("Theme", size=18, weight=ft.FontWeight.W_500),
                ft.RadioGroup(
                    value=self.theme,
                    on_change=self.on_theme,
                    content=ft.Row(
                        [
                            ft.Radio(value="light", label="Light"),
                            ft.Radio(value="dark", label="Dark"),
                            ft.Radio(value="system", label="System"),
                        ]
                    ),
                ),
            ]
        )

    def render(self) -> None:
        pass

    async def connect(self, e: ft.Event[ft.Button]) -> None:
        endpoint = (self.endpoint.value or "").strip()
        if not endpoint.startswith(("tcp://", "ipc://")):
            await self.app.notifier.notify(
                f"{endpoint!r} is not an endpoint like tcp://host:port", error=True, error_code="BAD_REQUEST"
            )
            return
        await self.app.session.reconnect(endpoint)
        await self.app.notifier.notify(f"Attached to {endpoint}")

    async def test(self, e: ft.Event[ft.OutlinedButton]) -> None:
        t0 = time.perf_counter()
        reply = await self.bridge.test_connection_async()
        elapsed = (time.perf_counter() - t0) * 1000
        if reply["success"]:
            self.result.value = f"OK in {elapsed:.1f} ms: backend {reply['data']['backend']}, mode {reply['mode']}"
        else:
            self.result.value = f"Failed after {elapsed:.0f} ms: {reply.get('message')} [{reply.get('error_code')}]"
        self.result.update()

    async def on_theme(self, e: ft.Event[ft.RadioGroup]) -> None:
        self.theme = e.control.value or "system"
        apply_theme(self.app.page, self.theme)
        self.app.page.update()
        reply = await self.app.session.save_settings({THEME_KEY: self.theme})
        if not reply["success"]:
            await self.app.notifier.notify(
                f"The theme applies to this tab only: saving it failed: {reply.get('message')} "
                f"[{reply.get('error_code')}]",
                error=True,
                error_code=reply.get("error_code"),
            )
