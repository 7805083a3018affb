"""Archives to the browser: download_archive relayed to the browser's download as it streams.

An archive can be as large as a backup, so unlike a single file it is not fetched into the
GUI's download area first: ``offer_archive`` starts the stream, waits for its first chunk
(a refusal, e.g. NOT_FOUND or FILE_DAMAGED known up front, is answered to the tab and
nothing is offered), then publishes a one-time link (gui/downloads.py: this tab's browser
only, once, and for no longer than the stream may wait). When the browser opens it, the
response is fed chunk by chunk, with the archive's size as its Content-Length; each chunk
is acknowledged only once handed to the response, so the backend never runs more than the
stream's window ahead of the browser and memory stays bounded at every hop. The chunks come
over the backend's bulk lane when it has one (the client library asks, and sends each ack
to the socket its stream came by: client/lane.py), else through the bridge.

The last chunk is held back until the final reply has come (the backend verified every
member against its recorded SHA-256) and the bytes relayed, in order, make its size: a stream that fails (content found damaged while streaming, the
backend gone) or does not match ends the response short of its Content-Length, so the
browser marks the download failed instead of keeping a bad archive. ``ArchiveOffer.done``
says how it ended, for the tab to show.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from client.async_connection import AsyncBridgeClient
from client.download import Progress
from client.errors import local_error
from gui.downloads import DownloadLinks, Requester
from protocol.catalogue_restore import MEDIA_TYPE, archive_name
from protocol.envelope import Header
from protocol.errors import ErrorCode
from protocol.responses import Reply
from protocol.streaming import StreamReceiver

log = structlog.get_logger()

OP = "download_archive"
BROWSER_DESTINATION = "browser"  # the catalogue asks where the requester writes it: the browser's download


class RelayFailed(Exception):
    """Ends the browser's response short: the archive did not arrive whole and verified."""


@dataclass(slots=True)
class ArchiveOffer:
    url: str  # the one-time link: open it in the tab (its response is an attachment)
    filename: str
    total: int  # bytes the browser receives
    done: asyncio.Future[Reply]  # the verified final reply, or why the download failed or was dropped
    cancel: Callable[[], None]  # drop it (the operator cancelled): an opened download fails, an unopened link is void


class ArchiveRelay:
    """One download_archive stream, from the bridge to one HTTP response (``StreamedContent`` of downloads.py)."""

    media_type = MEDIA_TYPE

    def __init__(self, client: AsyncBridgeClient, args: dict[str, Any], progress: Progress | None = None) -> None:
        self.client = client
        self.args = args
        self.progress = progress
        self.total = 0
        self.receiver: StreamReceiver | None = None
        self.done: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._chunks: asyncio.Queue[tuple[bytes, list[bytes]]] = asyncio.Queue()
        self._first = asyncio.Event()
        self._call: asyncio.Task[Reply] | None = None

    def _on_chunk(self, header: Header, data: bytes) -> list[bytes]:
        if self.receiver is None:
            self.receiver = StreamReceiver(header.reply_to or "", hashed=False)  # an archive has no whole hash
        # Out of order raises: the client library then fails the call and cancels the stream.
        ack = self.receiver.on_chunk(header.fields["index"], header.fields["offset"], header.get("total") or 0, data)
        self.total = self.receiver.total or 0
        self._chunks.put_nowait((data, ack))
        self._first.set()
        return []  # acknowledged once the browser has it (body)

    async def start(self) -> Reply | None:
        """Send the request; None once the first chunk is here, else the reply that ended it before any."""
        self._call = asyncio.ensure_future(self.client.stream(OP, self.args, self._on_chunk))
        first = asyncio.ensure_future(self._first.wait())
        await asyncio.wait({self._call, first}, return_when=asyncio.FIRST_COMPLETED)
        first.cancel()
        if self._first.is_set():
            return None
        reply = self._call.result()
        if reply["success"]:  # an archive is never empty (its end blocks at least): not one
            reply = local_error(ErrorCode.INTERNAL, f"{OP} answered without any content")
        self._finish(reply)
        return reply

    async def body(self) -> AsyncIterator[bytes]:
        """The archive for the browser's response; raises RelayFailed when it must not complete."""
        sent = 0
        try:
            if self.done.done():  # dropped before the browser came: nothing of it may complete
                raise RelayFailed(f"{self.done.result().get('error_code')}: the archive download was dropped")
            while True:
                data, ack = await self._next()
                sent += len(data)
                if sent >= self.total:
                    await self.client.send_frames(ack)  # the backend sends the final reply after the last ack
                    reply = await self._verified()
                    self._finish(reply)
                    if not reply["success"]:
                        raise RelayFailed(f"{reply.get('error_code')}: {reply.get('message')}")
                    yield data
                    return
                yield data
                await self.client.send_frames(ack)
                if self.progress is not None:
                    self.progress(sent, self.total)
        finally:
            if not self.done.done():  # the browser went away, or the stream failed: let the backend go
                self.cancel()

    async def _next(self) -> tuple[bytes, list[bytes]]:
        assert self._call is not None
        with contextlib.suppress(asyncio.QueueEmpty):
            return self._chunks.get_nowait()
        got = asyncio.ensure_future(self._chunks.get())
        await asyncio.wait({got, self._call}, return_when=asyncio.FIRST_COMPLETED)
        if got.done():
            return got.result()
        got.cancel()
        reply = self._ended()  # ended before its last chunk: an error (STREAM_ABANDONED, ...), or cancelled
        self._finish(reply)
        raise RelayFailed(f"{reply.get('error_code')}: {reply.get('message')}")

    async def _verified(self) -> Reply:
        assert self._call is not None and self.receiver is not None
        await asyncio.wait({self._call})
        reply = self._ended()
        if not reply["success"]:
            return reply
        size = self.receiver.received
        if size != reply["data"]["size"]:
            return local_error(
                ErrorCode.INTERNAL,
                f"the archive relayed does not match: {size} bytes, the backend's {reply['data']['size']} bytes",
            )
        return reply

    def _ended(self) -> Reply:
        assert self._call is not None and self._call.done()
        if self._call.cancelled():  # cancel() already said so in ``done``
            return local_error(ErrorCode.CANCELLED, "the archive download was cancelled")
        return self._call.result()

    def _finish(self, reply: Reply) -> None:
        if not self.done.done():
            self.done.set_result(reply)
            log.info("gui.archive_relayed", ok=reply["success"], error_code=reply.get("error_code"), bytes=self.total)

    def cancel(self) -> None:
        """Drop the stream (the link expired, the tab signed out, the browser left): the backend lets it go."""
        if self._call is not None and not self._call.done():
            self._call.cancel()  # the client library sends the cancel
        self._finish(local_error(ErrorCode.CANCELLED, "the archive download was dropped before the browser had it all"))


async def offer_archive(
    links: DownloadLinks,
    client: AsyncBridgeClient,
    *,
    snapshot_id: str,
    paths: list[str],
    owner: str,
    requester: Requester,
    allow_damaged: bool = False,
    progress: Progress | None = None,
) -> ArchiveOffer | Reply:
    """Start download_archive of ``paths`` of a snapshot and offer it to ``requester``'s browser.

    Returns the offer (open its ``url`` in the tab; await ``done`` for the outcome) once the
    first chunk is here, or the reply saying why there is nothing to offer. ``owner`` is the
    tab's sign-in (GuiSession.key): its links end with it."""
    args = {
        "snapshot_id": snapshot_id,
        "paths": paths,
        "destination_path": BROWSER_DESTINATION,
        "allow_damaged": allow_damaged,
    }
    relay = ArchiveRelay(client, args, progress)
    refused = await relay.start()
    if refused is not None:
        return refused
    filename = archive_name(snapshot_id, paths)
    url = links.publish_stream(relay, filename, owner, requester)
    return ArchiveOffer(url, filename, relay.total, relay.done, relay.cancel)
