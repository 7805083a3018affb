"""What a list shows, as data: its columns and row actions (``ListSpec``), and what one row shows
for one item (``row_model``): two equal models draw the same row, so a row is redrawn only when
its model changes. The controls that draw them are in gui/views/rowlist.py."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import Enum
from typing import Any

import flet as ft

from gui.auth import Gate

Item = dict[str, Any]
Handler = Callable[[Item], Coroutine[Any, Any, None]]
Run = Callable[[Handler, Item], None]  # runs a row action as a task the session owns
GateFor = Callable[[str, str], Gate]  # (operation, label) -> may the signed-in user run it now

MENU_WIDTH = 48
CELL_GAP = 12


class Cell(Enum):
    TEXT = "text"
    NAME = "name"  # bold, and its own accessibility node: read (and found by tests) as text of its own
    BADGE = "badge"  # a status, in its colour
    DETAIL = "detail"  # small, the whole text in its tooltip (paths)


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    width: int
    text: Callable[[Item], str]
    cell: Cell = Cell.TEXT
    sort: str | None = None  # the list's sort field; None: not sortable
    numeric: bool = False
    tooltip: Callable[[Item], str | None] | None = None  # a badge's, e.g. why a file is in error


@dataclass(frozen=True, slots=True)
class RowAction:
    """One entry of a row's menu: runs ``handler(item)``, gated by ``op``'s role and the bridge."""

    op: str
    text: str  # the entry's text: "Delete"
    icon: ft.IconData
    verb: str  # its identifier is "<verb>-<list noun>-<row ref>": delete-client-bob
    label: Callable[[Item], str]  # what it does to this item, in words: "Delete bob"
    handler: Handler
    unavailable: Callable[[Item], str | None] | None = None  # the view's own reason it cannot run now


@dataclass(frozen=True, slots=True)
class ListSpec:
    noun: str  # in identifiers: actions-client-<ref>, delete-client-<ref>
    columns: tuple[Column, ...]
    actions: tuple[RowAction, ...]
    ref: Callable[[Item], str]  # what names a row in identifiers (a client's name, a file's id)
    title: Callable[[Item], str]  # what names it to the operator ("Actions for bob")
    key: str = "id"
    row_name: str = ""  # a row's own identifier is "<row_name>-<ref>"; by default "<noun>-row"

    @property
    def width(self) -> int:
        return MENU_WIDTH + sum(c.width for c in self.columns) + CELL_GAP * len(self.columns)


@dataclass(frozen=True, slots=True)
class Entry:
    """A menu entry as shown for one item."""

    identifier: str
    disabled: bool
    tooltip: str | None  # why it is disabled; none while it may be used


@dataclass(frozen=True, slots=True)
class RowModel:
    """Everything one row shows for one item (two equal models draw the same row)."""

    key: Any
    identifier: str
    menu: str
    menu_tooltip: str
    cells: tuple[str, ...]
    tooltips: tuple[str | None, ...]  # per column: what hovering its cell says (badges; DETAIL cells say their text)
    entries: tuple[Entry, ...]


def row_model(spec: ListSpec, item: Item, gate: GateFor) -> RowModel:
    ref = spec.ref(item)
    entries = []
    for action in spec.actions:
        label = action.label(item)
        allowed = gate(action.op, label)
        reason = action.unavailable(item) if action.unavailable is not None else None
        if not allowed.allowed:
            entries.append(Entry(f"{action.verb}-{spec.noun}-{ref}", True, allowed.tooltip))
        elif reason is not None:
            entries.append(Entry(f"{action.verb}-{spec.noun}-{ref}", True, f"{label} · {reason}"))
        else:
            entries.append(Entry(f"{action.verb}-{spec.noun}-{ref}", False, None))
    return RowModel(
        key=item[spec.key],
        identifier=f"{spec.row_name or spec.noun + '-row'}-{ref}",
        menu=f"actions-{spec.noun}-{ref}",
        menu_tooltip=f"Actions for {spec.title(item)}",
        cells=tuple(c.text(item) for c in spec.columns),
        tooltips=tuple(c.tooltip(item) if c.tooltip is not None else None for c in spec.columns),
        entries=tuple(entries),
    )
