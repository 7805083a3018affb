"""GUI timings in headless Chromium against a real stack. Prints JSON.

    python bench/bench_gui.py [--opens 5] [--events 50] [--files 100000 --clients 10000]

* page open -> login page, and page open -> first data on the dashboard / clients table filled, signing in
  as admin on the way (the time spent typing the credentials is left out) (p50 of --opens);
* a write published -> its effect visible on screen in another session (p50/p95 of --events);
  the baseline is the round trip of the write itself, measured in the same run;
* the files view rendering with --files files in the mock.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, install_cleanup, median, percentile
from tests.conftest import Stack
from tests.gui_harness import (
    CHROMIUM_FLAGS,
    FletServer,
    admin_password,
    chromium_path,
    click_button,
    click_nav,
    fill_textbox,
    gui_args,
    open_login,
)

VISIBLE_JS = "t => (document.querySelector('flt-semantics-host')?.innerText || '').includes(t)"


def wait_visible(page: Any, text: str, timeout_ms: float = 30_000) -> None:
    # requestAnimationFrame polling: resolution of one frame, unlike expect()'s backoff.
    page.wait_for_function(VISIBLE_JS, arg=text, polling="raf", timeout=timeout_ms)


def signed_in_page(browser: Any, url: str, password: str) -> tuple[Any, float, float]:
    """A new tab signed in as admin: (page, seconds to the login page, seconds from "Sign in" to first data).
    Typing the credentials is left out of both."""
    t0 = time.perf_counter()
    page = open_login(browser, url)
    to_login = time.perf_counter() - t0
    fill_textbox(page, "Username", "admin")
    fill_textbox(page, "Password", password)
    t1 = time.perf_counter()
    click_button(page, "Sign in")
    wait_visible(page, "running")
    return page, to_login, time.perf_counter() - t1


def open_timings(browser: Any, url: str, password: str, first_client: str, opens: int) -> dict[str, float]:
    to_login, first_data, clients = [], [], []
    for _ in range(opens):
        page, login_s, data_s = signed_in_page(browser, url, password)
        to_login.append(login_s)
        first_data.append(login_s + data_s)
        t0 = time.perf_counter()
        click_nav(page, "Clients")
        wait_visible(page, first_client)
        clients.append(login_s + data_s + time.perf_counter() - t0)
        page.context.close()
    return {
        "open_to_login_page_p50_s": median(to_login),
        "open_to_first_data_p50_s": median(first_data),
        "open_to_clients_table_p50_s": median(clients),
    }


def event_timings(browser: Any, url: str, stack: Stack, events: int) -> dict[str, float]:
    page, _, _ = signed_in_page(browser, url, admin_password(stack.data_dir))
    click_nav(page, "Clients")
    with stack.client() as client:
        target = client.call("get_clients", {"limit": 1})["data"]["items"][0]
        wait_visible(page, target["name"])
        to_screen, round_trips = [], []
        for i in range(events):
            name = f"{target['name'][:6]}-bench-{i:03d}"
            t0 = time.perf_counter()
            reply = client.call(
                "update_row", {"table_name": "clients", "row_id": target["id"], "updated_data": {"name": name}}
            )
            round_trips.append(time.perf_counter() - t0)
            assert reply["success"], reply
            wait_visible(page, name)
            to_screen.append(time.perf_counter() - t0)
    page.context.close()
    return {
        "event_to_screen_p50_ms": percentile(to_screen, 50) * 1e3,
        "event_to_screen_p95_ms": percentile(to_screen, 95) * 1e3,
        "write_round_trip_p50_ms": percentile(round_trips, 50) * 1e3,
    }


def files_view_timing(browser: Any, url: str, password: str, files: int, opens: int) -> dict[str, float]:
    times = []
    for _ in range(opens):
        page, _, _ = signed_in_page(browser, url, password)
        t0 = time.perf_counter()
        click_nav(page, "Files")
        wait_visible(page, f"of {files:,}")
        times.append(time.perf_counter() - t0)
        page.context.close()
    return {"files_view_render_p50_s": median(times), "files_in_mock": files}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opens", type=int, default=5)
    parser.add_argument("--events", type=int, default=50)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100_000)
    ns = parser.parse_args()
    install_cleanup()  # Stack and FletServer run in their own process groups: swept on exit
    if chromium_path() is None:
        sys.stderr.write("bench_gui: Chromium is not installed (apt-get install chromium)\n")
        return 2
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="bench-gui-"))
    result: dict[str, Any] = {"benchmark": "gui", "opens": ns.opens, "events": ns.events}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        small = Stack(root / "small", "--tick", "3600").start()
        try:
            small_gui = FletServer(
                module="gui", args=gui_args(small.data_dir, small.endpoint), log_path=root / "gui-small.log"
            )
            with small_gui as gui:
                with small.client() as c:
                    first = c.call("get_clients", {"limit": 1})["data"]["items"][0]["name"]
                result.update(open_timings(browser, gui.url, admin_password(small.data_dir), first, ns.opens))
                result.update(event_timings(browser, gui.url, small, ns.events))
        finally:
            small.stop()
        large = Stack(root / "large", "--tick", "3600", "--clients", str(ns.clients), "--files", str(ns.files))
        try:
            large.start(timeout=300)
            large_gui = FletServer(
                module="gui", args=gui_args(large.data_dir, large.endpoint), log_path=root / "gui-large.log"
            )
            with large_gui as gui:
                result.update(files_view_timing(browser, gui.url, admin_password(large.data_dir), ns.files, 3))
        finally:
            large.stop()
        browser.close()
    result["targets"] = {"open_to_first_data_s_max": 2.5, "event_to_screen_p95_ms_max": 300}
    result["targets_met"] = {
        "first_data": result["open_to_first_data_p50_s"] <= 2.5,
        "event_to_screen": result["event_to_screen_p95_ms"] <= 300,
    }
    emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
