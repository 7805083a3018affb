"""The console's long lists in headless Chromium at size, this tree against earlier commits. Prints JSON.

    python bench/bench_gui_lists.py --baseline 454d501 [--clicks 12] [--clients 10000 --files 100000]

One mock stack with --clients clients and --files files serves every GUI: the one of this tree
("current") and one per ``--baseline REF``, each run from a ``git worktree`` of REF made for the
run (and removed after). Each GUI has a signed-in tab; the tabs take turns, click by click, so a
noisy machine weighs on all of them alike. Per GUI:

* next page: click "Next page" in Clients, then in Files; the time from the click (the mouse's, on
  the button found beforehand) until the new page is on screen (its range in the pager, its first
  and tenth rows drawn, and two frames painted), p50/p95 over --clicks clicks each. Rows are recognised by an identifier every version gives them (a row's own
  node, or its first action);
* every row there: after the clicks, the list is scrolled to the page's last row (all 100 are in
  the page, however few are drawn at once);
* opening the view: clicking Clients, then Files, in a new tab, to the first page on screen; the
  clock starts once the tab's landing view (the dashboard) shows its figures, so the time is the
  list's own, not the rest of the sign-in's first render;
* typing in search: "invoice-05" typed into Files' search box a key every --key-gap-ms (longer
  than the search's debounce, so each key's search comes back and is drawn while typing goes on);
  the time from each key to two frames painted with the key in the field, p50/p95/max.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, emit, install_cleanup, median, percentile
from tests.conftest import Stack
from tests.gui_harness import (
    CHROMIUM_FLAGS,
    FOCUS_SETTLE_MS,
    FletServer,
    admin_password,
    chromium_path,
    click_nav,
    gui_args,
    open_signed_in,
    textbox,
)

PAGE = 100
# The identifiers a row carries in the versions compared: its own node (rowlist.py), or the first
# action of its DataTable row (before). Either tells that the row is drawn.
ROW_MARKS = {
    "clients": ("client-row-{ref}", "delete-client-{ref}"),
    "files": ("file-row-{ref}", "verify-file-{ref}"),
}
# True once the pager reads ``label`` and each group of identifiers has a node on screen.
SHOWN_JS = """([pager, label, groups]) => {
    const has = id => document.querySelector(`[flt-semantics-identifier="${id}"]`) !== null;
    const range = document.querySelector(`[flt-semantics-identifier="${pager}"]`);
    return range !== null && range.innerText.trim() === label && groups.every(g => g.some(has));
}"""
LANDED_JS = """() => {
    const files = document.querySelector('[flt-semantics-identifier="server-files"]');
    return files !== null && /[0-9]/.test(files.innerText);
}"""
TYPED_JS = "([field, text]) => field.value === text"
FRAMES_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
TIMEOUT_MS = 60_000


@dataclass
class Gui:
    label: str  # "current" or the baseline's ref
    server: FletServer
    tab: Any = None
    times: dict[str, list[float]] = field(default_factory=dict)
    checks: dict[str, bool] = field(default_factory=dict)

    def note(self, what: str, seconds: float) -> None:
        self.times.setdefault(what, []).append(seconds)


@contextlib.contextmanager
def worktree(ref: str, into: Path) -> Iterator[Path]:
    """A detached checkout of ``ref``, removed afterwards."""
    path = into / f"tree-{ref.replace('/', '_')}"
    git = ["git", "-C", str(ROOT), "worktree"]
    # git's own words go to stderr: stdout is the benchmark's JSON.
    subprocess.run([*git, "add", "--detach", str(path), ref], check=True, stdout=sys.stderr)
    try:
        yield path
    finally:
        subprocess.run([*git, "remove", "--force", str(path)], check=False, stdout=sys.stderr)


def gui_from(tree: Path, stack: Stack, log: Path) -> FletServer:
    """The GUI of the source tree ``tree`` (its modules first on the path, the same virtualenv)."""
    return FletServer(
        module="gui",
        args=gui_args(stack.data_dir, stack.endpoint),
        cwd=tree,
        env={"PYTHONPATH": str(tree)},
        log_path=log,
    )


def pager_label(offset: int, total: int) -> str:
    return f"{offset + 1:,}–{min(offset + PAGE, total):,} of {total:,}"


class Pages:
    """The pages the views show, asked of the bridge directly (sorted by name, as the views are)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.cache: dict[tuple[str, int], tuple[list[dict[str, Any]], int]] = {}

    def get(self, view: str, offset: int) -> tuple[list[dict[str, Any]], int]:
        if (view, offset) not in self.cache:
            with self.stack.client() as c:
                if view == "clients":
                    reply = c.call("get_clients", {"offset": offset, "limit": PAGE, "sort": "name"})
                else:
                    reply = c.call("get_files", {"offset": offset, "limit": PAGE, "filters": {"sort": "name"}})
            assert reply["success"], reply
            self.cache[(view, offset)] = (reply["data"]["items"], reply["data"]["total"])
        return self.cache[(view, offset)]


def wait_shown(tab: Any, view: str, offset: int, page: tuple[list[dict[str, Any]], int], rows: tuple[int, ...]) -> None:
    """Until ``page`` (its items and the total), at ``offset``, is on screen: its range in the pager,
    the rows ``rows`` drawn."""
    items, total = page
    ref = "name" if view == "clients" else "id"
    groups = [[mark.format(ref=items[i][ref]) for mark in ROW_MARKS[view]] for i in rows]
    arg = [f"{view}-page", pager_label(offset, total), groups]
    tab.wait_for_function(SHOWN_JS, arg=arg, polling="raf", timeout=TIMEOUT_MS)
    tab.evaluate(FRAMES_JS)


def landed(tab: Any) -> None:
    """Until the dashboard a tab lands on shows its figures (its files' total) and has painted them."""
    tab.wait_for_function(LANDED_JS, polling="raf", timeout=TIMEOUT_MS)
    tab.evaluate(FRAMES_JS)


def open_view(gui: Gui, view: str, pages: Pages) -> None:
    """Click the view in the rail; note the time to its first page on screen."""
    page = pages.get(view, 0)  # asked before the clock starts
    started = time.perf_counter()
    click_nav(gui.tab, view.capitalize())
    wait_shown(gui.tab, view, 0, page, (0, 9))
    gui.note(f"{view}_open", time.perf_counter() - started)


def next_page(gui: Gui, view: str, offset: int, pages: Pages) -> None:
    """Click "Next page" (the view shows the page before ``offset``); note the time to it on screen."""
    page = pages.get(view, offset)  # asked before the clock starts
    # Found before the clock starts too: Playwright's click waits for the button to hold still over
    # two frames first, which is not the console's time.
    button = gui.tab.get_by_label("Next page", exact=True).get_by_role("button").first
    button.wait_for(state="visible", timeout=TIMEOUT_MS)
    box = button.bounding_box()
    assert box is not None, "the Next page button is not on screen"
    started = time.perf_counter()
    gui.tab.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    wait_shown(gui.tab, view, offset, page, (0, 9))
    gui.note(f"{view}_next_page", time.perf_counter() - started)


def every_row_there(gui: Gui, view: str, offset: int, pages: Pages) -> bool:
    """Scroll the list down until the page's last row is drawn (False if it never is)."""
    from playwright.sync_api import TimeoutError as Timeout

    items, total = pages.get(view, offset)
    last = min(PAGE, total - offset) - 1
    area = gui.tab.locator(f'[flt-semantics-identifier="{view}-table"]').bounding_box()
    if area is None:
        return False
    gui.tab.mouse.move(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
    ref = "name" if view == "clients" else "id"
    groups = [[mark.format(ref=items[last][ref]) for mark in ROW_MARKS[view]]]
    for _ in range(40):
        try:
            gui.tab.wait_for_function(SHOWN_JS, arg=[f"{view}-page", pager_label(offset, total), groups], timeout=500)
            return True
        except Timeout:
            gui.tab.mouse.wheel(0, 1_500)
    return False


def type_search(gui: Gui, text: str, gap_s: float) -> None:
    """Type ``text`` into Files' search a key every ``gap_s``; note each key's time to the screen."""
    box = textbox(gui.tab, "Search files")
    box.click()
    gui.tab.wait_for_timeout(FOCUS_SETTLE_MS)
    handle = box.element_handle()
    for n in range(1, len(text) + 1):
        started = time.perf_counter()
        gui.tab.keyboard.type(text[n - 1])
        gui.tab.wait_for_function(TYPED_JS, arg=[handle, text[:n]], polling="raf", timeout=TIMEOUT_MS)
        gui.tab.evaluate(FRAMES_JS)
        gui.note("search_key_to_screen", time.perf_counter() - started)
        time.sleep(max(0.0, gap_s - (time.perf_counter() - started)))


def figures(values: list[float]) -> dict[str, float]:
    ms = [v * 1e3 for v in values]
    return {
        "p50_ms": round(median(ms), 1),
        "p95_ms": round(percentile(ms, 95), 1),
        "max_ms": round(max(ms), 1),
        "n": len(ms),
    }


def measure(guis: list[Gui], pages: Pages, browser: Any, clicks: int, opens: int, typed: str, gap_s: float) -> None:
    for gui in guis:  # first render of each GUI's tabs is out of the figures
        gui.tab = open_signed_in(browser, gui.server.url, "admin", admin_password(pages.stack.data_dir), "admin")
        landed(gui.tab)
    for view in ("clients", "files"):
        for gui in guis:
            open_view(gui, view, pages)
        for click in range(1, clicks + 1):
            # Take turns, in the other order every other round, so drift in the machine's load is shared.
            for gui in guis if click % 2 else reversed(guis):
                next_page(gui, view, click * PAGE, pages)
        for gui in guis:
            gui.checks[f"{view}_every_row_of_the_page_reachable"] = every_row_there(gui, view, clicks * PAGE, pages)
    for gui in guis:
        type_search(gui, typed, gap_s)
        gui.tab.context.close()
    for _ in range(opens):  # opening the views in a new tab (a new session builds its views)
        for gui in guis:
            gui.tab = open_signed_in(browser, gui.server.url, "admin", admin_password(pages.stack.data_dir), "admin")
            landed(gui.tab)
            for view in ("clients", "files"):
                open_view(gui, view, pages)
            gui.tab.context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", action="append", default=[], help="a git ref to compare with (repeatable)")
    parser.add_argument("--clicks", type=int, default=12)
    parser.add_argument("--opens", type=int, default=3)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--type", default="invoice-05", help="what is typed into Files' search")
    parser.add_argument("--key-gap-ms", type=float, default=400.0)
    ns = parser.parse_args()
    install_cleanup()  # Stack and FletServer run in their own process groups: swept on exit
    if chromium_path() is None:
        sys.stderr.write("bench_gui_lists: Chromium is not installed (apt-get install chromium)\n")
        return 2
    from playwright.sync_api import sync_playwright

    root = Path(tempfile.mkdtemp(prefix="bench-gui-lists-"))
    result: dict[str, Any] = {
        "benchmark": "gui_lists",
        "clients": ns.clients,
        "files": ns.files,
        "clicks": ns.clicks,
        "typed": ns.type,
        "key_gap_ms": ns.key_gap_ms,
    }
    stack = Stack(root / "stack", "--tick", "3600", "--clients", str(ns.clients), "--files", str(ns.files))
    with contextlib.ExitStack() as cleanup:
        stack.start(timeout=600)
        cleanup.callback(stack.stop)
        guis = [Gui("current", gui_from(ROOT, stack, root / "gui-current.log"))]
        for ref in ns.baseline:
            tree = cleanup.enter_context(worktree(ref, root))
            guis.append(Gui(ref, gui_from(tree, stack, root / f"gui-{ref}.log")))
        for gui in guis:
            cleanup.enter_context(gui.server)
        pw = cleanup.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
        cleanup.callback(browser.close)
        try:
            measure(guis, Pages(stack), browser, ns.clicks, ns.opens, ns.type, ns.key_gap_ms / 1e3)
        except Exception as exc:  # what was measured before it is still worth printing, with the failure
            result["failed"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    result["guis"] = {
        gui.label: {**{what: figures(values) for what, values in gui.times.items()}, **gui.checks} for gui in guis
    }
    current = result["guis"]["current"]
    result["ratios_current_to"] = {
        ref: {
            what: round(current[what]["p50_ms"] / figures_["p50_ms"], 3)
            for what, figures_ in result["guis"][ref].items()
            if isinstance(figures_, dict) and what in current
        }
        for ref in ns.baseline
    }
    result["target"] = {"next_page_p50_ms_max": 500}
    result["target_met"] = {
        view: current[f"{view}_next_page"]["p50_ms"] <= 500
        for view in ("clients", "files")
        if f"{view}_next_page" in current
    }
    if "failed" in result:
        result["logs"] = str(root)  # the stack's and each GUI's, kept to look into
    else:
        shutil.rmtree(root, ignore_errors=True)  # the stack's data: some 85 MB at 100,000 files
    emit(result)
    return 1 if "failed" in result else 0


if __name__ == "__main__":
    raise SystemExit(main())
