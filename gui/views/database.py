"""Database: tables with row counts and sizes; a paged table view; edit and delete rows."""

from __future__ import annotations

from typing import Any

import flet as ft

from gui.format import cell, count, human_bytes
from gui.views.base import View
from gui.views.widgets import PAGE_SIZES, Pager, RowCache, error_text, scroll_table
from protocol.responses import Reply
from protocol.views import ViewKey

PAGE_SIZE = 50


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
        self.row_cache = RowCache(self._row)
        self._tiles: dict[str, tuple[ft.Semantics, ft.ListTile, ft.Text]] = {}
        self.pager = Pager(PAGE_SIZE, self.reload_table, "table", PAGE_SIZES)
        self.ctx.register_loader(ViewKey.DATABASE, lambda: self.bridge.get_database_info_async())
        self.ctx.register_loader(ViewKey.TABLE, self.load_table)
        self.tables = ft.Column([], spacing=4)
        self.info = ft.Text("")
        self.table = ft.DataTable(columns=[ft.DataColumn(label=ft.Text("…"))], rows=[])
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
                        scroll_table(self.table, "db-table-rows"),
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
            self.row_cache = RowCache(self._row)
            # Actions come first so they stay on screen however wide the table is; every column
            # is shown, and the table scrolls sideways when they do not fit.
            self.table.columns = [ft.DataColumn(label=ft.Text("Actions"))] + [
                ft.DataColumn(label=ft.Text(c["name"])) for c in self._columns
            ]
        self.table.rows = self.row_cache.rows(data["rows"])

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

    def _row(self, row: dict[str, Any]) -> ft.DataRow:
        return ft.DataRow(
            cells=[
                ft.DataCell(
                    ft.Row(
                        [
                            self.action(
                                ft.Icons.EDIT_OUTLINED,
                                "update_row",
                                f"Edit row {row['id']}",
                                f"edit-row-{row['id']}",
                                self.edit,
                                row,
                            ),
                            self.action(
                                ft.Icons.DELETE_OUTLINE,
                                "delete_row",
                                f"Delete row {row['id']}",
                                f"delete-row-{row['id']}",
                                self.delete,
                                row,
                            ),
                        ],
                        spacing=0,
                    )
                )
            ]
            + [ft.DataCell(ft.Text(cell(row.get(c["name"])), size=12)) for c in self._columns]
        )

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
