"""Small building blocks shared by the views."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import flet as ft

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


class Pager:
    """Previous / next over a server-side paged list."""

    def __init__(self, page_size: int, on_change: Callable[[], Awaitable[None]], name: str) -> None:
        self.offset = 0
        self.page_size = page_size
        self.total = 0
        self._on_change = on_change
        self.label = ft.Text("")
        self.prev = ft.IconButton(ft.Icons.CHEVRON_LEFT, tooltip="Previous page", on_click=self._prev)
        self.next = ft.IconButton(ft.Icons.CHEVRON_RIGHT, tooltip="Next page", on_click=self._next)
        self.control = ft.Row([self.prev, ft.Semantics(identifier=f"{name}-page", content=self.label), self.next])

    def update_from(self, total: int) -> None:
        self.total = total
        if self.offset >= total and total:
            self.offset = max(0, (total - 1) // self.page_size * self.page_size)
        first = self.offset + 1 if total else 0
        last = min(self.offset + self.page_size, total)
        self.label.value = f"{first}–{last} of {total}"
        self.prev.disabled = self.offset == 0
        self.next.disabled = last >= total

    def reset(self) -> None:
        self.offset = 0

    async def _prev(self, e: ft.Event[ft.IconButton]) -> None:
        self.offset = max(0, self.offset - self.page_size)
        await self._on_change()

    async def _next(self, e: ft.Event[ft.IconButton]) -> None:
        if self.offset + self.page_size < self.total:
            self.offset += self.page_size
            await self._on_change()


def scroll_table(table: ft.DataTable) -> ft.Control:
    return ft.Column([ft.Row([table], scroll=ft.ScrollMode.AUTO)], scroll=ft.ScrollMode.AUTO, expand=True)


def error_text() -> ft.Text:
    return ft.Text("", color=ft.Colors.RED_600, selectable=True)


class RowCache:
    """Reuses the DataRow of an item that did not change, so a refresh patches only what changed
    (rebuilding every row would replace every control under the operator's pointer)."""

    def __init__(self, build: Callable[[dict[str, Any]], ft.DataRow], key: str = "id") -> None:
        self._build = build
        self._key = key
        self._rows: dict[Any, tuple[dict[str, Any], ft.DataRow]] = {}

    def rows(self, items: list[dict[str, Any]]) -> list[ft.DataRow]:
        fresh: dict[Any, tuple[dict[str, Any], ft.DataRow]] = {}
        for item in items:
            cached = self._rows.get(item[self._key])
            row = cached[1] if cached is not None and cached[0] == item else self._build(item)
            fresh[item[self._key]] = (item, row)
        self._rows = fresh
        return [row for _, row in fresh.values()]

    def clear(self) -> None:
        """Build every row anew at the next ``rows`` (what the rows show beyond their item changed)."""
        self._rows = {}
