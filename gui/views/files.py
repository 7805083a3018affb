"""Files: all or one client's; search, status filter, paging; verify, download with progress, delete."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import flet as ft
import structlog

from gui.format import human_bytes, when
from gui.views.paged import PagedListView
from gui.views.widgets import action_button, dropdown, error_text, scroll_table, status_badge
from protocol.catalogue import FILE_STATUSES
from protocol.responses import Reply
from protocol.views import ViewKey

log = structlog.get_logger()

PAGE_SIZE = 100
SORT_COLUMNS = {0: "name", 2: "size", 5: "modified_at"}


def default_download_dir() -> Path:
    downloads = Path.home() / "Downloads"
    return downloads if downloads.is_dir() else Path.cwd()


class FilesView(PagedListView):
    title = "Files"
    icon = ft.Icons.DESCRIPTION
    list_key = ViewKey.FILES
    keys = (list_key,)
    page_size = PAGE_SIZE
    sort_columns = SORT_COLUMNS

    def build(self) -> ft.Control:
        self.client_id: str | None = None
        self.client_label = "all clients"
        self.init_list()
        self.ctx.register_loader(ViewKey.FILES, self.load)
        self.table = ft.DataTable(
            columns=[
                ft.DataColumn(label=ft.Text("Name"), on_sort=self.on_sort),
                ft.DataColumn(label=ft.Text("Status")),
                ft.DataColumn(label=ft.Text("Size"), numeric=True, on_sort=self.on_sort),
                ft.DataColumn(label=ft.Text("Versions"), numeric=True),
                ft.DataColumn(label=ft.Text("Path")),
                ft.DataColumn(label=ft.Text("Modified"), on_sort=self.on_sort),
                ft.DataColumn(label=ft.Text("Actions")),
            ],
            rows=[],
            sort_column_index=0,
            sort_ascending=True,
            column_spacing=24,
        )
        self.error = error_text()
        self.scope = ft.Text("Showing all clients", italic=True)
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
                        ft.Container(expand=True),
                        self.client_field,
                        self.search_field,
                        self.status_filter,
                        ft.IconButton(ft.Icons.REFRESH, tooltip="Refresh files", on_click=self.reload_click),
                    ]
                ),
                ft.Row([self.scope, self.all_button]),
                self.error,
                scroll_table(self.table),
                self.pager.control,
            ],
            expand=True,
        )

    async def load(self) -> Reply:
        filters: dict[str, Any] = {"sort": self.sort}
        if self.search:
            filters["search"] = self.search
        if self.status != "all":
            filters["status"] = self.status
        return await self.bridge.get_files_async(
            client_id=self.client_id, offset=self.pager.offset, limit=PAGE_SIZE, filters=filters
        )

    async def show_client(self, client_id: str | None, label: str) -> None:
        """Show one client's files (used by the clients view too)."""
        self.client_id, self.client_label = client_id, label
        self.pager.reset()
        await self.reload()

    async def reload(self) -> None:
        self.scope.value = f"Showing {self.client_label}"
        self.all_button.visible = self.client_id is not None
        await self.ctx.load_data_operation(ViewKey.FILES)

    async def all_clients(self, e: ft.Event[ft.TextButton] | ft.Event[ft.TextField]) -> None:
        self.client_field.value = ""
        await self.show_client(None, "all clients")

    async def on_client(self, e: ft.Event[ft.TextField]) -> None:
        text = (e.control.value or "").strip()
        if not text:
            await self.all_clients(e)
            return
        reply = await self.bridge.resolve_client_async(client_id_or_name=text)
        if not reply["success"]:
            await self.app.notifier.notify(
                f"No such client: {reply.get('message')} [{reply.get('error_code')}]",
                error=True,
                error_code=reply.get("error_code"),
            )
            return
        await self.show_client(reply["data"]["id"], f"files of {reply['data']['name']}")

    def _row(self, f: dict[str, Any]) -> ft.DataRow:
        name = f["name"]
        return ft.DataRow(
            cells=[
                ft.DataCell(ft.Text(name, weight=ft.FontWeight.W_500)),
                ft.DataCell(status_badge(f["status"])),
                ft.DataCell(ft.Text(human_bytes(f["size"]))),
                ft.DataCell(ft.Text(str(f["backup_count"]))),
                ft.DataCell(ft.Text(f["path"], size=12, tooltip=f["path"])),
                ft.DataCell(ft.Text(when(f["modified_at"]))),
                ft.DataCell(
                    ft.Row(
                        [
                            action_button(
                                ft.Icons.VERIFIED_OUTLINED,
                                f"Verify {name}",
                                f"verify-file-{f['id']}",
                                self.run_on_click(self.verify, f),
                            ),
                            action_button(
                                ft.Icons.DOWNLOAD,
                                f"Download {name}",
                                f"download-file-{f['id']}",
                                self.run_on_click(self.download, f),
                            ),
                            action_button(
                                ft.Icons.DELETE_OUTLINE,
                                f"Delete {name}",
                                f"delete-file-{f['id']}",
                                self.run_on_click(self.delete, f),
                            ),
                        ],
                        spacing=0,
                    )
                ),
            ]
        )

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
        page = self.app.page
        path_field = ft.TextField(
            label="Save to (path on the GUI's machine)", width=520, value=str(default_download_dir() / f["name"])
        )
        progress = ft.ProgressBar(value=0, width=520, visible=False)
        status = ft.Text("")
        task: asyncio.Task[Reply] | None = None

        def on_progress(done: int, total: int | None) -> None:
            progress.value = done / total if total else None
            status.value = f"{human_bytes(done)} of {human_bytes(total)}"
            try:
                progress.update()
                status.update()
            except RuntimeError:  # the dialog is gone (the tab closed): the download goes on unseen
                log.debug("gui.download_progress_unseen")

        async def start(e: ft.Event[ft.Button]) -> None:
            nonlocal task
            destination = os.path.expanduser(path_field.value or "")
            progress.visible, start_button.disabled = True, True
            status.value = "starting…"
            await self._refresh_controls(progress, start_button, status)
            task = self.app.session.tasks.spawn(
                self.bridge.download_file_async(f["id"], destination, progress=on_progress), "download"
            )
            try:
                reply = await task
            except asyncio.CancelledError:
                status.value = "cancelled; nothing was written"
                start_button.disabled = False
                await self._refresh_controls(status, start_button)
                return
            page.pop_dialog()
            if reply["success"]:
                await self.app.notifier.notify(
                    f"Downloaded {f['name']} to {reply['data']['destination_path']} (sha256 verified)"
                )
            else:
                await self.app.notifier.notify(
                    f"Download failed: {reply.get('message')} [{reply.get('error_code')}]",
                    error=True,
                    error_code=reply.get("error_code"),
                )

        def cancel(e: ft.Event[ft.TextButton]) -> None:
            if task is not None and not task.done():
                task.cancel()
            else:
                page.pop_dialog()

        start_button = ft.FilledButton("Download", on_click=start)
        page.show_dialog(
            ft.AlertDialog(
                modal=True,
                title=ft.Text(f"Download {f['name']}"),
                content=ft.Column(
                    [ft.Text(f"{human_bytes(f['size'])} · sha256 {f['sha256'][:16]}…"), path_field, progress, status],
                    tight=True,
                    width=540,
                ),
                actions=[ft.TextButton("Cancel", on_click=cancel), start_button],
            )
        )

    @staticmethod
    async def _refresh_controls(*controls: ft.Control) -> None:
        for control in controls:
            control.update()
