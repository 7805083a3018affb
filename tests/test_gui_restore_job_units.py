"""The restore job dialog's "Cancel restore" and the endings a job may now have (cancelled, expired), and the
views that list a client's runs following snapshot.ended, driven against an in-process mock backend as
tests/test_gui_restore_units.py does."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from actors.mock.core import MockCore
from gui.app_context import AppContext
from gui.outage import BridgeState
from gui.views import restore_job
from gui.views.client_page import ClientPage
from gui.views.restore import RestoreView
from gui.views.restore_job import RestoreDialog, job_text
from protocol.events import RESTORE_JOB, SNAPSHOT_ENDED
from protocol.roles import Role
from protocol.views import ViewKey
from tests.conftest import run_async
from tests.test_gui_restore_units import app, call, changed_file, core, make_app, route

__all__ = ["app", "core"]  # the fixtures, imported for this module's tests

pytestmark = pytest.mark.timeout(60)

JOB_OPS = ("restore_to_agent", "get_restore_job", "cancel_restore_job")


def test_a_queued_job_is_cancelled_from_the_dialog(
    app: AppContext, core: MockCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, wanted, chain = changed_file(core)
    monkeypatch.setattr(restore_job, "POLL_S", 0.01)
    route(app.session.bridge, core, JOB_OPS)  # no tick: the simulated agent never takes it

    async def scenario() -> None:
        dialog = RestoreDialog(app, client["name"], wanted["id"], [chain[0]["path"]], chain[0]["path"])
        assert not dialog.cancel_button.visible  # nothing to cancel before it started
        dialog.destination.value = "/tmp/restored"
        await dialog.start(cast(Any, None))
        await asyncio.sleep(0.05)
        assert dialog.status.value.startswith("Queued: ")
        assert dialog.cancel_button.visible and not dialog.cancel_button.disabled
        await dialog.cancel_job(cast(Any, None))
        assert dialog.task is not None
        await asyncio.wait_for(dialog.task, 10)
        (job,) = call(core, "list_restore_jobs", client_id=client["id"])["items"]
        files = f"{job['files_total']} file{'s' if job['files_total'] != 1 else ''}"
        assert dialog.status.value == f"Cancelled after 0 of {files}: 0 restored (0 B), 0 skipped, 0 failed."
        assert not dialog.cancel_button.visible and dialog.progress.value == 1
        assert job["status"] == "cancelled"
        # Again (another console cancelled it first, say): refused with the reason, nothing else changes.
        dialog.job = {**job, "status": "queued"}
        await dialog.cancel_job(cast(Any, None))
        assert dialog.status.value.startswith("Not cancelled: restore job ") and "[CONFLICT]" in dialog.status.value

    run_async(scenario)


def test_the_dialog_follows_its_job_by_events_without_asking(
    app: AppContext, core: MockCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore.job event moves the dialog on at once; the server is asked only when events stay away."""
    client, wanted, chain = changed_file(core)
    monkeypatch.setattr(restore_job, "POLL_S", 60.0)  # a poll would never come within this test's timeout
    route(app.session.bridge, core, JOB_OPS)
    asked: list[str] = []
    fetch = app.session.bridge.get_restore_job_async

    async def counted(job_id: str) -> Any:
        asked.append(job_id)
        return await fetch(job_id)

    monkeypatch.setattr(app.session.bridge, "get_restore_job_async", counted)

    def event(job: dict[str, Any]) -> dict[str, Any]:
        data = {"job_id": job["id"], "client_id": job["client_id"], "change": "ended", "job": job}
        return {"topic": RESTORE_JOB, "data": data, "mode": "mock", "seq": 1}

    async def scenario() -> None:
        dialog = RestoreDialog(app, client["name"], wanted["id"], [chain[0]["path"]], chain[0]["path"])
        dialog.destination.value = "/tmp/restored"
        await dialog.start(cast(Any, None))
        while dialog.job is None:  # the following task shows the queued job first
            await asyncio.sleep(0.01)
        assert dialog.task is not None
        queued = dict(dialog.job)
        # Another job's news changes nothing here.
        await app.session.live.on_delivery(event({**queued, "id": "elsewhere", "status": "cancelled"}))
        await asyncio.sleep(0.02)
        assert not dialog.task.done() and dialog.status.value.startswith("Queued: ")
        # Cancelled by another console: its event ends the dialog's following.
        cancelled = call(core, "cancel_restore_job", job_id=queued["id"])
        await app.session.live.on_delivery(event(cancelled))
        await asyncio.wait_for(dialog.task, 10)
        assert dialog.status.value.startswith("Cancelled after 0 of ")
        assert asked == []

    run_async(scenario)


def test_cancel_follows_the_role_and_a_job_already_stopping(tmp_path: Path, core: MockCore) -> None:
    client, wanted, chain = changed_file(core)
    viewer, _ = make_app(tmp_path, core, Role.VIEWER)
    operator, _ = make_app(tmp_path, core, Role.OPERATOR)
    job = {"id": "7", "status": "running", "files_total": 10, "files_done": 2, "bytes_total": 100, "bytes_done": 20}
    job |= {"files_restored": 2, "bytes_restored": 20, "files_skipped": 0, "files_failed": 0, "problems": []}

    async def scenario() -> None:
        seen = RestoreDialog(viewer, client["name"], wanted["id"], [chain[0]["path"]], chain[0]["path"])
        seen._show(job)
        assert seen.cancel_button.visible and seen.cancel_button.disabled
        assert str(seen.cancel_button.tooltip).endswith("Needs role operator")
        mine = RestoreDialog(operator, client["name"], wanted["id"], [chain[0]["path"]], chain[0]["path"])
        mine._show(job)
        assert not mine.cancel_button.disabled
        # The real server down (no writes to the mock): the gate says so, as on every write.
        down = BridgeState("none", "stale", True, datetime(2025, 3, 1, 12, 5, tzinfo=UTC))
        await operator.session.store.set(ViewKey.BRIDGE_STATE, down)
        mine._show(job)
        assert mine.cancel_button.disabled and str(mine.cancel_button.tooltip).startswith("Real server unavailable")
        await operator.session.store.set(ViewKey.BRIDGE_STATE, BridgeState())
        mine._show({**job, "status": "cancelling"})
        assert mine.cancel_button.disabled and mine.cancel_button.tooltip == "The agent is stopping"
        assert mine.status.value == (
            f"Cancelling: the agent of {client['name']} stops after the file it is writing (2 of 10 files done so far)."
        )
        for session in (viewer.session, operator.session):
            await session.close()

    run_async(scenario)


def test_the_endings_read_as_what_they_mean() -> None:
    job = {"status": "cancelled", "files_total": 1200, "files_done": 30, "bytes_done": 2048, "bytes_total": 4096}
    job |= {"files_restored": 28, "bytes_restored": 1024**2, "files_skipped": 2, "files_failed": 0, "error": None}
    assert job_text(job, "bob") == "Cancelled after 30 of 1,200 files: 28 restored (1.0 MB), 2 skipped, 0 failed."
    expired = {**job, "status": "expired", "error": "its client's agent did not come for it within 24 h"}
    assert job_text({**expired, "files_done": 0}, "bob") == (
        "Expired: its client's agent did not come for it within 24 h."
    )
    assert job_text(expired, "bob").endswith("24 h (before it waited: 28 restored (1.0 MB), 2 skipped, 0 failed).")


def test_a_run_that_ended_reloads_the_views_listing_that_clients_runs(app: AppContext, core: MockCore) -> None:
    """snapshot.ended reaches the client page and the Restore view through gui/live.py: each lists its
    client's runs anew when the run was of that client, and only while it is shown."""
    client, other = call(core, "get_clients", limit=2)["items"]
    asked: list[str] = []
    listing = app.session.bridge.list_snapshots_async

    async def counted(client_id: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(client_id)
        return await listing(client_id, *args, **kwargs)

    app.session.bridge.list_snapshots_async = counted  # type: ignore[method-assign]

    def ended(client_id: str) -> dict[str, Any]:
        data = {"client_id": client_id, "snapshot_id": "1", "status": "complete", "snapshot": {}}
        return {"topic": SNAPSHOT_ENDED, "data": data, "mode": "mock", "seq": 1}

    async def settle() -> None:
        for _ in range(50):
            await asyncio.sleep(0.01)
            if not app.session.tasks:
                return

    async def scenario() -> None:
        page, timeline = ClientPage(app), RestoreView(app)
        page.open(client["id"], client["name"])
        await page.show()
        await timeline.choose_client(client["id"], client["name"])
        timeline.visible = True
        await settle()
        asked.clear()
        await app.session.live.on_delivery(ended(other["id"]))
        await settle()
        assert asked == []  # another client's run: nothing to reload
        await app.session.live.on_delivery(ended(client["id"]))
        await settle()
        # The page: its newest runs, its newest complete one and its history page; the timeline: its page.
        assert asked == [client["id"]] * 4
        asked.clear()
        await page.hide()
        await timeline.hide()
        await app.session.live.on_delivery(ended(client["id"]))
        await settle()
        assert asked == []  # hidden: shown again, they load everything anyway

    run_async(scenario)
