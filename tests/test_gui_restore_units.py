"""The Restore view and the client page without a browser or a stack: the overdue rule, what a run
reads as, and both views driven against an in-process mock backend (the facade's calls routed to a
``MockCore``), including a reply that comes back after the operator chose something else."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import flet as ft
import pytest

from actors.backends.api import RequestContext
from actors.mock.core import MockCore
from gui.app_context import AppContext, SnackNotifier
from gui.auth import SignedIn
from gui.config import GuiConfig
from gui.downloads import DownloadLinks
from gui.session import GuiSession
from gui.views import restore_job
from gui.views.base import View
from gui.views.client_page import CLIENT_KEY, ClientPage
from gui.views.clients import ClientsView
from gui.views.files import FilesView
from gui.views.navigator import ConsoleNavigator
from gui.views.restore import FOLDER_KEY, SNAPSHOTS_KEY, RestoreView
from gui.views.restore_job import RestoreDialog, job_text
from gui.views.runs import FALLBACK_LIMIT, OVERDUE_RULE, duration, run_result, run_size, schedule, usual_interval
from protocol.errors import ProtocolError
from protocol.responses import Reply, as_reply, from_protocol_error
from protocol.roles import Role
from runtime.clock import SimulatedClock
from tests.conftest import run_async

pytestmark = pytest.mark.timeout(60)

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CTX = RequestContext("t", None)
DAY = timedelta(days=1)


# ----------------------------------------------------------------------------- runs and the overdue rule


def run(started: datetime, status: str = "complete", took: timedelta | None = timedelta(minutes=10)) -> dict[str, Any]:
    return {
        "id": started.isoformat(),
        "status": status,
        "started_at": started,
        "ended_at": started + took if took is not None else None,
        "files_total": 1234,
        "bytes_total": 5 * 1024**2,
        "files_new": 1,
        "bytes_new": 10,
        "files_changed": 2,
        "bytes_changed": 20,
        "files_unchanged": 1231,
        "bytes_unchanged": 30,
        "files_failed": 0,
        "bytes_failed": 0,
    }


def test_the_usual_interval_is_the_median_gap_between_starts() -> None:
    starts = [START - i * DAY for i in range(5)] + [START - 5 * DAY - timedelta(hours=1)]
    assert usual_interval([run(s) for s in starts]) == DAY  # one late run does not move the median
    assert usual_interval([run(START)]) is None
    assert usual_interval([]) is None
    assert usual_interval([run(START), run(START)]) is None  # two runs at once say nothing of a rhythm


def test_overdue_after_twice_the_usual_interval() -> None:
    daily = [run(START - i * DAY) for i in range(4)]
    last = daily[0]
    on_time = schedule(daily, last, START - 300 * DAY, START + 2 * DAY)
    assert not on_time.overdue and on_time.label == "On schedule" and on_time.limit == 2 * DAY
    late = schedule(daily, last, START - 300 * DAY, START + 2 * DAY + timedelta(minutes=11))
    assert late.overdue and late.label == "Overdue"
    assert late.last_success == last["ended_at"] and late.waited == 2 * DAY + timedelta(minutes=1)
    assert late.tooltip.startswith(OVERDUE_RULE)
    assert "Usual interval: 1d 0h; overdue after 2d 0h; last complete backup 2d 0h ago." in late.tooltip


def test_overdue_falls_back_to_24_hours_and_counts_from_creation_without_a_complete_run() -> None:
    one = [run(START)]
    assert schedule(one, one[0], None, START + FALLBACK_LIMIT).overdue is False
    assert schedule(one, one[0], None, START + FALLBACK_LIMIT + timedelta(minutes=11)).overdue is True
    # Only partial runs: none is a complete backup, so the wait counts from when the client was added.
    partial = [run(START - i * DAY, "partial") for i in range(3)]
    fresh = schedule(partial, None, START - DAY, START)
    assert (fresh.overdue, fresh.label, fresh.last_success) == (False, "No backup yet", None)
    stale = schedule(partial, None, START - 3 * DAY, START)
    assert stale.overdue and "added 3d 0h ago" in stale.tooltip
    assert schedule([], None, None, START).overdue is False  # nothing known: nothing to claim


def test_a_run_reads_with_the_console_number_format() -> None:
    done = run(START)
    assert run_size(done) == "1,234 files · 5.0 MB"
    assert run_result(done) == "1 new · 2 changed · 1,231 unchanged"
    assert duration(done) == "10m 0s"
    failed = {**done, "status": "partial", "files_failed": 1200, "bytes_failed": 2048}
    assert run_result(failed) == "1 new · 2 changed · 1,231 unchanged · 1,200 failed (2.0 KB)"
    assert run_result({**done, "status": "interrupted"}).startswith("interrupted: never ended · ")
    assert duration({**done, "status": "interrupted", "ended_at": None}) == "never ended"
    assert run_result({**done, "status": "running"}) == "running…"
    assert duration(run(START, "running", None)) == "running"
    assert duration(run(START, took=timedelta(0))) == "under 1 s"


# ----------------------------------------------------------------------------- the views against a mock


class Quiet:
    def __init__(self) -> None:
        self.said: list[str] = []

    async def notify(self, message: str, *, error: bool = False, error_code: str | None = None) -> None:
        self.said.append(message)


Gate = Callable[[str, dict[str, Any]], Awaitable[None]]


def route(bridge: Any, core: MockCore, ops: tuple[str, ...], gate: Gate | None = None) -> None:
    """The facade's ``<op>_async`` calls answered by ``core`` in process (``gate`` may hold a call back)."""
    for op in ops:
        signature = inspect.signature(getattr(type(bridge), f"{op}_async"))

        async def call(*args: Any, _op: str = op, _sig: inspect.Signature = signature, **kwargs: Any) -> Reply:
            bound = _sig.bind(None, *args, **kwargs)
            bound.apply_defaults()
            named = {k: v for k, v in bound.arguments.items() if k not in ("self", "timeout", "progress")}
            if gate is not None:
                await gate(_op, named)
            try:
                return as_reply(core.handle(_op, named, CTX))
            except ProtocolError as exc:
                return as_reply(from_protocol_error(exc, mode="mock"))

        setattr(bridge, f"{op}_async", call)


OPS = (
    "get_clients",
    "resolve_client",
    "get_client_details",
    "get_files",
    "list_snapshots",
    "browse_snapshot",
    "get_file_versions",
)


@pytest.fixture
def core() -> MockCore:
    world = MockCore.open(None, seed=7, clock=SimulatedClock(START), clients=12, files=240)
    for _ in range(400):  # runs that changed files, so files have several versions
        world.tick()
    return world


def make_app(tmp_path: Path, core: MockCore, role: Role = Role.ADMIN) -> tuple[AppContext, Quiet]:
    notes = Quiet()
    config = GuiConfig("tcp://127.0.0.1:9", tmp_path, DownloadLinks(tmp_path / "links"))
    session = GuiSession(config, notes)
    session.user = SignedIn("olga", role, "token")
    route(session.bridge, core, OPS)
    return AppContext(cast(ft.Page, None), session, cast(SnackNotifier, notes)), notes


@pytest.fixture
def app(tmp_path: Path, core: MockCore) -> Iterator[AppContext]:
    context, _ = make_app(tmp_path, core)
    yield context
    run_async(context.session.close)


def call(core: MockCore, op: str, **args: Any) -> Any:
    reply = core.handle(op, args, CTX)
    assert isinstance(reply, dict) and reply["success"], reply
    return reply["data"]


def walk(control: Any) -> Iterator[Any]:
    """Every control under ``control`` (contents, children, table rows and cells)."""
    yield control
    for name in ("content", "controls", "rows", "cells"):
        child = getattr(control, name, None)
        for c in child if isinstance(child, list) else [child]:
            if isinstance(c, ft.BaseControl):
                yield from walk(c)


def texts(control: Any) -> list[str]:
    return [c.value for c in walk(control) if isinstance(c, ft.Text) and c.value]


def ids(control: Any) -> list[str]:
    return [c.identifier for c in walk(control) if isinstance(c, ft.Semantics) and c.identifier]


def by_id(control: Any, identifier: str) -> Any:
    return next(c for c in walk(control) if isinstance(c, ft.Semantics) and c.identifier == identifier)


def changed_file(core: MockCore) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A client, a run of it that stored a new version of a file, and the entries down to that file."""

    def down(snapshot_id: str, path: str) -> list[dict[str, Any]] | None:
        # A folder is "changed" when anything below it changed, a removed file too: search them all.
        for entry in call(core, "browse_snapshot", snapshot_id=snapshot_id, path=path)["items"]:
            if entry["change"] != "changed":
                continue
            if entry["type"] == "file":
                return [entry]
            below = down(snapshot_id, entry["path"])
            if below is not None:
                return [entry, *below]
        return None

    for client in call(core, "get_clients", limit=100)["items"]:
        for r in call(core, "list_snapshots", client_id=client["id"], limit=20)["items"]:
            if r["files_changed"] and r["status"] != "running" and (chain := down(r["id"], "/")):
                return client, r, chain
    raise AssertionError("the mock's ticks changed no file")


def test_choosing_a_client_opens_its_newest_backup_and_walks_to_a_files_versions(
    app: AppContext, core: MockCore
) -> None:
    client, wanted, chain = changed_file(core)

    async def scenario() -> None:
        view = RestoreView(app)
        await view.show()
        assert view.prompt.visible and not view.body.visible
        await view.choose_client(client["id"], client["name"])
        runs = call(core, "list_snapshots", client_id=client["id"], limit=20)
        assert view.run is not None and view.run["id"] == runs["items"][0]["id"]  # the newest, opened at once
        view.render()
        rows = [i for i in ids(view.timeline) if i.startswith("snapshot-")]
        assert rows == [f"snapshot-{r['id']}" for r in runs["items"]]
        assert by_id(view.timeline, f"snapshot-{view.run['id']}").selected
        assert f"Backups of {client['name']}" == view.timeline_heading.value

        await view.choose_run(next(r for r in runs["items"] if r["id"] == wanted["id"]))
        for entry in chain:
            view.render()
            assert f"entry-{entry['name']}" in ids(view.browser.entries)
            await view.open_entry(entry)
        view.render()
        file = chain[-1]
        assert [c.name for c in view.browser.crumbs] == ["/", *(e["name"] for e in chain[:-1])]
        versions = call(core, "get_file_versions", file_id=file["file_id"])["items"]
        assert len(versions) >= 2 and view.versions.control.visible
        shown = [i for i in ids(view.versions.rows) if i.startswith("version-")]
        assert shown == [f"version-{v['version']}" for v in versions[: view.versions.pager.page_size]]
        held = by_id(view.versions.rows, f"version-{file['version']}")
        assert "in this backup" in texts(held)
        assert all("in this backup" not in texts(by_id(view.versions.rows, i)) for i in shown if i != held.identifier)
        download = by_id(view.versions.rows, f"download-version-{versions[-1]['version']}").content
        assert not download.disabled and download.tooltip == f"Download version {versions[-1]['version']}"

        await view.go_up(0)
        view.render()
        assert [c.path for c in view.browser.crumbs] == ["/"]
        assert app.session.store.get(FOLDER_KEY)["path"] == "/"

    run_async(scenario)


def test_another_backup_keeps_the_open_folder_or_falls_back_to_its_top(app: AppContext, core: MockCore) -> None:
    client, wanted, chain = changed_file(core)
    notes = cast(Quiet, app.notifier)

    async def scenario() -> None:
        view = RestoreView(app)
        view.visible = True
        await view.choose_client(client["id"], client["name"])
        await view.choose_run(wanted)
        folder = chain[-2] if len(chain) > 1 else None
        if folder is not None:
            await view.open_entry(folder)
        other = next(
            r for r in call(core, "list_snapshots", client_id=client["id"])["items"] if r["id"] != wanted["id"]
        )
        await view.choose_run(other)
        listing = app.session.store.get(FOLDER_KEY)
        assert listing["snapshot_id"] == other["id"] and listing["path"] == view.browser.path
        # A folder the next backup does not hold: its top instead, and the operator is told.
        view.browser.enter({"name": "gone", "path": "/gone-from-every-backup"})
        await view.choose_run(wanted)
        assert view.browser.path == "/" and app.session.store.get(FOLDER_KEY)["path"] == "/"
        assert notes.said[-1].startswith("/gone-from-every-backup is not in the backup of ")
        view.render()
        assert view.error.value == ""  # the failed try is not left on screen

    run_async(scenario)


def test_a_reply_for_an_earlier_choice_is_never_shown(app: AppContext, core: MockCore) -> None:
    first, second = call(core, "get_clients", limit=2, sort="name")["items"]
    held, entered = asyncio.Event(), asyncio.Event()

    async def hold_first(op: str, args: dict[str, Any]) -> None:
        if op == "list_snapshots" and args["client_id"] == first["id"]:
            entered.set()
            await held.wait()

    route(app.session.bridge, core, ("list_snapshots",), hold_first)

    async def scenario() -> None:
        view = RestoreView(app)
        view.visible = True
        slow = asyncio.create_task(view.choose_client(first["id"], first["name"]))
        await asyncio.wait_for(entered.wait(), 5)  # the first client's list is asked and held
        await view.choose_client(second["id"], second["name"])
        held.set()
        await slow
        assert view.client is not None and view.client.id == second["id"]
        assert {r["client_id"] for r in app.session.store.get(SNAPSHOTS_KEY)["items"]} == {second["id"]}
        assert view.run is not None and view.run["client_id"] == second["id"]

    run_async(scenario)


def test_empty_states_say_so(app: AppContext, core: MockCore) -> None:
    client = call(core, "get_clients", limit=1)["items"][0]

    async def no_runs(op: str, args: dict[str, Any]) -> None:
        if op == "list_snapshots":
            args["status"] = "running"  # a status none of this client's settled runs has

    async def scenario() -> None:
        route(app.session.bridge, core, ("list_snapshots",), no_runs)
        view = RestoreView(app)
        view.visible = True
        await view.choose_client(client["id"], client["name"])
        view.render()
        assert view.run is None and view.no_backups.visible
        assert "No backups yet for this client" in texts(view.no_backups)
        assert not view.timeline_pager.control.visible  # no "0–0 of 0"
        page = ClientPage(app)
        page.open(client["id"], client["name"])
        await page.show()
        assert page.no_runs.visible and not page.history_area.visible
        assert page.values["last_success"].value == "No complete backup yet"

    run_async(scenario)


def test_suggestions_while_typing_and_a_typed_name_on_enter(app: AppContext, core: MockCore) -> None:
    clients = call(core, "get_clients", limit=100, sort="name")["items"]
    target = clients[3]

    async def scenario() -> None:
        view = RestoreView(app)
        view.visible = True
        view.picker.field.value = target["name"][:4]
        await view.picker.suggest(target["name"][:4])
        assert f"pick-client-{target['name']}" in ids(view.picker.suggestions) and view.picker.box.visible
        view.picker.field.value = "zz-no-such"
        await view.picker.suggest(target["name"][:4])  # typed on meanwhile: this answer is dropped
        assert f"pick-client-{target['name']}" in ids(view.picker.suggestions)
        await view.picker.suggest("zz-no-such")
        assert texts(view.picker.suggestions) == ["No client matches “zz-no-such”."]
        view.picker.field.value = target["name"]
        await view.picker.on_submit(cast(ft.Event[ft.TextField], type("E", (), {"control": view.picker.field})()))
        assert view.client is not None and view.client.id == target["id"] and not view.picker.box.visible

    run_async(scenario)


def test_downloads_archives_and_restores_follow_the_role(tmp_path: Path, core: MockCore) -> None:
    client, wanted, chain = changed_file(core)
    viewer, _ = make_app(tmp_path, core, Role.VIEWER)

    async def scenario() -> None:
        view = RestoreView(viewer)
        view.visible = True
        await view.choose_client(client["id"], client["name"])
        await view.choose_run(wanted)
        for entry in chain:
            await view.open_entry(entry)
        view.render()
        button = by_id(view.versions.rows, f"download-version-{chain[-1]['version']}").content
        assert button.disabled and button.tooltip.endswith("Needs role operator")
        for action in (view.browser.archive_button, view.browser.restore_button):
            assert action.disabled and str(action.tooltip).endswith("Needs role operator")
        await viewer.session.close()

    run_async(scenario)


def test_the_selection_is_what_an_archive_or_a_restore_takes(app: AppContext, core: MockCore) -> None:
    client, wanted, chain = changed_file(core)

    async def scenario() -> None:
        view = RestoreView(app)
        view.visible = True
        await view.choose_client(client["id"], client["name"])
        await view.choose_run(wanted)
        view.render()
        archive, restore = view.browser.archive_button, view.browser.restore_button
        assert view.browser.targets == ["/"] and not archive.disabled
        assert archive.tooltip == "Download the whole backup as a tar archive"
        assert restore.tooltip == f"Restore the whole backup onto the machine of {client['name']}"
        await view.open_entry(chain[0])
        view.render()
        assert (
            view.browser.targets == [chain[0]["path"]]
            and archive.tooltip == f"Download {chain[0]['path']} as a tar archive"
        )
        entries = app.session.store.get(FOLDER_KEY)["items"][:2]
        for entry in entries:
            await view.browser._toggle(entry)
        view.render()
        assert view.browser.targets == sorted(e["path"] for e in entries)
        assert view.browser.target_text.value == "Takes 2 selected items" and view.browser.clear_button.visible
        box = by_id(view.browser.entries, f"select-{entries[0]['name']}").content
        assert isinstance(box, ft.Checkbox) and box.value is True
        await view.browser._toggle(entries[0])
        view.render()
        assert view.browser.targets == [entries[1]["path"]]
        # Another backup is another tree: the selection does not follow.
        other = next(
            r for r in call(core, "list_snapshots", client_id=client["id"])["items"] if r["id"] != wanted["id"]
        )
        await view.choose_run(other)
        view.render()
        assert view.browser.selection == {} and not view.browser.clear_button.visible
        # A run still running (as the timeline lists it) cannot be restored yet.
        page = app.session.store.get(SNAPSHOTS_KEY)
        running = [{**r, "status": "running"} if r["id"] == other["id"] else r for r in page["items"]]
        await app.session.store.set(SNAPSHOTS_KEY, {**page, "items": running})
        view.render()
        assert restore.disabled and restore.tooltip == "A backup still running cannot be restored yet"

    run_async(scenario)


def test_a_restore_job_is_followed_to_its_end_and_a_refusal_keeps_the_dialog(
    app: AppContext, core: MockCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, wanted, chain = changed_file(core)
    monkeypatch.setattr(restore_job, "POLL_S", 0.01)

    async def agent_works(op: str, args: dict[str, Any]) -> None:
        if op == "get_restore_job":
            for _ in range(3):  # the mock's simulated agent moves on with its ticks
                core.tick()

    route(app.session.bridge, core, ("restore_to_agent", "get_restore_job"), agent_works)

    async def scenario() -> None:
        dialog = RestoreDialog(app, client["name"], wanted["id"], [chain[0]["path"]], chain[0]["path"])
        await dialog.start(cast(Any, None))
        assert dialog.destination.error and dialog.start_button.disabled is False  # nothing asked yet
        dialog.destination.value = "relative/not/allowed"
        await dialog.start(cast(Any, None))
        assert dialog.status.value.startswith("Restore refused: ") and dialog.status.value.endswith("[BAD_REQUEST]")
        assert dialog.destination.value == "relative/not/allowed" and not dialog.start_button.disabled
        dialog.destination.value = "/tmp/restored"
        dialog.overwrite.value = "rename"
        await dialog.start(cast(Any, None))
        assert dialog.task is not None and not dialog.start_button.visible and dialog.destination.read_only
        await asyncio.wait_for(dialog.task, 10)
        assert dialog.status.value.startswith("Done: ") and dialog.progress.value == 1
        (job,) = call(core, "list_restore_jobs", client_id=client["id"])["items"]
        assert (job["status"], job["destination"], job["overwrite"], job["paths"]) == (
            "complete",
            "/tmp/restored",
            "rename",
            [chain[0]["path"]],
        )

    run_async(scenario)


def test_a_jobs_state_reads_as_what_it_means() -> None:
    job = {
        "status": "running",
        "files_total": 1200,
        "files_done": 3,
        "bytes_done": 2048,
        "bytes_total": 4096,
        "files_restored": 1000,
        "bytes_restored": 1024**2,
        "files_skipped": 2,
        "files_failed": 1,
        "error": None,
    }
    assert job_text(job, "bob") == "Restoring: 3 of 1,200 files · 2.0 KB of 4.0 KB"
    assert job_text({**job, "status": "queued"}, "bob").startswith("Queued: the agent of bob takes the job")
    assert job_text({**job, "status": "partial"}, "bob") == "Partly done: 1,000 restored (1.0 MB), 2 skipped, 1 failed."
    assert job_text({**job, "status": "complete"}, "bob").startswith("Done: 1,000 restored (1.0 MB), 2 skipped")
    assert job_text({**job, "status": "failed", "error": "agent gone"}, "bob") == "Restore failed: agent gone"


def test_the_client_page_shows_its_runs_its_rhythm_and_leads_on(app: AppContext, core: MockCore) -> None:
    client = call(core, "get_clients", limit=1)["items"][0]
    runs = call(core, "list_snapshots", client_id=client["id"], limit=20)
    shown: list[View] = []

    async def go(view: View) -> None:
        shown.append(view)
        view.visible = True

    async def scenario() -> None:
        clients, files, restore = ClientsView(app), FilesView(app), RestoreView(app)
        page = ClientPage(app)
        app.navigator = ConsoleNavigator([clients, files, restore], page, go, app.notifier)
        await app.navigator.open_client(client["id"], client["name"])
        await page.show()
        assert shown == [page] and page.name.value == client["name"]
        data = app.session.store.get(CLIENT_KEY)
        assert [r["id"] for r in data["newest_runs"]] == [r["id"] for r in runs["items"]]
        assert len(page.history.rows) == min(runs["total"], page.pager.page_size)
        first = texts(page.history.rows[0])
        assert first[0] == runs["items"][0]["started_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        assert str(page.marker.tooltip).startswith(OVERDUE_RULE)
        # The mock's clock stands in 2025: by the wall clock every client is long overdue.
        assert page.marker_box.visible and page.marker_text.value == "Overdue"
        assert page.files_button.content == f"Files of {client['name']}" and not page.files_button.disabled

        await page.show_files(cast(Any, None))
        assert shown.pop() is files and files.client_id == client["id"]
        await page.restore(cast(Any, None))
        assert shown.pop() is restore and restore.client is not None and restore.client.id == client["id"]
        await page.back(cast(Any, None))
        assert shown.pop() is clients

    run_async(scenario)
