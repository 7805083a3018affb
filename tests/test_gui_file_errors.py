"""The Files view says why a file is in error: the reason is its status badge's tooltip and the text of
its Error column; a file healed since shows neither (its row slot, reused, forgets the reason)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import flet as ft
import pytest

from actors.backends.file_errors import verify_failed
from gui.app_context import AppContext, SnackNotifier
from gui.auth import SignedIn
from gui.config import GuiConfig
from gui.downloads import DownloadLinks
from gui.session import GuiSession
from gui.views.clients import ClientsView
from gui.views.files import FilesView
from gui.views.rowlist import Cell
from protocol.roles import Role
from protocol.views import ViewKey
from tests.conftest import run_async

AT = datetime(2025, 3, 1, 14, 1, 5, tzinfo=UTC)
REASON = verify_failed("ab" * 32, "cd" * 32)


class Quiet:
    async def notify(self, message: str, *, error: bool = False, error_code: str | None = None) -> None:
        pass


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppContext]:
    config = GuiConfig("tcp://127.0.0.1:9", tmp_path, DownloadLinks(tmp_path / "links"))
    session = GuiSession(config, Quiet())
    session.user = SignedIn("olga", Role.ADMIN, "token")
    yield AppContext(cast(ft.Page, None), session, cast(SnackNotifier, Quiet()))
    run_async(session.close)


def file(name: str, status: str, error_message: str | None) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "client_id": "c1",
        "name": name,
        "path": f"/home/u/{name}",
        "size": 10,
        "sha256": "ab" * 32,
        "status": status,
        "created_at": AT,
        "modified_at": AT,
        "backup_count": 1,
        "last_backup": AT,
        "last_verified": AT,
        "error_message": error_message,
    }


def shown(view: FilesView, row: int) -> tuple[Any, str, Any]:
    """(the status badge's tooltip, the Error column's text, its tooltip) of a row."""
    columns = view.rows.spec.columns
    status = next(i for i, c in enumerate(columns) if c.title == "Status" and c.cell is Cell.BADGE)
    error = next(i for i, c in enumerate(columns) if c.title == "Error")
    slot = view.rows.slots[row]
    (badge,) = [b for i, b in slot.badges if i == status]
    text = slot.texts[error]
    return badge.tooltip, str(text.value), text.tooltip


def test_a_file_in_error_shows_why_and_a_healed_one_does_not(app: AppContext) -> None:
    async def scenario() -> None:
        view = FilesView(app)
        store = app.session.store
        items = [file("bad.txt", "error", REASON), file("good.txt", "verified", None)]
        await store.set(ViewKey.FILES, {"items": items, "total": 2, "offset": 0, "limit": 100})
        view.render()
        assert shown(view, 0) == (REASON, REASON, REASON)
        assert shown(view, 1) == (None, "", None)
        healed = [file("bad.txt", "uploaded", None), items[1]]
        await store.set(ViewKey.FILES, {"items": healed, "total": 2, "offset": 0, "limit": 100})
        view.render()
        assert shown(view, 0) == (None, "", None)

    run_async(scenario)


def test_a_client_in_error_shows_why_on_its_status_badge(app: AppContext) -> None:
    async def scenario() -> None:
        view = ClientsView(app)
        base = {"ip_address": "10.0.0.1", "platform": "linux", "files_count": 3, "total_size": 1024, "last_seen": AT}
        broken = {**base, "id": "c1", "name": "ann", "status": "error", "error_message": "disk full on the agent"}
        fine = {**base, "id": "c2", "name": "bob", "status": "connected", "error_message": None}
        await app.session.store.set(ViewKey.CLIENTS, {"items": [broken, fine], "total": 2, "offset": 0, "limit": 100})
        view.render()
        status = next(i for i, c in enumerate(view.rows.spec.columns) if c.title == "Status")
        tips = [next(b for i, b in slot.badges if i == status).tooltip for slot in view.rows.slots[:2]]
        assert tips == ["disk full on the agent", None]

    run_async(scenario)
