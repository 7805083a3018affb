"""The console's top bar in a real headless Chromium: whatever its pills say, and however wide they come
out, the signed-in user and Sign out stay inside the window.

One full-suite run met a bar whose data-source pill was as wide as the window, which pushed the
user label and Sign out out of it (the pill's text mis-measured by the browser's renderer under
load, see gui/console.py). tests/banner_app.py shows the bar alone with the longest pill texts the
console has and one far wider than any window, at the narrowest width the console supports and at
the usual one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.banner_app import LONG_USER, states
from tests.conftest import wait_until
from tests.gui_harness import FletServer, button, by_id, expect, new_page

pytestmark = pytest.mark.timeout(120)

BARS = len(states()) + 1  # the app's bars: one per state, and the overlong pill


@pytest.fixture(scope="module")
def banner_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FletServer]:
    log = tmp_path_factory.mktemp("banner") / "banner-app.log"
    with FletServer(script=Path(__file__).with_name("banner_app.py"), log_path=log) as server:
        yield server


def inside(box: dict[str, float] | None, width: int) -> bool:
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width


@pytest.mark.parametrize("width", [800, 1280])
def test_user_and_sign_out_stay_in_the_window_whatever_the_pill_says(
    browser: Any, banner_server: FletServer, width: int
) -> None:
    page = new_page(browser, banner_server.url, viewport=(width, 900))
    # Served as the console is: not cross-origin isolated, so skwasm draws on one thread (gui/renderer.py).
    assert page.evaluate("() => [window.crossOriginIsolated, !!window._flutter_skwasmInstance]") == [False, True]
    users, sign_outs, pills = by_id(page, "signed-in-user"), button(page, "Sign out"), by_id(page, "data-source")
    # Flutter leaves a node out of its accessibility tree when it lies outside the window, so a bar that
    # pushed them out has fewer of these than bars.
    expect(users).to_have_count(BARS)
    expect(sign_outs).to_have_count(BARS)
    expect(pills).to_have_count(BARS)
    for i in range(BARS):
        expect(users.nth(i)).to_have_text(LONG_USER)
        user, sign_out, pill = users.nth(i).bounding_box(), sign_outs.nth(i).bounding_box(), pills.nth(i).bounding_box()
        assert inside(user, width) and inside(sign_out, width), (i, user, sign_out, pill)
        assert inside(pill, width), (i, pill)
    page.context.close()


def test_the_page_runs_no_script_from_another_origin(browser: Any, banner_server: FletServer) -> None:
    """flet-web asks a public CDN for a script at start; the console's policy refuses it in the browser
    (gui/csp.py). Without the policy the harness's loopback-only route would abort it with no word."""
    console: list[str] = []
    page = new_page(browser, banner_server.url, console=console)
    refused = wait_until(
        lambda: [m for m in console if "Content Security Policy" in m and "cdn.jsdelivr.net" in m],
        timeout=30,
        what="the CDN script refused by the console's Content-Security-Policy",
    )
    assert "script-src 'self'" in refused[0], refused
    expect(by_id(page, "signed-in-user")).to_have_count(BARS)  # and the page itself runs
    page.context.close()
