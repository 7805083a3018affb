"""A field to choose a client by typing part of its name: the clients whose name holds what was typed, to
pick from (an answer for text typed over meanwhile is dropped), and a typed name or id taken on Enter.

The Restore view's way to a client; what is done with the client chosen is the view's (``on_pick``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import flet as ft
import structlog

from gui.views.base import View
from gui.views.paged import SEARCH_DEBOUNCE_S, Debounce

log = structlog.get_logger()

SUGGESTIONS = 8


class ClientPicker:
    def __init__(
        self, view: View, on_pick: Callable[[str, str], Awaitable[None]], chosen: Callable[[], str | None]
    ) -> None:
        self.view = view
        self.on_pick = on_pick  # (client id, name)
        self.chosen = chosen  # the name of the client chosen now, if any
        self.debounce = Debounce(SEARCH_DEBOUNCE_S, view.app.session.tasks.spawn)
        self.field = ft.TextField(
            label="Client (name or id)",
            width=260,
            dense=True,
            prefix_icon=ft.Icons.SEARCH,
            on_change=self.on_typed,
            on_submit=self.on_submit,
        )
        self.suggestions = ft.Row([], wrap=True)
        # Shown and hidden as a whole: Flet refuses a Semantics whose content is hidden.
        self.box = ft.Semantics(
            identifier="restore-client-choices", container=True, content=self.suggestions, visible=False
        )

    def show_chosen(self, name: str) -> None:
        """A client was chosen (here or by another view): its name in the field, no choices left open."""
        self.field.value = name
        self.box.visible = False

    async def on_typed(self, e: ft.Event[ft.TextField]) -> None:
        text = (e.control.value or "").strip()
        self.debounce(lambda: self.suggest(text))

    async def suggest(self, text: str) -> None:
        """Clients whose name holds ``text``, to pick from (dropped if the operator typed on meanwhile)."""
        if not text or text == self.chosen():
            self.box.visible = False
            self._update()
            return
        reply = await self.view.bridge.get_clients_async(offset=0, limit=SUGGESTIONS, search=text, sort="name")
        if (self.field.value or "").strip() != text:
            return
        if not reply["success"]:
            choices: list[ft.Control] = [
                ft.Text(
                    f"Looking up clients failed: {reply.get('message')} [{reply.get('error_code')}]",
                    color=ft.Colors.RED_600,
                )
            ]
        else:
            choices = [
                ft.Semantics(
                    identifier=f"pick-client-{c['name']}",
                    content=ft.TextButton(
                        c["name"], icon=ft.Icons.COMPUTER, on_click=self.view.run_on_click(self._pick, c)
                    ),
                )
                for c in reply["data"]["items"]
            ] or [ft.Text(f"No client matches “{text}”.", italic=True)]
        self.suggestions.controls, self.box.visible = choices, True
        self._update()

    async def _pick(self, client: dict[str, Any]) -> None:
        await self.on_pick(client["id"], client["name"])

    async def on_submit(self, e: ft.Event[ft.TextField]) -> None:
        text = (e.control.value or "").strip()
        if not text:
            return
        client = await self.view.resolve_typed_client(text)
        if client is not None:
            await self.on_pick(client["id"], client["name"])

    def _update(self) -> None:
        try:
            self.box.update()
        except Exception:  # a closed page or a detached control must not break typing
            log.debug("gui.client_choices_unseen")
