"""Small building blocks shared by the views."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import flet as ft

from gui.format import number

STATUS_COLORS = {
    "connected": ft.Colors.GREEN_600,
    "verified": ft.Colors.GREEN_600,
    "uploaded": ft.Colors.BLUE_600,
    "disconnected": ft.Colors.GREY_600,
    "uploading": ft.Colors.AMBER_700,
    "error": ft.Colors.RED_600,
}


def status_badge(status: str) -> ft.Control:
    return ft.Container(
        ft.Text(status, size=12, color=ft.Colors.WHITE),
        bgcolor=STATUS_COLORS.get(status, ft.Colors.GREY_500),
        padding=ft.Padding.symmetric(horizontal=8, vertical=2),
        border_radius=10,
    )


def action_button(
    icon: ft.IconData,
    tooltip: str,
    identifier: str,
    on_click: Callable[[ft.Event[ft.IconButton]], Any],
    disabled: bool = False,
) -> ft.Control:
    return ft.Semantics(
        identifier=identifier, content=ft.IconButton(icon, tooltip=tooltip, on_click=on_click, disabled=disabled)
    )


def dropdown(
    label: str,
    options: list[tuple[str, str]],
    value: str,
    on_select: Callable[[ft.Event[ft.Dropdown]], Any],
    width: int = 180,
    identifier: str | None = None,
) -> ft.Control:
    control = ft.Dropdown(
        label=label,
        value=value,
        width=width,
        on_select=on_select,
        options=[ft.DropdownOption(key=k, text=t) for k, t in options],
    )
    # A plain Dropdown has no accessible name; the Semantics wrapper gives it one.
    return ft.Semantics(identifier=identifier, label=label, content=control)


PAGE_SIZES = (25, 50, 100, 200)


class Pager:
    """Previous / next, a page number to jump to and, given ``sizes``, the rows per page, over a
    server-side paged list. With nothing to page through it hides itself (the view says why).

    Its owner's loader asks for ``limit=pager.page_size`` when it offers ``sizes``."""

    def __init__(
        self, page_size: int, on_change: Callable[[], Awaitable[None]], name: str, sizes: Sequence[int] = ()
    ) -> None:
        self.offset = 0
        self.page_size = page_size
        self.total = 0
        self._on_change = on_change
        self._shown_page = 0  # the page number last written into the field (see update_from)
        self.label = ft.Text("")
        self.prev = ft.IconButton(ft.Icons.CHEVRON_LEFT, tooltip="Previous page", on_click=self._prev)
        self.next = ft.IconButton(ft.Icons.CHEVRON_RIGHT, tooltip="Next page", on_click=self._next)
        self.page_field = ft.TextField(
            label="Page",
            value="1",
            width=110,
            dense=True,
            input_filter=ft.NumbersOnlyInputFilter(),
            keyboard_type=ft.KeyboardType.NUMBER,
            on_submit=self._jump,
        )
        self.of_pages = ft.Text("")
        controls: list[ft.Control] = [
            self.prev,
            ft.Semantics(identifier=f"{name}-page", content=self.label),
            self.next,
            self.page_field,
            ft.Semantics(identifier=f"{name}-pages", content=self.of_pages),
        ]
        if sizes:
            options = [(str(s), str(s)) for s in sizes]
            controls.append(dropdown("Rows per page", options, str(page_size), self._size, 130, f"{name}-page-size"))
        self.control = ft.Row(controls, wrap=True, vertical_alignment=ft.CrossAxisAlignment.CENTER)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def page(self) -> int:
        return self.offset // self.page_size + 1

    def update_from(self, total: int) -> None:
        self.total = total
        if self.offset >= total and total:
            self.offset = (total - 1) // self.page_size * self.page_size
        first = self.offset + 1 if total else 0
        last = min(self.offset + self.page_size, total)
        self.label.value = f"{number(first)}–{number(last)} of {number(total)}"
        self.of_pages.value = f"of {number(self.pages)}"
        if self.page != self._shown_page:
            # Only when the page moved: a live refresh must not overwrite a number being typed.
            self._shown_page = self.page
            self.page_field.value, self.page_field.error = str(self.page), None
        self.prev.disabled = self.offset == 0
        self.next.disabled = last >= total
        self.control.visible = total > 0

    def reset(self) -> None:
        self.offset = 0

    def offset_of(self, text: str) -> int:
        """The offset of page ``text`` (1-based); ValueError naming the valid range otherwise."""
        try:
            page = int(text.strip())
        except ValueError:
            page = 0
        if not 1 <= page <= self.pages:
            raise ValueError(f"1 to {number(self.pages)}")
        return (page - 1) * self.page_size

    async def _jump(self, e: ft.Event[ft.TextField]) -> None:
        try:
            self.offset = self.offset_of(self.page_field.value or "")
        except ValueError as exc:
            self.page_field.error = str(exc)
            self.page_field.update()
            return
        self.page_field.error = None
        await self._on_change()

    def resize(self, size: int) -> None:
        """Show ``size`` rows per page, on the page that holds the first row shown now."""
        self.page_size = size
        self.offset = self.offset // size * size

    async def _size(self, e: ft.Event[ft.Dropdown]) -> None:
        self.resize(int(e.control.value or self.page_size))
        await self._on_change()

    async def _prev(self, e: ft.Event[ft.IconButton]) -> None:
        self.offset = max(0, self.offset - self.page_size)
        await self._on_change()

    async def _next(self, e: ft.Event[ft.IconButton]) -> None:
        if self.offset + self.page_size < self.total:
            self.offset += self.page_size
            await self._on_change()


# Always shown and draggable: a table wider than the window must say so, and a mouse user
# needs something to grab (a mouse drag on the rows does not scroll in Flutter).
TABLE_SCROLLBAR = ft.Scrollbar(thumb_visibility=True, track_visibility=True, thickness=10, interactive=True)


def scroll_table(table: ft.DataTable, identifier: str | None = None) -> ft.Control:
    """A table that scrolls both ways inside the space it is given.

    Sideways is the outer scroll, so its scrollbar sits at the bottom of the visible area; inside a
    scrolling column it would sit under the last row, out of sight until the operator got there."""
    rows = ft.Column([table], scroll=ft.ScrollMode.AUTO)
    sideways = ft.Row([rows], scroll=TABLE_SCROLLBAR, expand=True, vertical_alignment=ft.CrossAxisAlignment.START)
    return ft.Semantics(identifier=identifier, container=True, content=sideways, expand=True)


def error_text() -> ft.Text:
    return ft.Text("", color=ft.Colors.RED_600, selectable=True)


class LiveRow(ft.DataRow):
    """A table row whose cells an update of its table (or of anything above) does not walk into.

    Flet diffs a control's whole subtree on ``update()``; a page of 100 rows is some 2,000 controls,
    which made every live change cost every open tab a full diff. A row's cells are only ever
    replaced, never changed in place, so the table's diff still sees a row's new cells; and a row
    whose cells were replaced is sent by itself with ``row.update()``."""

    def is_isolated(self) -> bool:
        return True


class Isolated(ft.Column):
    """What a view sends by itself: an update of anything around it skips what this holds (a chart of
    hundreds of points, sent only when it moved)."""

    def is_isolated(self) -> bool:
        return True


class RowCache:
    """The rows of a table, one per place, each showing one item: a refresh that changes one item
    replaces that row's cells and nothing else, so its patch is that row alone.

    Rows never move: an item shown at another place than before gets new cells in the row at
    its new place (Flutter's table files the accessibility nodes of a moved row's cells under
    the row's old index, so a row moved to a new place would be drawn but lose its cells, and
    their actions, from the accessibility tree). Only the cells of a built row are kept.

    ``take_changes`` says what changed since it was last asked: the rows whose cells were
    replaced, and whether rows were added or removed (then the table itself must be sent)."""

    def __init__(self, build: Callable[[dict[str, Any]], ft.DataRow], key: str = "id") -> None:
        self._build = build
        self._key = key
        self._rows: list[LiveRow] = []
        self._shown: list[tuple[Any, dict[str, Any]] | None] = []  # what each row shows
        self._changed: dict[int, LiveRow] = {}  # by id(): rows whose cells were replaced
        self._resized = False

    def clear(self) -> None:
        """Forget what every row shows: the next ``rows`` builds all their cells anew (what their
        actions allow has changed)."""
        self._shown = [None] * len(self._rows)

    def rows(self, items: list[dict[str, Any]]) -> list[ft.DataRow]:
        if len(items) != len(self._rows):
            self._resized = True
            del self._rows[len(items) :], self._shown[len(items) :]
        for index, item in enumerate(items):
            shows = (item[self._key], item)
            if index == len(self._rows):
                self._rows.append(LiveRow(cells=self._build(item).cells))
                self._shown.append(shows)
            elif self._shown[index] != shows:
                row = self._rows[index]
                row.cells = self._build(item).cells
                self._shown[index] = shows
                self._changed[id(row)] = row
        rows: list[ft.DataRow] = list(self._rows)  # a copy: the table's diff compares it with the last one sent
        return rows

    def take_changes(self) -> tuple[list[LiveRow], bool]:
        """(rows whose cells were replaced, whether rows were added or removed) since the last call."""
        alive = {id(row) for row in self._rows}
        changed = [row for key, row in self._changed.items() if key in alive]
        resized, self._changed, self._resized = self._resized, {}, False
        return changed, resized
