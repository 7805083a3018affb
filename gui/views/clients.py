"""Clients: search, status filter, sort, paging; details, disconnect, delete."""

from __future__ import annotations

from typing import Any

import flet as ft

from gui.format import count, human_bytes, number, when
from gui.views.paged import PagedListView
from gui.views.rowlist import Cell, Column, ListSpec, RowAction
from gui.views.widgets import dropdown, error_text
from protocol.catalogue import CLIENT_STATUSES
from protocol.responses import Reply
from protocol.views import ViewKey

PAGE_SIZE = 100


class ClientsView(PagedListView):
    title = "Clients"
    icon = ft.Icons.COMPUTER
    list_key = ViewKey.CLIENTS
    keys = (list_key,)
    noun = "clients"
    page_size = PAGE_SIZE

    def build(self) -> ft.Control:
        self.init_list(self.spec())
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

    def spec(self) -> ListSpec:
        """A client's row: its menu (details, disconnect, delete) first, so a narrow window shows it."""
        return ListSpec(
            noun="client",
            columns=(
                Column("Name", 220, lambda c: c["name"], Cell.NAME, sort="name"),
                Column(
                    "Status",
                    110,
                    lambda c: c["status"],
                    Cell.BADGE,
                    sort="status",
                    tooltip=lambda c: c.get("error_message"),
                ),
                Column("IP", 130, lambda c: c["ip_address"]),
                Column("Platform", 110, lambda c: c["platform"]),
                Column("Files", 80, lambda c: number(c["files_count"]), numeric=True),
                Column("Size", 90, lambda c: human_bytes(c["total_size"]), numeric=True, sort="total_size"),
                Column("Last seen", 150, lambda c: when(c["last_seen"]), sort="last_seen"),
            ),
            actions=(
                RowAction(
                    "get_client_details",
                    "Details",
                    ft.Icons.INFO_OUTLINE,
                    "details",
                    lambda c: f"Details of {c['name']}",
                    self.details,
                ),
                RowAction(
                    "disconnect_client",
                    "Disconnect",
                    ft.Icons.LINK_OFF,
                    "disconnect",
                    lambda c: f"Disconnect {c['name']}",
                    self.disconnect,
                    unavailable=lambda c: None if c["status"] == "connected" else "not connected",
                ),
                RowAction(
                    "delete_client",
                    "Delete",
                    ft.Icons.DELETE_OUTLINE,
                    "delete",
                    lambda c: f"Delete {c['name']}",
                    self.delete,
                ),
            ),
            ref=lambda c: c["name"],
            title=lambda c: c["name"],
        )

    async def fetch(self) -> Reply:
        return await self.bridge.get_clients_async(
            offset=self.pager.offset,
            limit=self.pager.page_size,
            search=self.search or None,
            status=None if self.status == "all" else self.status,
            sort=self.sort,
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
