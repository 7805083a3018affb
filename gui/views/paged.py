"""A view of one server-side paged list: search as you type, a status filter, sortable columns,
paging (jump to a page, rows per page) and a message when nothing matches.

The rows are a ``RowList`` (gui/views/rowlist.py): slots built once, shown again for each page,
in a list Flutter builds only where it is in sight. A change sends only what it changed: the rows
whose item changed, each by itself (all of them as one patch for a new page), and the few
controls around the list.

Typing never waits for the list: a keystroke only notes the text, and the list is asked once
the operator pauses (``SEARCH_DEBOUNCE_S``). A reply is shown only while it still answers what
is asked: one that comes back after the operator asked something else, or after a reply to a
later request was shown, is dropped and the current question is asked instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from typing import Any

import flet as ft
import structlog

from gui.views.base import View
from gui.views.rowlist import Handler, Item, ListSpec, RowList, no_auto_update
from gui.views.widgets import PAGE_SIZES, Pager
from protocol.responses import Reply

log = structlog.get_logger()

SEARCH_DEBOUNCE_S = 0.3

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]


class Debounce:
    """Runs the last of a burst of calls once ``delay`` seconds pass without a new one."""

    def __init__(self, delay: float, spawn: Spawn) -> None:
        self.delay = delay
        self._spawn = spawn
        self._waiting: asyncio.Task[None] | None = None

    def __call__(self, action: Callable[[], Awaitable[None]]) -> None:
        if self._waiting is not None:
            self._waiting.cancel()
        self._waiting = self._spawn(self._later(action), "debounce")

    async def _later(self, action: Callable[[], Awaitable[None]]) -> None:
        await asyncio.sleep(self.delay)
        # Past the wait the action runs to its end: a newer call waits on its own, and the
        # reply check (Latest) keeps this action's answer off the screen if it is outdated.
        self._waiting = None
        await action()


class Latest:
    """Which replies may be shown: a reply is stale when what is asked now differs from what it
    was asked with, or when the reply to a later request has been shown already."""

    def __init__(self) -> None:
        self._issued = 0
        self._shown = 0

    def ask(self) -> int:
        """A ticket for a request about to be sent (tickets grow in the order requests are sent)."""
        self._issued += 1
        return self._issued

    def fresh(self, ticket: int, asked: Hashable, now: Hashable) -> bool:
        """May the reply to ``ticket``, asked with ``asked``, be shown while ``now`` is asked?"""
        if asked != now or ticket < self._shown:
            return False
        self._shown = ticket
        return True


def empty_message(noun: str, search: str = "", status: str = "all", scope: str = "") -> str:
    """Why a list shows nothing, in the operator's terms: "No files of bob matching “x” with status error."."""
    words = [f"No {noun}"]
    if scope:
        words.append(scope)
    if search:
        words.append(f"matching “{search}”")
    if status != "all":
        words.append(f"with status {status}")
    return " ".join(words) + "."


class PagedListView(View):
    """Subclasses set ``list_key``, ``noun`` and ``page_size``, call ``init_list`` with their rows'
    ``ListSpec`` and build ``self.error``, lay out ``list_controls()``, and implement ``fetch``
    (which asks for ``offset=self.pager.offset, limit=self.pager.page_size``)."""

    list_key = ""
    noun = "rows"
    page_size = 100
    error: ft.Text

    def init_list(self, spec: ListSpec) -> None:
        self.search = ""
        self.status = "all"
        self.sort = "name"
        self.rows = RowList(spec, self.list_key, self.run_action, self.app.gate, self.sort_by)
        self.pager = Pager(self.page_size, self.turned, self.list_key, PAGE_SIZES)
        self.latest = Latest()
        self.debounce = Debounce(SEARCH_DEBOUNCE_S, self.app.session.tasks.spawn)
        self.empty_text = ft.Text("", italic=True, size=16)
        self.empty = ft.Semantics(identifier=f"{self.list_key}-empty", content=self.empty_text, visible=False)
        self.ctx.register_loader(self.list_key, self.load)
        self._whole = True  # the next frame sends the whole view (see changed_outside)
        self._list_state: tuple[bool, str] | None = None  # the list's visibility and sort, as last sent

    def changed_outside(self) -> None:
        """The operator asked for something that changes the view beyond what a live change touches
        (a filter, a scope, a page): drawn now and sent whole in the next frame (a load that brings
        the same rows changes nothing in the store, and would draw nothing)."""
        self._whole = True
        if self.visible:
            self._draw()

    def list_controls(self) -> list[ft.Control]:
        """The error line, the message shown instead of an empty list, the list, the pager."""
        return [self.error, self.empty, self.rows.control, self.pager.control]

    def run_action(self, handler: Handler, item: Item) -> None:
        """A row's action, as a task the session owns."""
        self.app.session.tasks.spawn(handler(item), f"{self.title.lower()}-action")

    async def fetch(self) -> Reply:
        raise NotImplementedError

    def query(self) -> tuple[Hashable, ...]:
        """Everything the page shown depends on (a subclass adds its own scope)."""
        return (self.search, self.status, self.sort, self.pager.offset, self.pager.page_size)

    def scope(self) -> str:
        """Words that narrow the noun in the empty message ("of bob-macbook"); none by default."""
        return ""

    async def load(self) -> Reply:
        """The list's loader, whoever asks (a search, a page turn, a live refresh, a write's reload)."""
        while True:
            asked, ticket = self.query(), self.latest.ask()
            reply = await self.fetch()
            if self.latest.fresh(ticket, asked, self.query()):
                return reply
            log.debug("gui.stale_reply_dropped", view=self.title, ticket=ticket)

    async def show(self) -> None:
        self._whole = True  # it may have changed in any way while hidden
        await super().show()

    async def reload(self) -> None:
        """Ask for the list again (a filter, a scope or a page changed), and draw the view whole once
        the answer is in. Not before as well: that frame would show nothing the operator needs (the
        old rows under the new page number) and the answer's frame would wait its turn after it
        (``FRAME_S``, some 50 ms of every page turn)."""
        try:
            await self.ctx.load_data_operation(self.list_key)
        finally:
            self.changed_outside()

    async def turned(self) -> None:
        """The pager moved (a page, its number, rows per page)."""
        no_auto_update()  # see reload_click
        await self.reload()

    async def reload_click(self, e: ft.Event[ft.IconButton]) -> None:
        # No automatic update after this click: Flet would diff the whole page (the nearest isolated
        # ancestor of a button outside the rows), 30-130 ms on a busy machine before the view's own
        # frame, which sends what changed (the view whole, after a reload).
        no_auto_update()
        await self.reload()

    async def on_search(self, e: ft.Event[ft.TextField]) -> None:
        no_auto_update()  # a keystroke changes nothing on screen: no diff of the page after each
        text = (e.control.value or "").strip()
        self.debounce(lambda: self.search_for(text))

    async def search_for(self, text: str) -> None:
        if text == self.search:
            return
        self.search = text
        self.pager.reset()
        await self.reload()

    async def on_status(self, e: ft.Event[ft.Dropdown]) -> None:
        no_auto_update()  # see reload_click
        self.status = e.control.value or "all"
        self.pager.reset()
        await self.reload()

    async def sort_by(self, field: str) -> None:
        """A column title was clicked: sort by it, ascending first, then the other way; from page 1."""
        self.sort = f"-{field}" if self.sort == field else field
        self.pager.reset()
        await self.reload()

    def render(self) -> None:
        self.error.value = self.error_line(self.list_key)
        data = self.app.session.store.get(self.list_key)
        if data is None:  # not loaded yet (or the first load failed: the error line says so)
            return
        empty = data["total"] == 0
        self.pager.update_from(data["total"])
        self.empty.visible = empty
        self.empty_text.value = empty_message(self.noun, self.search, self.status, self.scope()) if empty else ""
        self.rows.control.visible = not empty
        self.rows.show_sort(self.sort)
        self.rows.show(data["items"])

    async def _draw_again(self) -> None:
        # Once this frame is out (marked while it is drawn, the view would wait for another
        # change) and the browser has drawn the rows in sight.
        await asyncio.sleep(self.rows.later_s)
        self.invalidate()

    def changed_controls(self) -> Sequence[ft.Control]:
        """What a live change can touch: the error line, the empty message, the pager, and the rows
        that show something new (each by itself, those in sight first and the others in a later
        frame; the list itself too when rows came or went). After anything else (see ``changed_outside``), or when the list shows or hides or
        its sort changed, the whole view (the rows' list is isolated: an update of the view skips it)."""
        rows = self.rows.take_changes()
        if self.rows.pending:  # rows out of sight are left for the next frame
            self.app.session.tasks.spawn(self._draw_again(), "rows-left")
        state = (bool(self.rows.control.visible), self.sort)
        if self._whole or state != self._list_state:
            self._whole, self._list_state = False, state
            return (self.root, *rows)
        return (self.error, self.empty, self.pager.control, *rows)
