"""Restore: choose a client, then one of its backups on a timeline, then walk that backup's folders
one level at a time and pick a file to see (and download) any of its versions.

The way UrBackup and Proxmox Backup Server do it: the newest backup opens at once, and moving to
another backup keeps the folder open when that backup has it too, so the same folder can be
compared across runs. Every answer is shown only while it still answers what is chosen (a click
on another backup drops the folder listing of the previous one), and typing never waits for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import flet as ft
import structlog

from gui.format import when
from gui.live import RUN_ENDED_KEY
from gui.views.base import View
from gui.views.client_picker import ClientPicker
from gui.views.download import ArchiveDialog, DownloadDialog
from gui.views.paged import Latest
from gui.views.restore_browser import FolderBrowser, VersionsPanel, pick_row
from gui.views.restore_entries import IsolatedColumn
from gui.views.restore_job import RestoreDialog
from gui.views.runs import duration, latest_reply, run_badge, run_result, run_size
from gui.views.widgets import Pager, error_text
from protocol.errors import ErrorCode
from protocol.responses import Reply

log = structlog.get_logger()

SNAPSHOTS_KEY = "restore.snapshots"
FOLDER_KEY = "restore.folder"
VERSIONS_KEY = "restore.versions"
TIMELINE_PAGE = 20
TIMELINE_SIZES = (10, 20, 50, 100)
TIMELINE_WIDTH = 340
QUICK_S = 0.1

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Chosen:
    id: str
    name: str

    def ran(self, ended: Any) -> bool:
        """Whether a snapshot.ended (as the store holds it under RUN_ENDED_KEY) was a run of this client."""
        return isinstance(ended, dict) and ended.get("client_id") == self.id


class RestoreView(View):
    title = "Restore"
    icon = ft.Icons.RESTORE
    keys = (SNAPSHOTS_KEY, FOLDER_KEY, VERSIONS_KEY)
    reads = "list_snapshots"

    def build(self) -> ft.Control:
        self.client: Chosen | None = None
        self.run: dict[str, Any] | None = None  # the backup chosen on the timeline
        self.latest = {key: Latest() for key in self.keys}
        self.picker = ClientPicker(self, self.choose_client, lambda: self.client.name if self.client else None)
        # A run of the client shown that ended (snapshot.ended, gui/live.py): its timeline is listed anew.
        self.app.session.store.subscribe(RUN_ENDED_KEY, self._on_run_ended)
        self.error = error_text()
        self.prompt = ft.Semantics(
            identifier="restore-prompt",
            content=ft.Text("Choose a client to see its backups: type part of its name.", italic=True, size=16),
        )
        self.timeline_heading = ft.Text("", weight=ft.FontWeight.W_500, size=16)
        self.timeline = IsolatedColumn([], spacing=2, scroll=ft.ScrollMode.AUTO, expand=True)
        self.no_backups = ft.Semantics(
            identifier="restore-no-backups",
            content=ft.Text("No backups yet for this client", italic=True),
            visible=False,
        )
        self.timeline_pager = Pager(TIMELINE_PAGE, self._turn_timeline, "restore-snapshots", TIMELINE_SIZES)
        self.browser = FolderBrowser(
            self, self._reload_folder, self.open_entry, self.go_up, self.archive, self.restore_to_client
        )
        self.versions = VersionsPanel(self, self.download, self.close_versions)
        self._timeline_built: Hashable = None
        timeline = ft.Container(
            ft.Column(
                [self.timeline_heading, self.no_backups, self.timeline, self.timeline_pager.control],
                expand=True,
                spacing=6,
            ),
            width=TIMELINE_WIDTH,
        )
        self.body = ft.Row(
            [
                timeline,
                ft.VerticalDivider(width=1),
                self.browser.control,
                ft.VerticalDivider(width=1),
                self.versions.control,
            ],
            expand=True,
            vertical_alignment=ft.CrossAxisAlignment.START,
            visible=False,
        )
        return ft.Column(
            [
                ft.Row(
                    [
                        ft.Text("Restore", size=22, weight=ft.FontWeight.BOLD),
                        self.picker.field,
                        ft.IconButton(ft.Icons.REFRESH, tooltip="Refresh backups", on_click=self.refresh_click),
                    ],
                    wrap=True,
                    vertical_alignment=ft.CrossAxisAlignment.CENTER,
                ),
                self.picker.box,
                self.error,
                self.prompt,
                self.body,
            ],
            expand=True,
        )

    # ------------------------------------------------------------------ choosing

    async def choose_client(self, client_id: str, name: str) -> None:
        """Show this client's backups, the newest one opened (also how other views open this one)."""
        self.client = Chosen(client_id, name)
        self.run = None
        self.browser.reset()
        self.browser.deselect()
        self.versions.close()
        self.timeline_pager.reset()
        self.picker.show_chosen(name)
        for key in self.keys:  # nothing of the previous client stays on screen
            await self.app.session.store.set(key, None)
        self.redraw()
        reply = await self.load_snapshots()
        if reply["success"] and self.client == Chosen(client_id, name) and self.run is None:
            runs = reply["data"]["items"]
            if runs:
                await self.choose_run(runs[0])

    async def choose_run(self, run: dict[str, Any]) -> None:
        """Open a backup on the folder shown now, or on its top when it does not hold that folder."""
        if self.run is None or self.run["id"] != run["id"]:
            self.browser.deselect()
        self.run = run
        self.browser.pager.reset()
        reply = await self.shown_after(self.load_folder())
        if not reply["success"] and reply.get("error_code") == ErrorCode.NOT_FOUND and len(self.browser.crumbs) > 1:
            missing = self.browser.path
            self.browser.reset()
            await self.load_folder()
            await self.app.notifier.notify(
                f"{missing} is not in the backup of {when(run['started_at'])}; showing its top"
            )

    async def open_entry(self, entry: dict[str, Any]) -> None:
        if entry["type"] == "dir":
            self.browser.enter(entry)
            await self.shown_after(self.load_folder())
        else:
            self.versions.open(entry)
            await self.shown_after(self.load_versions())

    async def go_up(self, depth: int) -> None:
        self.browser.cut(depth)
        await self.shown_after(self.load_folder())

    async def shown_after(self, load: Awaitable[Reply]) -> Reply:
        """Load what a choice asks for. An answer within ``QUICK_S`` is drawn with the choice, in one
        patch (a folder's listing comes in a few ms); only a slower one has the choice drawn first."""
        task = asyncio.ensure_future(load)
        try:
            done, _ = await asyncio.wait({task}, timeout=QUICK_S)
            if not done:
                self.redraw()
            return await task
        except asyncio.CancelledError:
            task.cancel()
            raise

    async def close_versions(self, _: None) -> None:
        self.versions.close()
        self.redraw()

    async def archive(self, _: None) -> None:
        if self.run is not None:
            ArchiveDialog(self.app, self.run["id"], self.browser.targets, self.browser.target_name).open()

    async def restore_to_client(self, _: None) -> None:
        if self.run is not None and self.client is not None:
            targets, name = self.browser.targets, self.browser.target_name
            RestoreDialog(self.app, self.client.name, self.run["id"], targets, name).open()

    async def download(self, version: dict[str, Any]) -> None:
        file = {"id": version["file_id"], "name": version["name"], "size": version["size"], "sha256": version["sha256"]}
        DownloadDialog(self.app, file, version["version"]).open()

    # ------------------------------------------------------------------ loading

    def _ask(self, key: str, query: Callable[[], Hashable], fetch: Callable[[], Awaitable[Reply]]) -> Awaitable[Reply]:
        return self.ctx.load_data_operation(key, lambda: latest_reply(self.latest[key], query, fetch))

    def _timeline_query(self) -> Hashable:
        return (self.client, self.timeline_pager.offset, self.timeline_pager.page_size)

    def _folder_query(self) -> Hashable:
        return (
            self.run["id"] if self.run else None,
            self.browser.path,
            self.browser.pager.offset,
            self.browser.pager.page_size,
        )

    async def load_snapshots(self) -> Reply:
        async def fetch() -> Reply:
            assert self.client is not None  # only asked once a client is chosen
            pager = self.timeline_pager
            return await self.bridge.list_snapshots_async(self.client.id, offset=pager.offset, limit=pager.page_size)

        return await self._ask(SNAPSHOTS_KEY, self._timeline_query, fetch)

    async def load_folder(self) -> Reply:
        async def fetch() -> Reply:
            assert self.run is not None  # only asked once a backup is chosen
            pager = self.browser.pager
            return await self.bridge.browse_snapshot_async(
                self.run["id"], self.browser.path, offset=pager.offset, limit=pager.page_size
            )

        return await self._ask(FOLDER_KEY, self._folder_query, fetch)

    async def load_versions(self) -> Reply:
        return await self._ask(
            VERSIONS_KEY,
            lambda: self.versions.file_id,
            lambda: self.bridge.get_file_versions_async(self.versions.file_id),
        )

    async def _turn_timeline(self) -> None:
        await self.load_snapshots()

    async def _reload_folder(self) -> None:
        await self.load_folder()

    async def reload(self) -> None:
        """Everything chosen, asked again (the view is shown again, or the operator asked)."""
        loads: list[Awaitable[Reply]] = []
        if self.client is not None:
            loads.append(self.load_snapshots())
        if self.run is not None:
            loads.append(self.load_folder())
        if self.versions.file is not None:
            loads.append(self.load_versions())
        await asyncio.gather(*loads)

    async def refresh_click(self, e: ft.Event[ft.IconButton]) -> None:
        await self.reload()

    async def _on_run_ended(self, key: str, ended: Any) -> None:
        """A backup of the client shown ended: list its timeline anew (the chosen run with it), no polling.
        A hidden view reloads everything when shown again anyway."""
        if self.visible and self.client is not None and self.client.ran(ended):
            self.app.session.tasks.spawn(self.load_snapshots(), "restore-run-ended")

    async def show(self) -> None:
        # What this view shows depends on what was chosen in it, so it has no loaders of its own
        # in the session's context (a reload of everything would have nothing to ask for).
        self.visible = True
        self.render()
        await self.reload()

    # ------------------------------------------------------------------ rendering

    def redraw(self) -> None:
        """Render and send now (after a choice: the selection shows before its data comes)."""
        if self.visible:
            self.render()
            for control in self.changed_controls():
                self._update(control)

    def changed_controls(self) -> Sequence[ft.Control]:
        # The folder's rows are isolated (an update of the view skips them): they go on their own.
        rows = self.browser.rows
        if rows.scroll_pending:  # after this patch (the task runs once it is sent)
            self.app.session.tasks.spawn(rows.scroll_top(), "restore-scroll")
        return (self.root, *rows.take_changes())

    def spawn_action(self, handler: Callable[[T], Coroutine[Any, Any, None]], item: T) -> None:
        self.app.session.tasks.spawn(handler(item), "restore-action")

    def _update(self, control: ft.Control) -> None:
        try:
            control.update()
        except Exception:  # a closed page or a detached control must not break a click
            log.debug("gui.restore_update_skipped")

    def render(self) -> None:
        store = self.app.session.store
        chosen = self.client is not None
        self.prompt.visible, self.body.visible = not chosen, chosen
        self.error.value = "\n".join(line for line in (self.error_line(k) for k in self.keys) if line)
        gates = (self.app.gate("download_file").allowed, self._writes_blocked)
        self._render_actions()
        self._render_timeline()
        listing = store.get(FOLDER_KEY)
        self.browser.render(self.run, listing, store.entry(FOLDER_KEY).version, self.versions.file_id, gates)
        held = None
        if listing and self.versions.file_id:
            held = next((e["version"] for e in listing["items"] if e["file_id"] == self.versions.file_id), None)
        self.versions.render(store.get(VERSIONS_KEY), store.entry(VERSIONS_KEY).version, held, gates)

    def _render_actions(self) -> None:
        """The archive and restore buttons, gated by role and outage like every action, and saying what they take."""
        if self.run is None or self.client is None:
            return
        target = self.browser.target_name
        self._gate(self.browser.archive_button, "download_archive", f"Download {target} as a tar archive")
        running = "A backup still running cannot be restored yet" if self.run["status"] == "running" else None
        label = f"Restore {target} onto the machine of {self.client.name}"
        self._gate(self.browser.restore_button, "restore_to_agent", label, running)

    def _gate(self, button: ft.Control, op: str, label: str, reason: str | None = None) -> None:
        gate = self.app.gate(op, label)
        button.disabled = not gate.allowed or reason is not None
        button.tooltip = reason if gate.allowed and reason else gate.tooltip

    def _render_timeline(self) -> None:
        if self.client is None:
            return
        self.timeline_heading.value = f"Backups of {self.client.name}"
        entry = self.app.session.store.entry(SNAPSHOTS_KEY)
        page = entry.value
        if page is not None and self.run is not None:
            # A run listed anew (ended meanwhile, say) replaces the one chosen.
            self.run = next((r for r in page["items"] if r["id"] == self.run["id"]), self.run)
        signature = (self.client, entry.version, self.run["id"] if self.run else None)
        if signature == self._timeline_built:
            return
        self._timeline_built = signature
        if page is None:
            self.timeline.controls, self.no_backups.visible = [], False
            self.timeline_pager.control.visible = False
            return
        self.timeline_pager.update_from(page["total"])
        self.no_backups.visible = page["total"] == 0
        self.timeline.controls = [self._run_row(r) for r in page["items"]]

    def _run_row(self, run: dict[str, Any]) -> ft.Control:
        chosen = self.run is not None and run["id"] == self.run["id"]
        lines = ft.Column(
            [
                ft.Row(
                    [ft.Text(when(run["started_at"]), weight=ft.FontWeight.W_500), run_badge(run["status"])], spacing=8
                ),
                ft.Text(f"{run_size(run)} · {duration(run)}", size=12),
                ft.Text(run_result(run), size=12),
            ],
            spacing=1,
        )
        return pick_row(f"snapshot-{run['id']}", lines, self.run_on_click(self.choose_run, run), chosen)
