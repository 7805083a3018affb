"""The download dialog: fetch a file through the bridge, then let the browser save it.

The file comes into the GUI's private download area (gui/downloads.py) with progress
shown, its SHA-256 checked by the client library; the browser is then sent to a
one-time link for this tab. The link is opened in the page itself (``_self``): its
response is an attachment, so the browser saves it and the console stays. "Save file"
opens the same link from the user's own click, for browsers that only let a click start
a download. A failure keeps the dialog open and says why.
"""

from __future__ import annotations

import asyncio
from typing import Any

import flet as ft
import structlog

from gui.app_context import AppContext
from gui.downloads import Requester
from gui.format import human_bytes
from protocol.responses import Reply

log = structlog.get_logger()

WIDTH = 520


class DownloadDialog:
    def __init__(self, app: AppContext, file: dict[str, Any], version: int | None = None) -> None:
        self.app = app
        self.file = file
        self.version = version  # None: the newest; else one of get_file_versions' versions
        self.links = app.session.config.links
        self.progress = ft.ProgressBar(value=0, width=WIDTH)
        self.status = ft.Text("starting…", width=WIDTH)
        self.save_button = ft.FilledButton("Save file", icon=ft.Icons.SAVE_ALT, visible=False)
        self.cancel_button = ft.TextButton("Cancel", on_click=self.cancel)
        self.task: asyncio.Task[None] | None = None
        self.dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text(f"Download {file['name']}" + (f" (version {version})" if version is not None else "")),
            content=ft.Column(
                [
                    ft.Text(f"{human_bytes(file['size'])} · sha256 {file['sha256'][:16]}…"),
                    self.progress,
                    ft.Semantics(identifier="download-status", content=self.status),
                ],
                tight=True,
                width=WIDTH + 20,
            ),
            actions=[self.cancel_button, self.save_button],
        )

    def open(self) -> None:
        self.app.page.show_dialog(self.dialog)
        self.task = self.app.session.tasks.spawn(self._fetch(), "download")

    async def _fetch(self) -> None:
        staged = self.links.staging_path(self.file["name"])
        try:
            reply = await self.app.session.bridge.download_file_async(
                self.file["id"], str(staged), version=self.version, progress=self._on_progress
            )
        except asyncio.CancelledError:
            self.links.discard(staged)
            raise
        if not reply["success"]:
            self.links.discard(staged)
            self._failed(reply)
            return
        page = self.app.page
        url = self.links.publish(
            staged,
            self.file["name"],
            self.app.session.key,
            Requester(page.client_ip or "", page.client_user_agent or ""),
            on_served=self._served,
        )
        self.progress.value = 1
        self.status.value = (
            f"{human_bytes(reply['data']['size'])} received, sha256 verified; your browser saves it now."
        )
        self.save_button.action = ft.OpenUrl(url, target=ft.UrlTarget.BLANK)
        self.save_button.visible = True
        self.cancel_button.content = "Close"
        self._refresh()
        await ft.UrlLauncher().launch_url(url, web_only_window_name=ft.UrlTarget.SELF.value)

    def _on_progress(self, done: int, total: int | None) -> None:
        self.progress.value = done / total if total else None
        self.status.value = f"{human_bytes(done)} of {human_bytes(total)}"
        self._refresh()

    def _served(self) -> None:
        """The browser fetched the link (called by the HTTP route, outside this tab's context)."""
        self.app.page.run_task(self._done)

    async def _done(self) -> None:
        if self.dialog.open:
            self.app.page.pop_dialog()
        await self.app.notifier.notify(f"Downloaded {self.file['name']} to your browser (sha256 verified)")

    def _failed(self, reply: Reply) -> None:
        log.info("gui.download_failed", file_id=self.file["id"], error_code=reply.get("error_code"))
        self.progress.value = 0
        self.status.value = f"Download failed: {reply.get('message')} [{reply.get('error_code')}]"
        self.status.color = ft.Colors.RED_700
        self._refresh()

    async def cancel(self, e: ft.Event[ft.TextButton]) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.app.page.pop_dialog()

    def _refresh(self) -> None:
        try:
            self.dialog.update()
        except RuntimeError:  # the dialog is gone (the tab closed): the download goes on unseen
            log.debug("gui.download_progress_unseen")
