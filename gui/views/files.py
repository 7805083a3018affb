"""Files: all or one client's; search, status filter, paging; verify, download to the browser, delete."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import flet as ft
import structlog

from gui.format import human_bytes, number, when
from gui.views.download import DownloadDialog
from gui.views.paged import PagedListView
from gui.views.rowlist import Cell, Column, ListSpec, RowAction
from gui.views.widgets import dropdown, error_text
from protocol.catalogue import FILE_STATUSES
from protocol.responses import Reply
from protocol.views import ViewKey

log = structlog.get_logger()

PAGE_SIZE = 100


class ClientNames:
    """Client id -> name for the Client column (a File carries only its ``client_id``).

    A page of files names the clients of its files (``client_names``), so its rows never appear
    with a bare id that changes a moment later; the names of every client list the console loads
    are kept too. A client no longer known (deleted) shows its id."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def name(self, client_id: str) -> str:
        return self._names.get(client_id, client_id)

    def learn(self, names: Mapping[str, str]) -> None:
        self._names.update(names)

    def learn_clients(self, clients: Iterable[Mapping[str, Any]]) -> None:
        self.learn({client["id"]: client["name"] for client in clients})


class FilesView(PagedListView):
    title = "Files"
    icon = ft.Icons.DESCRIPTION
    list_key = ViewKey.FILES
    keys = (list_key,)
    noun = "files"
    page_size = PAGE_SIZE

    def build(self) -> ft.Control:
        self.client_id: str | None = None
        self.client_label = "all clients"
        self.client_name = ""
        self.names = ClientNames()
        self.init_list(self.spec())
        self.app.session.store.subscribe(ViewKey.CLIENTS, self._learn_names)
        self.error = error_text()
        self.scope_text = ft.Text("Showing all clients", italic=True)
        self.all_button = ft.TextButton("Show all clients", on_click=self.all_clients, visible=False)
        self.client_field = ft.TextField(label="Client (name or id)", width=220, dense=True, on_submit=self.on_client)
        self.search_field = ft.TextField(
            label="Search files", width=220, dense=True, on_change=self.on_search, prefix_icon=ft.Icons.SEARCH
        )
        self.status_filter = dropdown(
            "Status",
            [("all", "All"), *[(s, s.capitalize()) for s in FILE_STATUSES]],
            "all",
            self.on_status,
            width=150,
            identifier="files-status-filter",
        )
        return ft.Column(
            [
                ft.Row(
                    [
                        ft.Text("Files", size=22, weight=ft.FontWeight.BOLD),
                        self.client_field,
                        self.search_field,
                        self.status_filter,
                        ft.IconButton(ft.Icons.REFRESH, tooltip="Refresh files", on_click=self.reload_click),
                    ],
                    wrap=True,  # a narrow window puts the filters on a second line instead of cutting them off
                    vertical_alignment=ft.CrossAxisAlignment.CENTER,
                ),
                ft.Row([self.scope_text, self.all_button]),
                *self.list_controls(),
            ],
            expand=True,
        )

    def spec(self) -> ListSpec:
        """A file's row: its menu (verify, download, delete) first, so a narrow window shows it."""
        return ListSpec(
            noun="file",
            columns=(
                Column("Name", 200, lambda f: f["name"], Cell.NAME, sort="name"),
                Column("Client", 140, lambda f: self.names.name(f["client_id"])),
                Column("Status", 90, lambda f: f["status"], Cell.BADGE, tooltip=lambda f: f.get("error_message")),
                # Why a file is in error, readable without hovering; empty for every other file.
                Column("Error", 220, lambda f: f.get("error_message") or "", Cell.DETAIL),
                Column("Size", 80, lambda f: human_bytes(f["size"]), numeric=True, sort="size"),
                Column("Versions", 70, lambda f: number(f["backup_count"]), numeric=True),
                Column("Path", 280, lambda f: f["path"], Cell.DETAIL, sort="path"),
                Column("Modified", 150, lambda f: when(f["modified_at"]), sort="modified_at"),
            ),
            actions=(
                RowAction(
                    "verify_file",
                    "Verify",
                    ft.Icons.VERIFIED_OUTLINED,
                    "verify",
                    lambda f: f"Verify {f['name']}",
                    self.verify,
                ),
                RowAction(
                    "download_file",
                    "Download",
                    ft.Icons.DOWNLOAD,
                    "download",
                    lambda f: f"Download {f['name']}",
                    self.download,
                ),
                RowAction(
                    "delete_file",
                    "Delete",
                    ft.Icons.DELETE_OUTLINE,
                    "delete",
                    lambda f: f"Delete {f['name']}",
                    self.delete,
                ),
            ),
            ref=lambda f: f["id"],
            title=lambda f: f["name"],
        )

    def query(self) -> tuple[Hashable, ...]:
        return (self.client_id, *super().query())

    def scope(self) -> str:
        return f"of {self.client_name}" if self.client_id else ""

    async def fetch(self) -> Reply:
        filters: dict[str, Any] = {"sort": self.sort}
        if self.search:
            filters["search"] = self.search
        if self.status != "all":
            filters["status"] = self.status
        reply = await self.bridge.get_files_async(
            client_id=self.client_id, offset=self.pager.offset, limit=self.pager.page_size, filters=filters
        )
        if reply["success"]:
            self.names.learn(reply["data"]["client_names"])
        return reply

    async def _learn_names(self, key: str, page: Any) -> None:
        if page:
            self.names.learn_clients(page["items"])

    async def show_client(self, client_id: str | None, name: str) -> None:
        """Show one client's files, or every client's with ``client_id`` None."""
        self.client_id, self.client_name = client_id, name
        self.client_label = f"files of {name}" if client_id else "all clients"
        self.client_field.value = name  # the filter says what is shown, however the operator got here
        self.pager.reset()
        await self.reload()

    async def reload(self) -> None:
        # The scope line and the client filter go with the answer's frame, the view sent whole.
        self.scope_text.value = f"Showing {self.client_label}"
        self.all_button.visible = self.client_id is not None
        await super().reload()

    async def all_clients(self, e: ft.Event[ft.TextButton] | ft.Event[ft.TextField]) -> None:
        await self.show_client(None, "")

    async def on_client(self, e: ft.Event[ft.TextField]) -> None:
        text = (e.control.value or "").strip()
        if not text:
            await self.all_clients(e)
            return
        client = await self.resolve_typed_client(text)
        if client is not None:
            self.names.learn_clients([client])
            await self.show_client(client["id"], client["name"])

    async def verify(self, f: dict[str, Any]) -> None:
        async def verdict(reply: Reply) -> None:
            if not reply["success"]:
                await self.app.notifier.notify(
                    f"Verify {f['name']} failed: {reply['message']} [{reply.get('error_code')}]",
                    error=True,
                    error_code=reply.get("error_code"),
                )
                return
            data = reply["data"]
            await self.app.notifier.notify(
                f"Verify {f['name']}: {'intact' if data['ok'] else 'CORRUPTED'} (sha256 {data['actual_sha256'][:16]}…)",
                error=not data["ok"],
                error_code=None if data["ok"] else "HASH_MISMATCH",
            )

        await self.ctx.write_operation("verify_file", lambda: self.bridge.verify_file_async(f["id"]), verdict)

    async def delete(self, f: dict[str, Any]) -> None:
        if await self.app.confirm(
            "Delete file", f"Delete {f['path']} ({human_bytes(f['size'])}) and its stored content?"
        ):
            await self.ctx.action_operation(
                "Delete file", "delete_file", lambda: self.bridge.delete_file_async(f["id"]), f"Deleted {f['name']}"
            )

    async def download(self, f: dict[str, Any]) -> None:
        DownloadDialog(self.app, f).open()
