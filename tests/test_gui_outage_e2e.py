"""The console in a real headless Chromium while the real server of a real stack is killed (issue 10).

The stack runs the bridge with its default policy for a stack with a real server (``stale``),
the mock beside it, and the real server under run_all's supervision. The test kills the real
server with SIGKILL and holds run_all still meanwhile (SIGSTOP), so the outage lasts as long
as the checks need; SIGCONT lets run_all restart the server as it would on its own.

Measured and logged (event ``gui_outage.timing``, also written to ``$GUI_SCREENSHOTS/outage-timing.json``):
from the kill to the banner on screen, and from the server's return to live data on screen.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.conftest import Stack, wait_until
from tests.gui_harness import (
    FletServer,
    admin_password,
    button,
    by_id,
    click_nav,
    expect,
    open_signed_in,
    row_action,
    screenshot,
    wait_text,
)
from tests.gui_stack import stack_with_gui

log = structlog.get_logger()

pytestmark = [pytest.mark.timeout(240)]

SCREENSHOTS = Path(os.environ.get("GUI_SCREENSHOTS", "/tmp/gui-e2e"))
BANNER_WITHIN_S = 2.0  # issue 10: the banner within 2 s of the kill
HHMM = r"\d\d:\d\d"
UNAVAILABLE = rf"Real server unavailable since {HHMM}"
LIVE = "LIVE · real server"


@pytest.fixture(scope="module")
def real_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, FletServer]]:
    with stack_with_gui(tmp_path_factory.mktemp("outage"), real=True) as both:
        yield both


def real_client_name(stack: Stack) -> str:
    """A client the real server knows (its demo agent enrolls one soon after the start)."""

    def first() -> str | None:
        with stack.client() as c:
            reply = c.call("get_clients", {"limit": 1})
        items = reply["data"]["items"] if reply["success"] and reply["mode"] == "real" else []
        return str(items[0]["name"]) if items else None

    return wait_until(first, 60, 0.5, "a client on the real server")


def pill(page: Any, pattern: str | re.Pattern[str]) -> Any:
    return by_id(page, "data-source").filter(has_text=pattern)


def delete_entry_is(page: Any, name: str, why: str | None, timeout: float = 15.0) -> None:
    """The Delete entry of ``name``'s row menu is enabled (``why`` None), or disabled with a label
    matching ``why``. An open menu keeps the entries it opened with, so the menu is opened again
    until the row drawn for the bridge's state says so; it is left closed."""

    def shows() -> bool:
        entry = row_action(page, f"delete-client-{name}")
        try:
            return (entry.is_enabled() if why is None else entry.is_disabled()) and (
                why is None or re.match(why, entry.get_attribute("aria-label") or "") is not None
            )
        finally:
            page.keyboard.press("Escape")
            expect(entry).to_have_count(0)

    wait_until(shows, timeout, 0.2, f"the Delete entry of {name} {'enabled' if why is None else why!r}")


@contextlib.contextmanager
def supervisor_held(stack: Stack) -> Iterator[None]:
    """run_all stopped, so the server it supervises is not restarted until the block ends."""
    assert stack.proc is not None
    os.kill(stack.proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(stack.proc.pid, signal.SIGCONT)


def test_killed_real_server_shows_the_outage_disables_writes_and_comes_back(
    browser: Any, real_console: tuple[Stack, FletServer]
) -> None:
    stack, gui = real_console
    name = real_client_name(stack)
    password = admin_password(stack.data_dir)
    page = open_signed_in(browser, gui.url, "admin", password, "admin")
    expect(pill(page, LIVE)).to_be_visible(timeout=20_000)
    expect(by_id(page, "outage-banner")).to_have_count(0)
    expect(by_id(page, "server-state")).to_have_text("running", timeout=15_000)
    expect(button(page, "Stop server")).to_be_enabled()
    click_nav(page, "Clients")
    wait_text(page, name, timeout=15_000)
    delete_entry_is(page, name, None)

    timing: dict[str, float] = {}
    second: Any = None  # the tab opened during the outage
    with supervisor_held(stack):
        killed = time.monotonic()
        os.kill(stack.child_pid("server"), signal.SIGKILL)
        by_id(page, "outage-banner").wait_for(state="visible", timeout=15_000)
        timing["kill_to_banner_s"] = round(time.monotonic() - killed, 3)

        # The rows stay, from the bridge's memory of the real server; deleting is refused up front.
        banner = re.compile(rf"^{UNAVAILABLE} — showing data as of {HHMM}$")
        expect(by_id(page, "outage-banner")).to_have_text(banner)
        expect(pill(page, re.compile(rf"^STALE · as of {HHMM}$"))).to_be_visible()
        wait_text(page, name)
        delete_entry_is(page, name, rf"^Delete {re.escape(name)} · {UNAVAILABLE}\n")
        screenshot(page, SCREENSHOTS / "outage-clients.png")

        click_nav(page, "Dashboard")
        expect(by_id(page, "server-state")).to_have_text("running")  # as of before the kill, greyed
        expect(button(page, "Stop server")).to_be_disabled()

        # A tab signed in during the outage follows the same bridge state: the same banner at once.
        second = open_signed_in(browser, gui.url, "admin", password, "admin")
        expect(by_id(second, "outage-banner")).to_have_text(re.compile(rf"^{UNAVAILABLE} — "), timeout=15_000)
        shown = by_id(page, "outage-banner").inner_text()
        assert by_id(second, "outage-banner").inner_text().split(" — ")[0] == shown.split(" — ")[0]
        expect(button(second, "Stop server")).to_be_disabled()
        # Taken last: on a busy machine Flutter paints a while after its semantics tree changed.
        screenshot(page, SCREENSHOTS / "outage-dashboard.png")
        resumed = time.monotonic()

    stack.wait_backend_alive("server", 60)
    back = time.monotonic()
    for tab in (page, second):
        by_id(tab, "outage-banner").wait_for(state="detached", timeout=15_000)
        pill(tab, LIVE).wait_for(state="visible", timeout=15_000)
    live = time.monotonic()
    timing["restart_to_server_alive_s"] = round(back - resumed, 3)
    timing["server_alive_to_live_on_screen_s"] = round(live - back, 3)
    expect(by_id(page, "server-state")).to_have_text("running")
    expect(button(page, "Stop server")).to_be_enabled(timeout=10_000)
    screenshot(page, SCREENSHOTS / "outage-over.png")
    click_nav(page, "Clients")
    delete_entry_is(page, name, None)
    log.info("gui_outage.timing", **timing)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / "outage-timing.json").write_text(json.dumps(timing, indent=2) + "\n")
    for tab in (page, second):
        tab.context.close()
    assert timing["kill_to_banner_s"] <= BANNER_WITHIN_S, timing


def test_under_policy_reads_the_mock_answers_and_every_view_says_so(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("outage-reads")
    with stack_with_gui(root, "--policy", "reads", real=True) as (stack, gui):
        name = real_client_name(stack)
        page = open_signed_in(browser, gui.url, "admin", admin_password(stack.data_dir), "admin")
        expect(pill(page, LIVE)).to_be_visible(timeout=20_000)
        click_nav(page, "Clients")
        wait_text(page, name, timeout=15_000)
        expect(by_id(page, "data-label")).to_have_count(0)
        with supervisor_held(stack):
            os.kill(stack.child_pid("server"), signal.SIGKILL)
            expect(pill(page, "MOCK DATA · real server down")).to_be_visible(timeout=15_000)
            banner = re.compile(rf"^{UNAVAILABLE} — showing the mock's demo data, not the real server's$")
            expect(by_id(page, "outage-banner")).to_have_text(banner)
            # The view reloaded from the mock: its rows are the demo's, and labelled so.
            expect(by_id(page, "data-label")).to_have_text(re.compile("^MOCK DATA — "), timeout=15_000)
            with stack.client() as c:
                mock = c.call("get_clients", {"limit": 1})
            assert mock["mode"] == "mock", mock
            first = mock["data"]["items"][0]["name"]
            wait_text(page, first, timeout=15_000)
            delete_entry_is(page, first, rf"^Delete {re.escape(first)} · {UNAVAILABLE}\n")
            screenshot(page, SCREENSHOTS / "outage-reads-clients.png")
        stack.wait_backend_alive("server", 60)
        expect(pill(page, LIVE)).to_be_visible(timeout=15_000)
        expect(by_id(page, "data-label")).to_have_count(0, timeout=15_000)
        wait_text(page, name, timeout=15_000)
        page.context.close()
