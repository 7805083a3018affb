"""The Restore view's folder browser on screen, in headless Chromium, over a snapshot of a million files.

    python bench/bench_restore_browser.py [--files 1000000] [--wide 10000] [--opens 12] [--baseline REF]

The dataset is bench_snapshots.py's (a fresh real server database: one client, ``million``, and
one run of ``--files`` files, 100 per leaf folder, 100 leaf folders per top folder, and the wide
folder ``/data/wide`` of ``--wide`` files). A bridge and the real server serve it as processes,
the GUI (``python -m gui``) of this tree serves one signed-in tab, and so does the GUI of each
``--baseline REF`` (run from a ``git worktree`` of REF made for the run). Each tab opens Restore,
picks the client and its backup, and opens folders by clicking their entries, ``--opens`` rounds,
the tabs taking turns round by round, each round other folders:

* ``folder_of_100_folders``: from ``/data``, a top folder ``/data/pNNN`` (100 sub-folders);
* ``folder_of_100_files``: from there, a leaf folder ``/data/pNNN/dMM`` (100 files);
* ``wide_first_page``: from ``/data``, ``/data/wide``, its first page (100 of ``--wide`` files);
* ``up_to_parent``: the crumb back to ``/data`` (100 entries) after each of the above.

An entry out of sight is scrolled to first (the mouse wheel, untimed): the list builds only the
rows in sight.

A click is timed in the page itself (``performance.now()``): the entry's node is clicked, then
each animation frame checks whether the folder is on screen (its first entry's node, the pager
reading its range, no entry of the folder left), and two more frames are awaited (painted). The
same browse_snapshot calls are timed at the bridge in the same run, so the GUI's share (the Flet
session, rendering, the browser) is the difference. Prints JSON with p50/p95 per case.
Targets (issue 11): browse_snapshot p50 <= 100 ms at the bridge, <= 500 ms on screen.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.server.core import BackupServer, ServerConfig
from bench.bench_gui_lists import worktree
from bench.bench_snapshots import PER_FOLDER, layout, make_dataset, real_stack
from bench.common import ROOT, admin_connection, emit, install_cleanup, median, percentile
from client.connection import BridgeClient
from tests.gui_harness import (
    CHROMIUM_FLAGS,
    FletServer,
    admin_password,
    by_id,
    chromium_path,
    click_nav,
    enable_semantics,
    expect,
    fill_textbox,
    gui_args,
    sign_in,
)

CLIENT = "million"
PAGE = 100  # the folder browser's first page
TARGET_BRIDGE_P50_MS = 100.0
TARGET_SCREEN_P50_MS = 500.0
TIMEOUT_MS = 60_000
# Every websocket message of the tab, as the page sees it: [performance.now(), bytes] (negative: sent).
WS_HOOK_JS = """(() => {
    const log = (window.__benchWs = []);
    const size = d => d.byteLength ?? d.size ?? d.length ?? 0;
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener("message", e => log.push([performance.now(), size(e.data)]));
        }
        send(data) {
            log.push([performance.now(), -size(data)]);
            super.send(data);
        }
    };
})()"""
# Click ``target`` (an element), then until ``shown`` has a node, the pager reads ``label`` and
# ``gone`` has none (the folder left), and two frames after (painted). Times in ms from the click:
# the event sent, the first and last message received before the folder showed, the folder shown
# and painted; or null past the deadline.
OPEN_JS = """async ([target, shown, label, gone, timeout]) => {
    const node = id => document.querySelector(`[flt-semantics-identifier="${id}"]`);
    const frame = () => new Promise(r => requestAnimationFrame(r));
    const ws = window.__benchWs;
    const from = ws.length;
    const t0 = performance.now();
    target.click();
    for (;;) {
        await frame();
        const range = node("restore-folder-page");
        if (node(shown) !== null && node(gone) === null && range !== null && range.innerText.trim() === label) break;
        if (performance.now() - t0 > timeout) return null;
    }
    const seen = performance.now();
    await frame();
    await frame();
    const painted = performance.now();
    const after = ws.slice(from).filter(([t]) => t <= seen);
    const sent = after.filter(([, n]) => n < 0), got = after.filter(([, n]) => n > 0);
    return {
        sent: sent.length ? sent[0][0] - t0 : null,
        first_in: got.length ? got[0][0] - t0 : null,
        last_in: got.length ? got[got.length - 1][0] - t0 : null,
        messages_in: got.length,
        bytes_in: got.reduce((a, [, n]) => a + n, 0),
        shown: seen - t0,
        painted: painted - t0,
    };
}"""


def pager_label(total: int) -> str:
    return f"1–{min(PAGE, total):,} of {total:,}"


def dataset(server_dir: Path, files: int, wide: int) -> dict[str, Any]:
    """The million-file run in a fresh server database: the snapshot's id and the dataset's timings."""
    core = BackupServer(ServerConfig(server_dir, log_file=False, scrub_interval_s=0))
    try:
        made = make_dataset(core, layout(files, wide))
        snapshot_id = str(core.conn.execute("SELECT MAX(id) FROM snapshots").fetchone()[0])
        folders = core.conn.execute("SELECT COUNT(*) FROM snapshot_dirs").fetchone()[0]
    finally:
        core.close()
    return {"snapshot_id": snapshot_id, "folders": folders, "dataset_s": {k: round(v, 2) for k, v in made.items()}}


class Tab:
    """One signed-in tab on the Restore view, the million-file backup open; clicks timed in the page."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.times: dict[str, list[dict[str, float]]] = {}

    def open(self, case: str, entry: str, shown: str, total: int, gone: str) -> None:
        self.reveal(f"entry-{entry}")
        self._timed(case, by_id(self.page, f"entry-{entry}"), shown, total, gone)

    def reveal(self, identifier: str) -> None:
        """Scroll the entries (with the mouse wheel, untimed) until the row ``identifier`` is drawn:
        Flutter builds only the rows in sight."""
        from playwright.sync_api import TimeoutError as Timeout

        node = self.page.locator(f'[flt-semantics-identifier="{identifier}"]')
        if node.count():
            return
        top = self.page.locator('[flt-semantics-identifier^="entry-"]').first.bounding_box()
        assert top is not None, "no entry drawn"
        self.page.mouse.move(top["x"] + top["width"] / 2, top["y"] + top["height"] / 2)
        for _ in range(40):
            self.page.mouse.wheel(0, 600)
            try:
                node.wait_for(state="attached", timeout=500)
                return
            except Timeout:
                continue
        raise TimeoutError(f"{identifier} never drawn while scrolling the entries")

    def up_to_data(self, gone: str, entries: int) -> None:
        """The crumb back to /data (a button named by the folder; crumbs carry no identifier)."""
        crumb = by_id(self.page, "restore-crumbs").get_by_role("button", name="data")
        self._timed("up_to_parent", crumb, "entry-p000", entries, gone)

    def _timed(self, case: str, target: Any, shown: str, total: int, gone: str) -> None:
        handle = target.element_handle(timeout=TIMEOUT_MS)
        got = self.page.evaluate(OPEN_JS, [handle, shown, pager_label(total), gone, TIMEOUT_MS])
        if got is None:
            raise TimeoutError(f"{case}: {shown} not on screen within {TIMEOUT_MS} ms of the click")
        self.times.setdefault(case, []).append(got)


def signed_in_tab(browser: Any, url: str, password: str) -> Any:
    """A tab whose websocket messages are logged (the hook must be in place before the app loads)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(script=WS_HOOK_JS)
    context.route("**/*", lambda r: r.continue_() if urlsplit(r.request.url).hostname == "127.0.0.1" else r.abort())
    try:
        page = context.new_page()
        page.goto(url, wait_until="load", timeout=TIMEOUT_MS)
        enable_semantics(page)
        sign_in(page, "admin", password, "admin")
    except BaseException:
        context.close()
        raise
    return page


def open_backup(browser: Any, url: str, password: str) -> Tab:
    """A signed-in tab on the Restore view with the million-file backup open at ``/data``."""
    page = signed_in_tab(browser, url, password)
    try:
        click_nav(page, "Restore")
        fill_textbox(page, "Client (name or id)", CLIENT)
        by_id(page, f"pick-client-{CLIENT}").click()
        expect(by_id(page, "restore-backup")).to_have_text(re.compile(r"^Backup of \d{4}-"), timeout=TIMEOUT_MS)
        by_id(page, "entry-data").click()
        expect(by_id(page, "entry-p000")).to_be_visible(timeout=TIMEOUT_MS)
    except BaseException:
        page.context.close()
        raise
    return Tab(page)


def one_round(tab: Tab, i: int, tops: int, wide: int) -> None:
    """From /data: a top folder, one of its leaves, back up; the wide folder, back up."""
    top, leaf = f"p{i % tops:03d}", f"d{i % PER_FOLDER:02d}"
    entries = tops + (1 if wide else 0)
    tab.open("folder_of_100_folders", top, "entry-d00", PER_FOLDER, "entry-p000")
    tab.open("folder_of_100_files", leaf, "entry-f00.bin", PER_FOLDER, "entry-d00")
    tab.up_to_data("entry-f00.bin", entries)
    if wide:
        tab.open("wide_first_page", "wide", "entry-w000000.bin", wide, "entry-p000")
        tab.up_to_data("entry-w000000.bin", entries)


def gui_of(tree: Path, stack_dir: Path, log: Path) -> FletServer:
    """The GUI of the source tree ``tree`` (its modules first on the path, the same virtualenv)."""
    return FletServer(module="gui", args=gui_args(stack_dir), cwd=tree, env={"PYTHONPATH": str(tree)}, log_path=log)


def on_screen(
    browser: Any, guis: dict[str, FletServer], password: str, tops: int, wide: int, opens: int
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """Each GUI's tab, taking turns round by round (a noisy machine weighs on all of them alike)."""
    tabs: dict[str, Tab] = {}
    try:
        for label, gui in guis.items():
            tabs[label] = open_backup(browser, gui.url, password)
        for i in range(opens):
            for tab in tabs.values():
                one_round(tab, i, tops, wide)
        return {label: tab.times for label, tab in tabs.items()}
    finally:
        for tab in tabs.values():
            tab.page.context.close()


def at_bridge(client: BridgeClient, snapshot_id: str, tops: int, wide: int, opens: int) -> dict[str, list[float]]:
    """The same folders' first pages asked of the bridge directly: milliseconds per case."""
    times: dict[str, list[float]] = {}

    def browse(case: str, path: str) -> None:
        t0 = time.perf_counter()
        reply = client.call("browse_snapshot", {"snapshot_id": snapshot_id, "path": path, "limit": PAGE}, timeout=30)
        times.setdefault(case, []).append((time.perf_counter() - t0) * 1e3)
        if not reply["success"]:
            raise RuntimeError(f"browse_snapshot {path} failed: {reply}")

    for i in range(opens):
        top = f"/data/p{i % tops:03d}"
        browse("folder_of_100_folders", top)
        browse("folder_of_100_files", f"{top}/d{i % PER_FOLDER:02d}")
        browse("up_to_parent", "/data")
        if wide:
            browse("wide_first_page", "/data/wide")
    return times


def figures(values: list[float]) -> dict[str, float | int]:
    return {
        "p50_ms": round(median(values), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "max_ms": round(max(values), 1),
        "n": len(values),
    }


def median_of(timings: list[dict[str, float]], key: str) -> float | None:
    values = [t[key] for t in timings if t[key] is not None]
    return round(median(values), 1) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--wide", type=int, default=10_000, help="files in the one wide folder (part of --files)")
    parser.add_argument("--opens", type=int, default=12, help="folders opened per case (>= 10 for a p95)")
    parser.add_argument(
        "--baseline", action="append", default=[], metavar="REF", help="also time the GUI of this commit (repeatable)"
    )
    ns = parser.parse_args()
    if (ns.files - ns.wide) % (PER_FOLDER * PER_FOLDER) or ns.files <= ns.wide:
        parser.error("--files minus --wide must be a positive multiple of 10,000 (whole top folders)")
    install_cleanup()  # the bridge, the server and the GUI run in their own process groups: swept on exit
    if chromium_path() is None:
        sys.stderr.write("bench_restore_browser: Chromium is not installed (apt-get install chromium)\n")
        return 2
    from playwright.sync_api import sync_playwright

    tops = (ns.files - ns.wide) // (PER_FOLDER * PER_FOLDER)
    work = Path(tempfile.mkdtemp(prefix="bench-restore-browser-"))
    try:
        made = dataset(work / "server-data", ns.files, ns.wide)
        with contextlib.ExitStack() as stack:
            creds = stack.enter_context(real_stack(work, work / "server-data"))
            stack_dir = work / "stack"
            trees = {"current": ROOT} | {ref: stack.enter_context(worktree(ref, work)) for ref in ns.baseline}
            guis = {
                label: stack.enter_context(gui_of(tree, stack_dir, work / f"gui-{i}.log"))
                for i, (label, tree) in enumerate(trees.items())
            }
            pw = stack.enter_context(sync_playwright())
            browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_FLAGS)
            stack.callback(browser.close)
            screen = on_screen(browser, guis, admin_password(stack_dir), tops, ns.wide, ns.opens)
            with BridgeClient(connection=admin_connection(creds)) as client:
                bridge = at_bridge(client, made["snapshot_id"], tops, ns.wide, ns.opens)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures_of = {
        label: {case: figures([t["painted"] for t in v]) for case, v in times.items()}
        for label, times in screen.items()
    }
    # Where the time goes, medians in ms from the click: the GUI's answer (its last message before the
    # folder showed) and the browser drawing it after.
    breakdown = {
        label: {case: {k: median_of(v, k) for k in v[0] if k != "painted"} for case, v in times.items()}
        for label, times in screen.items()
    }
    bridge_figures = {case: figures(v) for case, v in bridge.items()}
    current = figures_of["current"]
    emit(
        {
            "benchmark": "restore_browser",
            "files": ns.files,
            "folders": made["folders"],
            "wide_folder_files": ns.wide,
            "opens_per_case": ns.opens,
            "dataset_s": made["dataset_s"],
            "on_screen": figures_of,
            "on_screen_breakdown_p50": breakdown,
            "bridge": bridge_figures,
            "targets": {"bridge_p50_ms": TARGET_BRIDGE_P50_MS, "on_screen_p50_ms": TARGET_SCREEN_P50_MS},
            "targets_met": {
                case: current[case]["p50_ms"] <= TARGET_SCREEN_P50_MS
                and bridge_figures[case]["p50_ms"] <= TARGET_BRIDGE_P50_MS
                for case in current
            },
        }
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
