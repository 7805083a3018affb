"""The Restore view's two right-hand panels: one folder of the chosen backup (browse_snapshot, one
level at a time, with what changed since the run before), and the versions of the file picked there.

Rows are light (a few texts in a clickable box, not a DataTable), built again only when what they
show changed: a folder can hold thousands of entries, paged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import flet as ft

from gui.format import count, human_bytes, when
from gui.views.runs import badge, change_badge, run_badge
from gui.views.widgets import PAGE_SIZES, Pager

FOLDER_PAGE = 100
VERSIONS_PAGE = 10
TOP = "/"  # browse_snapshot's top folder (it holds `/home`, or a drive such as `C:`)
NOT_YET = "Not available yet"
# Operations the Restore view will offer once the catalogue has them; until then their buttons say so.
NOT_YET_OPERATIONS = ("download_archive", "restore_to_agent")
SELECTED = ft.Colors.SECONDARY_CONTAINER

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


def not_yet(label: str, icon: ft.IconData) -> ft.OutlinedButton:
    return ft.OutlinedButton(label, icon=icon, disabled=True, tooltip=NOT_YET)


class FolderBrowser:
    """Breadcrumbs, the folder's entries (folders first, as browse_snapshot lists them) and a pager."""

    def __init__(
        self,
        host: Host,
        load: Callable[[], Awaitable[None]],
        open_entry: Callable[[dict[str, Any]], Coroutine[Any, Any, None]],
        go_up: Callable[[int], Coroutine[Any, Any, None]],
    ) -> None:
        self.host = host
        self.open_entry = open_entry
        self.go_up = go_up
        self.crumbs: list[Crumb] = [Crumb(TOP, TOP)]
        self.pager = Pager(FOLDER_PAGE, load, "restore-folder", PAGE_SIZES)
        self.heading = ft.Text("", weight=ft.FontWeight.W_500)
        self.status = ft.Row([], spacing=8)
        self.crumb_row = ft.Row([], wrap=True, spacing=0)
        # Without download_archive / restore_to_agent in the catalogue there is nothing to call.
        self.archive_button = not_yet("Download as archive", ft.Icons.ARCHIVE_OUTLINED)
        self.restore_button = not_yet("Restore to client", ft.Icons.RESTORE)
        self.entries = ft.Column([], spacing=0, scroll=ft.ScrollMode.AUTO, expand=True)
        self.empty_text = ft.Text("", italic=True)
        self.empty = ft.Semantics(identifier="restore-folder-empty", content=self.empty_text, visible=False)
        self.control = ft.Column(
            [
                ft.Row([ft.Semantics(identifier="restore-backup", content=self.heading), self.status], wrap=True),
                ft.Semantics(identifier="restore-crumbs", container=True, content=self.crumb_row),
                ft.Row([self.archive_button, self.restore_button], wrap=True),
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
        shown = listing if listing and listing["snapshot_id"] == run["id"] and listing["path"] == self.path else None
        signature = (run["id"], run["status"], tuple(self.crumbs), shown is not None, loaded, picked, gates)
        if signature == self._built:
            return
        self._built = signature
        self.status.controls = [run_badge(run["status"])]
        self.crumb_row.controls = [self._crumb(i, c) for i, c in enumerate(self.crumbs)]
        if shown is None:  # asked, not answered yet (or the answer failed: the error line says why)
            self.entries.controls, self.empty.visible = [], False
            self.pager.control.visible = False
            return
        self.pager.update_from(shown["total"])
        self.empty.visible = shown["total"] == 0
        self.empty_text.value = "This folder is empty in this backup." if self.empty.visible else ""
        self.entries.controls = [self._entry(e, picked) for e in shown["items"]]

    def _crumb(self, depth: int, crumb: Crumb) -> ft.Control:
        last = depth == len(self.crumbs) - 1
        button = ft.TextButton(
            crumb.name, on_click=self.host.run_on_click(self.go_up, depth), disabled=last, tooltip=crumb.path
        )
        parts: list[ft.Control] = [button]
        if not last:
            parts.append(ft.Icon(ft.Icons.CHEVRON_RIGHT, size=16))
        return ft.Row(parts, spacing=0, tight=True)

    def _entry(self, entry: dict[str, Any], picked: str | None) -> ft.Control:
        folder = entry["type"] == "dir"
        if folder:
            detail = (
                f"{count(entry['files'], 'file') if entry['files'] is not None else '—'} · {human_bytes(entry['size'])}"
            )
        else:
            detail = f"{human_bytes(entry['size'])} · version {entry['version']} · {when(entry['modified_at'])}"
        line = ft.Row(
            [
                ft.Icon(ft.Icons.FOLDER if folder else ft.Icons.INSERT_DRIVE_FILE_OUTLINED, size=18),
                ft.Text(entry["name"], weight=ft.FontWeight.W_500, expand=True, tooltip=entry["path"]),
                change_badge(entry["change"]),
                ft.Text(detail, size=12),
            ],
            spacing=10,
        )
        selected = not folder and entry["file_id"] == picked
        return pick_row(f"entry-{entry['name']}", line, self.host.run_on_click(self.open_entry, entry), selected)


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
        self.rows = ft.Column([], spacing=4, scroll=ft.ScrollMode.AUTO, expand=True)
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
