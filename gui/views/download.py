"""The download dialogs: a file (any version) or a backup's folders as an archive, saved by the browser.

A file is fetched into the GUI's private download area (gui/downloads.py) with progress
shown, its SHA-256 checked by the client library; the browser is then sent to a one-time
link for this tab. An archive can be as large as a backup, so it is never staged: it is
relayed to the browser as it streams (gui/archive_relay.py), with the browser's progress
shown and the outcome (verified, or why not) once the relay ends.

Either link is opened in the page itself (``_self``): its response is an attachment, so
the browser saves it and the console stays. "Save file" opens the same link from the
user's own click, for browsers that only let a click start a download. A refusal or a
failure keeps the dialog open and says why.
"""

from __future__ import annotations

import asyncio
from typing import Any

import flet as ft
import structlog

from gui.app_context import AppContext
from gui.archive_relay import ArchiveOffer, offer_archive
from gui.downloads import Requester
from gui.format import count, human_bytes
from protocol.responses import Reply

log = structlog.get_logger()

WIDTH = 520
# How often the archive dialog shows the browser's progress: the relay reports every chunk.
PROGRESS_EVERY_S = 0.25


class BrowserDownload:
    """The dialog; a subclass gets the content to the browser (``transfer``) and says under which name."""

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

    async def transfer(self) -> None:
        raise NotImplementedError

    def open(self) -> None:
        self.app.page.show_dialog(self.dialog)
        self.task = self.app.session.tasks.spawn(self.transfer(), "download")

    @property
    def requester(self) -> Requester:
        page = self.app.page
        return Requester(page.client_ip or "", page.client_user_agent or "")

    async def offer(self, url: str, status: str) -> None:
        """Send the browser to a one-time link, and offer it on a click too."""
        self.status.value = status
        self.save_button.action = ft.OpenUrl(url, target=ft.UrlTarget.BLANK)
        self.save_button.visible = True
        self._refresh()
        await ft.UrlLauncher().launch_url(url, web_only_window_name=ft.UrlTarget.SELF.value)

    def _on_progress(self, done: int, total: int | None) -> None:
        self.progress.value = done / total if total else None
        self.status.value = f"{human_bytes(done)} of {human_bytes(total)}"
        self._refresh()

    async def _done(self) -> None:
        if self.dialog.open:
            self.app.page.pop_dialog()
        await self.app.notifier.notify(f"Downloaded {self.filename} to your browser (sha256 verified)")

    def _failed(self, reply: Reply) -> None:
        log.info("gui.download_failed", filename=self.filename, error_code=reply.get("error_code"))
        self.progress.value = 0
        self.status.value = f"Download failed: {reply.get('message')} [{reply.get('error_code')}]"
        self.status.color = ft.Colors.RED_700
        self.save_button.visible = False  # its link is used up or gone
        self.cancel_button.content = "Close"
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
    """One file: its newest version, or ``version`` (one of get_file_versions'), staged then served."""

    def __init__(self, app: AppContext, file: dict[str, Any], version: int | None = None) -> None:
        title = f"Download {file['name']}" + (f" (version {version})" if version is not None else "")
        super().__init__(app, title, f"{human_bytes(file['size'])} · sha256 {file['sha256'][:16]}…", file["name"])
        self.file = file
        self.version = version

    async def transfer(self) -> None:
        staged = self.links.staging_path(self.filename)
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
        url = self.links.publish(staged, self.filename, self.app.session.key, self.requester, on_served=self._served)
        self.progress.value = 1
        self.cancel_button.content = "Close"
        await self.offer(
            url, f"{human_bytes(reply['data']['size'])} received, sha256 verified; your browser saves it now."
        )

    def _served(self) -> None:
        """The browser fetched the link (called by the HTTP route, outside this tab's context)."""
        self.app.page.run_task(self._done)


class ArchiveDialog(BrowserDownload):
    """Folders and files of one backup as a tar (download_archive), relayed to the browser as it streams."""

    def __init__(self, app: AppContext, snapshot_id: str, paths: list[str], what: str) -> None:
        names = ", ".join(paths[:3]) + (f" and {count(len(paths) - 3, 'more item')}" if len(paths) > 3 else "")
        super().__init__(app, f"Download {what} as an archive", f"{names} · tar", "backup.tar")
        self.snapshot_id = snapshot_id
        self.paths = paths
        self.relayed: ArchiveOffer | None = None
        self.sent = 0  # bytes the browser has taken, as the relay reports them (outside this tab's context)

    async def transfer(self) -> None:
        self.status.value = "Preparing the archive…"
        self.progress.value = None
        self._refresh()
        made = await offer_archive(
            self.links,
            self.app.session.bridge.async_client,
            snapshot_id=self.snapshot_id,
            paths=self.paths,
            owner=self.app.session.key,
            requester=self.requester,
            progress=self._taken,
        )
        if not isinstance(made, ArchiveOffer):
            self._failed(made)
            return
        self.relayed, self.filename = made, made.filename
        self.progress.value = 0
        await self.offer(made.url, f"{human_bytes(made.total)} archive; your browser receives it now.")
        await self._follow(made)

    def _taken(self, done: int, total: int | None) -> None:
        self.sent = done  # shown by _follow, from this tab's own task

    async def _follow(self, made: ArchiveOffer) -> None:
        """Show the browser's progress until the relay ends, then its outcome."""
        shown = -1
        while not made.done.done():
            await asyncio.wait({made.done}, timeout=PROGRESS_EVERY_S)
            if self.sent != shown and not made.done.done():
                shown = self.sent
                self._on_progress(shown, made.total)
        reply = made.done.result()
        if reply["success"]:
            await self._done()
        else:
            self._failed(reply)

    async def cancel(self, e: ft.Event[ft.TextButton]) -> None:
        if self.relayed is not None:
            self.relayed.cancel()  # the browser's download fails rather than completing a partial archive
        await super().cancel(e)
