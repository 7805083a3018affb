"""The entries of the folder the Restore view shows, drawn by row slots (like gui/views/rowlist.py).

A folder's page of 100 entries built anew was some 1,200 new controls: Flet built, configured
and diffed each of them in Python, sent them all (80 KB), and Flutter built, laid out and put in
the accessibility tree every row, in sight or not; a folder took over a second to show after a
click on the shared 2-core machine. Here:

* a row is a *slot*, built once: another folder sets new values into the slots, so its patch is
  the values that changed (names, details, identifiers), never new controls;
* the slots sit in a ListView with a fixed item extent, which Flutter builds lazily: only the
  rows in sight, and a little around them, are laid out, drawn and in the accessibility tree;
* that ListView is isolated: an update of the view around it skips the rows, and the view sends
  the rows that changed itself (``take_changes``).

A row keeps its identifiers (``entry-<name>`` to open it, ``select-<name>`` for its checkbox), and
acts on the entry it shows when clicked.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import flet as ft
import structlog

from gui.format import count, human_bytes, when
from gui.views.runs import CHANGE_COLORS

log = structlog.get_logger()

Entry = dict[str, Any]
Act = Callable[[Entry], None]  # runs what a click does to an entry (as a task the session owns)

ENTRY_HEIGHT = 52  # every row has this height (two lines): the ListView lays rows out without measuring
ROWS_ONE_BY_ONE = 20  # more changed rows than this (another folder): the rows go as one patch
SELECTED = ft.Colors.SECONDARY_CONTAINER


def detail(entry: Entry) -> str:
    if entry["type"] == "dir":
        files = count(entry["files"], "file") if entry["files"] is not None else "—"
        return f"{files} · {human_bytes(entry['size'])}"
    return f"{human_bytes(entry['size'])} · version {entry['version']} · {when(entry['modified_at'])}"


@dataclass(frozen=True, slots=True)
class EntryModel:
    """Everything one row shows for one entry (two equal models draw the same row)."""

    name: str
    path: str
    folder: bool
    detail: str
    change: str | None
    checked: bool
    picked: bool  # the file whose versions are shown


def entry_model(entry: Entry, checked: bool, picked: str | None) -> EntryModel:
    folder = entry["type"] == "dir"
    return EntryModel(
        entry["name"],
        entry["path"],
        folder,
        detail(entry),
        entry["change"],
        checked,
        not folder and entry["file_id"] == picked,
    )


class IsolatedColumn(ft.Column):
    """A column of rows that are replaced, never changed in place: an update of the view around it
    sends a new list of rows (Flet diffs the list), but does not walk rows that stayed."""

    def is_isolated(self) -> bool:
        return True


class RowsBody(ft.ListView):
    """Isolated: an update of anything around it does not walk the rows (their owner sends what
    changed), and Flutter builds only the rows in sight."""

    def is_isolated(self) -> bool:
        return True


class EntrySlot:
    """One row: a checkbox to select the entry, and the entry (icon, name over detail, what changed)
    to click: a folder opens, a file shows its versions."""

    def __init__(self, on_open: Act, on_toggle: Act) -> None:
        self.entry: Entry | None = None
        self.model: EntryModel | None = None
        self._on_open = on_open
        self._on_toggle = on_toggle
        self.icon = ft.Icon(ft.Icons.FOLDER, size=18)
        self.name = ft.Text("", weight=ft.FontWeight.W_500, no_wrap=True, overflow=ft.TextOverflow.ELLIPSIS)
        self.detail = ft.Text("", size=12, no_wrap=True, overflow=ft.TextOverflow.ELLIPSIS)
        self.change = ft.Text("", size=12, weight=ft.FontWeight.W_500)
        self.check = ft.Checkbox(value=False, on_change=self._toggled)
        self.select = ft.Semantics(content=self.check)
        line = ft.Row(
            [self.icon, ft.Column([self.name, self.detail], spacing=0, expand=True), self.change],
            spacing=10,
        )
        self.box = ft.Container(
            line,
            padding=ft.Padding.symmetric(horizontal=8, vertical=6),
            border_radius=6,
            ink=True,
            on_click=self._clicked,
        )
        self.pick = ft.Semantics(content=self.box)
        self.control = ft.Row(
            [self.select, ft.Container(self.pick, expand=True)],
            spacing=0,
            height=ENTRY_HEIGHT,
            vertical_alignment=ft.CrossAxisAlignment.CENTER,
        )

    def show(self, entry: Entry, model: EntryModel) -> bool:
        """Show ``entry``; False when the row already showed exactly that."""
        self.entry = entry
        if model == self.model:
            return False
        self.model = model
        self.select.identifier = f"select-{model.name}"
        self.check.value = model.checked
        self.check.tooltip = f"Select {model.name} for an archive or a restore"
        self.pick.identifier = f"entry-{model.name}"
        self.pick.selected = model.picked
        self.box.bgcolor = SELECTED if model.picked else None
        self.icon.icon = ft.Icons.FOLDER if model.folder else ft.Icons.INSERT_DRIVE_FILE_OUTLINED
        self.name.value, self.name.tooltip = model.name, model.path
        self.detail.value = model.detail
        self.change.value = model.change or ""  # nothing while the run is still running
        self.change.color = CHANGE_COLORS.get(model.change or "", ft.Colors.GREY_600)
        return True

    def _clicked(self, e: ft.Event[ft.Container]) -> None:
        # What changes is sent by the task the click starts: no update of the whole page after it.
        ft.context.mark_update_called()
        if self.entry is not None:
            self._on_open(self.entry)

    def _toggled(self, e: ft.Event[ft.Checkbox]) -> None:
        ft.context.mark_update_called()
        if self.entry is not None:
            self._on_toggle(self.entry)


class EntryRows:
    """A folder's page of entries. ``show`` puts a page in (``None``: none, the folder is loading or
    failed); ``take_changes`` says what to send."""

    def __init__(self, on_open: Act, on_toggle: Act) -> None:
        self._on_open = on_open
        self._on_toggle = on_toggle
        self.slots: list[EntrySlot] = []
        self.shown = 0  # slots in use: the others are hidden
        self._changed: dict[int, EntrySlot] = {}  # by id(): slots showing something new since last sent
        self._resized = False
        self.control = RowsBody(controls=[], item_extent=ENTRY_HEIGHT, expand=True, visible=False)
        self.listing: Hashable = None  # which folder's page the rows show
        self.scroll_pending = False  # another one came: the list goes back to its top (``scroll_top``)

    def show(
        self, entries: Sequence[Entry] | None, selection: Sequence[str], picked: str | None, listing: Hashable = None
    ) -> None:
        """Show ``entries``, the page ``listing`` names (another one starts at the top of the list)."""
        if entries is None:
            if self.control.visible:
                self.control.visible, self._resized = False, True
            return
        if listing != self.listing:
            self.listing, self.scroll_pending = listing, True
        while len(self.slots) < len(entries):
            self.slots.append(EntrySlot(self._on_open, self._on_toggle))
            self.control.controls.append(self.slots[-1].control)
            self._resized = True
        chosen = set(selection)
        for slot, entry in zip(self.slots, entries, strict=False):
            if slot.show(entry, entry_model(entry, entry["path"] in chosen, picked)):
                self._changed[id(slot)] = slot
        if len(entries) != self.shown or not self.control.visible:
            self._resized = True  # the ListView counts its visible rows when it is built
            for index, slot in enumerate(self.slots):
                slot.control.visible = index < len(entries)
            self.shown = len(entries)
            self.control.visible = True

    async def scroll_top(self) -> None:
        """Back to the first row (the slots, reused, keep the scroll offset of the page before)."""
        self.scroll_pending = False
        try:
            await self.control.scroll_to(offset=0)
        except Exception:  # a closed page or a detached list: nothing to scroll
            log.debug("gui.restore_scroll_skipped")

    def take_changes(self) -> list[ft.Control]:
        """What to send since the last call: the rows showing something new one by one, or the
        whole list when rows came or went, it was hidden or shown, or most rows changed."""
        changed, resized = list(self._changed.values()), self._resized
        self._changed, self._resized = {}, False
        if resized or len(changed) > ROWS_ONE_BY_ONE:
            return [self.control]
        return [slot.control for slot in changed]
