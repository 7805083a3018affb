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


class RowCache:
    """Reuses the DataRow of an item that did not change and stays where it was, so a refresh patches
    only what changed (rebuilding every row would replace every control under the operator's pointer).

    A row that moved is built anew: Flutter's table files the accessibility nodes of a moved row's
    cells under the row's old index, so a reused row at a new place is drawn but loses its cells
    from the accessibility tree (its actions can no longer be found)."""

    def __init__(self, build: Callable[[dict[str, Any]], ft.DataRow], key: str = "id") -> None:
        self._build = build
        self._key = key
        self._rows: list[tuple[Any, dict[str, Any], ft.DataRow]] = []

    def clear(self) -> None:
        """Forget every row: the next render builds them all (what their actions allow has changed)."""
        self._rows = []

    def rows(self, items: list[dict[str, Any]]) -> list[ft.DataRow]:
        fresh: list[tuple[Any, dict[str, Any], ft.DataRow]] = []
        for index, item in enumerate(items):
            key = item[self._key]
            old = self._rows[index] if index < len(self._rows) else None
            row = old[2] if old is not None and old[0] == key and old[1] == item else self._build(item)
            fresh.append((key, item, row))
        self._rows = fresh
        return [row for _, _, row in fresh]
