"""Dashboard: server status and controls, live host CPU/memory/disk chart, recent activity."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import flet as ft
import flet_charts as fch

from gui.format import human_bytes, human_duration, number, when
from gui.outage import BridgeState, hhmm
from gui.views.base import View
from gui.views.polling import PollWhileShown
from gui.views.widgets import Isolated, error_text
from protocol.responses import Reply
from protocol.views import ViewKey

SYSTEM_POLL_S = 2.0
HISTORY_S = 300  # the chart shows the last five minutes
AXIS_STEP_S = 60
LEVEL_COLORS = {"ERROR": ft.Colors.RED_600, "WARNING": ft.Colors.AMBER_800}
RECENT = 12


CARD_WIDTH, CARD_HEIGHT = 200, 92
STALE_OPACITY = 0.4  # greyed: the figures are not the real server's of now


class Series(fch.LineChartData):
    """A line of the host chart. Its points never change once added (they come and go), so a diff of
    the chart need not walk into each of them: only the list of points is compared."""

    def is_isolated(self) -> bool:
        return True


def card(label: str, value: ft.Text, identifier: str, detail: ft.Text | None = None) -> ft.Control:
    """A figure with its label, and a line saying what it is of; every card is the same size."""
    lines: list[ft.Control] = [ft.Text(label, size=12), ft.Semantics(identifier=identifier, content=value)]
    if detail is not None:
        lines.append(ft.Semantics(identifier=f"{identifier}-detail", content=detail))
    return ft.Card(ft.Container(ft.Column(lines, spacing=2), padding=12, width=CARD_WIDTH, height=CARD_HEIGHT))


def detail_text() -> ft.Text:
    return ft.Text("", size=12, max_lines=1, overflow=ft.TextOverflow.ELLIPSIS)


class DashboardView(View):
    title = "Dashboard"
    icon = ft.Icons.DASHBOARD
    keys = (ViewKey.STATUS, ViewKey.SYSTEM, ViewKey.ACTIVITY)

    def build(self) -> ft.Control:
        self.ctx.register_loader(ViewKey.STATUS, lambda: self.bridge.get_server_status_async())
        self.ctx.register_loader(ViewKey.SYSTEM, lambda: self.bridge.get_system_status_async())
        self.ctx.register_loader(ViewKey.ACTIVITY, self.load_activity)
        # Points are placed on a fixed time axis (seconds since a whole minute before the view was
        # built, so the axis' steps fall on the clock's minutes) and kept: a new sample adds one point
        # and the window slides, so a poll's patch is that point and the axis, not 300 points
        # redrawn (every tab on the dashboard polls every SYSTEM_POLL_S).
        self._origin = time.time() // AXIS_STEP_S * AXIS_STEP_S
        self._chart_moved = False
        self.history: deque[tuple[float, fch.LineChartDataPoint, fch.LineChartDataPoint]] = deque()
        self._last_system: dict[str, Any] | None = None
        # Owned by the session, so a closed tab stops polling even while this view is shown.
        self.poller = PollWhileShown(
            self.app.session.tasks, "poll-system", SYSTEM_POLL_S, lambda: self.visible, self._poll_system
        )
        self.values = {
            name: ft.Text("—", size=20, weight=ft.FontWeight.BOLD, max_lines=1)
            for name in ("state", "uptime", "clients", "files", "storage", "transfers", "cpu", "memory", "disk")
        }
        self.details = {name: detail_text() for name in ("cpu", "memory", "disk")}
        self.start_button = ft.FilledButton("Start server", icon=ft.Icons.PLAY_ARROW, on_click=self.start_server)
        self.stop_button = ft.OutlinedButton("Stop server", icon=ft.Icons.STOP, on_click=self.stop_server)
        self.cpu_series = Series(points=[], color=ft.Colors.BLUE, stroke_width=2)
        self.mem_series = Series(points=[], color=ft.Colors.PURPLE, stroke_width=2)
        self.chart = fch.LineChart(
            data_series=[self.cpu_series, self.mem_series],
            min_y=0,
            max_y=100,
            min_x=-HISTORY_S,
            max_x=0,  # both follow the newest sample (_record)
            height=200,
            expand=True,
            interactive=False,
            left_axis=fch.ChartAxis(label_size=36, label_spacing=25),
            # The clock's minutes (set with each sample); the window's ends fall between them.
            bottom_axis=fch.ChartAxis(label_size=24, label_spacing=AXIS_STEP_S, show_min=False, show_max=False),
        )
        # The same RECENT lines, refilled: a new entry changes their texts, not the controls.
        self.activity_lines = [ft.Text("", size=12, visible=False) for _ in range(RECENT)]
        self.activity = ft.Column(list(self.activity_lines), spacing=2)
        self.error = error_text()
        self.status_cards = ft.Row(
            [
                card("Server", self.values["state"], "server-state"),
                card("Uptime", self.values["uptime"], "server-uptime"),
                card("Clients (connected / total)", self.values["clients"], "server-clients"),
                card("Files", self.values["files"], "server-files"),
                card("Storage used", self.values["storage"], "server-storage"),
                card("Active transfers", self.values["transfers"], "server-transfers"),
            ],
            wrap=True,
        )
        self.system_cards = ft.Row(
            [
                card("CPU in use", self.values["cpu"], "system-cpu", self.details["cpu"]),
                card("Memory in use", self.values["memory"], "system-memory", self.details["memory"]),
                card("Disk in use", self.values["disk"], "system-disk", self.details["disk"]),
            ],
            wrap=True,
        )
        return ft.Column(
            [
                ft.Row(
                    [
                        ft.Text("Dashboard", size=22, weight=ft.FontWeight.BOLD),
                        ft.Container(expand=True),
                        self.start_button,
                        self.stop_button,
                    ]
                ),
                self.error,
                self.status_cards,
                ft.Text("Host (last 5 minutes: CPU blue, memory purple, %)", weight=ft.FontWeight.W_500),
                self.system_cards,
                Isolated([self.chart]),
                ft.Text("Recent activity", weight=ft.FontWeight.W_500),
                ft.Semantics(identifier="recent-activity", content=self.activity),
            ],
            scroll=ft.ScrollMode.AUTO,
            expand=True,
        )

    async def load_activity(self) -> Reply:
        reply = await self.bridge.get_recent_activity_async(limit=50)
        if reply["success"]:
            reply["data"] = reply["data"]["items"]  # the store keeps the list; the reply is ours alone
        return reply

    async def show(self) -> None:
        await super().show()
        self.poller.start()

    async def hide(self) -> None:
        await super().hide()
        await self.poller.stop()

    async def _poll_system(self) -> None:
        await self.ctx.load_data_operation(ViewKey.SYSTEM)

    async def start_server(self, e: ft.Event[ft.Button]) -> None:
        await self.ctx.action_operation(
            "Start server", "start_server", lambda: self.bridge.start_server_async(), "Server started"
        )

    async def stop_server(self, e: ft.Event[ft.OutlinedButton]) -> None:
        if await self.app.confirm("Stop server", "Stop accepting backup agents? Running backups will fail.", "Stop"):
            await self.ctx.action_operation(
                "Stop server", "stop_server", lambda: self.bridge.stop_server_async(), "Server stopped"
            )

    def render(self) -> None:
        store = self.app.session.store
        status = store.get(ViewKey.STATUS)
        v = self.values
        self.error.value = self.error_line(ViewKey.STATUS)
        if status:
            v["state"].value = "running" if status["running"] else "stopped"
            v["state"].color = ft.Colors.GREEN_600 if status["running"] else ft.Colors.RED_600
            v["uptime"].value = human_duration(status["uptime_seconds"])
            v["clients"].value = f"{number(status['clients_connected'])} / {number(status['clients_total'])}"
            v["files"].value = number(status["files_total"])
            v["storage"].value = human_bytes(status["storage_used"])
            v["transfers"].value = number(status["active_transfers"])
        # No status yet: neither button, for neither is known to apply.
        running = status["running"] if status else None
        self.guard(self.start_button, "start_server", disabled=running is not False)
        self.guard(self.stop_button, "stop_server", disabled=running is not True)
        state = store.get(ViewKey.BRIDGE_STATE)
        greyed = isinstance(state, BridgeState) and state.outage
        self.status_cards.opacity = self.system_cards.opacity = STALE_OPACITY if greyed else 1.0
        system = store.get(ViewKey.SYSTEM)
        if system:
            self._record(system)
            self._render_system(system)
        entries = (store.get(ViewKey.ACTIVITY) or [])[:RECENT]
        for line, a in zip(self.activity_lines, entries, strict=False):
            line.value = f"{when(a['timestamp'])}  {a['level']:<7}  {a['message']}"
            line.color = LEVEL_COLORS.get(a["level"])
            line.visible = True
        for line in self.activity_lines[len(entries) :]:
            line.value, line.visible = "", False

    def _render_system(self, system: dict[str, Any]) -> None:
        v, d = self.values, self.details
        memory, disk = system["memory"], system["disk"]
        # psutil's cpu_percent is the whole host's, averaged over its cores.
        v["cpu"].value = f"{system['cpu_percent']:.0f} %"
        cores = system["cpu_count"]
        d["cpu"].value = f"average over {cores} core{'s' if cores != 1 else ''}"
        v["memory"].value = f"{memory['percent']:.0f} %"
        # psutil's percent counts what is not available (its "used" leaves out buffers and caches).
        in_use = memory["total"] - memory["available"]
        d["memory"].value = f"{human_bytes(in_use)} of {human_bytes(memory['total'])}"
        v["disk"].value = f"{disk['percent']:.0f} %"
        d["disk"].value = f"{human_bytes(disk['free'])} free of {human_bytes(disk['total'])}"

    def _record(self, system: dict[str, Any]) -> None:
        """Add a point per fresh system reading (render runs for other keys too); slide the window."""
        now = time.time() - self._origin
        if system is not self._last_system:
            self._last_system = system
            cpu = fch.LineChartDataPoint(round(now, 1), system["cpu_percent"])
            mem = fch.LineChartDataPoint(round(now, 1), system["memory"]["percent"])
            self.history.append((now, cpu, mem))
            self.cpu_series.points.append(cpu)
            self.mem_series.points.append(mem)
            while now - self.history[0][0] > HISTORY_S:
                _, old_cpu, old_mem = self.history.popleft()
                self.cpu_series.points.remove(old_cpu)
                self.mem_series.points.remove(old_mem)
            # The window ends at the newest sample, so it moves only with one (it is sent then).
            self.chart.min_x, self.chart.max_x = round(now - HISTORY_S, 1), round(now, 1)
            first = math.ceil((now - HISTORY_S) / AXIS_STEP_S) * AXIS_STEP_S
            self.chart.bottom_axis.labels = [
                fch.ChartAxisLabel(mark, hhmm(datetime.fromtimestamp(self._origin + mark, UTC)))
                for mark in range(first, int(now) + 1, AXIS_STEP_S)
            ]
            self._chart_moved = True

    def changed_controls(self) -> Sequence[ft.Control]:
        """The view (its chart is isolated: an update skips it), and the chart when a sample came."""
        moved, self._chart_moved = self._chart_moved, False
        return (self.root, self.chart) if moved else (self.root,)
