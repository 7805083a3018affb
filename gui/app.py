"""One browser tab: its login page, then the console of the user who signed in.

``make_main`` gives Flet the function it runs once per tab. A ``Tab`` owns the tab's
current ``GuiSession`` and swaps the page between the login page and the console:
signing out, or a request the bridge refuses as UNAUTHENTICATED (the session expired),
closes the session and opens a fresh one on the login page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import flet as ft
import structlog

from gui.app_context import AppContext, SnackNotifier
from gui.auth import SESSION_EXPIRED, SIGNED_OUT
from gui.config import GuiConfig
from gui.console import Console
from gui.frames import send_backlog
from gui.session import GuiSession
from gui.views.login import LoginPage
from gui.views.settings import apply_theme

log = structlog.get_logger()


class Tab:
    def __init__(self, page: ft.Page, config: GuiConfig) -> None:
        self.page = page
        self.config = config
        self.notifier = SnackNotifier(page)
        self.session: GuiSession | None = None
        self.console: Console | None = None

    async def open_login(self, message: str = "", *, error: bool = False) -> None:
        session = GuiSession(self.config, self.notifier)
        session.frames.backlog = lambda: send_backlog(self.page)
        session.on_expired = lambda: self.expired(session)
        self.session, self.console = session, None
        apply_theme(self.page, None)  # nobody's settings on the login page
        login = LoginPage(self.page, session, self.signed_in, message, error)
        self._show(login.root)
        await session.start()

    async def signed_in(self) -> None:
        assert self.session is not None and self.session.user is not None
        app = AppContext(self.page, self.session, self.notifier)
        apply_theme(self.page, self.session.user.settings.get("theme"))
        self.console = Console(app, self.sign_out)
        self._show(self.console.root)
        await self.console.start()

    async def sign_out(self) -> None:
        await self._end(signed_out=True)
        await self.open_login(SIGNED_OUT)

    async def expired(self, session: GuiSession) -> None:
        if session is not self.session:
            return  # that session already ended (signed out meanwhile)
        await self._end(signed_out=False)
        await self.open_login(SESSION_EXPIRED, error=True)

    async def closed(self) -> None:
        await self._end(signed_out=False)

    async def _end(self, *, signed_out: bool) -> None:
        session, console = self.session, self.console
        self.session, self.console = None, None
        if console is not None:
            await console.stop()
        if session is not None:
            await (session.sign_out() if signed_out else session.close())
        while self.page.pop_dialog() is not None:  # no dialog of the ended session outlives it
            pass

    def _show(self, root: ft.Control) -> None:
        self.page.controls = [root]
        self.page.update()


def make_main(config: GuiConfig) -> Callable[[ft.Page], Awaitable[None]]:
    async def main(page: ft.Page) -> None:
        page.title = "Backup console"
        page.padding = 0
        tab = Tab(page, config)

        async def closed(e: ft.Event[ft.Page]) -> None:
            log.info("gui.tab_closed")
            await tab.closed()

        # A reload disconnects and reconnects the same session, so only on_close (after the
        # session timeout) means the tab is gone for good.
        page.on_close = closed

        async def left(e: ft.Event[ft.Page]) -> None:
            if tab.session is not None:
                await tab.session.browser_left()

        async def back(e: ft.Event[ft.Page]) -> None:
            if tab.session is not None:
                await tab.session.browser_back()

        page.on_disconnect = left
        page.on_connect = back
        await tab.open_login()
        log.info("gui.tab_opened", endpoint=tab.session.endpoint if tab.session else None)

    return main
