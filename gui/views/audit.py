"""Audit: the bridge's audit trail, newest first; filters by user, operation and outcome; follows live.

Only admins see this view (it opens only for a role that may run ``get_audit_log``).
Writes reach it through the catalogue's ``refreshes`` (every write lists the audit key),
so another console's delete shows here within the debounce; sign-ins and refusals make
no event, so the first page is also polled while shown.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

import flet as ft

from gui.format import cell, when
from gui.views.base import View
from gui.views.polling import PollWhileShown
from gui.views.widgets import Pager, RowCache, dropdown, error_text, scroll_table
from protocol.errors import ErrorCode
from protocol.responses import Reply
from protocol.views import ViewKey

PAGE_SIZE = 50
POLL_S = 3.0
OK = "ok"
OUTCOMES = [("all", "All"), (OK, "ok"), *[(c.value, c.value) for c in ErrorCode]]


def audit_time(value: Any) -> str:
    """A record's time as the other views show times (records carry ISO text or Unix seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return when(datetime.fromtimestamp(value, UTC))
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return when(datetime.fromisoformat(value))
    return when(value)


def who_text(who: Any) -> tuple[str, str]:
    """("user (role)", via) of a record's principal."""
    if not isinstance(who, dict):
        return cell(who), "—"
    user, role = who.get("user") or "—", who.get("role")
    return (f"{user} ({role})" if role else str(user)), str(who.get("via") or "—")


def ids_text(ids: Any) -> str:
    if isinstance(ids, dict) and ids:
        return ", ".join(f"{k}={v}" for k, v in ids.items())
    return "—"


class AuditView(View):
    title = "Audit"
    icon = ft.Icons.POLICY
    keys = (ViewKey.AUDIT,)
    reads = "get_audit_log"

    def build(self) -> ft.Control:
        self.user = ""
        self.op = ""
        self.outcome = "all"
        self.poller = PollWhileShown(self.app.session.tasks, "poll-audit", POLL_S, lambda: self.visible, self._poll)
        self.row_cache = RowCache(self._row, key="_key")
        self.pager = Pager(PAGE_SIZE, self.reload, "audit")
        self.ctx.register_loader(ViewKey.AUDIT, self.load)
        self.table = ft.DataTable(
            columns=[
                ft.DataColumn(label=ft.Text(name))
                for name in ("Time", "Who", "Via", "Operation", "Ids", "Outcome", "Peer")
            ],
            rows=[],
            column_spacing=20,
        )
        self.error = error_text()
        return ft.Column(
            [
                ft.Row(
                    [
                        ft.Text("Audit", size=22, weight=ft.FontWeight.BOLD),
                        ft.Container(expand=True),
                        ft.TextField(label="User", width=160, dense=True, on_submit=self.on_user, on_blur=self.on_user),
                        ft.TextField(
                            label="Operation", width=180, dense=True, on_submit=self.on_op, on_blur=self.on_op
                        ),
                        dropdown("Outcome", OUTCOMES, "all", self.on_outcome, width=200, identifier="audit-outcome"),
                        ft.IconButton(ft.Icons.REFRESH, tooltip="Refresh audit", on_click=self.reload_click),
                    ]
                ),
                ft.Text("Newest first; the first page follows new records.", italic=True, size=12),
                self.error,
                scroll_table(self.table),
                self.pager.control,
            ],
            expand=True,
        )

    async def load(self) -> Reply:
        reply = await self.bridge.get_audit_log_async(
            offset=self.pager.offset,
            limit=PAGE_SIZE,
            user=self.user or None,
            op=self.op or None,
            outcome=None if self.outcome == "all" else self.outcome,
        )
        if reply["success"]:
            # Records have no id; their place in the (append-only) trail, counted from the oldest, is one.
            data = reply["data"]
            newest = data["total"] - data.get("offset", self.pager.offset)
            data["items"] = [{**r, "_key": newest - i} for i, r in enumerate(data["items"])]
        return reply

    async def reload(self) -> None:
        await self.ctx.load_data_operation(ViewKey.AUDIT)

    async def reload_click(self, e: ft.Event[ft.IconButton]) -> None:
        await self.reload()

    async def _filter(self, attribute: str, value: str) -> None:
        if getattr(self, attribute) != value:
            setattr(self, attribute, value)
            self.pager.reset()
            await self.reload()

    async def on_user(self, e: ft.Event[ft.TextField]) -> None:
        await self._filter("user", (e.control.value or "").strip())

    async def on_op(self, e: ft.Event[ft.TextField]) -> None:
        await self._filter("op", (e.control.value or "").strip())

    async def on_outcome(self, e: ft.Event[ft.Dropdown]) -> None:
        await self._filter("outcome", e.control.value or "all")

    async def show(self) -> None:
        await super().show()
        self.poller.start()

    async def hide(self) -> None:
        await super().hide()
        await self.poller.stop()

    async def _poll(self) -> None:
        if self.pager.offset == 0:  # a later page stays put while the operator reads it
            await self.ctx.load_data_operation(ViewKey.AUDIT)

    def render(self) -> None:
        data = self.app.session.store.get(ViewKey.AUDIT) or {"items": [], "total": 0}
        self.error.value = self.error_line(ViewKey.AUDIT)
        self.pager.update_from(data["total"])
        self.table.rows = self.row_cache.rows(data["items"])

    def _row(self, r: dict[str, Any]) -> ft.DataRow:
        who, via = who_text(r.get("who"))
        outcome = str(r.get("outcome") or "—")
        return ft.DataRow(
            cells=[
                ft.DataCell(ft.Text(audit_time(r.get("ts")), size=12)),
                ft.DataCell(ft.Text(who, weight=ft.FontWeight.W_500)),
                ft.DataCell(ft.Text(via, size=12)),
                ft.DataCell(ft.Text(str(r.get("op") or "—"))),
                ft.DataCell(ft.Text(ids_text(r.get("ids")), size=12)),
                ft.DataCell(ft.Text(outcome, color=None if outcome == OK else ft.Colors.RED_700)),
                ft.DataCell(ft.Text(cell(r.get("peer")), size=12)),
            ]
        )
