"""The lists' rows without a browser: what a row shows for an item, its gated menu entries, slots
reused from page to page, what is sent after each change, and the database's column widths."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, cast

import flet as ft
import pytest

from gui.auth import Gate, gate
from gui.views.database import CELL_PX, CHAR_PX, column_widths
from gui.views.paged import PagedListView
from gui.views.rowlist import (
    GROW_AFTER_S,
    GROW_AT_ONCE,
    REST_AFTER_S,
    ROW_HEIGHT,
    ROWS_IN_SIGHT,
    Cell,
    Column,
    Entry,
    Handler,
    Item,
    ListSpec,
    RowAction,
    RowList,
    row_model,
)
from gui.views.widgets import Pager
from protocol.roles import Role
from tests.conftest import run_async


async def nothing(item: Item) -> None:
    return None


def spec(handler: Handler = nothing) -> ListSpec:
    """A clients-like list: name, status, size; details, disconnect (connected only), delete."""
    return ListSpec(
        noun="client",
        columns=(
            Column("Name", 200, lambda c: c["name"], Cell.NAME, sort="name"),
            Column("Status", 100, lambda c: c["status"], Cell.BADGE),
            Column("Size", 80, lambda c: f"{c['size']:,} B", numeric=True, sort="size"),
        ),
        actions=(
            RowAction(
                "get_client_details", "Details", ft.Icons.INFO, "details", lambda c: f"Details of {c['name']}", handler
            ),
            RowAction(
                "disconnect_client",
                "Disconnect",
                ft.Icons.LINK_OFF,
                "disconnect",
                lambda c: f"Disconnect {c['name']}",
                handler,
                unavailable=lambda c: None if c["status"] == "connected" else "not connected",
            ),
            RowAction("delete_client", "Delete", ft.Icons.DELETE, "delete", lambda c: f"Delete {c['name']}", handler),
        ),
        ref=lambda c: c["name"],
        title=lambda c: c["name"],
    )


def as_role(role: Role) -> Any:
    """The console's gate for a signed-in ``role`` with the bridge up."""
    return lambda op, label: gate(role, op, label)


def client(name: str, status: str = "connected", size: int = 1024) -> Item:
    return {"id": f"id-{name}", "name": name, "status": status, "size": size}


def page(prefix: str, n: int) -> list[Item]:
    return [client(f"{prefix}-{i:03d}") for i in range(n)]


def no_run(handler: Handler, item: Item) -> None:
    raise AssertionError("no action expected")


def rows_for(role: Role = Role.ADMIN, run: Any = no_run) -> RowList:
    return RowList(spec(), "clients", run, as_role(role))


def texts(rows: RowList, index: int) -> list[str]:
    """The values of the cells of slot ``index``, in column order."""
    return [t.value for t in rows.slots[index].texts]


# ----------------------------------------------------------------------------- one row


def test_a_row_names_its_node_menu_and_entries_after_its_item() -> None:
    model = row_model(spec(), client("bob", size=123456), as_role(Role.ADMIN))
    assert model.key == "id-bob"
    assert (model.identifier, model.menu, model.menu_tooltip) == (
        "client-row-bob",
        "actions-client-bob",
        "Actions for bob",
    )
    assert model.cells == ("bob", "connected", "123,456 B")
    assert model.entries == (
        Entry("details-client-bob", False, None),
        Entry("disconnect-client-bob", False, None),
        Entry("delete-client-bob", False, None),
    )


def test_an_entry_the_role_may_not_use_is_disabled_and_says_the_role_it_needs() -> None:
    viewer = row_model(spec(), client("bob"), as_role(Role.VIEWER))
    details, disconnect, delete = viewer.entries
    assert details == Entry("details-client-bob", False, None)  # reading is a viewer's right
    assert disconnect == Entry("disconnect-client-bob", True, "Disconnect bob · Needs role operator")
    assert delete == Entry("delete-client-bob", True, "Delete bob · Needs role admin")


def test_an_entry_the_item_does_not_allow_says_why() -> None:
    model = row_model(spec(), client("bob", status="disconnected"), as_role(Role.ADMIN))
    assert model.entries[1] == Entry("disconnect-client-bob", True, "Disconnect bob · not connected")


def test_the_gate_wins_over_the_items_own_reason() -> None:
    refused = row_model(spec(), client("bob", status="disconnected"), lambda op, label: Gate(False, f"{label} · down"))
    assert refused.entries[1] == Entry("disconnect-client-bob", True, "Disconnect bob · down")


def test_a_row_can_carry_its_own_identifier() -> None:
    db = ListSpec(noun="row", columns=(), actions=(), ref=lambda r: str(r["id"]), title=str, row_name="db-row")
    assert row_model(db, {"id": 7}, as_role(Role.ADMIN)).identifier == "db-row-7"


# ----------------------------------------------------------------------------- slots


def slot_controls(rows: RowList) -> list[ft.Control]:
    """Every control the rows are drawn with."""
    return [c for s in rows.slots for c in (s.control, *s.texts, s.menu, *(e.entry for e in s.entries))]


def settle(rows: RowList) -> list[list[ft.Control]]:
    """Every frame's changes until nothing is left for later."""
    frames = [rows.take_changes()]
    while rows.pending:
        frames.append(rows.take_changes())
    return frames


def test_a_long_first_page_sends_the_rows_in_sight_then_the_rest_a_few_at_a_time() -> None:
    rows = rows_for()
    rows.show(page("a", 100))
    # Only the rows in sight are built and go with the list's first frame; the others wait for the
    # browser to paint those first.
    assert len(rows.slots) == ROWS_IN_SIGHT and rows.pending
    assert rows.take_changes() == [rows.body] and rows.body.semantic_child_count == ROWS_IN_SIGHT
    assert rows.later_s == GROW_AFTER_S
    counts = []
    while rows.pending:
        assert rows.take_changes() == [rows.body]  # new rows go whole, with the list
        counts.append(len(rows.body.controls))
        assert rows.later_s == REST_AFTER_S  # then a few each frame
    assert counts == [ROWS_IN_SIGHT + GROW_AT_ONCE * n for n in range(1, len(counts))] + [100]
    assert [s.control.identifier for s in rows.slots] == [f"client-row-a-{i:03d}" for i in range(100)]
    assert rows.body.semantic_child_count == 100 and all(s.control.visible for s in rows.slots)
    assert rows.take_changes() == []


def test_a_page_that_changes_while_its_rows_are_built_is_built_as_it_is_now() -> None:
    rows = rows_for()
    rows.show(page("a", 100))
    rows.take_changes()
    rows.show(page("b", 30))  # a search narrowed it before the rest had slots
    frames = settle(rows)
    assert len(rows.slots) == 30 and texts(rows, 29)[0] == "b-029" and texts(rows, 0)[0] == "b-000"
    assert all(s.control.visible for s in rows.slots) and rows.body.semantic_child_count == 30
    assert frames[-1] and frames[-1][0] is rows.body


def scrolled_into(rows: RowList, top: int) -> None:
    scroll(rows, top * ROW_HEIGHT, window=10 * ROW_HEIGHT)


def test_a_first_page_shown_while_scrolled_down_builds_the_rows_down_to_the_window() -> None:
    rows = rows_for()
    scrolled_into(rows, 40)  # the browser kept the list scrolled (a view shown again)
    rows.show(page("a", 100))
    assert len(rows.slots) == 40 + 11


def test_a_new_page_is_shown_by_the_same_controls_as_the_last() -> None:
    rows = rows_for()
    rows.show(page("a", 100))
    assert settle(rows)[0] == [rows.body]  # rows came: the list goes whole
    before = slot_controls(rows)
    assert len(rows.body.controls) == 100

    rows.show(page("b", 100))
    assert rows.later_s == REST_AFTER_S  # a page turn's rows out of sight follow soon
    after = slot_controls(rows)
    assert len(after) == len(before) and all(new is old for new, old in zip(after, before, strict=True))
    assert texts(rows, 0)[0] == "b-000" and texts(rows, 99)[0] == "b-099"
    assert rows.slots[0].control.identifier == "client-row-b-000"
    assert rows.slots[0].entries[2].box.identifier == "delete-client-b-000"
    # Each row by itself (the list walks none of them): those in sight now, the others next.
    assert rows.take_changes() == [s.control for s in rows.slots[:ROWS_IN_SIGHT]] and rows.pending
    assert rows.take_changes() == [s.control for s in rows.slots[ROWS_IN_SIGHT:]] and not rows.pending
    assert rows.take_changes() == []
    assert all(s.control.is_isolated() for s in rows.slots) and rows.body.is_isolated()


def test_a_live_change_sends_the_changed_rows_alone() -> None:
    rows = rows_for()
    items = page("a", 50)
    rows.show(items)
    settle(rows)
    items[3] = {**items[3], "size": 99}
    items[7] = {**items[7], "status": "disconnected"}
    rows.show(items)
    assert rows.take_changes() == [rows.slots[3].control, rows.slots[7].control]
    assert texts(rows, 3)[2] == "99 B"
    assert rows.slots[7].entries[1].entry.disabled and rows.slots[7].badges[0][1].bgcolor == ft.Colors.GREY_600
    rows.show(items)  # the same again: nothing to send
    assert rows.take_changes() == []


def test_the_rows_in_sight_go_first_wherever_the_list_is_scrolled() -> None:
    rows = rows_for()
    rows.show(page("a", 100))
    settle(rows)
    scroll(rows, 60 * ROW_HEIGHT + ROW_HEIGHT // 2, window=10 * ROW_HEIGHT)  # row 60 at the top, half hidden
    assert (rows.first_in_sight, rows.rows_in_sight) == (60, 11)  # rows 60-70: 61 to 69 whole, 60 and 70 in part
    rows.show(page("b", 100))
    first = rows.take_changes()
    assert first == [s.control for s in rows.slots[60:71]]
    assert rows.take_changes() == [s.control for s in rows.slots[:60] + rows.slots[71:]]
    scroll(rows, 0)
    rows.show([*page("b", 100)[:30], *page("c", 100)[30:]])  # none of the changed rows in sight: all at once
    assert rows.take_changes() == [s.control for s in rows.slots[30:]] and not rows.pending


def test_a_list_laid_out_before_any_scroll_sends_as_many_rows_first_as_its_window_shows() -> None:
    rows = rows_for()
    rows.show(page("a", 100))
    settle(rows)
    laid_out(rows, 10 * ROW_HEIGHT - 5)  # a short browser window: 10 rows, the last cut
    assert rows.rows_in_sight == 11
    rows.show(page("b", 100))
    assert rows.take_changes() == [s.control for s in rows.slots[:11]] and rows.pending
    laid_out(rows, 40 * ROW_HEIGHT)  # a tall one
    rows.show(page("c", 100))
    assert rows.take_changes() == [s.control for s in rows.slots[:41]]


def laid_out(rows: RowList, height: float) -> None:
    """What the browser reports once the list's window is laid out (and when its size changes)."""
    assert rows.body.on_size_change is not None
    reported = ft.LayoutSizeChangeEvent(name="size_change", control=rows.body, width=800, height=height)
    assert not isinstance(cast(Any, rows.body.on_size_change)(reported), Coroutine)


def test_a_shorter_page_hides_the_slots_it_does_not_need_and_a_longer_one_shows_them_again() -> None:
    rows = rows_for()
    rows.show(page("a", 100))
    settle(rows)
    rows.show(page("found", 3))
    assert [s.control.visible for s in rows.slots].count(True) == 3 and len(rows.slots) == 100
    # The list (which rows show, and how many to a screen reader), then the rows.
    assert rows.take_changes() == [rows.body, *(s.control for s in rows.slots[:3])]
    assert rows.body.semantic_child_count == 3
    rows.show(page("c", 100))
    assert all(s.control.visible for s in rows.slots) and len(rows.body.controls) == 100
    assert rows.take_changes() == [rows.body, *(s.control for s in rows.slots[:ROWS_IN_SIGHT])]
    assert rows.body.semantic_child_count == 100


def test_a_gate_that_changes_redraws_the_rows_it_concerns() -> None:
    state = {"down": False}

    def bridge(op: str, label: str) -> Gate:
        down = state["down"] and op != "get_client_details"
        return Gate(not down, f"{label} · Real server unavailable" if down else label)

    rows = RowList(spec(), "clients", no_run, bridge)
    rows.show(page("a", 2))
    rows.take_changes()
    state["down"] = True
    rows.show(page("a", 2))
    assert rows.take_changes() == [s.control for s in rows.slots]
    delete = rows.slots[0].entries[2]
    assert delete.entry.disabled and delete.text.tooltip == "Delete a-000 · Real server unavailable"
    assert not rows.slots[0].entries[0].entry.disabled


def test_an_entry_acts_on_the_item_its_menu_was_opened_for() -> None:
    ran: list[tuple[Handler, Item]] = []
    rows = rows_for(run=lambda handler, item: ran.append((handler, item)))
    rows.show([client("bob")])
    slot = rows.slots[0]
    open_menu(slot.menu)
    rows.show([client("ann")])  # a live change moved another client into the row meanwhile
    click(slot.entries[2].entry)
    assert [item["name"] for _, item in ran] == ["bob"]
    open_menu(slot.menu)
    click(slot.entries[2].entry)
    assert [item["name"] for _, item in ran] == ["bob", "ann"]


def test_the_sorted_column_shows_its_arrow() -> None:
    sorted_by: list[str] = []

    async def sort(field: str) -> None:
        sorted_by.append(field)

    rows = RowList(spec(), "clients", no_run, as_role(Role.ADMIN), sort)
    rows.show_sort("-size")
    assert not rows.arrows["name"].visible
    assert rows.arrows["size"].visible and rows.arrows["size"].icon == ft.Icons.ARROW_DOWNWARD
    rows.show_sort("name")
    assert rows.arrows["name"].visible and rows.arrows["name"].icon == ft.Icons.ARROW_UPWARD
    assert not rows.arrows["size"].visible
    assert set(rows.arrows) == {"name", "size"}  # Status is not sortable


class Sorting(PagedListView):
    """Only what sorting uses: the sort, the pager, the reload."""

    def __init__(self) -> None:  # no page, no session
        self.sort = "name"
        self.pager = Pager(100, self.reload, "sorting")
        self.reloads = 0

    async def reload(self) -> None:
        self.reloads += 1


def test_a_column_title_sorts_by_it_then_the_other_way_from_the_first_page() -> None:
    view = Sorting()
    seen = []

    async def clicks() -> None:
        for field in ("size", "size", "size", "name"):
            view.pager.offset = 300
            await view.sort_by(field)
            seen.append((view.sort, view.pager.offset))

    run_async(clicks)
    assert seen == [("size", 0), ("-size", 0), ("size", 0), ("name", 0)] and view.reloads == 4


# ----------------------------------------------------------------------------- database widths


@pytest.mark.parametrize(
    ("values", "width"),
    [
        ([1, 2], CELL_PX[0]),  # short numbers: the least width
        (["x" * 20], 20 * CHAR_PX),  # as wide as the widest cell
        (["x" * 500], CELL_PX[1]),  # a long value is cut short on screen
        ([None], CELL_PX[0]),
    ],
)
def test_a_database_column_is_as_wide_as_its_widest_cell_within_bounds(values: list[Any], width: int) -> None:
    assert column_widths(["v"], [{"v": v} for v in values]) == [width]


def test_a_database_column_is_at_least_as_wide_as_its_name() -> None:
    name = "a_rather_long_column_name"
    assert column_widths([name], [{name: 1}]) == [len(name) * CHAR_PX]


# ----------------------------------------------------------------------------- helpers


def event(control: ft.Control) -> Any:
    """What a handler is given, for handlers that only need to be called."""
    return ft.Event(name="test", control=control)


def scroll(rows: RowList, pixels: float, window: float = 600) -> None:
    """What the browser reports while the list scrolls (``window``: the list's visible height)."""
    assert rows.body.on_scroll is not None
    reported = ft.OnScrollEvent(
        name="onScroll",
        control=rows.body,
        event_type=ft.ScrollType.UPDATE,
        pixels=pixels,
        min_scroll_extent=0,
        max_scroll_extent=100 * ROW_HEIGHT,
        viewport_dimension=window,
    )
    assert not isinstance(cast(Any, rows.body.on_scroll)(reported), Coroutine)


def open_menu(menu: ft.PopupMenuButton) -> None:
    assert menu.on_open is not None
    assert not isinstance(cast(Any, menu.on_open)(event(menu)), Coroutine)


def click(entry: ft.PopupMenuItem) -> None:
    assert entry.on_click is not None
    assert not isinstance(cast(Any, entry.on_click)(event(entry)), Coroutine)
