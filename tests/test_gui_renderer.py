"""The GUI serves its pages without cross-origin isolation, so Flutter's skwasm draws on one thread
(gui/renderer.py: multi-threaded skwasm in flet-web 1.0.5 corrupts its glyph cache under load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gui.csp import POLICY
from gui.downloads import DownloadLinks
from gui.renderer import Message, Receive, Scope, Send, single_threaded
from gui.server import build_app
from tests.conftest import run_async

pytestmark = pytest.mark.timeout(30)

ISOLATION = ("cross-origin-opener-policy", "cross-origin-embedder-policy")


async def never_called(page: Any) -> None:
    raise AssertionError("no Flet session in these tests")


@pytest.mark.parametrize("path", ["/", "/flutter_bootstrap.js", "/assets/FontManifest.json"])
def test_the_console_is_served_without_cross_origin_isolation(tmp_path: Path, path: str) -> None:
    async def body() -> None:
        transport = httpx.ASGITransport(app=build_app(never_called, DownloadLinks(tmp_path / "area")))
        async with httpx.AsyncClient(transport=transport, base_url="http://gui") as http:
            got = await http.get(path)
        assert got.status_code == 200, got.text[:200]
        assert not [h for h in ISOLATION if h in got.headers], got.headers
        assert got.headers["access-control-allow-origin"] == "*"  # Flet's other header stays

    run_async(body)


def test_only_the_isolation_headers_of_http_responses_are_left_out() -> None:
    sent: list[Message] = []
    headers = [(b"Cross-Origin-Opener-Policy", b"same-origin"), (b"content-type", b"text/html")]
    headers.append((b"cross-origin-embedder-policy", b"require-corp"))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b"page"})

    async def socket(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "websocket.accept", "headers": list(headers)})

    async def receive() -> Message:
        return {"type": "http.request"}

    async def record(message: Message) -> None:
        sent.append(message)

    async def body() -> None:
        await single_threaded(app)({"type": "http"}, receive, record)
        await single_threaded(socket)({"type": "websocket"}, receive, record)

    run_async(body)
    start, page, accept = sent
    assert start["headers"] == [(b"content-type", b"text/html")] and page["body"] == b"page"
    assert accept["headers"] == headers  # not a response the page's isolation depends on: untouched


def test_every_page_carries_the_console_s_content_security_policy(tmp_path: Path) -> None:
    async def body() -> None:
        transport = httpx.ASGITransport(app=build_app(never_called, DownloadLinks(tmp_path / "area")))
        async with httpx.AsyncClient(transport=transport, base_url="http://gui") as http:
            for path in ("/", "/flutter_bootstrap.js", "/main.dart.mjs"):
                got = await http.get(path)
                assert got.headers.get("content-security-policy") == POLICY, (path, got.headers)
        directives = dict(d.split(" ", 1) for d in POLICY.split("; "))
        # Scripts and connections from the console's own origin only: no CDN, no other host.
        assert directives["script-src"].split() == ["'self'", "'unsafe-inline'", "'wasm-unsafe-eval'"]
        assert directives["connect-src"] == "'self'" and directives["default-src"] == "'self'"

    run_async(body)
