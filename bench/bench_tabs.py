"""Many operators at once: T tabs of the console on one GUI process, one write per second. Prints JSON.

    python bench/bench_tabs.py [--tabs 1,5,10,20] [--writes 30] [--view clients|dashboard] [--baseline REV]

Tabs are opened one after another in headless Chromium, each signed in as admin and left on the
Clients view (``--view dashboard``: on the dashboard, where a tab lands, polling the host every 2 s
and showing each rename in its recent activity). For each T, a client's name is rewritten once a second (``update_row``, through
the bridge, as another console would) and the benchmark reports, per write and tab:

* patch sent: write sent -> the GUI process hands the websocket a message holding the new name
  (timed inside the GUI process by bench/gui_probe.py, after Flet's send queue); and, to tell the
  GUI's share from the rest, write sent -> the tab's session is handed the write's event;
* to screen: write sent -> the name is in the tab's accessibility tree (a MutationObserver in
  the page stamps it, so the tabs are not polled one after another);
* never shown: (write, tab) pairs whose name never reached that tab's screen;
* the GUI process's CPU (cores: CPU seconds per second) and RSS during the writes (psutil);
* a new tab opened while the writes go on: ``GET /``, page open -> login page, "Sign in" ->
  first data (typing the credentials left out); and the write's own round trip, as a baseline.

The browser runs at a lower priority (``--browser-nice``, 10 by default): here it shares two
cores with the GUI it measures, while operators' browsers run on their own machines; with
twenty tabs drawing, it would otherwise take the GUI's CPU. The screen figures show what the
browser could draw with what was left.

``--baseline REV`` also runs the GUI code of commit REV (exported with ``git archive``) the same
way, in the same run, against the same stack, first; ratios compare the current code with it.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, install_cleanup, percentile
from bench.tabs_browser import (
    BROWSER_FLAGS,
    new_tab_under_load,
    niced,
    open_tab,
    operator_tab,
    seen_on,
    wait_all_seen,
)
from tests.conftest import Stack
from tests.gui_harness import FletServer, admin_password, chromium_path, gui_args

ROOT = Path(__file__).resolve().parent.parent
PROBE = ROOT / "bench" / "gui_probe.py"
SETTLE_S = 30.0  # how long every tab may take to show the warm-up write
GRACE_S = 10.0  # after the last write, for the slowest tab


def stats_ms(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 1),
        "p95": round(percentile(values, 95), 1),
        "max": round(max(values), 1),
    }


@dataclass
class Target:
    """The client renamed by every write: ``<its name>-bench-NNNN`` keeps it first on the page."""

    stack: Stack
    id: str
    base: str
    count: int = 0
    current: str = ""  # the name it has now

    def __post_init__(self) -> None:
        self.current = self.base

    def next_name(self) -> tuple[str, str]:
        token = f"bench-{self.count:04d}"
        self.count += 1
        return f"{self.base}-{token}", token

    def rename(self, client: Any, name: str) -> float:
        t0 = time.time()
        reply = client.call("update_row", {"table_name": "clients", "row_id": self.id, "updated_data": {"name": name}})
        assert reply["success"], reply
        self.current = name
        return t0


@dataclass
class Writes:
    """One write a second in a thread of its own, while the main thread drives the browser."""

    target: Target
    count: int
    gui: psutil.Process
    done: list[tuple[str, float, float]] = field(default_factory=list)  # token, sent at, round trip
    rss: list[int] = field(default_factory=list)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with self.target.stack.client() as client:
            start = time.monotonic()
            for i in range(self.count):
                time.sleep(max(0.0, start + i - time.monotonic()))
                name, token = self.target.next_name()
                t0 = self.target.rename(client, name)
                self.done.append((token, t0, time.time() - t0))
                self.rss.append(self.gui.memory_info().rss)

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join()


def traced(trace: Path, kind: str) -> list[dict[str, Any]]:
    """The probe's lines of one kind: "conn" (a message sent to a tab) or "session" (an event handed to one)."""
    lines = trace.read_text().splitlines() if trace.exists() else []
    if kind == "conn":
        return [line for line in map(json.loads, lines) if "conn" in line and "event" not in line]
    return [line for line in map(json.loads, lines) if kind in line]


def first_seen(lines: list[dict[str, Any]], kind: str, among: set[int]) -> dict[tuple[int, str], float]:
    """(connection or session, token) -> when the GUI first sent it to that tab, or handed it to that session."""
    first: dict[tuple[int, str], float] = {}
    for line in lines:
        if line[kind] in among:
            for token in line["tokens"]:
                first.setdefault((line[kind], token), line["t"])
    return first


def phase(
    browser: Any,
    pages: list[Any],
    target: Target,
    url: str,
    password: str,
    trace: Path,
    gui: Any,
    writes: int,
    newcomer: tuple[Any, Any] | None = None,
) -> dict[str, Any]:
    """T tabs open: a warm-up write every tab must show, then ``writes`` writes, a new tab opened midway
    (in ``newcomer``'s browser, with its warm context, when given: an operator's own browser)."""
    with target.stack.client() as client:
        name, warm = target.next_name()
        target.rename(client, name)
    settled = wait_all_seen(pages, warm, SETTLE_S)
    # The T tabs' websockets and sessions: those the warm-up write reached.
    conns = {line["conn"] for line in traced(trace, "conn") if warm in line["tokens"]}
    sessions = {line["session"] for line in traced(trace, "session") if warm in line["tokens"]}
    writer = Writes(target, writes, gui)
    cpu0, wall0 = gui.cpu_times(), time.monotonic()
    writer.start()
    time.sleep(writes / 3)
    newcomer_browser, warm_context = newcomer if newcomer is not None else (browser, pages[0].context)
    new_tab = new_tab_under_load(newcomer_browser, url, password, warm_context)
    writer.join()
    cpu1, wall1 = gui.cpu_times(), time.monotonic()
    end = time.time()
    last = writer.done[-1][0]
    wait_all_seen(pages, last, GRACE_S)
    seen = seen_on(pages)
    messages = traced(trace, "conn")
    sent = first_seen(messages, "conn", conns)
    during = [m for m in messages if m["conn"] in conns and writer.done[0][1] <= m["t"] <= end]
    events = traced(trace, "session")
    delivered = first_seen(events, "session", sessions)
    # The same event handed to a tab's session, by the tab's connection (None where the probe could not tell).
    handed = first_seen([e for e in events if e.get("conn") is not None], "conn", conns)
    sent_ms, screen_ms, delivered_ms, gui_ms, never_shown, never_sent = [], [], [], [], 0, 0
    for token, t0, _ in writer.done:
        delivered_ms += [(delivered[(s, token)] - t0) * 1e3 for s in sessions if (s, token) in delivered]
        gui_ms += [
            (sent[(c, token)] - handed[(c, token)]) * 1e3 for c in conns if {(c, token)} <= sent.keys() & handed.keys()
        ]
        for conn in conns:
            if (conn, token) in sent:
                sent_ms.append((sent[(conn, token)] - t0) * 1e3)
            else:
                never_sent += 1
        for tab in seen:
            if token in tab:
                screen_ms.append(tab[token] - t0 * 1e3)
            else:
                never_shown += 1
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "tabs": len(pages),
        "writes": len(writer.done),
        "warm_up_shown_everywhere": settled,
        "tabs_traced": len(conns),
        "event_delivered_ms": stats_ms(delivered_ms),
        "patch_sent_ms": stats_ms(sent_ms),
        "event_delivered_to_patch_sent_ms": stats_ms(gui_ms),  # the GUI's own share, tab by tab
        "patch_never_sent": never_sent,
        # Everything the T tabs were sent during the writes (the new tab's traffic is not theirs).
        "messages_per_write_per_tab": round(len(during) / (len(writer.done) * len(conns)), 2),
        "bytes_per_write_per_tab": round(sum(m["bytes"] for m in during) / (len(writer.done) * len(conns))),
        "to_screen_ms": stats_ms(screen_ms),
        "never_shown": never_shown,
        "gui_cpu_cores": round(cpu / (wall1 - wall0), 3),
        "gui_rss_mib_max": round(max(writer.rss) / 2**20, 1),
        "gui_rss_mib_end": round(writer.rss[-1] / 2**20, 1),
        "write_round_trip_ms": stats_ms([rtt * 1e3 for _, _, rtt in writer.done]),
        "new_tab": new_tab,
    }


def run_code(
    label: str,
    code_root: Path,
    stack: Stack,
    browser: Any,
    target: Target,
    tabs: list[int],
    writes: int,
    work: Path,
    view: str,
    profile: bool = False,
    newcomer_browser: Any = None,
) -> dict[str, Any]:
    trace = work / f"trace-{label}.jsonl"
    probe = ["--code-root", str(code_root), "--trace", str(trace)]
    stats = work / f"profile-{label}.pstats"
    if profile:
        probe += ["--profile", str(stats)]
    server = FletServer(
        script=PROBE,
        args=[*probe, *gui_args(stack.data_dir, stack.endpoint)],
        cwd=code_root,
        log_path=work / f"gui-{label}.log",
    )
    password = admin_password(stack.data_dir)
    result: dict[str, Any] = {"code": str(code_root), "per_tabs": {}}
    pages: list[Any] = []
    with server:
        assert server.proc is not None
        gui = psutil.Process(server.proc.pid)
        result["gui_rss_mib_idle"] = round(gui.memory_info().rss / 2**20, 1)
        opened: list[float] = []
        newcomer: tuple[Any, Any] | None = None
        if newcomer_browser is not None:  # its warm context: one that has had the console open
            page = open_tab(newcomer_browser, server.url, password)[0]
            newcomer = (newcomer_browser, page.context)
            page.close()
        try:
            for t in tabs:
                while len(pages) < t:
                    t0 = time.perf_counter()
                    try:
                        pages.append(operator_tab(browser, server.url, password, view, target.current))
                    except Exception as first:  # a click lost under load: once more, then it is a result
                        result["tab_open_retries"] = result.get("tab_open_retries", 0) + 1
                        sys.stderr.write(f"bench_tabs: tab {len(pages) + 1} did not open, again: {str(first)[:200]}\n")
                        try:
                            pages.append(operator_tab(browser, server.url, password, view, target.current))
                        except Exception as exc:
                            error = f"tab {len(pages) + 1} did not open: {str(exc)[:300]}"
                            result["per_tabs"][str(t)] = {"error": error}
                            return result
                    opened.append(time.perf_counter() - t0)
                if profile:
                    gui.send_signal(signal.SIGUSR2)  # the writes of this tab count only
                result["per_tabs"][str(t)] = phase(
                    browser, pages, target, server.url, password, trace, gui, writes, newcomer
                )
                if profile:
                    gui.send_signal(signal.SIGUSR1)
                    deadline = time.monotonic() + 30
                    while not stats.exists() and time.monotonic() < deadline:
                        time.sleep(0.2)
                    result["per_tabs"][str(t)]["profile"] = str(stats.rename(stats.with_suffix(f".T{t}.pstats")))
                sys.stderr.write(f"bench_tabs: {label} T={t}: {json.dumps(result['per_tabs'][str(t)])}\n")
        finally:
            result["tab_open_with_typing_s"] = stats_ms([s * 1e3 for s in opened])
            for page in pages:
                with suppress(Exception):
                    page.context.close()
    return result


@contextmanager
def exported(rev: str, work: Path) -> Iterator[Path]:
    """The tree of commit ``rev``, as a checkout of it would have it (``git archive``; nothing in .git changes)."""
    root = work / f"code-{rev}"
    root.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    yield root


def ratios(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t, now in new["per_tabs"].items():
        before = base["per_tabs"].get(t)
        if not before or "error" in before or "error" in now:
            out[t] = {"baseline": "did not run" if not before else before.get("error", "ran")}
            continue
        pairs = {
            "patch_sent_p95": (before["patch_sent_ms"]["p95"], now["patch_sent_ms"]["p95"]),
            "to_screen_p95": (before["to_screen_ms"]["p95"], now["to_screen_ms"]["p95"]),
            "gui_cpu_cores": (before["gui_cpu_cores"], now["gui_cpu_cores"]),
        }
        out[t] = {k: round(b / n, 2) if b and n else None for k, (b, n) in pairs.items()}  # baseline / now
    return out


def targets(result: dict[str, Any]) -> dict[str, Any]:
    at = result["per_tabs"].get("20")
    if not at or "error" in at:
        return {"reached_20_tabs": False}
    new_tab = at["new_tab"]

    def within_3s(kind: str) -> bool:
        tab = new_tab.get(kind, {})
        return "error" not in tab and tab["open_to_first_data_s"] <= 3.0

    return {
        "reached_20_tabs": True,
        "zero_lost": at["never_shown"] == 0,
        "patch_sent_p95_le_250ms": (at["patch_sent_ms"]["p95"] or 1e9) <= 250,
        "gui_under_half_a_core": at["gui_cpu_cores"] < 0.5,
        "new_tab_data_within_3s_cold": within_3s("cold"),
        "new_tab_data_within_3s_warm": within_3s("warm"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tabs", default="1,5,10,20", help="tab counts, increasing (tabs stay open)")
    parser.add_argument("--writes", type=int, default=30, help="writes (one a second) per tab count")
    parser.add_argument("--baseline", help="also run the GUI of this commit first (e.g. the one before a change)")
    parser.add_argument("--profile", action="store_true", help="cProfile each GUI process (stats in the work dir)")
    parser.add_argument("--view", choices=("clients", "dashboard"), default="clients", help="where the tabs stay")
    parser.add_argument("--browser-nice", type=int, default=10, help="the browser's niceness (0: as the GUI's)")
    parser.add_argument(
        "--new-tab-browser",
        choices=("shared", "own"),
        default="shared",
        help="where the new tab opens: in the T tabs' browser, or in a browser of its own at normal priority "
        "(a newcomer's machine: it does not draw the T tabs, though it shares these cores)",
    )
    ns = parser.parse_args()
    install_cleanup()
    if chromium_path() is None:
        sys.stderr.write("bench_tabs: Chromium is not installed (apt-get install chromium)\n")
        return 2
    from playwright.sync_api import sync_playwright

    tabs = sorted(int(t) for t in ns.tabs.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench-tabs-"))
    result: dict[str, Any] = {
        "benchmark": "tabs",
        "tabs": tabs,
        "writes_per_tab_count": ns.writes,
        "view": ns.view,
        "browser_nice": ns.browser_nice,
        "new_tab_browser": ns.new_tab_browser,
        "work": str(work),
    }
    stack = Stack(work / "stack", "--tick", "3600").start()
    try:
        with stack.client() as c:
            first = c.call("get_clients", {"limit": 1, "sort": "name"})["data"]["items"][0]
        target = Target(stack, first["id"], first["name"])
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=niced(work, ns.browser_nice), headless=True, args=BROWSER_FLAGS
            )
            own = ns.new_tab_browser == "own"
            newcomer = (
                pw.chromium.launch(executable_path=chromium_path(), headless=True, args=BROWSER_FLAGS) if own else None
            )
            runs: dict[str, Any] = {}
            if ns.baseline:
                with exported(ns.baseline, work) as old:
                    runs["baseline"] = {
                        "rev": ns.baseline,
                        **run_code(
                            "baseline",
                            old,
                            stack,
                            browser,
                            target,
                            tabs,
                            ns.writes,
                            work,
                            ns.view,
                            ns.profile,
                            newcomer,
                        ),
                    }
            runs["current"] = run_code(
                "current", ROOT, stack, browser, target, tabs, ns.writes, work, ns.view, ns.profile, newcomer
            )
            browser.close()
            if newcomer is not None:
                newcomer.close()
    finally:
        stack.stop()
    result.update(runs)
    if "baseline" in runs:
        result["baseline_over_current"] = ratios(runs["baseline"], runs["current"])
    result["targets"] = {
        "tabs": 20,
        "never_shown": 0,
        "patch_sent_p95_ms_max": 250,
        "gui_cpu_cores_max": 0.5,
        "new_tab_open_to_first_data_s_max": 3.0,
    }
    result["targets_met"] = targets(runs["current"])
    emit(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
