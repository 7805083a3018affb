"""The Restore view's two right-hand panels: one folder of the chosen backup (browse_snapshot, one
level at a time, with what changed since the run before, folders and files to select for an archive
or a restore to the client), and the versions of the file picked there.

A folder's entries are row slots in a lazily built list (gui/views/restore_entries.py): a folder
can hold thousands of entries, paged, and another folder only patches the values of the rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import flet as ft

from gui.format import count, human_bytes, when
from gui.views.restore_entries import SELECTED, EntryRows, IsolatedColumn
from gui.views.runs import badge, run_badge
from gui.views.widgets import PAGE_SIZES, Pager

FOLDER_PAGE = 100
VERSIONS_PAGE = 10
TOP = "/"  # browse_snapshot's top folder (it holds `/home`, or a drive such as `C:`)

T = TypeVar("T")
Click = Callable[[ft.Event[Any]], None]


class Host(Protocol):
    """What the panels need of their view: gated actions, click handlers, and a way to redraw."""

    def action(
        self,
        icon: ft.IconData,
        op: str,
        label: str,
        identifier: str,
        handler: Callable[[T], Coroutine[Any, Any, None]],
        item: T,
        *,
        disabled: bool = False,
    ) -> ft.Control: ...

    def run_on_click(self, handler: Callable[[T], Coroutine[Any, Any, None]], item: T) -> Click: ...

    def spawn_action(self, handler: Callable[[T], Coroutine[Any, Any, None]], item: T) -> None: ...

    def redraw(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Crumb:
    name: str
    path: str


def pick_row(identifier: str, content: ft.Control, on_click: Click, selected: bool = False) -> ft.Control:
    """A clickable light row; ``selected`` shades it."""
    box = ft.Container(
        content,
        padding=ft.Padding.symmetric(horizontal=8, vertical=6),
        border_radius=6,
        ink=True,
        on_click=on_click,
        bgcolor=SELECTED if selected else None,
    )
    return ft.Semantics(identifier=identifier, selected=selected, content=box)


class FolderBrowser:
    """Breadcrumbs, what to take (the selection, else the folder shown) with the archive and restore
    buttons, the folder's entries (folders first, as browse_snapshot lists them) and a pager."""

    def __init__(
        self,
        host: Host,
        load: Callable[[], Awaitable[None]],
        open_entry: Callable[[dict[str, Any]], Coroutine[Any, Any, None]],
        go_up: Callable[[int], Coroutine[Any, Any, None]],
        archive: Callable[[None], Coroutine[Any, Any, None]],
        restore: Callable[[None], Coroutine[Any, Any, None]],
    ) -> None:
        self.host = host
        self.open_entry = open_entry
        self.go_up = go_up
        self.crumbs: list[Crumb] = [Crumb(TOP, TOP)]
        self.selection: dict[str, dict[str, Any]] = {}  # path -> entry, across the folders of one backup
        self._picks = 0  # counts selection changes (the rows show their boxes)
        self.pager = Pager(FOLDER_PAGE, load, "restore-folder", PAGE_SIZES)
        self.heading = ft.Text("", weight=ft.FontWeight.W_500)
        self.status = ft.Row([], spacing=8)
        self.crumb_row = ft.Row([], wrap=True, spacing=0)
        self.archive_button = ft.OutlinedButton(
            "Download as archive", icon=ft.Icons.ARCHIVE_OUTLINED, on_click=host.run_on_click(archive, None)
        )
        self.restore_button = ft.OutlinedButton(
            "Restore to client…", icon=ft.Icons.RESTORE, on_click=host.run_on_click(restore, None)
        )
        self.target_text = ft.Text("", size=12, italic=True)
        self.clear_button = ft.TextButton("Clear selection", on_click=host.run_on_click(self._clear, None))
        self.rows = EntryRows(self._opened, self._toggled)
        self.entries = self.rows.control
        self.empty_text = ft.Text("", italic=True)
        self.empty = ft.Semantics(identifier="restore-folder-empty", content=self.empty_text, visible=False)
        self.control = ft.Column(
            [
                ft.Row([ft.Semantics(identifier="restore-backup", content=self.heading), self.status], wrap=True),
                ft.Semantics(identifier="restore-crumbs", container=True, content=self.crumb_row),
                ft.Row(
                    [
                        self.archive_button,
                        self.restore_button,
                        ft.Semantics(identifier="restore-target", content=self.target_text),
                        self.clear_button,
                    ],
                    wrap=True,
                    vertical_alignment=ft.CrossAxisAlignment.CENTER,
                ),
                self.empty,
                self.entries,
                self.pager.control,
            ],
            expand=True,
            spacing=6,
        )
        self._built: Hashable = None

    @property
    def path(self) -> str:
        return self.crumbs[-1].path

    def reset(self) -> None:
        """Back to the top folder."""
        self.crumbs = [Crumb(TOP, TOP)]
        self.pager.reset()

    def enter(self, folder: dict[str, Any]) -> None:
        self.crumbs.append(Crumb(folder["name"], folder["path"]))
        self.pager.reset()

    def cut(self, depth: int) -> None:
        """Back up to the crumb at ``depth`` (0: the top)."""
        del self.crumbs[depth + 1 :]
        self.pager.reset()

    def deselect(self) -> None:
        """Forget the selection (another backup: its paths are another tree's)."""
        self.selection = {}
        self._picks += 1

    @property
    def targets(self) -> list[str]:
        """What the archive and restore buttons take: the selection, else the folder shown."""
        return sorted(self.selection) or [self.path]

    @property
    def target_name(self) -> str:
        if self.selection:
            return count(len(self.selection), "selected item")
        return "the whole backup" if self.path == TOP else self.path

    def _opened(self, entry: dict[str, Any]) -> None:
        self.host.spawn_action(self.open_entry, entry)

    def _toggled(self, entry: dict[str, Any]) -> None:
        self.host.spawn_action(self._toggle, entry)

    async def _toggle(self, entry: dict[str, Any]) -> None:
        if self.selection.pop(entry["path"], None) is None:
            self.selection[entry["path"]] = entry
        self._picks += 1
        self.host.redraw()

    async def _clear(self, _: None) -> None:
        self.deselect()
        self.host.redraw()

    def render(
        self,
        run: dict[str, Any] | None,
        listing: dict[str, Any] | None,
        loaded: int,
        picked: str | None,
        gates: Hashable,
    ) -> None:
        """Show ``listing`` (a browse_snapshot reply's data, the store's ``loaded``-th value) if it is of
        ``run`` and of the folder asked for."""
        self.control.visible = run is not None
        if run is None:
            return
        self.heading.value = f"Backup of {when(run['started_at'])}"
        self.target_text.value = f"Takes {self.target_name}"
        self.clear_button.visible = bool(self.selection)
        shown = listing if listing and listing["snapshot_id"] == run["id"] and listing["path"] == self.path else None
        signature = (
            run["id"],
            run["status"],
            tuple(self.crumbs),
            shown is not None,
            loaded,
            picked,
            self._picks,
            gates,
        )
        if signature == self._built:
            return
        self._built = signature
        self.status.controls = [run_badge(run["status"])]
        self.crumb_row.controls = [self._crumb(i, c) for i, c in enumerate(self.crumbs)]
        if shown is None:  # asked, not answered yet (or the answer failed: the error line says why)
            self.rows.show(None, (), picked)
            self.empty.visible = False
            self.pager.control.visible = False
            return
        self.pager.update_from(shown["total"])
        self.empty.visible = shown["total"] == 0
        self.empty_text.value = "This folder is empty in this backup." if self.empty.visible else ""
        self.rows.show(shown["items"], list(self.selection), picked, (run["id"], self.path, shown["offset"]))

    def _crumb(self, depth: int, crumb: Crumb) -> ft.Control:
        last = depth == len(self.crumbs) - 1
        button = ft.TextButton(
            crumb.name, on_click=self.host.run_on_click(self.go_up, depth), disabled=last, tooltip=crumb.path
        )
        parts: list[ft.Control] = [button]
        if not last:
            parts.append(ft.Icon(ft.Icons.CHEVRON_RIGHT, size=16))
        return ft.Row(parts, spacing=0, tight=True)


class VersionsPanel:
    """Every retained version of the file picked, newest first, each with its download; the one the
    chosen backup holds is marked."""

    def __init__(
        self,
        host: Host,
        download: Callable[[dict[str, Any]], Coroutine[Any, Any, None]],
        close: Callable[[None], Coroutine[Any, Any, None]],
    ) -> None:
        self.host = host
        self.download = download
        self.file: dict[str, Any] | None = None  # the folder entry picked
        self.pager = Pager(VERSIONS_PAGE, self._turned, "restore-versions")
        self.heading = ft.Text("", weight=ft.FontWeight.W_500, size=16)
        self.path = ft.Text("", size=12, selectable=True)
        self.rows = IsolatedColumn([], spacing=4, scroll=ft.ScrollMode.AUTO, expand=True)
        close_button = ft.IconButton(ft.Icons.CLOSE, tooltip="Close versions", on_click=host.run_on_click(close, None))
        self.control = ft.Container(
            ft.Column(
                [
                    ft.Row(
                        [ft.Semantics(identifier="restore-versions-of", content=self.heading), close_button],
                        alignment=ft.MainAxisAlignment.SPACE_BETWEEN,
                    ),
                    self.path,
                    self.rows,
                    self.pager.control,
                ],
                expand=True,
                spacing=6,
            ),
            width=380,
            visible=False,
        )
        self._built: Hashable = None

    @property
    def file_id(self) -> str | None:
        return self.file["file_id"] if self.file else None

    def open(self, entry: dict[str, Any]) -> None:
        self.file = entry
        self.pager.reset()

    def close(self) -> None:
        self.file = None

    async def _turned(self) -> None:
        self._built = None
        self.host.redraw()

    def render(self, data: dict[str, Any] | None, loaded: int, held: int | None, gates: Hashable) -> None:
        """``data``: get_file_versions' reply data (the store's ``loaded``-th value); ``held``: the version
        the chosen backup holds."""
        self.control.visible = self.file is not None
        if self.file is None:
            return
        self.heading.value = f"Versions of {self.file['name']}"
        self.path.value = self.file["path"]
        shown = data if data and data["file"]["id"] == self.file_id else None
        signature = (self.file_id, shown is not None, loaded, held, self.pager.offset, gates)
        if signature == self._built:
            return
        self._built = signature
        if shown is None:
            self.rows.controls, self.pager.control.visible = [ft.Text("Loading versions…", italic=True)], False
            return
        items = shown["items"]
        self.pager.update_from(len(items))
        page = items[self.pager.offset : self.pager.offset + self.pager.page_size]
        self.rows.controls = [self._version(v, held) for v in page] or [
            ft.Text("No version of this file is retained.", italic=True)
        ]

    def _version(self, version: dict[str, Any], held: int | None) -> ft.Control:
        number = version["version"]
        title: list[ft.Control] = [ft.Text(f"Version {number}", weight=ft.FontWeight.W_500)]
        if number == held:
            title.append(badge("in this backup", ft.Colors.GREEN_700))
        lines = ft.Column(
            [
                ft.Row(title, spacing=8),
                ft.Text(f"backed up {when(version['backed_up_at'])} · {human_bytes(version['size'])}", size=12),
                ft.Text(f"modified {when(version['modified_at'])}", size=12),
                ft.Text(f"sha256 {version['sha256'][:16]}…", size=12, tooltip=version["sha256"]),
            ],
            spacing=1,
            expand=True,
        )
        download = self.host.action(
            ft.Icons.DOWNLOAD,
            "download_file",
            f"Download version {number}",
            f"download-version-{number}",
            self.download,
            version,
        )
        box = ft.Container(
            ft.Row([lines, download], vertical_alignment=ft.CrossAxisAlignment.START),
            padding=ft.Padding.symmetric(horizontal=8, vertical=6),
            border_radius=6,
            bgcolor=SELECTED if number == held else None,
        )
        return ft.Semantics(identifier=f"version-{number}", content=box)
