"""What one event costs a tab, counted rather than timed (issue 11, many operators at once).

A real Flet session whose connection records every message it would send to the browser (encoded
as flet-web encodes them, so Flet's diff keeps its snapshots as in production) hosts the console's
views; the facade's reads are answered in process. An event must send one patch of one row,
a burst of events one patch of the latest state, a hidden view nothing at all, and a tab that
does not keep up nothing until it does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import flet as ft
import msgpack
import pytest
from flet.controls.base_control import BaseControl
from flet.messaging.connection import Connection
from flet.messaging.protocol import Message, MessageAction, configure_encode_object_for_msgpack
from flet.messaging.session import Session
from flet.pubsub.pubsub_hub import PubSubHub
from flet_web.fastapi.flet_app import FletApp

from gui.app_context import AppContext, SnackNotifier
from gui.auth import SignedIn
from gui.config import GuiConfig
from gui.downloads import DownloadLinks
from gui.frames import MAX_BACKLOG, send_backlog
from gui.session import GuiSession
from gui.views.clients import ClientsView
from gui.views.dashboard import DashboardView
from protocol.events import CLIENT_CHANGED
from protocol.responses import Reply, as_reply, success
from protocol.roles import Role
from protocol.views import ViewKey
from tests.conftest import run_async

pytestmark = pytest.mark.timeout(60)

ENCODE = configure_encode_object_for_msgpack(BaseControl)


class RecordingConnection(Connection):
    """Flet's side of a browser that takes everything at once: each message as flet-web encodes it."""

    def __init__(self) -> None:
        super().__init__()
        self.pubsubhub = PubSubHub()
        self.sent: list[tuple[Message, bytes]] = []

    def send_message(self, message: Message) -> None:
        self.sent.append((message, msgpack.packb([message.action, message.body], default=ENCODE)))

    def patches(self) -> list[tuple[int, bytes]]:
        return [(m.body.id, data) for m, data in self.sent if m.action == MessageAction.PATCH_CONTROL]


class Quiet:
    async def notify(self, message: str, *, error: bool = False, error_code: str | None = None) -> None:
        pass


def client(i: int, name: str | None = None) -> dict[str, Any]:
    return {
        "id": f"c{i:03d}",
        "name": name or f"client-{i:03d}",
        "status": "connected" if i % 2 else "disconnected",
        "ip_address": f"10.0.0.{i}",
        "platform": "linux",
        "files_count": i * 10,
        "total_size": i * 1024,
        "last_seen": None,
    }


class World:
    """The backend's clients, as get_clients answers them; counts the reads."""

    def __init__(self, count: int = 100) -> None:
        self.clients = [client(i) for i in range(count)]
        self.reads = 0

    async def get_clients(
        self,
        offset: int = 0,
        limit: int = 100,
        search: str | None = None,
        status: str | None = None,
        sort: str = "name",
        *,
        timeout: float | None = None,
    ) -> Reply:
        self.reads += 1
        items = self.clients[offset : offset + limit]
        return as_reply(success({"items": [dict(c) for c in items], "total": len(self.clients)}, mode="mock"))

    def rename(self, index: int, name: str) -> dict[str, Any]:
        self.clients[index] = {**self.clients[index], "name": name}
        return {
            "topic": CLIENT_CHANGED,
            "data": {"client_id": self.clients[index]["id"], "client": self.clients[index]},
        }


class Tab:
    """A signed-in session on a Flet page that records what it sends, with the Clients view built."""

    def __init__(self, tmp_path: Path, world: World) -> None:
        self.world = world
        self.connection = RecordingConnection()
        self.flet = Session(self.connection)
        config = GuiConfig("tcp://127.0.0.1:9", tmp_path, DownloadLinks(tmp_path / "links"))
        self.session = GuiSession(config, Quiet())
        self.session.user = SignedIn("olga", Role.ADMIN, "token")
        self.session.bridge.get_clients_async = world.get_clients  # type: ignore[method-assign]
        self.app = AppContext(self.flet.page, self.session, cast(SnackNotifier, Quiet()))
        self.clients = ClientsView(self.app)
        msgpack.packb(self.flet.get_page_patch(), default=ENCODE)  # what the browser gets when it registers
        self.flet.page.controls = [self.clients.root]
        self.flet.page.update()

    async def settled(self) -> None:
        """Until no reload is scheduled or running, no frame is due or on its way and no row is left
        for a later frame."""
        ctx, frames, rows = self.session.ctx, self.session.frames, self.clients.rows
        await wait_for(lambda: ctx.idle and frames.idle and not rows.pending, "the tab to settle")

    def row_index(self, name: str) -> int:
        shown = [slot.model.cells[0] if slot.model else None for slot in self.clients.rows.slots]
        return shown.index(name)


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


@pytest.fixture
def world() -> World:
    return World()


def test_one_change_sends_one_patch_of_that_row_alone(tmp_path: Path, world: World) -> None:
    async def scenario() -> None:
        tab = Tab(tmp_path, world)
        await tab.clients.show()
        await tab.settled()
        assert tab.clients.rows.shown == 100 and world.reads == 1
        before = len(tab.connection.patches())

        await tab.session.live.on_delivery(world.rename(5, "renamed-005"))
        await tab.settled()  # the reload that settles order and totals brings nothing new
        patches = tab.connection.patches()[before:]
        row = tab.clients.rows.slots[5].control
        assert world.reads == 2
        assert [target for target, _ in patches] == [row._i]  # one message: the row, by itself
        assert b"renamed-005" in patches[0][1] and b"client-004" not in patches[0][1]
        assert tab.row_index("renamed-005") == 5
        await tab.session.close()

    run_async(scenario)


def test_a_burst_of_changes_sends_the_latest_state_once(tmp_path: Path, world: World) -> None:
    async def scenario() -> None:
        tab = Tab(tmp_path, world)
        await tab.clients.show()
        await tab.settled()
        before = len(tab.connection.patches())
        for k in range(5):  # in one turn of the loop: nothing goes out between them
            await tab.session.live.on_delivery(world.rename(7, f"burst-{k}"))
        await tab.settled()
        patches = tab.connection.patches()[before:]
        assert len(patches) == 1 and b"burst-4" in patches[0][1]
        assert not any(f"burst-{k}".encode() in data for _, data in patches for k in range(4))
        await tab.session.close()

    run_async(scenario)


def test_a_load_that_changes_nothing_renders_and_sends_nothing(tmp_path: Path, world: World) -> None:
    async def scenario() -> None:
        tab = Tab(tmp_path, world)
        await tab.clients.show()
        await tab.settled()
        notified: list[str] = []
        tab.session.store.subscribe(ViewKey.CLIENTS, lambda key, value: notified.append(key))
        sent, drawn = len(tab.connection.sent), tab.session.frames.drawn
        await tab.session.ctx.load_data_operation(ViewKey.CLIENTS)  # loading on, the same value, loading off
        await tab.settled()
        assert world.reads == 2 and notified == [] and tab.session.frames.drawn == drawn
        assert len(tab.connection.sent) == sent
        await tab.session.close()

    run_async(scenario)


def test_a_hidden_view_loads_and_sends_nothing_until_it_is_shown(tmp_path: Path, world: World) -> None:
    async def scenario() -> None:
        tab = Tab(tmp_path, world)
        dashboard = DashboardView(tab.app)  # claims its keys; shown nowhere here
        await tab.clients.show()
        await tab.settled()
        await tab.clients.hide()
        reads, sent = world.reads, len(tab.connection.sent)
        for k in range(3):
            await tab.session.live.on_delivery(world.rename(3, f"unseen-{k}"))
        ctx = tab.session.ctx
        assert ctx.idle and tab.session.frames.idle  # no reload scheduled, no frame due: nothing will follow
        assert world.reads == reads and len(tab.connection.sent) == sent
        assert ViewKey.CLIENTS in ctx.stale and ViewKey.STATUS in ctx.stale  # the dashboard's, too
        assert not dashboard.visible
        await tab.clients.show()
        await tab.settled()
        assert world.reads == reads + 1 and ViewKey.CLIENTS not in ctx.stale and ViewKey.STATUS in ctx.stale
        assert tab.row_index("unseen-2") == 3
        await tab.session.close()

    run_async(scenario)


def test_frames_wait_for_a_tab_that_does_not_keep_up_then_send_the_latest_state(tmp_path: Path, world: World) -> None:
    async def scenario() -> None:
        tab = Tab(tmp_path, world)
        await tab.clients.show()
        await tab.settled()
        frames = tab.session.frames
        queued: dict[str, int | None] = {"n": MAX_BACKLOG + 1}
        frames.backlog = lambda: queued["n"]
        before = len(tab.connection.patches())

        async def held_back() -> None:
            held = frames.held
            await wait_for(lambda: frames.held > held, "a frame held back")

        for k in range(3):
            await tab.session.live.on_delivery(world.rename(9, f"slow-{k}"))
            await held_back()
        queued["n"] = None  # the tab went away meanwhile: still nothing
        await held_back()
        assert len(tab.connection.patches()) == before
        queued["n"] = 0
        await tab.settled()
        patches = tab.connection.patches()[before:]
        assert len(patches) == 1 and b"slow-2" in patches[0][1] and b"slow-1" not in patches[0][1]
        await tab.session.close()

    run_async(scenario)


def test_the_backlog_is_flet_webs_send_queue() -> None:
    async def scenario() -> None:
        app = FletApp(asyncio.get_running_loop(), None, lambda page: None, None)
        page = cast(ft.Page, SimpleNamespace(session=SimpleNamespace(connection=app)))
        app._FletApp__send_queue = asyncio.Queue()  # as FletApp.handle sets it up
        assert send_backlog(page) == 0
        app.send_message(Message(MessageAction.PATCH_CONTROL, {"id": 1, "patch": []}))
        app.send_message(Message(MessageAction.PATCH_CONTROL, {"id": 1, "patch": []}))
        assert send_backlog(page) == 2
        gone = cast(ft.Page, SimpleNamespace(session=SimpleNamespace(connection=None)))
        assert send_backlog(gone) is None

    run_async(scenario)


def test_a_dashboard_poll_sends_its_new_point_and_an_activity_leaves_the_chart_alone(
    tmp_path: Path, world: World
) -> None:
    gib = 1024**3

    def system(cpu: float) -> dict[str, Any]:
        memory = {"total": 8 * gib, "available": 6 * gib, "used": gib, "percent": 25.0}
        return {"cpu_percent": cpu, "cpu_count": 2, "memory": memory, "disk": {**memory, "free": gib}}

    async def scenario() -> None:
        tab = Tab(tmp_path, world)
        dashboard = DashboardView(tab.app)
        tab.flet.page.controls = [dashboard.root]
        tab.flet.page.update()
        dashboard.visible = True
        store = tab.session.store
        for k in range(60):  # two minutes of samples on the chart
            await store.set(ViewKey.SYSTEM, system(float(k)))
            tab.session.frames.draw()
        assert len(dashboard.cpu_series.points) == 60
        before = len(tab.connection.patches())
        await store.set(ViewKey.SYSTEM, system(99.5))
        tab.session.frames.draw()
        chart = [data for target, data in tab.connection.patches()[before:] if target == dashboard.chart._i]
        assert len(chart) == 1 and len(chart[0]) < 2_000  # the new points and the axis, not 61 points each
        assert len(dashboard.cpu_series.points) == 61 and dashboard.cpu_series.points[-1].y == 99.5
        before = len(tab.connection.patches())
        await store.set(ViewKey.ACTIVITY, [{"timestamp": None, "level": "INFO", "message": "renamed bob"}])
        tab.session.frames.draw()
        patches = tab.connection.patches()[before:]
        assert [target for target, _ in patches] == [dashboard.root._i] and b"renamed bob" in patches[0][1]
        assert len(patches[0][1]) < 1_500  # the lines' texts; no chart, no rebuilt lines
        await tab.session.close()

    run_async(scenario)
