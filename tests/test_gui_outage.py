"""The console under an outage of the real server, without a browser or a stack: the bridge state it
follows, the banner and pill texts, the write gates, where shown data came from, and the views' reaction.

The bridge's side (what it answers and publishes) is fed in directly as replies and events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import flet as ft
import pytest

from gui.app_context import AppContext, SnackNotifier
from gui.auth import SignedIn, gate
from gui.config import GuiConfig
from gui.console import Console, OutageBanner
from gui.downloads import DownloadLinks
from gui.live import LiveUpdates
from gui.operations import DEBOUNCE_S, ViewContext
from gui.outage import (
    MOCK_LABEL,
    BridgeState,
    Shown,
    Tone,
    banner_text,
    mock_label,
    oldest_stale,
    shown_after,
    source_pill,
)
from gui.session import GuiSession
from gui.state import StateStore
from gui.views.clients import ClientsView
from gui.views.dashboard import STALE_OPACITY, DashboardView
from gui.views.rowlist import EntryControls
from protocol import responses
from protocol.catalogue import CATALOGUE
from protocol.errors import ErrorCode
from protocol.events import BRIDGE_MODE
from protocol.operation import HandledBy
from protocol.responses import Reply
from protocol.roles import Role
from protocol.views import ViewKey
from tests.conftest import run_async

SINCE = datetime(2025, 3, 1, 14, 2, 31, tzinfo=UTC)
AS_OF = datetime(2025, 3, 1, 14, 1, 5, tzinfo=UTC)
LIVE = BridgeState("real", "stale", True, None)
DOWN = BridgeState("none", "stale", True, SINCE)
DOWN_READS = BridgeState("mock", "reads", True, SINCE)
DEMO = BridgeState("mock", "reads", False, None)
UNAVAILABLE = "Real server unavailable since 14:02"


class Quiet:
    async def notify(self, message: str, *, error: bool = False, error_code: str | None = None) -> None:
        pass


def ok(data: Any, mode: str = "real", **extra: Any) -> Reply:
    return responses.as_reply({**responses.success(data, mode=mode), **extra})


def failed(code: ErrorCode, mode: str = "bridge") -> Reply:
    return responses.as_reply(responses.error(code, "no", mode=mode))


# ----------------------------------------------------------------------------- the state and its texts


def test_the_state_follows_status_and_events_field_by_field() -> None:
    status = {"mode": "real", "policy": "stale", "real_expected": True, "real_unavailable_since": None, "epoch": "e"}
    state = BridgeState().updated(status)
    assert state == LIVE and not state.outage
    down = state.updated({"mode": "none", "previous": "real", "real_unavailable_since": SINCE})
    assert down == DOWN and down.outage and down.writes_blocked and not down.serving_mock
    assert down.updated({"real_unavailable_since": None, "mode": "real"}) == LIVE
    # A mistyped field is not taken (and breaks nothing): the rest still is.
    assert state.updated({"real_unavailable_since": "14:02", "mode": "mock"}) == BridgeState("mock", "stale", True)
    assert BridgeState().updated({"mode": "mock"}) == BridgeState("mock")  # an older bridge: no outage fields


def test_pill_texts() -> None:
    assert source_pill(DEMO, None) == source_pill(BridgeState("mock"), None)
    assert source_pill(DEMO, None).text == "DEMO DATA" and source_pill(DEMO, None).tone is Tone.DEMO
    assert source_pill(LIVE, None).text == "LIVE · real server"
    assert source_pill(DOWN, AS_OF).text == "STALE · as of 14:01"
    assert source_pill(DOWN, None).text == "STALE · no data"
    # The mock answers in the real server's place only under reads/all; under stale the data is the real one's.
    assert source_pill(DOWN_READS, AS_OF).text == "MOCK DATA · real server down"
    assert source_pill(BridgeState("mock", "stale", True, SINCE), AS_OF).text == "STALE · as of 14:01"
    assert source_pill(BridgeState("none", "none", False), None).text == "NO BACKEND"
    assert source_pill(BridgeState(), None).text == "source unknown"
    # Times are UTC, as everywhere in the console, whatever zone they arrive in.
    later = AS_OF.astimezone(timezone(timedelta(hours=2)))
    assert source_pill(DOWN, later).text == "STALE · as of 14:01"


def test_banner_texts() -> None:
    assert banner_text(LIVE, AS_OF) is None and banner_text(DEMO, None) is None
    assert banner_text(DOWN, AS_OF) == f"{UNAVAILABLE} — showing data as of 14:01"
    assert banner_text(DOWN, None) == f"{UNAVAILABLE} — no data of it to show"
    assert banner_text(DOWN_READS, AS_OF) == f"{UNAVAILABLE} — showing the mock's demo data, not the real server's"


def test_where_shown_data_came_from() -> None:
    fresh = shown_after(ok({}), None)
    assert fresh is not None and not fresh.stale and fresh.mode == "real" and fresh.as_of is not None
    stale = shown_after(ok({}, stale=True, as_of=AS_OF), fresh)
    assert stale == Shown("real", AS_OF, True)
    # A failed reload keeps the value shown: it is now stale, as of when it was loaded.
    kept = shown_after(failed(ErrorCode.BACKEND_UNAVAILABLE), fresh)
    assert kept == Shown("real", fresh.as_of, True)
    assert shown_after(failed(ErrorCode.BACKEND_UNAVAILABLE), None) is None  # nothing was shown
    assert shown_after(ok({}, stale=True), None) == Shown("real", None, True)  # the bridge did not say when
    older = Shown("real", AS_OF - timedelta(minutes=3), True)
    assert oldest_stale([stale, older, Shown("real", AS_OF - timedelta(hours=1), False)]) == older.as_of
    assert oldest_stale([fresh]) is None


def test_mock_data_is_labelled_only_in_a_stack_that_expects_a_real_server() -> None:
    mock = Shown("mock", AS_OF, False)
    assert mock_label(DOWN_READS, [None, mock]) == MOCK_LABEL
    assert mock_label(DEMO, [mock]) is None  # the demo: the pill says DEMO DATA
    assert mock_label(DOWN_READS, [Shown("real", AS_OF, True), None]) is None


def test_only_the_backend_that_answers_describes_the_data() -> None:
    assert LIVE.describes("real") and not LIVE.describes("mock") and LIVE.describes("bridge")
    assert DEMO.describes("mock") and not DEMO.describes("real")
    # Down under stale, nobody answers: the mock still never speaks for the real server.
    assert not DOWN.describes("mock") and DOWN.describes("real") and DOWN.describes("bridge")
    assert DOWN_READS.describes("mock") and not DOWN_READS.describes("real")
    assert BridgeState().describes("mock")  # not known yet: as before the state came


# ----------------------------------------------------------------------------- write gates


@pytest.mark.parametrize("state", [DOWN, DOWN_READS, BridgeState("none", "none", True, SINCE)])
def test_every_write_the_bridge_would_refuse_is_gated_by_the_outage(state: BridgeState) -> None:
    for name, operation in CATALOGUE.items():
        g = gate(Role.ADMIN, name, "Label", state)
        refused = operation.is_write and operation.handled_by is HandledBy.BACKEND
        assert g.allowed is not refused, name
        assert g.tooltip == (f"Label · {UNAVAILABLE}" if refused else "Label"), name
        assert gate(Role.ADMIN, name, "Label", LIVE) == gate(Role.ADMIN, name, "Label"), name


def test_outage_gate_texts_and_what_stays_open() -> None:
    assert gate(Role.OPERATOR, "stop_server", None, DOWN).tooltip == UNAVAILABLE
    assert gate(Role.VIEWER, "stop_server", None, DOWN).tooltip == "Needs role operator"  # the role says first
    assert gate(Role.ADMIN, "set_settings", "Save", DOWN).allowed  # the bridge's own writes still work
    assert gate(Role.ADMIN, "get_files", "Files", DOWN).allowed
    # Policy all sends writes to the mock: a developer's choice, not refused.
    assert gate(Role.ADMIN, "delete_client", "Delete", BridgeState("mock", "all", True, SINCE)).allowed


# ----------------------------------------------------------------------------- the session's state


def test_loads_record_provenance_and_a_contradicting_reply_rereads_the_bridge_state() -> None:
    async def scenario() -> None:
        ctx = ViewContext(StateStore(), Quiet())
        replies: list[Reply] = [ok({"n": 1}), ok({"n": 1}, stale=True, as_of=AS_OF)]
        status_reads = 0

        async def load() -> Reply:
            return replies.pop(0) if replies else failed(ErrorCode.BACKEND_UNAVAILABLE)

        async def load_state() -> Reply:
            nonlocal status_reads
            status_reads += 1
            return ok(DOWN, mode="bridge")

        ctx.register_loader(ViewKey.FILES, load)
        ctx.register_loader(ViewKey.BRIDGE_STATE, load_state)
        await ctx.store.set(ViewKey.BRIDGE_STATE, LIVE)
        await ctx.load_data_operation(ViewKey.FILES)
        assert not ctx.store.get(ViewKey.PROVENANCE)[ViewKey.FILES].stale and status_reads == 0
        # A stale reply while the console still believes the server live: the bridge state is read again.
        await ctx.load_data_operation(ViewKey.FILES)
        assert ctx.store.get(ViewKey.PROVENANCE)[ViewKey.FILES] == Shown("real", AS_OF, True)
        await asyncio.sleep(DEBOUNCE_S * 4)
        assert status_reads == 1 and ctx.store.get(ViewKey.BRIDGE_STATE) == DOWN
        # Now they agree: a refused reload keeps the stale rows, as of the same time, and reads nothing more.
        await ctx.load_data_operation(ViewKey.FILES)
        await asyncio.sleep(DEBOUNCE_S * 4)
        assert ctx.store.get(ViewKey.FILES) == {"n": 1} and status_reads == 1
        assert ctx.store.get(ViewKey.PROVENANCE)[ViewKey.FILES] == Shown("real", AS_OF, True)
        await ctx.close()

    run_async(scenario)


def test_every_tab_follows_the_bridge_mode_events_not_its_own_replies() -> None:
    async def scenario() -> None:
        tabs = [ViewContext(StateStore(), Quiet()) for _ in range(2)]
        lives = [LiveUpdates(ctx, lambda: "s") for ctx in tabs]
        for ctx in tabs:
            await ctx.store.set(ViewKey.BRIDGE_STATE, LIVE)
        # One tab last saw a fresh real reply, the other a stale one: their own replies disagree...
        await tabs[0].store.set(ViewKey.PROVENANCE, {ViewKey.FILES: Shown("real", SINCE, False)})
        await tabs[1].store.set(ViewKey.PROVENANCE, {ViewKey.FILES: Shown("real", AS_OF, True)})
        down = {
            "topic": BRIDGE_MODE,
            "mode": "bridge",
            "seq": 5,
            "data": {"mode": "none", "real_unavailable_since": SINCE},
        }
        for live in lives:
            await live.on_delivery(down)
        # ...but both follow the bridge: the same state, the same pill and banner.
        assert [ctx.store.get(ViewKey.BRIDGE_STATE) for ctx in tabs] == [DOWN, DOWN]
        back = {**down, "seq": 6, "data": {"mode": "real", "real_unavailable_since": None}}
        for live in lives:
            await live.on_delivery(back)
        assert [ctx.store.get(ViewKey.BRIDGE_STATE) for ctx in tabs] == [LIVE, LIVE]
        for ctx in tabs:
            await ctx.close()

    run_async(scenario)


# ----------------------------------------------------------------------------- the controls


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppContext]:
    """A signed-in operator's console pieces with no page and no bridge: the store is fed directly."""
    config = GuiConfig("tcp://127.0.0.1:9", tmp_path, DownloadLinks(tmp_path / "links"))
    session = GuiSession(config, Quiet())
    session.user = SignedIn("olga", Role.ADMIN, "token")
    yield AppContext(cast(ft.Page, None), session, cast(SnackNotifier, Quiet()))
    run_async(session.close)


def client(name: str) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "status": "connected",
        "ip_address": "10.0.0.1",
        "platform": "linux",
        "files_count": 3,
        "total_size": 1024,
        "last_seen": AS_OF,
    }


def row_actions(view: ClientsView) -> list[EntryControls]:
    """The entries of the menu of the view's first row (details, disconnect, delete)."""
    return view.rows.slots[0].entries


async def no_sign_out() -> None:
    pass


def test_views_disable_their_writes_while_down_and_enable_them_when_back(app: AppContext) -> None:
    async def scenario() -> None:
        store = app.session.store
        dashboard, clients = DashboardView(app), ClientsView(app)
        status = {
            "running": True,
            "uptime_seconds": 60,
            "clients_connected": 1,
            "clients_total": 2,
            "files_total": 3,
            "storage_used": 4,
            "active_transfers": 0,
        }
        await store.set(ViewKey.STATUS, status)
        await store.set(ViewKey.CLIENTS, {"items": [client("ann")], "total": 1})
        await store.set(ViewKey.BRIDGE_STATE, LIVE)
        dashboard.render()
        clients.render()
        assert not dashboard.stop_button.disabled and dashboard.start_button.disabled  # running
        assert dashboard.status_cards.opacity == 1.0
        delete = row_actions(clients)[2]
        assert (
            not delete.entry.disabled and delete.text.tooltip is None and delete.box.identifier == "delete-client-ann"
        )

        await store.set(ViewKey.BRIDGE_STATE, DOWN)
        dashboard.render()
        clients.render()
        assert dashboard.stop_button.disabled and dashboard.stop_button.tooltip == UNAVAILABLE
        assert dashboard.status_cards.opacity == dashboard.system_cards.opacity == STALE_OPACITY
        details, _, delete = row_actions(clients)
        assert delete.entry.disabled and delete.text.tooltip == f"Delete ann · {UNAVAILABLE}"
        assert not details.entry.disabled  # reading goes on, from what the bridge remembers

        await store.set(ViewKey.BRIDGE_STATE, LIVE)
        dashboard.render()
        clients.render()
        assert not dashboard.stop_button.disabled and dashboard.status_cards.opacity == 1.0
        assert not row_actions(clients)[2].entry.disabled

    run_async(scenario)


def test_dashboard_figures_say_what_they_are_of(app: AppContext) -> None:
    async def scenario() -> None:
        dashboard = DashboardView(app)
        gib = 1024**3
        system = {
            "cpu_percent": 36.4,
            "cpu_count": 2,
            "memory": {"total": 8 * gib, "available": 6 * gib, "used": gib, "percent": 25.0},
            "disk": {"total": 100 * gib, "used": 36 * gib, "free": 64 * gib, "percent": 36.0},
        }
        await app.session.store.set(ViewKey.SYSTEM, system)
        dashboard.render()
        assert dashboard.values["cpu"].value == "36 %" and dashboard.details["cpu"].value == "average over 2 cores"
        assert dashboard.details["memory"].value == "2.0 GB of 8.0 GB"  # what the 25 % counts: not available
        assert dashboard.details["disk"].value == "64.0 GB free of 100.0 GB"
        cards = [*dashboard.status_cards.controls, *dashboard.system_cards.controls]
        heights = {c.content.height for c in cards if isinstance(c, ft.Card) and isinstance(c.content, ft.Container)}
        assert len(heights) == 1 and None not in heights

    run_async(scenario)


def test_console_banner_pill_and_mock_label_follow_the_state(app: AppContext) -> None:
    async def scenario() -> None:
        store = app.session.store
        console = Console(app, no_sign_out)
        outage: OutageBanner = console.outage
        await store.set(ViewKey.BRIDGE_STATE, LIVE)
        assert not outage.control.visible and console.banner.source.value == "LIVE · real server"
        await store.set(ViewKey.PROVENANCE, {ViewKey.STATUS: Shown("real", AS_OF, True)})
        await store.set(ViewKey.BRIDGE_STATE, DOWN)
        assert outage.control.visible and outage.text.value == f"{UNAVAILABLE} — showing data as of 14:01"
        assert console.banner.source.value == "STALE · as of 14:01"
        assert not console.label_box.visible
        await store.set(ViewKey.BRIDGE_STATE, DOWN_READS)
        await store.set(ViewKey.PROVENANCE, {ViewKey.STATUS: Shown("mock", SINCE, False)})
        assert console.banner.source.value == "MOCK DATA · real server down"
        assert console.label_box.visible and console.label.value == MOCK_LABEL  # the dashboard shows STATUS
        await store.set(ViewKey.BRIDGE_STATE, LIVE)
        assert not outage.control.visible
        await store.set(ViewKey.BRIDGE_STATE, DEMO)
        assert console.banner.source.value == "DEMO DATA" and not console.label_box.visible

    run_async(scenario)


def test_dashboard_counts_use_the_one_number_format(app: AppContext) -> None:
    async def scenario() -> None:
        dashboard = DashboardView(app)
        status = {
            "running": True,
            "uptime_seconds": 60,
            "clients_connected": 5581,
            "clients_total": 10000,
            "files_total": 100010,
            "storage_used": 4,
            "active_transfers": 1200,
        }
        await app.session.store.set(ViewKey.STATUS, status)
        dashboard.render()
        figures = {key: dashboard.values[key].value for key in ("clients", "files", "transfers")}
        assert figures == {"clients": "5,581 / 10,000", "files": "100,010", "transfers": "1,200"}

    run_async(scenario)
