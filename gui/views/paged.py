"""A view of one server-side paged list with search, a status filter and sortable columns."""

from __future__ import annotations

from typing import Any, ClassVar

import flet as ft

from gui.views.base import View
from gui.views.widgets import Pager, RowCache


class PagedListView(View):
    """Subclasses set ``list_key``, ``page_size``, ``sort_columns`` (column index -> sort field),
    build ``self.table`` and implement ``_row`` and the loader."""

    list_key = ""
    page_size = 100
    sort_columns: ClassVar[dict[int, str]] = {}
    table: ft.DataTable  # built by the subclass
    error: ft.Text

    def init_list(self) -> None:
        self.search = ""
        self.status = "all"
        self.sort = "name"
        self.row_cache = RowCache(self._row)
        self.pager = Pager(self.page_size, self.reload, self.list_key)

    def _row(self, item: dict[str, Any]) -> ft.DataRow:
        raise NotImplementedError

    async def reload(self) -> None:
        await self.ctx.load_data_operation(self.list_key)

    async def reload_click(self, e: ft.Event[ft.IconButton]) -> None:
        await self.reload()

    async def on_search(self, e: ft.Event[ft.TextField]) -> None:
        self.search = (e.control.value or "").strip()
        self.pager.reset()
        await self.reload()

    async def on_status(self, e: ft.Event[ft.Dropdown]) -> None:
        self.status = e.control.value or "all"
        self.pager.reset()
        await self.reload()

    async def on_sort(self, e: ft.DataColumnSortEvent) -> None:
        field = self.sort_columns.get(e.column_index)
        if field is None:
            return
        self.sort = field if e.ascending else f"-{field}"
        self.table.sort_column_index, self.table.sort_ascending = e.column_index, e.ascending
        await self.reload()

    def render(self) -> None:
        data = self.app.session.store.get(self.list_key) or {"items": [], "total": 0}
        self.error.value = self.error_line(self.list_key)
        self.pager.update_from(data["total"])
        self.table.rows = self.row_cache.rows(data["items"])
