"""The GUI (``python -m gui``) with a trace of what its websockets send, for bench_tabs.

    python bench/gui_probe.py --code-root DIR --trace FILE [python -m gui arguments...]

Imports ``gui`` from ``--code-root`` (this checkout, or an older commit exported by the benchmark),
so any version of the GUI is timed the same way, in its own process. Two kinds of JSON lines:

* every websocket message, when Flet hands it to the websocket, after its send queue: the time
  (epoch seconds), the connection (one per tab), the benchmark tokens it carries (``bench-NNNN``,
  the names bench_tabs writes) and its size;
* every live event that carries one, when a tab's session is handed it (``"event": true``, with
  the tab's connection): so write -> event delivered and event delivered -> patch sent, tab by
  tab, can be told apart.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

TOKEN = re.compile(rb"bench-\d{4}")


def traced_send(send: Callable[[bytes], Awaitable[None]], connection: int, out: IO[str]) -> Callable[[bytes], Any]:
    async def send_bytes(data: bytes) -> None:
        await send(data)
        tokens = sorted({t.decode() for t in TOKEN.findall(data)})
        out.write(json.dumps({"t": time.time(), "conn": connection, "tokens": tokens, "bytes": len(data)}) + "\n")

    return send_bytes


def tab_connection() -> int | None:
    """The websocket (as traced for sends) of the tab whose task this is: a session's event follower
    is started from its tab's sign-in, whose context holds that tab's page."""
    from flet.controls.context import _context_page

    page = _context_page.get(None)
    try:
        return id(page.session.connection) if page is not None and page.session.connection is not None else None
    except RuntimeError:  # the tab's session is gone
        return None


def install(out: IO[str]) -> None:
    from flet_web.fastapi.flet_app import FletApp

    from gui.live import LiveUpdates

    on_delivery = LiveUpdates.on_delivery

    async def delivered(self: Any, delivery: Any) -> None:
        tokens = sorted({t.decode() for t in TOKEN.findall(repr(delivery).encode())})
        if tokens:
            line = {"t": time.time(), "session": id(self), "conn": tab_connection(), "tokens": tokens, "event": True}
            out.write(json.dumps(line) + "\n")
        await on_delivery(self, delivery)

    LiveUpdates.on_delivery = delivered  # type: ignore[method-assign]

    original = FletApp.handle

    async def handle(self: Any, websocket: Any) -> None:
        websocket.send_bytes = traced_send(websocket.send_bytes, id(self), out)
        await original(self, websocket)

    FletApp.handle = handle


class Profiling:
    """cProfile of the GUI's event loop thread, on demand: SIGUSR2 starts afresh, SIGUSR1 writes what
    was seen since (signal handlers run in the main thread, the one the loop runs in)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.profile: cProfile.Profile | None = None

    def restart(self) -> None:
        if self.profile is not None:
            self.profile.disable()
        self.profile = cProfile.Profile()
        self.profile.enable()

    def dump(self) -> None:
        if self.profile is not None:
            self.profile.disable()
            self.profile.dump_stats(self.path)
            self.profile = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code-root", type=Path, required=True)
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("--profile", type=Path, help="cProfile the GUI from SIGUSR2 to SIGUSR1, which writes it here")
    ns, gui_argv = parser.parse_known_args()
    sys.path.insert(0, str(ns.code_root.resolve()))
    out = ns.trace.open("a", buffering=1)  # line-buffered: the benchmark reads it while the GUI runs
    import gui
    from gui.__main__ import main as gui_main

    install(out)
    out.write(json.dumps({"code": gui.__file__}) + "\n")  # which GUI this process runs

    if ns.profile is not None:
        profiling = Profiling(ns.profile)
        signal.signal(signal.SIGUSR2, lambda signum, frame: profiling.restart())
        signal.signal(signal.SIGUSR1, lambda signum, frame: profiling.dump())
    try:
        return gui_main(gui_argv)
    finally:
        out.close()


if __name__ == "__main__":
    raise SystemExit(main())
