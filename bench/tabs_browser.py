"""The browser side of bench_tabs: an operator's tab in headless Chromium, signed in and watching for
the benchmark's names, and a new tab opened while the others are busy."""

from __future__ import annotations

import shlex
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import median
from tests.gui_harness import (
    CHROMIUM_FLAGS,
    chromium_path,
    click_button,
    click_nav,
    enable_semantics,
    expect,
    fill_textbox,
    open_login,
    textbox,
)

# Every tab is an operator looking at it: none is throttled as a background tab would be.
BROWSER_FLAGS = [
    *CHROMIUM_FLAGS,
    "--disable-renderer-backgrounding",
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
]
OPEN_TIMEOUT_MS = 60_000
VISIBLE_JS = "t => (document.querySelector('flt-semantics-host')?.textContent || '').includes(t)"
# Stamps the first moment each benchmark name is in the accessibility tree (epoch ms).
OBSERVE_JS = """() => {
  if (window.__benchSeen) return;
  window.__benchSeen = {};
  const host = document.querySelector('flt-semantics-host');
  const scan = () => {
    const found = (host.textContent || '').match(/bench-\\d{4}/g) || [];
    const now = Date.now();
    for (const t of found) if (!(t in window.__benchSeen)) window.__benchSeen[t] = now;
  };
  new MutationObserver(scan).observe(host, {subtree: true, childList: true, characterData: true, attributes: true});
  scan();
}"""


def niced(work: Path, nice: int) -> str:
    """The browser to launch: the system Chromium, started through ``nice`` when ``nice`` > 0."""
    path = chromium_path()
    assert path is not None
    if nice <= 0:
        return path
    wrapper = work / "chromium-niced"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n {nice} {shlex.quote(path)} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def wait_visible(page: Any, text: str, timeout_ms: float = OPEN_TIMEOUT_MS) -> None:
    page.wait_for_function(VISIBLE_JS, arg=text, polling="raf", timeout=timeout_ms)


def open_tab(
    browser: Any, url: str, password: str, then: str | None = None, context: Any = None
) -> tuple[Any, float, float]:
    """A new tab signed in as admin on its first data: (page, s to the login page, s from "Sign in" to data).
    ``then``: an operator's tab: go on to the Clients view and wait for this name there (``""``:
    stay on the dashboard), and watch for the benchmark's names. ``context``: a tab of that
    browser context (whose cache holds the app already), else a browser context of its own.
    A tab that fails is closed."""
    t0 = time.perf_counter()
    if context is None:
        page = open_login(browser, url, timeout=OPEN_TIMEOUT_MS)
        close = page.context.close
    else:
        page = context.new_page()
        close = page.close
    try:
        if context is not None:
            page.goto(url, wait_until="load", timeout=OPEN_TIMEOUT_MS)
            enable_semantics(page, OPEN_TIMEOUT_MS)
            expect(textbox(page, "Username")).to_be_visible(timeout=OPEN_TIMEOUT_MS)
        to_login = time.perf_counter() - t0
        fill_textbox(page, "Username", "admin", timeout=OPEN_TIMEOUT_MS)
        fill_textbox(page, "Password", password, timeout=OPEN_TIMEOUT_MS)
        t1 = time.perf_counter()
        click_button(page, "Sign in", timeout=OPEN_TIMEOUT_MS)
        wait_visible(page, "running")
        to_data = time.perf_counter() - t1
        if then:
            click_nav(page, "Clients", timeout=OPEN_TIMEOUT_MS)
            wait_visible(page, then)
        if then is not None:
            page.evaluate(OBSERVE_JS)
    except BaseException:
        close()
        raise
    return page, to_login, to_data


def operator_tab(browser: Any, url: str, password: str, view: str, shown_name: str) -> Any:
    """A tab on ``view`` (the Clients view, showing ``shown_name``, or the dashboard, whose recent
    activity names each renamed client), watching for the benchmark's names."""
    return open_tab(browser, url, password, then=shown_name if view == "clients" else "")[0]


def new_tab_under_load(browser: Any, url: str, password: str, warm: Any) -> dict[str, Any]:
    """``GET /``, then a new operator's tab (a browser context of its own: nothing cached), then a new
    tab in ``warm``, a browser context that has the console open already (its cache holds the app)."""
    get_root = []
    for _ in range(3):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as reply:
            reply.read()
        get_root.append(time.perf_counter() - t0)
    result: dict[str, Any] = {"get_root_p50_ms": round(median(get_root) * 1e3, 1)}
    for kind, context in (("cold", None), ("warm", warm)):
        try:
            page, to_login, to_data = open_tab(browser, url, password, context=context)
        except Exception as exc:  # a tab that never opens is a result, not a crash of the benchmark
            result[kind] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            continue
        (page.context.close if context is None else page.close)()
        result[kind] = {
            "open_to_login_page_s": round(to_login, 2),
            "sign_in_to_first_data_s": round(to_data, 2),
            "open_to_first_data_s": round(to_login + to_data, 2),
        }
    return result


def seen_on(pages: list[Any]) -> list[dict[str, float]]:
    return [page.evaluate("() => window.__benchSeen || {}") for page in pages]


def wait_all_seen(pages: list[Any], token: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(token in seen for seen in seen_on(pages)):
            return True
        time.sleep(0.2)
    return False
