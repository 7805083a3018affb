"""The GUI (``python -m gui``) with a trace of what its websockets send, for bench_tabs.

    python bench/gui_probe.py --code-root DIR --trace FILE [python -m gui arguments...]

Imports ``gui`` from ``--code-root`` (this checkout, or an older commit exported by the benchmark),
so any version of the GUI is timed the same way, in its own process: every websocket message
that carries a benchmark token (``bench-NNNN``, the names bench_tabs writes) is recorded when
Flet hands it to the websocket, after its send queue, as one JSON line: the time (epoch seconds),
the connection (one per tab), the tokens and the message's size.
"""

from __future__ import annotations

import argparse
import json
import re
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
        if tokens:
            line = {"t": time.time(), "conn": connection, "tokens": tokens, "bytes": len(data)}
            out.write(json.dumps(line) + "\n")

    return send_bytes


def install(out: IO[str]) -> None:
    from flet_web.fastapi.flet_app import FletApp

    original = FletApp.handle

    async def handle(self: Any, websocket: Any) -> None:
        websocket.send_bytes = traced_send(websocket.send_bytes, id(self), out)
        await original(self, websocket)

    FletApp.handle = handle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code-root", type=Path, required=True)
    parser.add_argument("--trace", type=Path, required=True)
    ns, gui_argv = parser.parse_known_args()
    sys.path.insert(0, str(ns.code_root.resolve()))
    out = ns.trace.open("a", buffering=1)  # line-buffered: the benchmark reads it while the GUI runs
    install(out)
    import gui
    from gui.__main__ import main as gui_main

    out.write(json.dumps({"code": gui.__file__}) + "\n")  # which GUI this process runs

    try:
        return gui_main(gui_argv)
    finally:
        out.close()


if __name__ == "__main__":
    raise SystemExit(main())
