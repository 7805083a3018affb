"""The download dialogs: fetch a file (any version) or a backup's folders as an archive through the
bridge, then let the browser save it.

What is fetched comes into the GUI's private download area (gui/downloads.py) with progress
shown, its SHA-256 checked by the client library; the browser is then sent to a
one-time link for this tab. The link is opened in the page itself (``_self``): its
response is an attachment, so the browser saves it and the console stays. "Save file"
opens the same link from the user's own click, for browsers that only let a click start
a download. A failure keeps the dialog open and says why.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import flet as ft
import structlog

from gui.app_context import AppContext
from gui.downloads import Requester
from gui.format import count, human_bytes
from protocol.responses import Reply

log = structlog.get_logger()

WIDTH = 520


class BrowserDownload:
    """The dialog; a subclass says what to fetch (``request``) and under which name the browser saves it."""

    def __init__(self, app: AppContext, title: str, summary: str, filename: str) -> None:
        self.app = app
        self.filename = filename
        self.links = app.session.config.links
        self.progress = ft.ProgressBar(value=0, width=WIDTH)
        self.status = ft.Text("starting…", width=WIDTH)
        self.save_button = ft.FilledButton("Save file", icon=ft.Icons.SAVE_ALT, visible=False)
        self.cancel_button = ft.TextButton("Cancel", on_click=self.cancel)
        self.task: asyncio.Task[None] | None = None
        self.dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text(title),
            content=ft.Column(
                [
                    ft.Text(summary),
                    self.progress,
                    ft.Semantics(identifier="download-status", content=self.status),
                ],
                tight=True,
                width=WIDTH + 20,
            ),
            actions=[self.cancel_button, self.save_button],
        )

    async def request(self, staged: Path) -> Reply:
        raise NotImplementedError

    def saved_name(self, reply: Reply) -> str:
        return self.filename

    def open(self) -> None:
        self.app.page.show_dialog(self.dialog)
        self.task = self.app.session.tasks.spawn(self._fetch(), "download")

    async def _fetch(self) -> None:
        staged = self.links.staging_path(self.filename)
        try:
            reply = await self.request(staged)
        except asyncio.CancelledError:
            self.links.discard(staged)
            raise
        if not reply["success"]:
            self.links.discard(staged)
            self._failed(reply)
            return
        page = self.app.page
        self.filename = self.saved_name(reply)
        url = self.links.publish(
            staged,
            self.filename,
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
        await self.app.notifier.notify(f"Downloaded {self.filename} to your browser (sha256 verified)")

    def _failed(self, reply: Reply) -> None:
        log.info("gui.download_failed", filename=self.filename, error_code=reply.get("error_code"))
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


class DownloadDialog(BrowserDownload):
    """One file: its newest version, or ``version`` (one of get_file_versions')."""

    def __init__(self, app: AppContext, file: dict[str, Any], version: int | None = None) -> None:
        title = f"Download {file['name']}" + (f" (version {version})" if version is not None else "")
        super().__init__(app, title, f"{human_bytes(file['size'])} · sha256 {file['sha256'][:16]}…", file["name"])
        self.file = file
        self.version = version

    async def request(self, staged: Path) -> Reply:
        return await self.app.session.bridge.download_file_async(
            self.file["id"], str(staged), version=self.version, progress=self._on_progress
        )


class ArchiveDialog(BrowserDownload):
    """Folders and files of one backup as a tar (download_archive), saved under the name the backend suggests."""

    def __init__(self, app: AppContext, snapshot_id: str, paths: list[str], what: str) -> None:
        names = ", ".join(paths[:3]) + (f" and {count(len(paths) - 3, 'more item')}" if len(paths) > 3 else "")
        super().__init__(app, f"Download {what} as an archive", f"{names} · tar", "backup.tar")
        self.snapshot_id = snapshot_id
        self.paths = paths

    async def request(self, staged: Path) -> Reply:
        return await self.app.session.bridge.download_archive_async(
            self.snapshot_id, self.paths, str(staged), progress=self._on_progress
        )

    def saved_name(self, reply: Reply) -> str:
        return str(reply["data"].get("name") or self.filename)
