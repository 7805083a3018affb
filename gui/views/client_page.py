"""A client's own page (opened from the Clients list): what it is, whether its backups keep up, the
history of its backup runs, and the ways on to its files and to restoring from it.

"Overdue" follows the client's own rhythm (``gui/views/runs.py``: ``OVERDUE_RULE``, which the
marker's tooltip says in full), so a client backed up hourly and one backed up weekly are each
judged by their own schedule.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime
from typing import Any

import flet as ft
import structlog

from gui.format import human_bytes, human_duration, number, when
from gui.live import RUN_ENDED_KEY
from gui.views.base import View
from gui.views.paged import Latest
from gui.views.restore import Chosen
from gui.views.runs import RUNS_FOR_INTERVAL, SUCCESS, duration, latest_reply, run_badge, run_result, run_size, schedule
from gui.views.widgets import Pager, error_text, scroll_table, status_badge
from protocol.responses import Reply

log = structlog.get_logger()

CLIENT_KEY = "client_page.client"
RUNS_KEY = "client_page.runs"
HISTORY_PAGE = 20
HISTORY_SIZES = (10, 20, 50, 100)
MARKER_COLORS = {"Overdue": ft.Colors.RED_700, "On schedule": ft.Colors.GREEN_700}


def fact(label: str, value: ft.Control) -> ft.Control:
    """A label and its value; a long value wraps inside its own column instead of running into the next fact."""
    return ft.Row(
        [ft.Text(label, width=140, weight=ft.FontWeight.W_500), ft.Container(value, expand=True)],
        width=480,
        vertical_alignment=ft.CrossAxisAlignment.START,
    )


class ClientPage(View):
    title = "Client"
    icon = ft.Icons.COMPUTER
    keys = (CLIENT_KEY, RUNS_KEY)
    reads = "get_client_details"

    def build(self) -> ft.Control:
        self.client: Chosen | None = None
        self.latest = {key: Latest() for key in self.keys}
        self.name = ft.Text("", size=22, weight=ft.FontWeight.BOLD)
        self.status = ft.Row([], tight=True)
        self.marker_text = ft.Text("", size=12, color=ft.Colors.WHITE)
        self.marker = ft.Container(
            self.marker_text,
            padding=ft.Padding.symmetric(horizontal=8, vertical=2),
            border_radius=10,
        )
        # Shown and hidden as a whole: Flet refuses a Semantics whose content is hidden.
        self.marker_box = ft.Semantics(identifier="client-overdue", content=self.marker, visible=False)
        self.files_button = ft.OutlinedButton("Files", icon=ft.Icons.DESCRIPTION, on_click=self.show_files)
        self.restore_button = ft.FilledButton("Restore…", icon=ft.Icons.RESTORE, on_click=self.restore)
        self.values = {
            name: ft.Text("—", selectable=True)
            for name in (
                "hostname",
                "ip",
                "platform",
                "agent",
                "connected_at",
                "last_seen",
                "files",
                "by_status",
                "last_success",
                "interval",
            )
        }
        self.error = error_text()
        self.client_error_text = error_text()  # the client's own error (its status is error)
        self.client_error = ft.Semantics(identifier="client-error", content=self.client_error_text, visible=False)
        self.history = ft.DataTable(
            columns=[
                ft.DataColumn(label=ft.Text("Started")),
                ft.DataColumn(label=ft.Text("Status")),
                ft.DataColumn(label=ft.Text("Duration")),
                ft.DataColumn(label=ft.Text("Files"), numeric=True),
                ft.DataColumn(label=ft.Text("Size"), numeric=True),
                ft.DataColumn(label=ft.Text("Result")),
            ],
            rows=[],
            column_spacing=24,
        )
        self.history_area = scroll_table(self.history, "client-runs-table")
        self.no_runs = ft.Semantics(
            identifier="client-no-backups",
            content=ft.Text("No backups yet for this client", italic=True, size=16),
            visible=False,
        )
        self.pager = Pager(HISTORY_PAGE, self._turn, "client-runs", HISTORY_SIZES)
        self._history_built: Hashable = None
        # A run of this client that ended (snapshot.ended, gui/live.py): its history and rhythm anew.
        self.app.session.store.subscribe(RUN_ENDED_KEY, self._on_run_ended)
        labels = {
            "hostname": "Hostname",
            "ip": "IP",
            "platform": "Platform",
            "agent": "Agent",
            "connected_at": "Connected since",
            "last_seen": "Last seen",
            "files": "Files",
            "by_status": "Files by status",
            "last_success": "Last complete backup",
            "interval": "Usual interval",
        }
        facts = [
            fact(text, ft.Semantics(identifier=f"client-{name}", content=self.values[name]))
            for name, text in labels.items()
        ]
        return ft.Column(
            [
                ft.Row(
                    [
                        ft.TextButton("Clients", icon=ft.Icons.ARROW_BACK, on_click=self.back),
                        ft.Semantics(identifier="client-name", content=self.name),
                        self.status,
                        self.marker_box,
                        self.files_button,
                        self.restore_button,
                    ],
                    wrap=True,
                    vertical_alignment=ft.CrossAxisAlignment.CENTER,
                ),
                self.error,
                self.client_error,
                ft.Row(facts, wrap=True, spacing=4, run_spacing=0),
                ft.Divider(),
                ft.Text("History of backups", size=18, weight=ft.FontWeight.W_500),
                self.no_runs,
                self.history_area,
                self.pager.control,
            ],
            expand=True,
        )

    # ------------------------------------------------------------------ opening

    def open(self, client_id: str, name: str) -> None:
        """Show this client from the next ``show`` on (the console shows the page right after)."""
        if self.client != Chosen(client_id, name):
            self.client = Chosen(client_id, name)
            self.pager.reset()
            self._history_built = None
            for key in self.keys:  # another client's figures must not show while this one's load
                self.app.session.store.entry(key).value = None
                self.app.session.store.entry(key).error = None

    async def show(self) -> None:
        # The page's data depends on the client opened, so it has no loaders in the session's context.
        self.visible = True
        self.render()
        await self._reload()

    # ------------------------------------------------------------------ loading

    def _ask(self, key: str, query: Callable[[], Hashable], fetch: Callable[[], Awaitable[Reply]]) -> Awaitable[Reply]:
        return self.ctx.load_data_operation(key, lambda: latest_reply(self.latest[key], query, fetch))

    async def load_client(self) -> Reply:
        """The client, its newest runs (its rhythm) and its newest complete run, as one value."""

        async def fetch() -> Reply:
            assert self.client is not None  # the page is only shown once opened on a client
            client_id = self.client.id
            details, newest, complete = await asyncio.gather(
                self.bridge.get_client_details_async(client_id),
                self.bridge.list_snapshots_async(client_id, limit=RUNS_FOR_INTERVAL),
                self.bridge.list_snapshots_async(client_id, limit=1, status=SUCCESS),
            )
            for reply in (details, newest, complete):
                if not reply["success"]:
                    return reply
            combined = details.copy()
            combined["data"] = {
                **details["data"],
                "newest_runs": newest["data"]["items"],
                "last_complete": next(iter(complete["data"]["items"]), None),
            }
            return combined

        return await self._ask(CLIENT_KEY, lambda: self.client, fetch)

    async def load_runs(self) -> Reply:
        async def fetch() -> Reply:
            assert self.client is not None
            return await self.bridge.list_snapshots_async(
                self.client.id, offset=self.pager.offset, limit=self.pager.page_size
            )

        return await self._ask(RUNS_KEY, lambda: (self.client, self.pager.offset, self.pager.page_size), fetch)

    async def _turn(self) -> None:
        await self.load_runs()

    async def _on_run_ended(self, key: str, ended: Any) -> None:
        """One of this client's runs ended: its history and its facts (last complete backup, rhythm) change.
        A hidden page loads everything when shown again anyway."""
        if self.visible and self.client is not None and self.client.ran(ended):
            self.app.session.tasks.spawn(self._reload(), "client-run-ended")

    async def _reload(self) -> None:
        await asyncio.gather(self.load_client(), self.load_runs())

    # ------------------------------------------------------------------ the ways on

    async def back(self, e: ft.Event[ft.TextButton]) -> None:
        if self.app.navigator is not None:
            await self.app.navigator.clients()

    async def show_files(self, e: ft.Event[ft.OutlinedButton]) -> None:
        if self.app.navigator is not None and self.client is not None:
            await self.app.navigator.client_files(self.client.id, self.client.name)

    async def restore(self, e: ft.Event[ft.Button]) -> None:
        if self.app.navigator is not None and self.client is not None:
            await self.app.navigator.restore(self.client.id, self.client.name)

    # ------------------------------------------------------------------ rendering

    def render(self) -> None:
        if self.client is None:
            return
        self.name.value = self.client.name
        self.files_button.content = f"Files of {self.client.name}"
        self.guard(self.files_button, "get_files")
        self.guard(self.restore_button, "list_snapshots")
        self.error.value = "\n".join(line for line in (self.error_line(k) for k in self.keys) if line)
        self._render_client(self.app.session.store.get(CLIENT_KEY))
        self._render_history()

    def _render_client(self, data: dict[str, Any] | None) -> None:
        if data is None:
            self.status.controls, self.marker_box.visible = [], False
            for value in self.values.values():
                value.value = "—"
            return
        client, summary = data["client"], data["files_summary"]
        self.status.controls = [status_badge(client["status"])]
        v = self.values
        v["hostname"].value, v["ip"].value = client["hostname"], client["ip_address"]
        v["platform"].value, v["agent"].value = client["platform"], client["agent_version"]
        v["connected_at"].value, v["last_seen"].value = when(client["connected_at"]), when(client["last_seen"])
        v["files"].value = f"{number(summary['count'])} ({human_bytes(summary['total_size'])})"
        by_status = sorted(summary["by_status"].items())
        v["by_status"].value = ", ".join(f"{status}: {number(n)}" for status, n in by_status) or "—"
        self.client_error_text.value = client.get("error_message") or ""
        self.client_error.visible = bool(self.client_error_text.value)
        rhythm = schedule(data["newest_runs"], data["last_complete"], client.get("created_at"), datetime.now(UTC))
        complete = data["last_complete"]
        if complete is None:
            v["last_success"].value = "No complete backup yet"
        else:
            ago = human_duration(rhythm.waited.total_seconds()) if rhythm.waited else "—"
            v["last_success"].value = f"{when(rhythm.last_success)} ({ago} ago) · {run_size(complete)}"
        interval = rhythm.usual_interval
        v["interval"].value = human_duration(interval.total_seconds()) if interval else "not known yet"
        self.marker_text.value = rhythm.label
        self.marker.bgcolor = MARKER_COLORS.get(rhythm.label, ft.Colors.GREY_600)
        self.marker.tooltip = rhythm.tooltip
        self.marker_box.visible = True

    def _render_history(self) -> None:
        entry = self.app.session.store.entry(RUNS_KEY)
        page = entry.value
        signature = (self.client, entry.version, page is None)
        if signature == self._history_built:
            return
        self._history_built = signature
        if page is None:
            self.history.rows, self.no_runs.visible = [], False
            self.history_area.visible = self.pager.control.visible = False
            return
        empty = page["total"] == 0
        self.pager.update_from(page["total"])
        self.no_runs.visible, self.history_area.visible = empty, not empty
        self.history.rows = [self._run_row(r) for r in page["items"]]

    def _run_row(self, run: dict[str, Any]) -> ft.DataRow:
        return ft.DataRow(
            cells=[
                ft.DataCell(ft.Text(when(run["started_at"]))),
                ft.DataCell(run_badge(run["status"])),
                ft.DataCell(ft.Text(duration(run))),
                ft.DataCell(ft.Text(number(run["files_total"]))),
                ft.DataCell(ft.Text(human_bytes(run["bytes_total"]))),
                ft.DataCell(ft.Text(run_result(run), size=12)),
            ]
        )
