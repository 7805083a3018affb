"""The console's lists without a browser or a stack: number formatting, the pager, the search
debounce, the stale-reply rule, the empty-list message and the files view's client names."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from datetime import UTC, datetime
from typing import Any

import flet as ft
import pytest

from gui.format import cell, count, number
from gui.views.files import ClientNames
from gui.views.paged import Debounce, Latest, PagedListView, empty_message
from gui.views.widgets import Pager, RowCache
from protocol.errors import ErrorCode
from protocol.responses import Reply, as_reply
from tests.conftest import run_async

WAIT_S = 5.0  # generous bound on an awaited condition; never a fixed pause


def reply(success: bool, data: Any = None, code: ErrorCode | None = None) -> Reply:
    out: dict[str, Any] = {"success": success, "message": "m", "mode": "mock", "timestamp": datetime.now(UTC)}
    out["data"] = data
    if code is not None:
        out["error_code"] = code.value
    return as_reply(out)


async def nothing() -> None:
    return None


# ----------------------------------------------------------------------------- numbers


def cell_text(cell: ft.DataCell) -> str:
    content = cell.content
    assert isinstance(content, ft.Text), content
    return str(content.value)


def test_numbers_read_the_same_everywhere() -> None:
    assert number(5581) == "5,581"
    assert number(100010) == "100,010"
    assert number(0) == "0"
    assert number(3.0) == "3"
    assert number(2.25) == "2.2"
    assert number(None) == "—"
    assert cell(100010) == "100,010"
    assert cell(True) == "True"  # a flag is not a number
    assert cell("5581") == "5581"  # text stays as typed


def test_counts_agree_with_their_number() -> None:
    assert count(1, "row") == "1 row"
    assert count(0, "row") == "0 rows"
    assert count(2, "row") == "2 rows"
    assert count(100010, "file") == "100,010 files"
    assert count(1, "entry", "entries") == "1 entry"
    assert count(3, "entry", "entries") == "3 entries"


# ----------------------------------------------------------------------------- the pager


def test_pager_labels_pages_and_hides_with_nothing_to_page() -> None:
    pager = Pager(100, nothing, "files")
    pager.update_from(100010)
    assert pager.label.value == "1–100 of 100,010"
    assert pager.of_pages.value == "of 1,001"
    assert pager.control.visible and pager.prev.disabled and not pager.next.disabled
    pager.update_from(0)
    assert not pager.control.visible  # no "0–0 of 0": the view says why the list is empty


def test_pager_jumps_only_to_pages_that_exist() -> None:
    pager = Pager(100, nothing, "files")
    pager.update_from(100010)
    assert pager.offset_of("3") == 200
    assert pager.offset_of(" 1001 ") == 100000
    for bad in ("0", "1002", "", "x", "-1"):
        with pytest.raises(ValueError, match=r"^1 to 1,001$"):
            pager.offset_of(bad)


def test_page_size_keeps_the_first_row_shown_on_screen() -> None:
    pager = Pager(100, nothing, "files")
    pager.update_from(1000)
    pager.offset = 200
    pager.resize(25)
    assert (pager.offset, pager.page) == (200, 9)
    pager.offset = 225
    pager.resize(100)
    assert (pager.offset, pager.page) == (200, 3)
    pager.update_from(1000)
    assert pager.label.value == "201–300 of 1,000"


def test_a_refresh_does_not_overwrite_a_page_number_being_typed() -> None:
    pager = Pager(10, nothing, "files")
    pager.update_from(100)
    pager.page_field.value = "7"  # the operator is typing
    pager.update_from(101)  # a live refresh of the same page
    assert pager.page_field.value == "7"
    pager.offset = 30
    pager.update_from(101)
    assert pager.page_field.value == "4"


def test_a_shrunken_list_brings_the_pager_back_to_its_last_page() -> None:
    pager = Pager(10, nothing, "files")
    pager.offset = 90
    pager.update_from(35)
    assert pager.offset == 30 and pager.label.value == "31–35 of 35" and pager.next.disabled


# ----------------------------------------------------------------------------- the empty message


def test_an_empty_list_says_why() -> None:
    assert empty_message("files") == "No files."
    assert empty_message("files", "invoice-05") == "No files matching “invoice-05”."
    assert empty_message("clients", "", "error") == "No clients with status error."
    assert (
        empty_message("files", "x", "verified", "of bob-macbook")
        == "No files of bob-macbook matching “x” with status verified."
    )


# ----------------------------------------------------------------------------- debounce


def test_a_burst_of_keystrokes_asks_once_with_the_last_text() -> None:
    async def body() -> tuple[list[str], list[str]]:
        tasks: set[asyncio.Task[None]] = set()

        def spawn(coroutine: Any, name: str) -> asyncio.Task[None]:
            task = asyncio.get_running_loop().create_task(coroutine)
            tasks.add(task)
            return task

        asked: list[str] = []
        done = asyncio.Event()

        def search(text: str) -> Any:
            async def run() -> None:
                asked.append(text)
                done.set()

            return run

        debounce = Debounce(0.05, spawn)
        for text in ("i", "in", "inv", "invoice"):
            debounce(search(text))
        await asyncio.wait_for(done.wait(), WAIT_S)
        first = list(asked)
        done.clear()
        debounce(search("invoice-05"))  # after a pause: a new question of its own
        await asyncio.wait_for(done.wait(), WAIT_S)
        await asyncio.gather(*tasks, return_exceptions=True)
        return first, asked

    first, asked = run_async(body)
    assert first == ["invoice"]
    assert asked == ["invoice", "invoice-05"]


# ----------------------------------------------------------------------------- stale replies


def test_latest_shows_only_replies_to_what_is_asked_now() -> None:
    latest = Latest()
    a, b = latest.ask(), latest.ask()
    assert not latest.fresh(a, "inv", "invoice")  # the operator typed on
    assert latest.fresh(b, "invoice", "invoice")
    c = latest.ask()
    d = latest.ask()
    assert latest.fresh(d, "invoice", "invoice")
    assert not latest.fresh(c, "invoice", "invoice")  # older than what is on screen


class ScriptedList(PagedListView):
    """A paged list whose fetches wait until the test answers them, in any order."""

    title = "scripted"

    def __init__(self) -> None:  # no page, no session: only what load() uses
        self.search, self.status, self.sort = "", "all", "name"
        self.pager = Pager(100, nothing, "scripted")
        self.latest = Latest()
        self.pending: list[tuple[Hashable, asyncio.Future[Reply]]] = []
        self.asked = asyncio.Event()

    async def fetch(self) -> Reply:
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.pending.append((self.search, future))
        self.asked.set()
        return await future

    async def next_question(self) -> tuple[Hashable, asyncio.Future[Reply]]:
        while not self.pending:
            self.asked.clear()
            await asyncio.wait_for(self.asked.wait(), WAIT_S)
        return self.pending.pop(0)


def test_a_reply_to_an_older_query_never_overwrites_a_newer_one() -> None:
    async def body() -> tuple[Any, Any, Hashable]:
        view = ScriptedList()
        view.search = "inv"
        older = asyncio.create_task(view.load())
        asked_older, answer_older = await view.next_question()
        view.search = "invoice-05"
        newer = asyncio.create_task(view.load())
        asked_newer, answer_newer = await view.next_question()
        answer_newer.set_result(reply(True, {"items": ["invoice-05"], "total": 1}))
        shown_newer = await asyncio.wait_for(newer, WAIT_S)
        answer_older.set_result(reply(True, {"items": ["inv-1", "inv-2"], "total": 2}))  # late
        asked_again, answer_again = await view.next_question()  # the stale answer was dropped
        answer_again.set_result(reply(True, {"items": ["invoice-05"], "total": 1}))
        shown_older = await asyncio.wait_for(older, WAIT_S)
        assert (asked_older, asked_newer) == ("inv", "invoice-05")
        return shown_newer["data"], shown_older["data"], asked_again

    shown_newer, shown_older, asked_again = run_async(body)
    assert shown_newer == {"items": ["invoice-05"], "total": 1}
    assert asked_again == "invoice-05"
    assert shown_older == {"items": ["invoice-05"], "total": 1}


def test_an_older_answer_to_the_same_query_is_asked_again() -> None:
    async def body() -> list[Any]:
        view = ScriptedList()
        first = asyncio.create_task(view.load())
        _, answer_first = await view.next_question()
        second = asyncio.create_task(view.load())
        _, answer_second = await view.next_question()
        answer_second.set_result(reply(True, {"items": ["after the write"], "total": 1}))
        await asyncio.wait_for(second, WAIT_S)
        answer_first.set_result(reply(True, {"items": ["before the write"], "total": 1}))
        _, answer_again = await view.next_question()
        answer_again.set_result(reply(True, {"items": ["after the write"], "total": 1}))
        return [(await asyncio.wait_for(task, WAIT_S))["data"]["items"] for task in (first, second)]

    assert run_async(body) == [["after the write"], ["after the write"]]


# ----------------------------------------------------------------------------- client names


def test_a_page_of_files_names_its_clients_and_a_client_list_renames_them() -> None:
    names = ClientNames()
    names.learn({"c1": "alpha", "c2": "beta"})  # a page of files' client_names
    assert (names.name("c1"), names.name("c2")) == ("alpha", "beta")
    names.learn_clients([{"id": "c1", "name": "alpha-2", "status": "connected"}])  # a client list loaded
    assert names.name("c1") == "alpha-2"
    assert names.name("c-gone") == "c-gone"  # a client no page or list names shows its id


def test_a_renamed_client_shows_its_new_name() -> None:
    names = ClientNames()
    names.learn_clients([{"id": "c1", "name": "old"}])
    names.learn({"c1": "new"})
    assert names.name("c1") == "new"


# ----------------------------------------------------------------------------- row reuse


def test_a_row_shows_new_cells_only_when_its_item_changed_and_rows_never_move() -> None:
    built: list[str] = []

    def build(item: dict[str, Any]) -> ft.DataRow:
        built.append(item["id"])
        return ft.DataRow(cells=[ft.DataCell(ft.Text(item["id"]))])

    cache = RowCache(build)
    a, b, c = {"id": "a", "v": 1}, {"id": "b", "v": 1}, {"id": "c", "v": 1}
    first = cache.rows([a, b, c])
    assert cache.take_changes() == ([], True)  # rows came: the table goes whole
    cells = [row.cells for row in first]
    second = cache.rows([a, {"id": "b", "v": 2}, c])  # b changed
    assert second == first and all(new is old for new, old in zip(second, first, strict=True))
    assert second[0].cells is cells[0] and second[2].cells is cells[2] and second[1].cells is not cells[1]
    assert cache.take_changes() == ([second[1]], False)  # that row alone is sent
    assert cache.take_changes() == ([], False)
    # Both moved: the rows stay in place and show them with new cells (a moved row would lose its
    # cells' accessibility nodes in Flutter); the third row goes.
    third = cache.rows([c, a])
    assert third[0] is first[0] and third[1] is first[1] and [cell_text(r.cells[0]) for r in third] == ["c", "a"]
    changed, resized = cache.take_changes()
    assert changed == [third[0], third[1]] and resized
    cache.clear()
    cache.rows([c, a])
    assert built == ["a", "b", "c", "b", "c", "a", "c", "a"]
