"""Archives to the browser (gui/archive_relay.py): download_archive relayed through the GUI's one-time link
as it streams, over the real HTTP route, from a real backend core driven with the worker's credit rules."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from actors.backends.api import StreamReply
from client.async_connection import AsyncBridgeClient
from gui.archive_relay import ArchiveOffer, RelayFailed, offer_archive
from gui.downloads import DownloadLinks, Requester
from gui.server import build_app
from protocol import responses
from protocol.envelope import ACK, decode_header
from protocol.errors import ProtocolError
from protocol.responses import Reply
from protocol.streaming import WINDOW, StreamSender
from tests.conftest import run_async
from tests.contract.harness import START, Backend, close, make_backend
from tests.contract.runs import RunFile, backup_run, seeded

pytestmark = pytest.mark.timeout(30)

BROWSER = Requester("127.0.0.1", "Mozilla/5.0 test")
NOTES, CAT, BIG = "/home/alpha/notes.txt", "/home/alpha/photos/cat.jpg", "/home/alpha/big.bin"


class CoreClient:
    """An AsyncBridgeClient stand-in over a backend core: chunks within the window, more only as acks come."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.sender: StreamSender | None = None
        self.cancelled = False
        self._acked = asyncio.Event()

    async def stream(self, op: str, args: dict[str, Any], on_chunk: Any, *, timeout: float | None = None) -> Reply:
        try:
            reply = self.backend.run(op, args)
        except ProtocolError as exc:
            return responses.as_reply(responses.from_protocol_error(exc, mode=self.backend.mode))
        assert isinstance(reply, StreamReply)
        self.sender = StreamSender("r1", reply.total, reply.read_at)
        try:
            while not self.sender.done:
                for frames in self.sender.ready_chunks():
                    assert on_chunk(decode_header(frames[0]), frames[1]) == []  # the relay acks later
                self._acked.clear()
                await self._acked.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        try:
            return responses.as_reply(reply.final())
        except ProtocolError as exc:
            return responses.as_reply(responses.from_protocol_error(exc, mode=self.backend.mode))

    async def send_frames(self, frames: list[bytes]) -> None:
        header = decode_header(frames[0])
        assert header.kind == ACK and self.sender is not None
        self.sender.on_ack(header.fields["index"])
        self._acked.set()


@pytest.fixture
def alpha(tmp_path: Path) -> Iterator[Backend]:
    backend = make_backend("mock", tmp_path)
    big = RunFile(BIG, b"\0" * 3_000_000, START - timedelta(hours=1))  # more chunks than the window holds
    backup_run(backend, [seeded(NOTES), seeded(CAT), big])
    yield backend
    close(backend)


def snapshot_id(backend: Backend) -> str:
    return str(backend.call("list_snapshots", client_id=backend.clients["alpha"])["items"][0]["id"])


async def offer(links: DownloadLinks, client: CoreClient, backend: Backend, paths: list[str]) -> ArchiveOffer | Reply:
    return await offer_archive(
        links,
        cast(AsyncBridgeClient, client),
        snapshot_id=snapshot_id(backend),
        paths=paths,
        owner="tab-1",
        requester=BROWSER,
    )


def test_the_browser_gets_the_archive_as_it_streams_verified(alpha: Backend, tmp_path: Path) -> None:
    links = DownloadLinks(tmp_path / "area")
    client = CoreClient(alpha)

    async def body() -> None:
        made = await offer(links, client, alpha, ["/home/alpha"])
        assert isinstance(made, ArchiveOffer) and made.filename == "alpha.tar" and not made.done.done()
        assert client.sender is not None and client.sender.next_index == WINDOW  # nothing runs ahead of the browser
        transport = httpx.ASGITransport(app=build_app(never_called, links), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gui") as http:
            assert (await http.get(made.url, headers={"user-agent": "curl/8"})).status_code == 410
            got = await http.get(made.url, headers={"user-agent": BROWSER.user_agent})
            assert got.status_code == 200 and got.headers["content-type"] == "application/x-tar"
            assert int(got.headers["content-length"]) == made.total == len(got.content)
            assert got.headers["content-disposition"].startswith('attachment; filename="alpha.tar"')
            assert (await http.get(made.url, headers={"user-agent": BROWSER.user_agent})).status_code == 410
        final = await made.done
        assert final["success"] and final["data"]["size"] == len(got.content)
        with tarfile.open(fileobj=io.BytesIO(got.content)) as tar:
            assert sorted(m.name for m in tar.getmembers() if m.isfile()) == [
                "alpha/Report.pdf",
                "alpha/big.bin",
                "alpha/notes.txt",
                "alpha/photos/cat.jpg",
            ]
        assert len(links) == 0 and not any(links.root.iterdir())  # nothing was staged on disk

    run_async(body)


async def never_called(page: Any) -> None:
    raise AssertionError("no Flet session in these tests")


def test_a_refusal_is_answered_to_the_tab_and_nothing_is_offered(alpha: Backend, tmp_path: Path) -> None:
    links = DownloadLinks(tmp_path / "area")

    async def body() -> None:
        for paths, code in (([NOTES, "/home/alpha/nope"], "NOT_FOUND"), (["/home/../etc"], "BAD_REQUEST")):
            refused = await offer(links, CoreClient(alpha), alpha, paths)
            assert isinstance(refused, dict) and refused["error_code"] == code
        assert len(links) == 0

    run_async(body)


def test_content_found_damaged_while_streaming_never_completes_the_browsers_download(
    alpha: Backend, tmp_path: Path
) -> None:
    links = DownloadLinks(tmp_path / "area")
    alpha.corrupt(alpha.files[CAT])  # the mock finds it only while streaming

    async def body() -> None:
        made = await offer(links, CoreClient(alpha), alpha, ["/home/alpha"])
        assert isinstance(made, ArchiveOffer)
        transport = httpx.ASGITransport(app=build_app(never_called, links), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gui") as http:
            with pytest.raises(RelayFailed, match="FILE_DAMAGED"):  # the response ends short of its length
                await http.get(made.url, headers={"user-agent": BROWSER.user_agent})
        final = await made.done
        assert final["error_code"] == "FILE_DAMAGED" and CAT in final["message"]

    run_async(body)


def test_an_unopened_link_ends_its_stream_with_the_tab(alpha: Backend, tmp_path: Path) -> None:
    links = DownloadLinks(tmp_path / "area")
    client = CoreClient(alpha)

    async def body() -> None:
        made = await offer(links, client, alpha, [BIG])
        assert isinstance(made, ArchiveOffer) and made.filename == "big.bin.tar"
        assert links.revoke("tab-1") == 1
        final = await made.done
        assert final["error_code"] == "CANCELLED"
        await asyncio.sleep(0)  # the stream's task sees its cancellation
        assert client.cancelled

    run_async(body)


def test_a_cancelled_offer_never_completes_the_browsers_download(alpha: Backend, tmp_path: Path) -> None:
    links = DownloadLinks(tmp_path / "area")

    async def body() -> None:
        transport = httpx.ASGITransport(app=build_app(never_called, links), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gui") as http:
            # Cancelled before the browser came: the link gives nothing that could pass for the archive.
            client = CoreClient(alpha)
            made = await offer(links, client, alpha, [BIG])
            assert isinstance(made, ArchiveOffer)
            made.cancel()
            assert (await made.done)["error_code"] == "CANCELLED"
            with pytest.raises(RelayFailed, match="CANCELLED"):
                await http.get(made.url, headers={"user-agent": BROWSER.user_agent})
            await asyncio.sleep(0)
            assert client.cancelled
        # Cancelled while the browser takes it (the response's body, as the route relays it; httpx's
        # ASGI transport would take it whole first): it ends short, the backend lets the stream go.
        client = CoreClient(alpha)
        made = await offer(links, client, alpha, [BIG])
        assert isinstance(made, ArchiveOffer)
        link = links.take(made.url.rsplit("/", 1)[1], BROWSER)
        assert link is not None and link.stream is not None
        taken = 0
        with pytest.raises(RelayFailed, match="CANCELLED"):
            async for chunk in link.stream.body():
                taken += len(chunk)
                made.cancel()
        assert 0 < taken < made.total
        assert (await made.done)["error_code"] == "CANCELLED" and client.cancelled

    run_async(body)
