"""The console's pages are served without cross-origin isolation, so Flutter draws them on one thread.

flet-web 1.0.5 is Flutter 3.44.8 compiled to WebAssembly with the skwasm renderer, and Flet's
server sends ``Cross-Origin-Opener-Policy: same-origin`` and ``Cross-Origin-Embedder-Policy:
require-corp`` with every response. A page served so is cross-origin isolated, and there skwasm
runs multi-threaded: text layout on the page's thread, rasterization on a worker. In that build
the two share Skia's glyph cache with no working lock (emscripten wasm workers make mutexes
no-ops), and under text churn and CPU load they corrupt it and the heap: flutter/flutter#190039,
fixed by #190048 for Flutter 3.47. Seen here: a top bar whose pill text was measured as wide as the
window with glyphs missing from the title, kept until the next change; tabs whose drawing stopped
at Flet's "Working..." page while their accessibility tree went on to show the console.

Without those two headers the page is not cross-origin isolated and skwasm runs single-threaded,
layout and rasterization on the same thread (flutter_bootstrap.js: ``skwasmSingleThreaded`` when
``!crossOriginIsolated``). The console needs no isolation: it uses no SharedArrayBuffer of its own
and loads nothing from another origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ISOLATION_HEADERS = frozenset({b"cross-origin-opener-policy", b"cross-origin-embedder-policy"})


def single_threaded(app: ASGIApp) -> ASGIApp:
    """``app`` with the cross-origin isolation headers left out of every HTTP response."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_unisolated(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                message["headers"] = [(k, v) for k, v in headers if k.lower() not in ISOLATION_HEADERS]
            await send(message)

        await app(scope, receive, send_unisolated)

    return serve
