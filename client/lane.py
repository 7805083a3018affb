"""The requester's end of the bulk lane (protocol/lane.py): a ticketed stream fetched from its backend.

The bridge answered a streamed request with a ticket: the backend's bulk endpoint and public
key (from its registration), maybe its same-host door, and a single-use token bound to this
connection's key. Here a fresh DEALER connects there, redeems the token and hands each chunk
to the same ``on_chunk`` as a stream through the bridge would, sending its acks back on the
lane, until the final reply. Anything but a chunk or reply of this request is ignored.

The doors are tried in turn: the same-host one (a Unix socket, no CURVE) when this process may
trust it (``local_door_usable``), then the CURVE one with the same key pair as the bridge
connection. Silence before anything came on a door (not reachable from this machine, the key
refused, nobody listening on the socket) moves on to the next while the ticket lives; after the
last, ``LaneUnreachable``: the caller asks again through the bridge. Silence later is a TIMEOUT
reply, as a stream through the bridge would end.

The exchange itself (``Exchange``) does no I/O: the blocking ``fetch`` (client/connection.py)
and the asyncio ``fetch_async`` (client/async_connection.py, the GUI) share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from client.errors import decoded_reply, handling_failed, local_error
from protocol.envelope import CANCEL, CHUNK, REPLY, Header, decode_header, encode_header
from protocol.errors import ErrorCode, ProtocolError
from protocol.lane import IPC_SCHEME, TICKET_TTL_S, redeem_frames
from protocol.responses import Reply
from runtime.credentials import ConnectionFile

# A chunk's bytes arrive as a view of the received message: no copy of a megabyte per chunk.
ChunkHandler = Callable[[Header, bytes | memoryview], list[bytes] | None]
AsyncChunkHandler = Callable[[Header, bytes], list[bytes] | None]

FIRST_ANSWER_S = TICKET_TTL_S / 2  # the backend answers a redeem at once: chunks, or why not
TTL_MARGIN_S = 0.5  # a later door is not tried when the ticket would expire on its way there


class LaneUnreachable(Exception):
    """Nothing came from the bulk lane: nothing was handed to ``on_chunk`` either."""


@dataclass(frozen=True, slots=True)
class Door:
    endpoint: str
    server_key: str | None  # None: the same-host door, where the file system stands in for CURVE

    @property
    def name(self) -> str:
        return "ipc" if self.server_key is None else "tcp"


def local_door_usable(endpoint: str) -> bool:
    """Whether this process may fetch from the same-host door at ``endpoint``.

    It carries no CURVE, so nothing proves who listens there but the file system: the socket's
    directory must be this user's and writable by nobody else, and the socket too, so whoever
    bound it is this user or root (who could read our data anyway). A path announced by a
    backend on another machine fails this here (absent, or not ours), and so does a socket we
    may not open (``os.access``, checked first)."""
    if not endpoint.startswith(IPC_SCHEME):
        return False
    path = endpoint.removeprefix(IPC_SCHEME)
    if not os.access(path, os.R_OK | os.W_OK):
        return False
    try:
        directory, sock = os.stat(os.path.dirname(path)), os.lstat(path)
    except OSError:
        return False
    me = os.geteuid()
    return (
        stat.S_ISSOCK(sock.st_mode)
        and sock.st_uid == me
        and directory.st_uid == me
        and not directory.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def doors(ticket: Header, *, same_host: bool = True) -> list[Door]:
    """The doors of ``ticket`` to try, in turn (``same_host`` False: the CURVE door only)."""
    found = []
    ipc = ticket.get("ipc_endpoint")
    if same_host and isinstance(ipc, str) and local_door_usable(ipc):
        found.append(Door(ipc, None))
    found.append(Door(str(ticket.get("endpoint")), str(ticket.get("server_key"))))
    return found


def connect(sock: zmq.Socket[Any], connection: ConnectionFile, door: Door) -> None:
    sock.setsockopt(zmq.LINGER, 0)
    if door.server_key is not None:
        sock.curve_serverkey = door.server_key.encode("ascii")
        sock.curve_publickey = connection.public_key.encode("ascii")
        sock.curve_secretkey = connection.secret_key.encode("ascii")
    sock.connect(door.endpoint)


class Exchange:
    """One redeemed ticket on one door, without the I/O: what each message means, and how long to wait."""

    def __init__(self, op: str, ticket: Header, door: Door, first_wait: float, timeout: float, *, later: bool):
        """``later``: an earlier door was silent; a refusal here then means that door's redeem got
        through after all (the ticket is used up): as good as silence, the caller asks the bridge again."""
        self.op, self.door, self.first_wait, self.timeout, self.later = op, door, first_wait, timeout, later
        self.request_id = ticket.reply_to
        self.token: str = ticket.fields["token"]
        self.started = False

    def wait(self) -> float:
        return self.timeout if self.started else self.first_wait

    def silence(self) -> Reply:
        """What silence for ``wait()`` means; raises LaneUnreachable before anything came."""
        wait = self.wait()
        if not self.started:
            raise LaneUnreachable(f"no answer from the bulk lane at {self.door.endpoint} within {wait:g}s")
        return local_error(
            ErrorCode.TIMEOUT, f"{self.op}: the backend's bulk lane at {self.door.endpoint} fell silent for {wait:g}s"
        )

    def read(self, header_frame: bytes, body: bytes | memoryview) -> Header | Reply | None:
        """A chunk's header (hand it on), the final reply, or None (not this request's)."""
        try:
            header = decode_header(header_frame)
        except ProtocolError:
            return None
        if header.kind == REPLY and header.reply_to is None and self.later and not self.started:
            raise LaneUnreachable(f"the bulk lane at {self.door.endpoint} refused a ticket another door may have used")
        self.started = True
        if header.kind == CHUNK and header.reply_to == self.request_id:
            return header
        if header.kind == REPLY and header.reply_to in (self.request_id, None):
            return decoded_reply(self.op, bytes(body))
        return None

    def cancel_frames(self) -> list[bytes]:
        return [encode_header(CANCEL, reply_to=self.request_id), b""]


def _exchanges(op: str, ticket: Header, timeout: float, first_wait: float, same_host: bool) -> Iterator[Exchange]:
    """Each door's exchange in turn, while the ticket lives; then LaneUnreachable."""
    deadline = time.monotonic() + TICKET_TTL_S - TTL_MARGIN_S
    for n, door in enumerate(doors(ticket, same_host=same_host)):
        wait = first_wait if n == 0 else min(first_wait, deadline - time.monotonic())
        if wait <= 0:
            break
        yield Exchange(op, ticket, door, wait, timeout, later=n > 0)
    raise LaneUnreachable("no door of the bulk lane answered while the ticket lived")


def fetch(
    ctx: zmq.Context[zmq.Socket[bytes]],
    connection: ConnectionFile,
    op: str,
    ticket: Header,
    on_chunk: ChunkHandler,
    timeout: float,
    *,
    first_wait: float = FIRST_ANSWER_S,
    same_host: bool = True,
) -> Reply:
    """The stream ``ticket`` names, chunk by chunk into ``on_chunk``; returns its final reply.

    ``timeout``: the most to wait for the next message once the stream has begun; ``first_wait``
    for the first on each door (a refused handshake is silence): LaneUnreachable after the last.
    ``same_host`` False leaves the same-host door out (a benchmark's comparison)."""
    for exchange in _exchanges(op, ticket, timeout, first_wait, same_host):
        with contextlib.suppress(LaneUnreachable):
            return _fetch_door(ctx, connection, exchange, on_chunk)
    raise AssertionError("unreachable")


def _fetch_door(
    ctx: zmq.Context[zmq.Socket[bytes]], connection: ConnectionFile, x: Exchange, on_chunk: ChunkHandler
) -> Reply:
    sock = ctx.socket(zmq.DEALER)
    try:
        connect(sock, connection, x.door)
        sock.send_multipart(redeem_frames(x.token))
        while True:
            if not sock.poll(int(x.wait() * 1000), zmq.POLLIN):
                return x.silence()
            message = sock.recv_multipart(copy=False)
            got = x.read(message[0].bytes, message[1].buffer if len(message) > 1 else b"")
            if isinstance(got, Header):
                try:
                    ack = on_chunk(got, message[1].buffer)
                except Exception as exc:
                    sock.send_multipart(x.cancel_frames())
                    return handling_failed(x.op, exc)
                if ack:
                    sock.send_multipart(ack)
            elif got is not None:
                return got
    finally:
        sock.close(0)


async def fetch_async(
    ctx: zmq.asyncio.Context,
    connection: ConnectionFile,
    op: str,
    ticket: Header,
    on_chunk: AsyncChunkHandler,
    timeout: float,
    *,
    first_wait: float = FIRST_ANSWER_S,
    sockets: dict[str, zmq.asyncio.Socket] | None = None,
) -> Reply:
    """``fetch`` on asyncio. While a door is open its socket is in ``sockets`` under the request id,
    for a handler that acknowledges chunks later than it returns (client.async_connection.send_frames).
    Cancelling the calling task cancels the stream."""
    for exchange in _exchanges(op, ticket, timeout, first_wait, True):
        with contextlib.suppress(LaneUnreachable):
            return await _fetch_door_async(ctx, connection, exchange, on_chunk, sockets if sockets is not None else {})
    raise AssertionError("unreachable")


async def _fetch_door_async(
    ctx: zmq.asyncio.Context,
    connection: ConnectionFile,
    x: Exchange,
    on_chunk: AsyncChunkHandler,
    sockets: dict[str, zmq.asyncio.Socket],
) -> Reply:
    sock = ctx.socket(zmq.DEALER)
    request_id = x.request_id or ""
    sockets[request_id] = sock
    try:
        connect(sock, connection, x.door)
        await sock.send_multipart(redeem_frames(x.token))
        while True:
            if not await sock.poll(int(x.wait() * 1000)):  # POLLIN
                return x.silence()
            message = await sock.recv_multipart()
            body = message[1] if len(message) > 1 else b""
            got = x.read(message[0], body)
            if isinstance(got, Header):
                try:
                    ack = on_chunk(got, body)
                except Exception as exc:
                    await sock.send_multipart(x.cancel_frames())
                    return handling_failed(x.op, exc)
                if ack:
                    await sock.send_multipart(ack)
            elif got is not None:
                return got
    except asyncio.CancelledError:
        with contextlib.suppress(zmq.ZMQError):
            sock.send_multipart(x.cancel_frames(), zmq.NOBLOCK)
        raise
    finally:
        if sockets.get(request_id) is sock:
            del sockets[request_id]
        sock.close(0)
