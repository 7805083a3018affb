"""Activity & logs: live activity feed and server logs; level filter, search, pause, export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import flet as ft

from gui.app_context import AppContext
from gui.export import export_rows
from gui.format import when
from gui.views.base import View
from gui.views.widgets import Pager, dropdown, error_text
from protocol.catalogue import LOG_LEVELS
from protocol.responses import Reply
from protocol.views import ViewKey

PAGE_SIZE = 100
FEED_SHOWN = 100
LEVEL_COLORS = {
    "ERROR": ft.Colors.RED_600,
    "CRITICAL": ft.Colors.RED_900,
    "WARNING": ft.Colors.AMBER_800,
    "DEBUG": ft.Colors.GREY_600,
}


class ActivityView(View):
    title = "Activity"
    icon = ft.Icons.TIMELINE
    keys = (ViewKey.ACTIVITY, ViewKey.LOGS)

    def __init__(self, app: AppContext, export_dir: Path) -> None:
        self.export_dir = export_dir
        super().__init__(app)

    def build(self) -> ft.Control:
        self.level = "INFO"
        self.text = ""
        self.paused = False
        self.frozen: list[dict[str, Any]] = []
        self.pager = Pager(PAGE_SIZE, self.reload_logs, "logs")
        self.ctx.register_loader(ViewKey.LOGS, self.load_logs)
        self.feed = ft.ListView([], spacing=2, height=260)
        self.logs = ft.ListView([], spacing=2, expand=True)
        self.pause_button = ft.OutlinedButton("Pause", icon=ft.Icons.PAUSE, on_click=self.toggle_pause)
        self.feed_note = ft.Text("")
        self.error = error_text()
        return ft.Column(
            [
                ft.Row(
                    [
                        ft.Text("Activity", size=22, weight=ft.FontWeight.BOLD),
                        self.feed_note,
                        ft.Container(expand=True),
                        self.pause_button,
                        ft.OutlinedButton("Export CSV", icon=ft.Icons.DOWNLOAD, on_click=self.export_csv),
                        ft.OutlinedButton("Export JSON", icon=ft.Icons.DOWNLOAD, on_click=self.export_json),
                    ]
                ),
                ft.Container(
                    ft.Semantics(identifier="activity-feed", content=self.feed),
                    border=ft.Border.all(1, ft.Colors.GREY_300),
                    border_radius=6,
                    padding=6,
                ),
                ft.Row(
                    [
                        ft.Text("Server logs", size=18, weight=ft.FontWeight.W_500),
                        ft.Container(expand=True),
                        dropdown(
                            "Level",
                            [(lv, lv) for lv in LOG_LEVELS],
                            "INFO",
                            self.on_level,
                            width=140,
                            identifier="logs-level",
                        ),
                        ft.TextField(
                            label="Search logs",
                            width=220,
                            dense=True,
                            on_change=self.on_text,
                            prefix_icon=ft.Icons.SEARCH,
                        ),
                    ]
                ),
                self.error,
                ft.Container(
                    self.logs, expand=True, border=ft.Border.all(1, ft.Colors.GREY_300), border_radius=6, padding=6
                ),
                self.pager.control,
            ],
            expand=True,
        )

    async def load_logs(self) -> Reply:
        return await self.bridge.get_logs_async(
            level=self.level, text=self.text or None, offset=self.pager.offset, limit=PAGE_SIZE
        )

    async def reload_logs(self) -> None:
        await self.ctx.load_data_operation(ViewKey.LOGS)

    async def on_level(self, e: ft.Event[ft.Dropdown]) -> None:
        self.level = e.control.value or "INFO"
        self.pager.reset()
        await self.reload_logs()

    async def on_text(self, e: ft.Event[ft.TextField]) -> None:
        self.text = (e.control.value or "").strip()
        self.pager.reset()
        await self.reload_logs()

    async def toggle_pause(self, e: ft.Event[ft.OutlinedButton]) -> None:
        self.paused = not self.paused
        self.frozen = list(self.app.session.store.get(ViewKey.ACTIVITY) or [])
        self.pause_button.content = "Resume" if self.paused else "Pause"
        self.pause_button.icon = ft.Icons.PLAY_ARROW if self.paused else ft.Icons.PAUSE
        self.render()
        self.root.update()

    # Flet awaits a coroutine function it is given; a lambda returning a coroutine would never run.
    async def export_csv(self, e: ft.Event[ft.OutlinedButton]) -> None:
        await self.export("csv")

    async def export_json(self, e: ft.Event[ft.OutlinedButton]) -> None:
        await self.export("json")

    async def export(self, fmt: str) -> None:
        activity = self.frozen if self.paused else list(self.app.session.store.get(ViewKey.ACTIVITY) or [])
        logs = (self.app.session.store.get(ViewKey.LOGS) or {}).get("items", [])
        try:
            paths = [
                export_rows(activity, self.export_dir, "activity", fmt),
                export_rows(logs, self.export_dir, "logs", fmt),
            ]
        except OSError as exc:
            await self.app.notifier.notify(f"Export failed: {exc}", error=True, error_code="EXPORT_FAILED")
            return
        await self.app.notifier.notify(
            f"Exported {len(activity)} activity entries and {len(logs)} log lines to "
            + ", ".join(str(p) for p in paths)
        )

    def render(self) -> None:
        store = self.app.session.store
        live = store.get(ViewKey.ACTIVITY) or []
        shown = self.frozen if self.paused else live
        frozen_ids = {a.get("id") for a in self.frozen}
        waiting = sum(1 for a in live if a.get("id") not in frozen_ids) if self.paused else 0
        self.feed_note.value = f"paused · {waiting} new" if self.paused else "live"
        self.feed.controls = [
            self._line(a["timestamp"], a["level"], f"{a['type']}: {a['message']}") for a in shown[:FEED_SHOWN]
        ]
        logs = store.get(ViewKey.LOGS) or {"items": [], "total": 0}
        self.error.value = self.error_line(ViewKey.LOGS)
        self.pager.update_from(logs["total"])
        self.logs.controls = [
            self._line(r["timestamp"], r["level"], f"{r['event']}  {r['message']}") for r in logs["items"]
        ]

    @staticmethod
    def _line(timestamp: Any, level: str, text: str) -> ft.Control:
        return ft.Text(f"{when(timestamp)}  {level:<8} {text}", size=12, color=LEVEL_COLORS.get(level), selectable=True)
