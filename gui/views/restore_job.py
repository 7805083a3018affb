"""Restore to the client: where on its machine, what to do with files already there, then the job's
progress and result (restore_to_agent, then get_restore_job until it ends).

The client's agent carries the job out when it is connected, so a job may wait ("queued"); the
dialog says so rather than looking stuck, and a job nobody came for ends "expired". While the job
has not ended, "Cancel restore" (cancel_restore_job, gated like every write: role and outage, the
reason in its tooltip) stops it: at once while queued, between two files while its agent works.
A refused request keeps the dialog and what was typed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import flet as ft
import structlog

from gui.app_context import AppContext
from gui.format import count, human_bytes, number
from gui.live import RESTORE_JOB_KEY
from gui.operations import failure_text
from protocol.catalogue_restore_jobs import ENDED_STATUSES

log = structlog.get_logger()

WIDTH = 520
# The job's restore.job events update the dialog as they come; the server is asked only when none came
# for this long (a console that lost events catches up by its sequencer, but a dialog must not stall).
POLL_S = 5.0
PROBLEMS_SHOWN = 8
ENDED = ENDED_STATUSES
POLICIES = (
    ("skip", "Keep files already there (skip them)"),
    ("overwrite", "Overwrite files already there"),
    ("rename", "Restore beside them (“name (restored).ext”)"),
)


def job_text(job: dict[str, Any], client: str) -> str:
    """Where a job stands, in the operator's words."""
    status = job["status"]
    if status == "queued":
        return f"Queued: the agent of {client} takes the job as soon as it is connected."
    if status == "running":
        return (
            f"Restoring: {number(job['files_done'])} of {count(job['files_total'], 'file')} · "
            f"{human_bytes(job['bytes_done'])} of {human_bytes(job['bytes_total'])}"
        )
    if status == "cancelling":
        return (
            f"Cancelling: the agent of {client} stops after the file it is writing "
            f"({number(job['files_done'])} of {count(job['files_total'], 'file')} done so far)."
        )
    if status == "failed":
        return f"Restore failed: {job.get('error') or 'the job could not run'}"
    done = (
        f"{number(job['files_restored'])} restored ({human_bytes(job['bytes_restored'])}), "
        f"{number(job['files_skipped'])} skipped, {number(job['files_failed'])} failed"
    )
    if status == "expired":  # a job queued again after its agent went may have done some before
        before = f" (before it waited: {done})" if job["files_done"] else ""
        return f"Expired: {job.get('error') or 'the agent never came for it'}{before}."
    if status == "cancelled":
        # What the agent restored before it stopped stays on the client, each file verified.
        return f"Cancelled after {number(job['files_done'])} of {count(job['files_total'], 'file')}: {done}."
    if status == "complete":
        # The agent hashed each file after writing it; a mismatch would have failed it (HASH_MISMATCH).
        return f"Done: {done}; every restored file checked against its SHA-256."
    return f"Partly done: {done}."


class RestoreDialog:
    def __init__(self, app: AppContext, client: str, snapshot_id: str, paths: list[str], what: str) -> None:
        self.app = app
        self.client = client
        self.snapshot_id = snapshot_id
        self.paths = paths
        # No hint text: it would become part of the field's accessible name.
        self.destination = ft.TextField(label="Destination on the client", width=WIDTH, on_submit=self.start)
        self.overwrite = ft.Dropdown(
            label="Files already there",
            value=POLICIES[0][0],
            width=WIDTH,
            options=[ft.DropdownOption(key=k, text=t) for k, t in POLICIES],
        )
        self.progress = ft.ProgressBar(value=0, width=WIDTH, visible=False)
        self.status = ft.Text("", width=WIDTH)
        self.problems = ft.Column([], spacing=2, tight=True)
        self.start_button = ft.FilledButton("Start restore", icon=ft.Icons.RESTORE, on_click=self.start)
        self.close_button = ft.TextButton("Cancel", on_click=self.close)
        self.cancel_button = ft.OutlinedButton(
            "Cancel restore", icon=ft.Icons.STOP_CIRCLE_OUTLINED, on_click=self.cancel_job, visible=False
        )
        self.job: dict[str, Any] | None = None  # the job started here, as last heard of
        self.news = asyncio.Event()  # a restore.job event of this job came
        self.task: asyncio.Task[None] | None = None
        self.dialog = ft.AlertDialog(
            modal=True,
            title=ft.Text(f"Restore {what} to {client}"),
            content=ft.Column(
                [
                    ft.Text(
                        ", ".join(paths[:3]) + (f" and {count(len(paths) - 3, 'more item')}" if len(paths) > 3 else "")
                    ),
                    self.destination,
                    ft.Text("An absolute folder on its machine, e.g. /home/ada/restored or C:\\Restored", size=12),
                    ft.Semantics(identifier="restore-overwrite", label="Files already there", content=self.overwrite),
                    self.progress,
                    ft.Semantics(identifier="restore-status", content=self.status),
                    self.problems,
                ],
                tight=True,
                width=WIDTH + 20,
            ),
            actions=[
                ft.Semantics(identifier="restore-cancel-job", content=self.cancel_button),
                self.close_button,
                self.start_button,
            ],
        )

    def open(self) -> None:
        self.app.page.show_dialog(self.dialog)

    async def start(self, e: ft.Event[Any]) -> None:
        destination = (self.destination.value or "").strip()
        if not destination:
            self.destination.error = "Where on the client's machine: an absolute folder"
            self._refresh()
            return
        self.destination.error = None
        self.start_button.disabled = True
        self.status.value, self.status.color = "Asking the server…", None
        self._refresh()
        overwrite = self.overwrite.value or POLICIES[0][0]
        reply = await self.app.session.ctx.write_operation(
            "restore_to_agent",
            lambda: self.app.session.bridge.restore_to_agent_async(
                self.snapshot_id, self.paths, destination, overwrite
            ),
        )
        if not reply["success"]:
            # What was typed stays, so the operator can correct it and try again.
            log.info("gui.restore_refused", error_code=reply.get("error_code"))
            self.status.value, self.status.color = f"Restore refused: {failure_text(reply)}", ft.Colors.RED_700
            self.start_button.disabled = False
            self._refresh()
            return
        self.destination.read_only, self.overwrite.disabled = True, True
        self.start_button.visible = False
        self.close_button.content = "Close"
        self.progress.visible = True
        self.task = self.app.session.tasks.spawn(self._follow(reply["data"]), "restore-job")

    async def _follow(self, job: dict[str, Any]) -> None:
        """Show the job until it ends (or the dialog is closed: the job goes on without it)."""
        unsubscribe = self.app.session.store.subscribe(RESTORE_JOB_KEY, self._heard)
        try:
            while True:
                self._show(job)
                if job["status"] in ENDED:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.news.wait(), POLL_S)
                if self.news.is_set():
                    self.news.clear()
                    assert self.job is not None
                    job = self.job
                    continue
                reply = await self.app.session.bridge.get_restore_job_async(job["id"])
                if reply["success"]:
                    job = reply["data"]
                else:  # a lost reply is no verdict on the job: say so and ask again
                    self.status.value = f"{job_text(job, self.client)} (no news: {failure_text(reply)})"
                    self._refresh()
        finally:
            unsubscribe()

    async def _heard(self, key: str, event: dict[str, Any]) -> None:
        job = event.get("job")
        if self.job is not None and isinstance(job, dict) and str(job.get("id")) == self.job_id:
            self.job = job
            self.news.set()

    async def cancel_job(self, e: ft.Event[Any]) -> None:
        """Stop the job: the reply (cancelled, or cancelling while the agent stops) is shown at once."""
        if self.job is None:
            return
        self.cancel_button.disabled = True
        self._refresh()
        reply = await self.app.session.ctx.write_operation(
            "cancel_restore_job", lambda: self.app.session.bridge.cancel_restore_job_async(self.job_id)
        )
        if reply["success"]:
            self._show(reply["data"])
            return
        # CONFLICT: it ended meanwhile (the message says how); the next poll shows it as it ended.
        log.info("gui.restore_cancel_refused", error_code=reply.get("error_code"))
        self.status.value, self.status.color = f"Not cancelled: {failure_text(reply)}", ft.Colors.RED_700
        self._gate_cancel()
        self._refresh()

    @property
    def job_id(self) -> str:
        assert self.job is not None
        return str(self.job["id"])

    def _gate_cancel(self) -> None:
        """Shown while the job has not ended; usable when the user may cancel now and it is not stopping already."""
        job = self.job
        self.cancel_button.visible = job is not None and job["status"] not in ENDED
        gate = self.app.gate("cancel_restore_job")
        stopping = job is not None and job["status"] == "cancelling"
        self.cancel_button.disabled = stopping or not gate.allowed
        self.cancel_button.tooltip = "The agent is stopping" if stopping else gate.tooltip

    def _show(self, job: dict[str, Any]) -> None:
        self.job = job
        self._gate_cancel()
        total = job["files_total"]
        ended = job["status"] in ENDED
        self.progress.value = 1 if ended else (job["files_done"] / total if total else None)
        self.status.value = job_text(job, self.client)
        self.status.color = {
            "failed": ft.Colors.RED_700,
            "partial": ft.Colors.AMBER_900,
            "expired": ft.Colors.AMBER_900,
            "cancelled": ft.Colors.AMBER_900,
        }.get(job["status"])
        self.problems.controls = [
            ft.Text(f"{p['path']}: {p['outcome']} ({p['code']}) {p['reason']}", size=12, selectable=True)
            for p in job["problems"][:PROBLEMS_SHOWN]
        ]
        if len(job["problems"]) > PROBLEMS_SHOWN:
            more = count(len(job["problems"]) - PROBLEMS_SHOWN, "more file")
            self.problems.controls.append(ft.Text(f"… and {more}", size=12, italic=True))
        self._refresh()

    async def close(self, e: ft.Event[ft.TextButton]) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()  # only the following: the job itself goes on on the client
        self.app.page.pop_dialog()

    def _refresh(self) -> None:
        try:
            self.dialog.update()
        except RuntimeError:  # the dialog is gone (the tab closed)
            log.debug("gui.restore_progress_unseen")
