"""Backup runs (snapshots) as the console shows them: one line about a run, whether a client is
overdue, and the badges of a run's status and of what changed in a folder or file.

Kept apart from the views that use them (the client page, the Restore view) so the rules can be
tested without a page, and so both say the same thing about a run.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import flet as ft

from gui.format import count, human_bytes, human_duration, number
from gui.views.paged import Latest
from protocol.responses import Reply

RUN_COLORS = {
    "complete": ft.Colors.GREEN_700,
    "partial": ft.Colors.AMBER_800,
    "interrupted": ft.Colors.RED_700,
    "running": ft.Colors.BLUE_700,
}
CHANGE_COLORS = {"new": ft.Colors.BLUE_700, "changed": ft.Colors.AMBER_800, "unchanged": ft.Colors.GREY_600}

SUCCESS = "complete"  # a run that ended with every file stored; a partial run left some behind
RUNS_FOR_INTERVAL = 20  # the newest runs whose gaps make the usual interval
FALLBACK_LIMIT = timedelta(hours=24)  # while a client has fewer than two runs to measure an interval by
OVERDUE_RULE = (
    "Overdue: no complete backup within twice this client's usual interval (the median gap between the "
    "starts of its last 20 runs), or within 24 h while it has fewer than two runs to measure one."
)


def badge(text: str, color: ft.Colors, identifier: str | None = None) -> ft.Control:
    chip = ft.Container(
        ft.Text(text, size=12, color=ft.Colors.WHITE),
        bgcolor=color,
        padding=ft.Padding.symmetric(horizontal=8, vertical=2),
        border_radius=10,
    )
    return ft.Semantics(identifier=identifier, content=chip) if identifier else chip


def run_badge(status: str) -> ft.Control:
    return badge(status, RUN_COLORS.get(status, ft.Colors.GREY_600))


def change_badge(change: str | None) -> ft.Control:
    """What changed since the client's previous run (nothing shown while the run is still running)."""
    if change is None:
        return ft.Container()
    return ft.Text(change, size=12, color=CHANGE_COLORS.get(change, ft.Colors.GREY_600), weight=ft.FontWeight.W_500)


def duration(run: Mapping[str, Any]) -> str:
    ended = run.get("ended_at")
    if run["status"] == "running" or not isinstance(ended, datetime):
        return "running" if run["status"] == "running" else "never ended"
    seconds = (ended - run["started_at"]).total_seconds()
    return human_duration(seconds) if seconds >= 1 else "under 1 s"


def run_size(run: Mapping[str, Any]) -> str:
    """What the run's tree holds: "28 files · 1.1 MB"."""
    return f"{count(run['files_total'], 'file')} · {human_bytes(run['bytes_total'])}"


def run_result(run: Mapping[str, Any]) -> str:
    """What the run found: "1 new · 2 changed · 25 unchanged · 3 failed (12.0 KB)"."""
    if run["status"] == "running":
        return "running…"
    parts = [
        f"{number(run['files_new'])} new",
        f"{number(run['files_changed'])} changed",
        f"{number(run['files_unchanged'])} unchanged",
    ]
    if run["files_failed"]:
        parts.append(f"{number(run['files_failed'])} failed ({human_bytes(run['bytes_failed'])})")
    text = " · ".join(parts)
    return f"interrupted: never ended · {text}" if run["status"] == "interrupted" else text


@dataclass(frozen=True, slots=True)
class Schedule:
    """Whether a client's backups keep up with its own rhythm (``OVERDUE_RULE``)."""

    usual_interval: timedelta | None  # None with fewer than two runs
    limit: timedelta  # how long without a complete backup before it is overdue
    last_success: datetime | None  # when its newest complete run ended
    overdue: bool
    waited: timedelta | None  # since the last complete run (or since the client was added, with none)

    @property
    def label(self) -> str:
        if self.overdue:
            return "Overdue"
        return "On schedule" if self.last_success is not None else "No backup yet"

    @property
    def tooltip(self) -> str:
        usual = human_duration(self.usual_interval.total_seconds()) if self.usual_interval else "not known yet"
        facts = [f"Usual interval: {usual}", f"overdue after {human_duration(self.limit.total_seconds())}"]
        if self.waited is not None:
            facts.append(
                f"{'last complete backup' if self.last_success else 'added'} "
                f"{human_duration(self.waited.total_seconds())} ago"
            )
        return f"{OVERDUE_RULE}\n{'; '.join(facts)}."


def usual_interval(runs: Sequence[Mapping[str, Any]]) -> timedelta | None:
    """The median gap between the starts of consecutive runs (any status: it is the rhythm of the
    schedule, not of its successes); None with fewer than two runs."""
    starts = sorted((r["started_at"] for r in runs[:RUNS_FOR_INTERVAL]), reverse=True)
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(starts) if a > b]
    return timedelta(seconds=statistics.median(gaps)) if gaps else None


def schedule(
    newest_runs: Sequence[Mapping[str, Any]],
    last_complete: Mapping[str, Any] | None,
    created_at: datetime | None,
    now: datetime,
) -> Schedule:
    """``newest_runs``: the client's runs, newest first; ``last_complete``: its newest complete run."""
    interval = usual_interval(newest_runs)
    limit = 2 * interval if interval is not None else FALLBACK_LIMIT
    success = None
    if last_complete is not None:
        success = last_complete.get("ended_at") or last_complete["started_at"]
    # With no complete run the client has been waiting since it was added.
    since = success or created_at
    waited = now - since if isinstance(since, datetime) else None
    return Schedule(interval, limit, success, waited is not None and waited > limit, waited)


async def latest_reply(latest: Latest, query: Callable[[], Hashable], fetch: Callable[[], Awaitable[Reply]]) -> Reply:
    """``fetch`` until its reply still answers what is asked (``query``) and no later one was shown:
    an operator who clicked on meanwhile never sees the answer to the earlier click."""
    while True:
        asked, ticket = query(), latest.ask()
        reply = await fetch()
        if latest.fresh(ticket, asked, query()):
            return reply
