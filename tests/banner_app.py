"""A Flet app that shows the console's top bar (gui.console.Banner) alone, one bar per data-source text
in BANNER_PILLS, for tests/test_gui_banner_e2e.py to measure in a browser.

The bar's layout is what is under test, so its data comes from a plain store instead of a bridge:
each bar's pill shows the bridge state given for it, the user label a long one.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import flet as ft

from gui.app_context import AppContext
from gui.console import Banner
from gui.downloads import DownloadLinks
from gui.outage import BridgeState, Shown
from gui.server import serve
from gui.state import StateStore
from protocol.modes import Mode, Policy
from protocol.views import ViewKey

LONG_USER = "operations-night-shift (operator)"
# A text far wider than any window: what a pill would be if its text were mis-measured or ever grew.
OVERLONG = "DEMO DATA " * 40


@dataclass
class User:
    label: str


@dataclass
class Session:
    endpoint: str
    user: User
    store: StateStore = field(default_factory=StateStore)


@dataclass
class App:
    session: Session


def states() -> list[tuple[BridgeState, dict[str, Shown]]]:
    """The bridge states whose pill texts are the longest the console shows, and one far longer."""
    since = datetime(2026, 12, 1, 14, 2, 31, tzinfo=UTC)
    stale: dict[str, Shown] = {ViewKey.CLIENTS: Shown(mode=Mode.REAL, as_of=since, stale=True)}
    return [
        (BridgeState(mode=Mode.MOCK, policy=Policy.READS, real_expected=True, real_unavailable_since=since), {}),
        (BridgeState(mode=Mode.NONE, policy=Policy.STALE, real_expected=True, real_unavailable_since=since), stale),
        (BridgeState(mode=Mode.MOCK), {}),
    ]


async def banner(state: BridgeState, shown: dict[str, Shown], overlong: bool) -> ft.Control:
    session = Session(endpoint="tcp://backup-server.example.internal:5555", user=User(LONG_USER))
    await session.store.set(ViewKey.CONNECTION, "reconnecting")
    await session.store.set(ViewKey.BRIDGE_STATE, state)
    await session.store.set(ViewKey.PROVENANCE, shown)

    async def sign_out() -> None:
        return None

    bar = Banner(cast(AppContext, App(session)), sign_out)
    if overlong:
        bar.source.value = OVERLONG
    return bar.control


async def main(page: ft.Page) -> None:
    page.padding = 0
    bars = [await banner(state, shown, overlong=False) for state, shown in states()]
    bars.append(await banner(*states()[2], overlong=True))
    page.add(ft.Column(bars, spacing=24))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=int(os.environ.get("FLET_SERVER_PORT", "8550")))
    port = parser.parse_args().port
    # Served as the console is (gui/server.py), so the browser draws it the same way.
    with tempfile.TemporaryDirectory(prefix="banner-app-") as area:
        serve(main, DownloadLinks(Path(area)), "127.0.0.1", port)
