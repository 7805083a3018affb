"""Database: tables with row counts and sizes; a paged table view; edit and delete rows."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import flet as ft

from gui.format import cell, count, human_bytes
from gui.views.base import View
from gui.views.rowlist import REST_AFTER_S, Column, Handler, Item, ListSpec, RowAction, RowList
from gui.views.widgets import PAGE_SIZES, Pager, error_text
from protocol.responses import Reply
from protocol.views import ViewKey

PAGE_SIZE = 50
CHAR_PX = 8  # about the width of a character of a table's cells
CELL_PX = (60, 320)  # a column is at least as wide as a short number, at most as a long path


def column_widths(names: Sequence[str], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Each column as wide as its name or its widest cell on the page (as ``cell`` writes it), within
    ``CELL_PX``: what is longer is cut short on screen and shown whole by the edit dialog."""
    widths = []
    for name in names:
        chars = max([len(name), *(len(cell(row.get(name))) for row in rows)])
        widths.append(min(max(chars * CHAR_PX, CELL_PX[0]), CELL_PX[1]))
    return widths


def parse_value(text: str, column_type: str) -> Any:
    """A text field's value as the column's type; raises ValueError with a readable message."""
    nullable = column_type.endswith("|null")
    base = column_type.split("|")[0]
    if text == "" and nullable:
        return None
    if base == "integer":
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
    if base == "boolean":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ValueError(f"{text!r} is not true or false")
    return text


class DatabaseView(View):
    title = "Database"
    icon = ft.Icons.STORAGE
    keys = (ViewKey.DATABASE, ViewKey.TABLE)

    def build(self) -> ft.Control:
        self.table_name = "clients"
        self._columns: list[dict[str, Any]] = []
        self._tiles: dict[str, tuple[ft.Semantics, ft.ListTile, ft.Text]] = {}
        self.pager = Pager(PAGE_SIZE, self.reload_table, "table", PAGE_SIZES)
        self.ctx.register_loader(ViewKey.DATABASE, lambda: self.bridge.get_database_info_async())
        self.ctx.register_loader(ViewKey.TABLE, self.load_table)
        self.tables = ft.Column([], spacing=4)
        self.info = ft.Text("")
        self.rows = RowList(self.spec([], []), "db", self.run_action, self.app.gate)
        # Holds the rows' list, which is made anew for a table with other columns.
        self.rows_box = ft.Semantics(identifier="db-table-rows", container=True, content=self.rows.control, expand=True)
        self.title_text = ft.Text("", size=18, weight=ft.FontWeight.W_500)
        self.error = error_text()
        return ft.Row(
            [
                ft.Container(
                    ft.Column([ft.Text("Database", size=22, weight=ft.FontWeight.BOLD), self.info, self.tables]),
                    width=240,
                ),
                ft.VerticalDivider(width=1),
                ft.Column(
                    [
                        ft.Row(
                            [
                                self.title_text,
                                ft.Container(expand=True),
                                ft.IconButton(ft.Icons.REFRESH, tooltip="Refresh table", on_click=self.refresh_click),
                            ]
                        ),
                        self.error,
                        self.rows_box,
                        self.pager.control,
                    ],
                    expand=True,
                ),
            ],
            expand=True,
            vertical_alignment=ft.CrossAxisAlignment.START,
        )

    async def load_table(self) -> Reply:
        return await self.bridge.get_table_data_async(
            table_name=self.table_name, offset=self.pager.offset, limit=self.pager.page_size
        )

    async def reload_table(self) -> None:
        await self.ctx.load_data_operation(ViewKey.TABLE)

    async def refresh_click(self, e: ft.Event[ft.IconButton]) -> None:
        await self.ctx.refresh([ViewKey.DATABASE, ViewKey.TABLE])

    async def choose(self, name: str) -> None:
        self.table_name = name
        self.pager.reset()
        await self.reload_table()

    def render(self) -> None:
        info = self.app.session.store.get(ViewKey.DATABASE)
        if info:
            self.info.value = f"{info['engine']} · {human_bytes(info['size_bytes'])}"
            self.tables.controls = [self._table_tile(t) for t in info["tables"]]
        data = self.app.session.store.get(ViewKey.TABLE)
        self.error.value = self.error_line(ViewKey.TABLE) or self.error_line(ViewKey.DATABASE)
        if not data or data.get("table") != self.table_name:
            return
        self.title_text.value = f"Table {data['table']}"
        self.pager.update_from(data["total"])
        if data["columns"] != self._columns:
            self._columns = data["columns"]
            self.rows = RowList(self.spec(self._columns, data["rows"]), "db", self.run_action, self.app.gate)
            self.rows_box.content = self.rows.control
        self.rows.show(data["rows"])

    def changed_controls(self) -> Sequence[ft.Control]:
        """The view without its rows (their list is isolated: an update skips it), then the rows
        that show something new, those in sight first: the others go in the next frame."""
        changes = (self.root, *self.rows.take_changes())
        if self.rows.pending:
            self.app.session.tasks.spawn(self._draw_again(), "rows-left")
        return changes

    async def _draw_again(self) -> None:
        # Once this frame is out (marked while it is drawn, the view would wait for another
        # change) and the browser has drawn the rows in sight.
        await asyncio.sleep(REST_AFTER_S)
        self.invalidate()

    def spec(self, columns: list[dict[str, Any]], rows: list[dict[str, Any]]) -> ListSpec:
        """A row of the table: its menu (edit, delete) first, so it stays on screen however wide the
        table is; then every column, the list scrolling sideways when they do not fit (a column's
        width is set by the first page shown, so paging does not make the columns jump)."""
        names = [c["name"] for c in columns]

        def value(name: str) -> Any:
            return lambda row: cell(row.get(name))

        return ListSpec(
            noun="row",
            columns=tuple(
                Column(name, width, value(name)) for name, width in zip(names, column_widths(names, rows), strict=True)
            ),
            actions=(
                RowAction(
                    "update_row", "Edit", ft.Icons.EDIT_OUTLINED, "edit", lambda r: f"Edit row {r['id']}", self.edit
                ),
                RowAction(
                    "delete_row",
                    "Delete",
                    ft.Icons.DELETE_OUTLINE,
                    "delete",
                    lambda r: f"Delete row {r['id']}",
                    self.delete,
                ),
            ),
            ref=lambda r: str(r["id"]),
            title=lambda r: f"row {r['id']}",
            row_name="db-row",
        )

    def run_action(self, handler: Handler, item: Item) -> None:
        """A row's action, as a task the session owns."""
        self.app.session.tasks.spawn(handler(item), "database-action")

    def _table_tile(self, table: dict[str, Any]) -> ft.Control:
        """The entry of one table in the list: the same control each time, only its figures change
        (the counts move with every backup; a new control would slip away from under a click)."""
        name = table["name"]
        if name not in self._tiles:
            figures = ft.Text("")
            tile = ft.ListTile(
                title=ft.Text(name), subtitle=figures, dense=True, on_click=self.run_on_click(self.choose, name)
            )
            self._tiles[name] = (ft.Semantics(identifier=f"db-table-{name}", content=tile), tile, figures)
        wrapper, tile, figures = self._tiles[name]
        figures.value = f"{count(table['rows'], 'row')} · {human_bytes(table['size_bytes'])}"
        tile.selected = name == self.table_name
        return wrapper

    async def edit(self, row: dict[str, Any]) -> None:
        page = self.app.page
        columns = self._columns
        fields: dict[str, tuple[ft.TextField, dict[str, Any]]] = {}
        controls: list[ft.Control] = []
        for column in columns:
            value = row.get(column["name"])
            shown = "" if value is None else (str(value) if column["editable"] else cell(value))
            field = ft.TextField(
                label=column["name"],
                value=shown,
                read_only=not column["editable"],
                disabled=not column["editable"],
                dense=True,
                width=480,
            )
            controls.append(field)
            if column["editable"]:
                fields[column["name"]] = (field, column)
        message = ft.Text("", color=ft.Colors.RED_600)

        async def save(e: ft.Event[ft.Button]) -> None:
            changes: dict[str, Any] = {}
            try:
                for name, (field, column) in fields.items():
                    new = parse_value(field.value or "", column["type"])
                    if new != row.get(name):
                        changes[name] = new
            except ValueError as exc:
                message.value = str(exc)
                message.update()
                return
            if not changes:
                message.value = "nothing changed"
                message.update()
                return
            table = self.table_name
            reply = await self.ctx.action_operation(
                "Save row",
                "update_row",
                lambda: self.bridge.update_row_async(table, row["id"], changes),
                f"Saved {table} row {row['id']}",
                on_success=page.pop_dialog,
            )
            if not reply["success"]:
                message.value = f"{reply.get('message')} [{reply.get('error_code')}]"
                message.update()

        page.show_dialog(
            ft.AlertDialog(
                modal=True,
                title=ft.Text(f"Edit {self.table_name} row"),
                content=ft.Column([*controls, message], tight=True, scroll=ft.ScrollMode.AUTO, height=420),
                actions=[
                    ft.TextButton("Cancel", on_click=lambda e: page.pop_dialog()),
                    ft.FilledButton("Save", on_click=save),
                ],
            )
        )

    async def delete(self, row: dict[str, Any]) -> None:
        extra = " Its files are deleted with it." if self.table_name == "clients" else ""
        if await self.app.confirm("Delete row", f"Delete row {row['id']} of {self.table_name}?{extra}"):
            table = self.table_name
            await self.ctx.action_operation(
                "Delete row",
                "delete_row",
                lambda: self.bridge.delete_row_async(table, row["id"]),
                f"Deleted {table} row {row['id']}",
            )
