"""Long lists that stay fast at any size: a page of rows drawn by a fixed set of row slots.

A DataTable page of 100 rows with three buttons each was some 2,700 new controls per page: Flet
built, configured and diffed every one of them in Python (0.5-1 s on a busy 2-core machine) and
Flutter laid out every row and cell, on screen or not (another second). Here:

* a row is a handful of controls: texts of fixed widths, a status badge, and one menu button
  whose entries are the row's actions (Flutter builds those only when the menu opens);
* the rows are *slots*, built once: a new page sets new values into them, so its patch is the
  values that changed, never new controls;
* the slots sit in a ListView with a fixed item extent, which Flutter builds lazily: only the
  rows on screen, and a little around them, are laid out, drawn and put in the accessibility tree;
* the ListView and each row are isolated: an update of the view around them walks neither, and
  the view sends the rows that changed itself (``take_changes``), one patch each: first those in
  sight (the list notes how far it is scrolled), the others in a frame ``REST_AFTER_S`` later.
  Flet diffs every control of what it updates (some 20 per row), so a page of 100 rows costs
  ~100 ms of the GUI's event loop; what is in sight is on its way after a quarter of that.

Every action keeps its identifier (``delete-client-bob``) on its menu entry, and its gate: an
entry the signed-in role may not use, or that the bridge would refuse now, is disabled and says
why in its tooltip ("Delete bob · Needs role admin").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import flet as ft

from gui.auth import Gate
from gui.views.rowspec import (
    CELL_GAP,
    MENU_WIDTH,
    Cell,
    Column,
    Entry,
    GateFor,
    Handler,
    Item,
    ListSpec,
    RowAction,
    RowModel,
    Run,
    row_model,
)
from gui.views.widgets import STATUS_COLORS, TABLE_SCROLLBAR

# The lists' views and the database view take the spec from here too (it is defined in rowspec.py).
__all__ = [
    "Cell",
    "Column",
    "Entry",
    "Handler",
    "Item",
    "ListSpec",
    "RowAction",
    "RowList",
    "no_auto_update",
    "row_model",
]

ROW_HEIGHT = 44  # every row has this height: the ListView lays rows out without measuring them
# Rows the list's window shows, sent first (the rest in a later frame): until the browser says how
# tall the window is (once it is laid out, and as it scrolls), as many as a tall browser window shows.
ROWS_IN_SIGHT = 20
# The rows out of sight wait this long after those in sight: the browser draws what it was sent
# first (on a shared machine it would compete with the GUI diffing rows no one sees yet).
REST_AFTER_S = 0.15
# Rows given a slot in each frame after the first of a list longer than ever before (see RowList._grow),
# the first of those frames GROW_AFTER_S after it: the browser builds and paints the rows in sight
# first (every new row is some 1.6 KB of new controls for it to build; sent sooner, they delayed the
# first rows on screen).
GROW_AT_ONCE = 25
GROW_AFTER_S = 1.0
SCROLL_REPORT_MS = 150  # how often the browser says how far the list is scrolled, while it scrolls
SIZE_REPORT_MS = 100  # how often the browser says how tall the list's window is, while it changes
# A sortable title is a button that reads like the other titles (no padding to push it off its column).
HEADER_BUTTON = ft.ButtonStyle(padding=0)


@dataclass(frozen=True, slots=True)
class EntryControls:
    """The controls of one menu entry: the entry, the node carrying its identifier, its text."""

    entry: ft.PopupMenuItem
    box: ft.Semantics
    text: ft.Text


class RowsBody(ft.ListView):
    """The ListView of a list's rows. Isolated: an update of anything around it does not walk the
    rows (their owner sends what changed), and Flutter builds only the rows in sight."""

    def is_isolated(self) -> bool:
        return True


class RowNode(ft.Semantics):
    """A row: a node of its own in the accessibility tree, and isolated, so that an update of the
    list walks the row itself (is it shown?) but not its cells (the row is sent by itself)."""

    def is_isolated(self) -> bool:
        return True


def no_auto_update() -> None:
    """In a handler of a control inside a list: no automatic update after it. Flet would update the
    nearest isolated ancestor, a row or the whole list, though the handler changed nothing there
    (what it starts sends its own changes). Outside a session's event (a unit test) nothing to do."""
    try:
        ft.context.page  # noqa: B018 - raises outside a session
    except RuntimeError:
        return
    ft.context.disable_auto_update()


class RowSlot:
    """One row of the list, built once and shown again for each item that comes to its place."""

    def __init__(self, spec: ListSpec, run: Run) -> None:
        self.spec = spec
        self.model: RowModel | None = None
        self.item: Item | None = None
        self._menu_item: Item | None = None  # the item whose menu was opened: what its entries act on
        self._run = run
        self.texts: list[ft.Text] = []  # one per column, in order
        self.badges: list[tuple[int, ft.Container]] = []  # (column, its coloured box)
        self._detail_cells: list[int] = []
        cells = [self._cell(index, column) for index, column in enumerate(spec.columns)]
        self.entries: list[EntryControls] = []
        for action in spec.actions:
            text = ft.Text(action.text)
            box = ft.Semantics(content=text)
            entry = ft.PopupMenuItem(content=box, icon=action.icon, on_click=self._on_entry(action))
            self.entries.append(EntryControls(entry, box, text))
        self.menu = ft.PopupMenuButton(
            icon=ft.Icons.MORE_VERT, items=[e.entry for e in self.entries], on_open=self._opened, width=MENU_WIDTH
        )
        self._menu_box = ft.Semantics(content=self.menu)
        line = ft.Row(
            [self._menu_box, *cells],
            spacing=CELL_GAP,
            height=ROW_HEIGHT,
            vertical_alignment=ft.CrossAxisAlignment.CENTER,
        )
        # A container node: the row's plain texts are read together as its label.
        self.control = RowNode(container=True, content=line)

    def _cell(self, index: int, column: Column) -> ft.Control:
        align = ft.TextAlign.RIGHT if column.numeric else ft.TextAlign.START
        text = ft.Text("", width=column.width, no_wrap=True, overflow=ft.TextOverflow.ELLIPSIS, text_align=align)
        self.texts.append(text)
        if column.cell is Cell.NAME:
            text.weight = ft.FontWeight.W_500
            return ft.Semantics(container=True, content=text)
        if column.cell is Cell.BADGE:
            text.width, text.size, text.color = None, 12, ft.Colors.WHITE
            badge = ft.Container(text, padding=ft.Padding.symmetric(horizontal=8, vertical=2), border_radius=10)
            self.badges.append((index, badge))
            return ft.Container(badge, width=column.width, alignment=ft.Alignment.CENTER_LEFT)
        if column.cell is Cell.DETAIL:
            text.size = 12
            self._detail_cells.append(index)
        return text

    def show(self, model: RowModel, item: Item) -> bool:
        """Show ``item`` (as ``model`` says); False when the row already showed exactly that."""
        self.item = item
        if model == self.model:
            return False
        self.model = model
        self.control.identifier = model.identifier
        self._menu_box.identifier = model.menu
        self.menu.tooltip = model.menu_tooltip
        for text, value in zip(self.texts, model.cells, strict=True):
            text.value = value
        for index, badge in self.badges:
            badge.bgcolor = STATUS_COLORS.get(model.cells[index], ft.Colors.GREY_500)
            badge.tooltip = model.tooltips[index]
        for index in self._detail_cells:
            self.texts[index].tooltip = model.cells[index] or None  # an empty cell has nothing to say
        for controls, shown in zip(self.entries, model.entries, strict=True):
            controls.box.identifier = shown.identifier
            controls.entry.disabled = shown.disabled
            controls.text.tooltip = shown.tooltip
        return True

    def _opened(self, e: ft.Event[ft.PopupMenuButton]) -> None:
        no_auto_update()
        self._menu_item = self.item

    def _on_entry(self, action: RowAction) -> Callable[[ft.Event[ft.PopupMenuItem]], None]:
        def click(e: ft.Event[ft.PopupMenuItem]) -> None:
            no_auto_update()
            # The row may show another item since its menu opened (a live change, a new page):
            # the entry acts on the item the operator opened it for.
            item = self._menu_item or self.item
            if item is not None:
                self._run(action.handler, item)

        return click


class RowList:
    """A page of rows under a header of column titles (a sortable title sorts on click), scrolling
    both ways in the space it is given. ``show`` puts a page in; ``take_changes`` says what to send."""

    def __init__(
        self,
        spec: ListSpec,
        name: str,
        run: Run,
        gate: GateFor,
        on_sort: Callable[[str], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self._run = run
        self._gate = gate
        self._on_sort = on_sort
        self.slots: list[RowSlot] = []
        self.shown = 0  # slots in use: the others are hidden
        self._items: Sequence[Item] = ()  # the page shown (its last rows may have no slot yet)
        self._first_grown = False  # show built the rows in sight: the others wait GROW_AFTER_S
        self._changed: set[int] = set()  # slots (by place) showing something new since last sent
        self._resized = False
        self.first_in_sight = 0  # the row at the top of the list's window, as last reported
        self.rows_in_sight = ROWS_IN_SIGHT
        self._gates: tuple[Gate, ...] = ()  # what the actions' gates said at the last show
        self.arrows: dict[str, ft.Icon] = {}  # sort field -> the arrow beside its column's title
        self.body = RowsBody(
            controls=[],
            item_extent=ROW_HEIGHT,
            expand=True,
            on_scroll=self._scrolled,
            scroll_interval=SCROLL_REPORT_MS,
            on_size_change=self._resized_window,
            size_change_interval=SIZE_REPORT_MS,
        )
        self.header = ft.Row([ft.Container(width=MENU_WIDTH), *map(self._title, spec.columns)], spacing=CELL_GAP)
        table = ft.Column(
            [ft.Container(self.header, height=ROW_HEIGHT), ft.Divider(height=1), self.body],
            width=spec.width,
            spacing=0,
        )
        # Sideways is the outer scroll, so its scrollbar sits at the bottom of the visible area.
        sideways = ft.Row(
            [table], scroll=TABLE_SCROLLBAR, expand=True, vertical_alignment=ft.CrossAxisAlignment.STRETCH
        )
        self.control = ft.Semantics(identifier=f"{name}-table", container=True, content=sideways, expand=True)

    def _title(self, column: Column) -> ft.Control:
        slug = column.title.lower().replace(" ", "-")
        title = ft.Text(column.title, weight=ft.FontWeight.BOLD, no_wrap=True)
        cell: ft.Control = title
        if column.sort is not None and self._on_sort is not None:
            arrow = ft.Icon(ft.Icons.ARROW_UPWARD, size=14, visible=False)
            self.arrows[column.sort] = arrow
            title_row = ft.Row([title, arrow], spacing=2, tight=True)
            cell = ft.TextButton(content=title_row, on_click=self._sort_click(column.sort), style=HEADER_BUTTON)
        align = ft.Alignment.CENTER_RIGHT if column.numeric else ft.Alignment.CENTER_LEFT
        box = ft.Container(cell, width=column.width, alignment=align)
        return ft.Semantics(identifier=f"{self.name}-col-{slug}", container=True, content=box)

    def _sort_click(self, field: str) -> Callable[[ft.Event[ft.TextButton]], Coroutine[Any, Any, None]]:
        async def click(e: ft.Event[ft.TextButton]) -> None:
            no_auto_update()  # the view's frame sends the list sorted (a reload draws it whole)
            if self._on_sort is not None:
                await self._on_sort(field)

        return click

    def show_sort(self, sort: str) -> None:
        """Mark the column the list is sorted by ("-size": by size, descending)."""
        field, descending = sort.lstrip("-"), sort.startswith("-")
        for name, arrow in self.arrows.items():
            arrow.visible = name == field
            arrow.icon = ft.Icons.ARROW_DOWNWARD if descending else ft.Icons.ARROW_UPWARD

    def _scrolled(self, e: ft.OnScrollEvent) -> None:
        no_auto_update()
        self.first_in_sight = max(0, int(e.pixels // ROW_HEIGHT))
        self._see(e.viewport_dimension)

    def _resized_window(self, e: ft.LayoutSizeChangeEvent[ft.LayoutControl]) -> None:
        # The list's window is laid out (shown, or the browser window resized): how many rows it
        # shows is known before any scroll, so a page turn's first frame carries those rows only.
        no_auto_update()
        self._see(e.height)

    def _see(self, window: float) -> None:
        self.rows_in_sight = max(1, math.ceil(window / ROW_HEIGHT) + 1)  # the rows cut at either edge count too

    def show(self, items: Sequence[Item]) -> None:
        """Show ``items``, one per slot from the top. A page longer than ever before gets new slots
        for the rows in sight now (built showing their item: they go whole with the list) and for
        the others in later frames (``take_changes``); slots beyond a shorter page are hidden."""
        # A row is worked out from its item and what its actions' gates say: a slot that still holds
        # the very same item (a live change of another row keeps the others' objects) under the same
        # gates shows it already, and is not worked out again (100 rows, in every open tab).
        gates = tuple(self._gate(action.op, "") for action in self.spec.actions)
        regate, self._gates = gates != self._gates, gates
        self._items = items
        for index, (slot, item) in enumerate(zip(self.slots, items, strict=False)):
            if not regate and slot.item is item:
                continue
            if slot.show(row_model(self.spec, item, self._gate), item):
                self._changed.add(index)
        built = len(self.slots)
        self._grow(self.first_in_sight + self.rows_in_sight)
        self._first_grown = self._first_grown or len(self.slots) > built
        self._fit()

    def _grow(self, rows: int) -> None:
        """Slots for the items up to ``rows`` that have none yet. Flet builds, diffs and sends a new
        control whole (some 20 a row: ~10 ms a row on a busy machine, and the browser builds each
        one too), so the first frame of a list takes those in sight and later ones the rest."""
        for item in self._items[len(self.slots) : rows]:
            slot = RowSlot(self.spec, self._run)
            slot.show(row_model(self.spec, item, self._gate), item)
            self.slots.append(slot)
            self.body.controls.append(slot.control)
            self._resized = True

    def _fit(self) -> None:
        """Hide the slots beyond the page; a screen reader hears of the rows shown, not the slots."""
        shown = min(len(self._items), len(self.slots))
        if shown != self.shown:
            for index, slot in enumerate(self.slots):
                slot.control.visible = index < shown
            self.shown = shown
            self.body.semantic_child_count = shown
            self._resized = True

    @property
    def pending(self) -> bool:
        """Rows showing something new, or still without a slot, are left for the next frames."""
        return bool(self._changed) or len(self.slots) < len(self._items)

    @property
    def later_s(self) -> float:
        """When the rows left for later are due: soon, but the first new rows after those of a
        list's first frame a while after it."""
        return GROW_AFTER_S if self._first_grown and not self._changed else REST_AFTER_S

    def take_changes(self) -> list[ft.Control]:
        """What to send now: the list when rows came or went (its rows' own visibility, new rows
        whole), then the rows showing something new, each by itself: those in sight only, when
        others changed too (``pending`` then says more are due). A frame with nothing else to send
        builds the next ``GROW_AT_ONCE`` rows still without a slot."""
        if not self._resized and not self._changed:
            self._first_grown = False
            self._grow(len(self.slots) + GROW_AT_ONCE)
            self._fit()
        sending: list[ft.Control] = [self.body] if self._resized else []
        self._resized = False
        sight = range(self.first_in_sight, self.first_in_sight + self.rows_in_sight)
        in_sight = {index for index in self._changed if index in sight}
        now = in_sight if in_sight else self._changed
        self._changed = self._changed - now
        return sending + [self.slots[index].control for index in sorted(now)]
