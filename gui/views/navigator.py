"""The console's ``Navigator`` (gui/navigation.py): the views it was given, shown through the console."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from gui.operations import Notifier
from gui.views.base import View
from gui.views.client_page import ClientPage
from gui.views.clients import ClientsView
from gui.views.files import FilesView
from gui.views.restore import RestoreView

V = TypeVar("V", bound=View)


class ConsoleNavigator:
    def __init__(
        self, views: Sequence[View], page: ClientPage, go: Callable[[View], Awaitable[None]], notifier: Notifier
    ) -> None:
        self.views = views  # those the signed-in role may open
        self.page = page
        self.go = go
        self.notifier = notifier

    async def _find(self, kind: type[V]) -> V | None:
        view = next((v for v in self.views if isinstance(v, kind)), None)
        if view is None:
            await self.notifier.notify(f"Your role cannot open the {kind.title} view", error=True)
        return view

    async def clients(self) -> None:
        if view := await self._find(ClientsView):
            await self.go(view)

    async def open_client(self, client_id: str, name: str) -> None:
        self.page.open(client_id, name)
        await self.go(self.page)

    async def client_files(self, client_id: str, name: str) -> None:
        if view := await self._find(FilesView):
            # Scoped first, so the view never shows every client's files on its way to this one's.
            await view.show_client(client_id, name)
            await self.go(view)

    async def restore(self, client_id: str, name: str) -> None:
        if view := await self._find(RestoreView):
            await view.choose_client(client_id, name)
            await self.go(view)
