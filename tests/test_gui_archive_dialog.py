"""The archive dialog (gui/views/download.py) without a browser: a refusal or a failure keeps it with the
reason, the browser's progress shows while the relay streams, a verified archive closes it, and nothing of
the archive is staged on the GUI's disk. A real backend core streams with the worker's credit rules
(tests/test_archive_relay.py); the "browser" follows the link as the GUI sends the tab to it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

import flet as ft
import pytest

from client.async_connection import AsyncBridgeClient
from gui.app_context import AppContext, SnackNotifier
from gui.auth import SignedIn
from gui.config import GuiConfig
from gui.downloads import DownloadLinks
from gui.session import GuiSession
from gui.views import download
from gui.views.download import ArchiveDialog
from protocol.roles import Role
from tests.conftest import run_async
from tests.contract.harness import Backend
from tests.test_archive_relay import BIG, BROWSER, CAT, NOTES, CoreClient, alpha, snapshot_id

pytestmark = pytest.mark.timeout(30)


class Notes:
    def __init__(self) -> None:
        self.said: list[str] = []

    async def notify(self, message: str, *, error: bool = False, error_code: str | None = None) -> None:
        self.said.append(message)


class Tab:
    """The page as the dialog uses it: who the browser is, and whether the dialog is shown."""

    client_ip = BROWSER.ip
    client_user_agent = BROWSER.user_agent

    def __init__(self) -> None:
        self.dialogs: list[ft.AlertDialog] = []

    def show_dialog(self, dialog: ft.AlertDialog) -> None:
        dialog.open = True
        self.dialogs.append(dialog)

    def pop_dialog(self) -> None:
        self.dialogs.pop().open = False


class Browser:
    """Follows the link the tab is sent to, taking the archive a chunk at a time (slowly: progress shows)."""

    def __init__(self, links: DownloadLinks) -> None:
        self.links = links
        self.received = bytearray()
        self.failed: Exception | None = None
        self.reading: asyncio.Task[None] | None = None

    async def launch_url(self, url: str, web_only_window_name: str | None = None) -> None:
        self.reading = asyncio.ensure_future(self._read(url))

    async def _read(self, url: str) -> None:
        link = self.links.take(url.rsplit("/", 1)[1], BROWSER)
        assert link is not None and link.stream is not None
        try:
            async for chunk in link.stream.body():
                self.received += chunk
                await asyncio.sleep(0.01)
        except Exception as exc:  # the relay ends the response short: a failed download
            self.failed = exc


__all__ = ["alpha"]  # the fixture: a mock backend with a backup of notes, cat and a 3 MB file


def dialog_for(tmp_path: Path, backend: Backend, paths: list[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    links = DownloadLinks(tmp_path / "area")
    session = GuiSession(GuiConfig("tcp://127.0.0.1:9", tmp_path, links), Notes())
    session.user = SignedIn("olga", Role.OPERATOR, "token")
    client = CoreClient(backend)
    session.bridge.async_client = cast(AsyncBridgeClient, client)
    notes, tab, browser = Notes(), Tab(), Browser(links)
    # Flet's launcher and button action need a live Flet session; here the "browser" follows the link.
    monkeypatch.setattr(download.ft, "UrlLauncher", lambda: browser)
    monkeypatch.setattr(download.ft, "OpenUrl", lambda url, target=None: url)
    monkeypatch.setattr(download, "PROGRESS_EVERY_S", 0.005)
    app = AppContext(cast(ft.Page, tab), session, cast(SnackNotifier, notes))
    dialog = ArchiveDialog(app, snapshot_id(backend), paths, "big.bin")
    return dialog, tab, browser, notes, links


def test_the_browser_gets_the_archive_with_progress_and_the_dialog_closes(
    alpha: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog, tab, browser, notes, links = dialog_for(tmp_path, alpha, [BIG], monkeypatch)
    shown: list[str] = []
    show = dialog._on_progress

    def spy(done: int, total: int | None) -> None:
        show(done, total)
        shown.append(dialog.status.value)

    monkeypatch.setattr(dialog, "_on_progress", spy)

    async def scenario() -> None:
        dialog.open()
        assert dialog.task is not None
        await asyncio.wait_for(dialog.task, 20)
        assert browser.failed is None and len(browser.received) == dialog.relayed.total > 3_000_000
        assert not tab.dialogs and notes.said == ["Downloaded big.bin.tar to your browser (sha256 verified)"]
        assert shown and all(" of 2.9 MB" in s for s in shown) and shown[0] != shown[-1]
        assert not [p for p in links.root.rglob("*") if p.is_file()]

    run_async(scenario)


def test_a_refusal_keeps_the_dialog_with_the_reason(
    alpha: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog, tab, browser, notes, links = dialog_for(tmp_path, alpha, [NOTES, "/home/alpha/nope"], monkeypatch)

    async def scenario() -> None:
        dialog.open()
        await asyncio.wait_for(dialog.task, 20)
        assert tab.dialogs == [dialog.dialog] and browser.reading is None and not notes.said
        assert dialog.status.value.startswith("Download failed: ") and dialog.status.value.endswith("[NOT_FOUND]")
        assert not dialog.save_button.visible and dialog.cancel_button.content == "Close" and len(links) == 0

    run_async(scenario)


def test_content_found_damaged_while_streaming_keeps_the_dialog_with_the_reason(
    alpha: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha.corrupt(alpha.files[CAT])  # the mock finds it only while streaming
    dialog, tab, browser, notes, _ = dialog_for(tmp_path, alpha, ["/home/alpha"], monkeypatch)

    async def scenario() -> None:
        dialog.open()
        await asyncio.wait_for(dialog.task, 20)
        assert tab.dialogs == [dialog.dialog] and not notes.said
        assert dialog.status.value.endswith("[FILE_DAMAGED]") and CAT in dialog.status.value
        assert browser.reading is not None
        await browser.reading
        assert browser.failed is not None and len(browser.received) < dialog.relayed.total

    run_async(scenario)


def test_cancelling_ends_the_browsers_download_short(
    alpha: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog, tab, browser, notes, _ = dialog_for(tmp_path, alpha, [BIG], monkeypatch)

    async def scenario() -> None:
        dialog.open()
        while not browser.received:
            await asyncio.sleep(0.005)
        await dialog.cancel(cast(Any, None))
        assert not tab.dialogs and browser.reading is not None
        await browser.reading
        assert browser.failed is not None and len(browser.received) < dialog.relayed.total
        assert (await dialog.relayed.done)["error_code"] == "CANCELLED" and not notes.said

    run_async(scenario)
