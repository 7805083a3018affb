"""The GUI's HTTP server: the Flet app plus the one-time download route, on one port.

``ft.run`` serves only the Flet app, so the GUI builds the same FastAPI application
itself (flet-web's ``FastAPI``, whose lifespan starts Flet's session manager, with
``flet_web.fastapi.app`` mounted at ``/``) and adds ``GET /download/<token>`` in front
of the mount: a browser download comes from the page's own origin, with no second port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import flet_web.fastapi as flet_fastapi
import structlog
import uvicorn
from fastapi import Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from flet.app import AppCallable

from gui.csp import own_origin_only
from gui.downloads import DOWNLOAD_PATH, DownloadLinks, Requester, content_disposition
from gui.renderer import single_threaded

log = structlog.get_logger()

CHUNK = 256 * 1024
SHUTDOWN_GRACE_S = 2  # open websockets would otherwise hold a SIGTERM back


def requester_of(request: Request) -> Requester:
    return Requester(request.client.host if request.client else "", request.headers.get("user-agent", ""))


def _stream(handle: IO[bytes]) -> Iterator[bytes]:
    # Starlette runs a plain iterator in a worker thread; the handle closes however the response ends.
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()


def build_app(main: AppCallable, links: DownloadLinks) -> Any:
    app = flet_fastapi.FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(DOWNLOAD_PATH + "/{token}")
    async def download(token: str, request: Request) -> Response:
        link = links.take(token, requester_of(request))
        if link is None:
            return PlainTextResponse(
                "This download link has expired or was already used. Download the file again from the console.",
                status_code=410,
            )
        headers = {"Content-Disposition": content_disposition(link.filename), "Cache-Control": "no-store"}
        if link.stream is not None:  # relayed as it streams (an archive): it checks itself, ending short if bad
            links.served(link)
            headers["Content-Length"] = str(link.stream.total)
            return StreamingResponse(link.stream.body(), media_type=link.stream.media_type, headers=headers)
        assert link.path is not None
        try:
            handle = link.path.open("rb")
            size = link.path.stat().st_size
        except OSError as exc:
            log.error("gui.download_missing", error=str(exc))
            return PlainTextResponse("The downloaded file is no longer there.", status_code=410)
        links.served(link)  # unlinked now; the open handle still streams it
        headers["Content-Length"] = str(size)
        return StreamingResponse(_stream(handle), media_type="application/octet-stream", headers=headers)

    # After the route: the mount at "/" answers every other path (the SPA and its websocket).
    # Without cross-origin isolation: Flutter then draws on one thread (gui/renderer.py says why);
    # scripts, fonts and connections from the console's own origin only (gui/csp.py says why).
    app.mount("/", own_origin_only(single_threaded(flet_fastapi.app(main, no_cdn=True))))
    return app


def serve(main: AppCallable, links: DownloadLinks, host: str, port: int, log_level: str = "warning") -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles both)."""
    config = uvicorn.Config(
        build_app(main, links),
        host=host,
        port=port,
        ws="websockets-sansio",  # what ft.run configures
        # The standard asyncio loop, as under ft.run: uvicorn would take uvloop when it is installed,
        # and the zmq.asyncio sockets of every tab have only ever run (and been tested) on this one.
        loop="asyncio",
        log_level=log_level,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    uvicorn.Server(config).run()
