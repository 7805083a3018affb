"""Clients: search, status filter, sort, paging; details, disconnect, delete."""

from __future__ import annotations

from typing import Any

import flet as ft

from gui.format import count, human_bytes, number, when
from gui.views.paged import PagedListView
from gui.views.widgets import dropdown, error_text, status_badge
from protocol.catalogue import CLIENT_STATUSES
from protocol.responses import Reply
from protocol.views import ViewKey

PAGE_SIZE = 100
SORT_COLUMNS = {0: "name", 2: "status", 6: "total_size", 7: "last_seen"}


class ClientsView(PagedListView):
    title = "Clients"
    icon = ft.Icons.COMPUTER
    list_key = ViewKey.CLIENTS
    keys = (list_key,)
    noun = "clients"
    page_size = PAGE_SIZE
    sort_columns = SORT_COLUMNS

    def build(self) -> ft.Control:
        self.init_list()
        # Actions come right after the name, so a narrow window still shows them.
        self.table = ft.DataTable(
            columns=[
                ft.DataColumn(label=ft.Text("Name"), on_sort=self.on_sort),
                ft.DataColumn(label=ft.Text("Actions")),
                ft.DataColumn(label=ft.Text("Status"), on_sort=self.on_sort),
                ft.DataColumn(label=ft.Text("IP")),
                ft.DataColumn(label=ft.Text("Platform")),
                ft.DataColumn(label=ft.Text("Files"), numeric=True),
                ft.DataColumn(label=ft.Text("Size"), numeric=True, on_sort=self.on_sort),
                ft.DataColumn(label=ft.Text("Last seen"), on_sort=self.on_sort),
            ],
            rows=[],
            sort_column_index=0,
            sort_ascending=True,
            column_spacing=24,
        )
        self.error = error_text()
        self.search_field = ft.TextField(
            label="Search clients", width=260, on_change=self.on_search, prefix_icon=ft.Icons.SEARCH, dense=True
        )
        self.status_filter = dropdown(
            "Status",
            [("all", "All"), *[(s, s.capitalize()) for s in CLIENT_STATUSES]],
            "all",
            self.on_status,
            identifier="clients-status-filter",
        )
        return ft.Column(
            [
                ft.Row(
                    [
                        ft.Text("Clients", size=22, weight=ft.FontWeight.BOLD),
                        self.search_field,
                        self.status_filter,
                        ft.IconButton(ft.Icons.REFRESH, tooltip="Refresh clients", on_click=self.reload_click),
                    ],
                    wrap=True,  # a narrow window puts the filters on a second line instead of cutting them off
                    vertical_alignment=ft.CrossAxisAlignment.CENTER,
                ),
                *self.list_controls(),
            ],
            expand=True,
        )

    async def fetch(self) -> Reply:
        return await self.bridge.get_clients_async(
            offset=self.pager.offset,
            limit=self.pager.page_size,
            search=self.search or None,
            status=None if self.status == "all" else self.status,
            sort=self.sort,
        )

    def _row(self, c: dict[str, Any]) -> ft.DataRow:
        name = c["name"]
        return ft.DataRow(
            cells=[
                ft.DataCell(ft.Text(name, weight=ft.FontWeight.W_500)),
                ft.DataCell(
                    ft.Row(
                        [
                            self.action(
                                ft.Icons.INFO_OUTLINE,
                                "get_client_details",
                                f"Details of {name}",
                                f"details-client-{name}",
                                self.details,
                                c,
                            ),
                            self.action(
                                ft.Icons.LINK_OFF,
                                "disconnect_client",
                                f"Disconnect {name}",
                                f"disconnect-client-{name}",
                                self.disconnect,
                                c,
                                disabled=c["status"] != "connected",
                            ),
                            self.action(
                                ft.Icons.DELETE_OUTLINE,
                                "delete_client",
                                f"Delete {name}",
                                f"delete-client-{name}",
                                self.delete,
                                c,
                            ),
                        ],
                        spacing=0,
                    )
                ),
                ft.DataCell(status_badge(c["status"])),
                ft.DataCell(ft.Text(c["ip_address"])),
                ft.DataCell(ft.Text(c["platform"])),
                ft.DataCell(ft.Text(number(c["files_count"]))),
                ft.DataCell(ft.Text(human_bytes(c["total_size"]))),
                ft.DataCell(ft.Text(when(c["last_seen"]))),
            ]
        )

    async def disconnect(self, c: dict[str, Any]) -> None:
        await self.ctx.action_operation(
            "Disconnect",
            "disconnect_client",
            lambda: self.bridge.disconnect_client_async(c["id"]),
            f"Disconnected {c['name']}",
        )

    async def delete(self, c: dict[str, Any]) -> None:
        files = count(c["files_count"], "file")
        text = (
            f"Delete client {c['name']}? Its {files} ({human_bytes(c['total_size'])}) "
            "will be deleted with it. This cannot be undone."
        )
        if await self.app.confirm("Delete client", text):
            await self.ctx.action_operation(
                "Delete client",
                "delete_client",
                lambda: self.bridge.delete_client_async(c["id"]),
                f"Deleted {c['name']} and {files}",
            )

    async def details(self, c: dict[str, Any]) -> None:
        # The client's own page (gui/views/client_page.py): its backups, whether it is overdue, its files, restore.
        if self.app.navigator is not None:
            await self.app.navigator.open_client(c["id"], c["name"])
