"""The Restore view's folder entries as row slots (gui/views/restore_entries.py): another folder sets
new values into the same controls, a single change sends that row alone, a folder loading hides the
rows, another page goes back to the top of the list, and a reused row acts on what it shows now."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

import flet as ft
import pytest

from actors.mock.core import MockCore
from gui.app_context import AppContext
from gui.views import restore
from gui.views.restore import RestoreView
from gui.views.restore_entries import ROWS_ONE_BY_ONE, EntryRows
from tests.conftest import run_async
from tests.test_gui_restore_units import app, changed_file, core, ids, route

__all__ = ["app", "core"]  # the fixtures: an in-process mock with runs, and a console session routed to it

AT = datetime(2025, 3, 1, 14, 1, 5, tzinfo=UTC)


def entry(folder: str, name: str, kind: str = "file", change: str | None = "new") -> dict[str, Any]:
    return {
        "name": name,
        "path": f"{folder}/{name}",
        "type": kind,
        "size": 2048,
        "files": 3 if kind == "dir" else None,
        "version": 1,
        "modified_at": AT,
        "file_id": None if kind == "dir" else f"id-{folder}/{name}",
        "change": change,
    }


def page(folder: str, n: int, kind: str = "file") -> list[dict[str, Any]]:
    return [entry(folder, f"{kind}{i:02d}", kind) for i in range(n)]


class Clicks:
    def __init__(self) -> None:
        self.opened: list[str] = []
        self.toggled: list[str] = []


def rows_with_clicks() -> tuple[EntryRows, Clicks]:
    clicks = Clicks()
    rows = EntryRows(lambda e: clicks.opened.append(e["path"]), lambda e: clicks.toggled.append(e["path"]))
    return rows, clicks


def test_another_folder_sets_values_into_the_same_rows() -> None:
    rows, _ = rows_with_clicks()
    rows.show(page("/a", 100, "dir"), [], None, ("s", "/a", 0))
    slots = list(rows.slots)
    controls = [id(c) for s in slots for c in (s.control, s.name, s.detail, s.check, s.pick)]
    assert rows.take_changes() == [rows.control] and rows.control.visible and rows.scroll_pending
    rows.scroll_pending = False
    rows.show(page("/b", 100), [], None, ("s", "/b", 0))
    assert (
        rows.slots == slots
        and [id(c) for s in slots for c in (s.control, s.name, s.detail, s.check, s.pick)] == controls
    )
    assert [s.pick.identifier for s in slots[:2]] == ["entry-file00", "entry-file01"]
    assert slots[0].name.value == "file00" and slots[0].name.tooltip == "/b/file00"
    assert str(slots[0].detail.value).startswith("2.0 KB · version 1 · 2025-03-01 ")
    assert slots[0].icon.icon == ft.Icons.INSERT_DRIVE_FILE_OUTLINED and slots[0].change.value == "new"
    assert rows.take_changes() == [rows.control]  # more than ROWS_ONE_BY_ONE rows changed: one patch
    assert rows.scroll_pending  # another folder starts at its top


def test_one_changed_entry_sends_its_row_alone_and_a_shorter_page_hides_the_rest() -> None:
    rows, _ = rows_with_clicks()
    items = page("/a", 30)
    rows.show(items, [], None, ("s", "/a", 0))
    rows.take_changes()
    rows.scroll_pending = False
    items[4] = {**items[4], "change": "changed"}
    rows.show(items, [items[7]["path"]], None, ("s", "/a", 0))  # selected: its checkbox is ticked
    assert rows.take_changes() == [rows.slots[4].control, rows.slots[7].control] and not rows.scroll_pending
    assert rows.slots[7].check.value is True and rows.slots[4].change.value == "changed"
    rows.show(items, [items[7]["path"]], None, ("s", "/a", 0))
    assert rows.take_changes() == []  # nothing new: nothing to send
    rows.show(items[:10], [], None, ("s", "/a", 0))
    assert rows.take_changes() == [rows.control]
    assert [s.control.visible for s in rows.slots] == [True] * 10 + [False] * 20 and rows.shown == 10
    assert ROWS_ONE_BY_ONE < 30


def test_a_folder_loading_hides_the_rows_until_its_entries_come() -> None:
    rows, _ = rows_with_clicks()
    rows.show(page("/a", 5), [], None, ("s", "/a", 0))
    rows.take_changes()
    rows.show(None, [], None)
    assert not rows.control.visible and rows.take_changes() == [rows.control]
    rows.show(None, [], None)
    assert rows.take_changes() == []
    picked = "id-/b/file01"
    rows.show(page("/b", 5), [], picked, ("s", "/b", 0))
    assert rows.control.visible and rows.take_changes() == [rows.control]
    assert rows.slots[1].pick.selected and rows.slots[1].box.bgcolor is not None and not rows.slots[0].pick.selected


def test_a_reused_row_acts_on_the_entry_it_shows_now() -> None:
    rows, clicks = rows_with_clicks()
    rows.show(page("/a", 3, "dir"), [], None, ("s", "/a", 0))
    rows.show(page("/a/dir01", 3), [], None, ("s", "/a/dir01", 0))
    cast(Any, rows.slots[2].box.on_click)(None)
    cast(Any, rows.slots[0].check.on_change)(None)
    assert clicks.opened == ["/a/dir01/file02"] and clicks.toggled == ["/a/dir01/file00"]


# ----------------------------------------------------------------------------- in the view


def test_the_view_sends_its_rows_and_draws_a_slow_folder_before_it_comes(
    app: AppContext, core: MockCore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, wanted, chain = changed_file(core)
    held, entered = asyncio.Event(), asyncio.Event()

    async def hold(op: str, args: dict[str, Any]) -> None:
        if args.get("path") == chain[0]["path"]:
            entered.set()
            await held.wait()

    route(app.session.bridge, core, ("browse_snapshot",), hold)
    monkeypatch.setattr(restore, "QUICK_S", 0.01)

    async def scenario() -> None:
        view = RestoreView(app)
        view.visible = True
        app.session.frames.pause()  # what the view sends is taken here, not by the tab's frames
        await view.choose_client(client["id"], client["name"])
        await view.choose_run(wanted)
        view.render()
        sent = view.changed_controls()
        assert sent[0] is view.root and view.browser.entries in sent  # the rows are isolated: sent on their own
        assert view.changed_controls() == (view.root,)  # nothing new in them since
        drawn: list[list[str]] = []
        monkeypatch.setattr(view, "redraw", lambda: drawn.append([c.name for c in view.browser.crumbs]))
        opening = asyncio.create_task(view.open_entry(chain[0]))
        await asyncio.wait_for(entered.wait(), 5)
        await asyncio.sleep(0.05)
        assert drawn == [["/", chain[0]["name"]]]  # slow: the choice is drawn first
        held.set()
        await opening
        view.render()
        assert f"entry-{chain[1]['name']}" in ids(view.browser.entries) and view.browser.entries.visible
        drawn.clear()
        await view.go_up(0)  # quick: drawn once, with its answer
        assert drawn == []

    run_async(scenario)
