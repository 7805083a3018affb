"""An asyncio connection to the bridge (the GUI: one per browser session).

One receive task dispatches replies and stream chunks to the waiting calls by request
id; a monitor task turns the socket's connect/disconnect events into a connection
state (connected / reconnecting / disconnected) that listeners can show, and
remembers why a handshake failed (a refused key). Both are owned by the client's
TaskSet and end with ``close``. The socket is a CURVE client with the key pair of the
connection file (given, else ``$BRIDGE_CONNECTION``'s); once a user signed in through
the GUI, ``auth`` holds the session token sent in every request's header.

Calls never raise for transport problems: they return the standard error reply of
client/errors.py (mode ``local``). Nothing a caller plugs in can stop the receive task:
a chunk handler or progress callback that raises fails its own call (INTERNAL, the
stream is cancelled), and a reply observer or state listener that raises is logged.

A streamed request asks for the backend's bulk lane as the blocking client does (client/lane.py,
shared): when the bridge answers with a ticket, the calling task fetches the chunks from the
backend (its same-host socket, else its CURVE lane), and when no door answers it asks again
through the bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from client import lane as client_lane
from client.connection import ChunkHandler, client_connection, frontend_of, wait_for
from client.download import DownloadWriter, Progress, open_writer, request_args
from client.errors import (
    BridgeUnreachable,
    cannot_connect,
    checked_reply,
    connection_lost,
    handling_failed,
    no_reply,
    not_connected,
    unreachable_reply,
)
from client.tasks import TaskSet
from protocol.codec import DEFAULT_MAX_SIZE
from protocol.envelope import (
    CANCEL,
    CHUNK,
    REPLY,
    TICKET,
    Header,
    decode_body,
    decode_header,
    encode_header,
    request_frames,
)
from protocol.errors import ProtocolError
from protocol.responses import Reply
from runtime.credentials import ConnectionFile
from runtime.handshake import WATCHED, HandshakeFailure, failure_of

log = structlog.get_logger()

CONNECT_WAIT_S = 1.5  # how long a call waits for a missing connection before failing
GIVE_UP_S = 5.0  # reconnecting longer than this is shown as disconnected


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


StateListener = Callable[[ConnectionState], Awaitable[None] | None]
ReplyObserver = Callable[[Reply], None]


@dataclass(slots=True)
class _Waiting:
    op: str
    future: asyncio.Future[Reply | Header]  # the final reply, or the ticket to fetch it on the bulk lane
    on_chunk: ChunkHandler | None = None
    chunks: int = field(default=0)


class AsyncBridgeClient:
    def __init__(
        self,
        endpoint: str | None = None,
        *,
        connection: ConnectionFile | None = None,
        session: str | None = None,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        self.connection = client_connection(connection)
        self.endpoint = frontend_of(endpoint, self.connection)
        self.session = session or uuid.uuid4().hex
        # The token of the user session the GUI signed in (login); sent with every request while set.
        self.auth: str | None = None
        self.handshake_failure: HandshakeFailure | None = None
        self.ctx = context or zmq.asyncio.Context.instance()
        self.state = ConnectionState.DISCONNECTED
        self._listeners: list[StateListener] = []
        self.reply_observers: list[ReplyObserver] = []  # see every reply (e.g. its mode)
        self._waiting: dict[str, _Waiting] = {}
        self._tasks = TaskSet(f"bridge-client-{self.session[:8]}")
        self._connected = asyncio.Event()
        self._give_up: asyncio.Task[None] | None = None
        self.sock: zmq.asyncio.Socket | None = None
        # Streamed requests ask for the backend's bulk lane (protocol/lane.py), which needs this key pair.
        self.use_lane = self.connection is not None
        self._lanes: dict[str, zmq.asyncio.Socket] = {}  # the lane socket of each request fetched there now

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> AsyncBridgeClient:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, self.session.encode())
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        if self.connection is not None:
            self.connection.apply_client(sock)
        monitor = sock.get_monitor_socket(WATCHED)
        sock.connect(self.endpoint)
        self.sock = sock
        self._tasks.spawn(self._receive(sock), "receive")
        self._tasks.spawn(self._monitor(monitor), "monitor")
        return self

    async def close(self) -> None:
        await self._tasks.close()
        self._fail_waiting(cannot_connect(self.endpoint, "the client was closed"))
        if self.sock is not None:
            with contextlib.suppress(zmq.ZMQError):
                self.sock.disable_monitor()
            self.sock.close(0)
            self.sock = None

    def add_state_listener(self, listener: StateListener) -> None:
        self._listeners.append(listener)

    async def wait_connected(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
            return True
        except TimeoutError:
            return False

    # ------------------------------------------------------------------ calls
    async def call(self, op: str, args: dict[str, Any] | None = None, *, timeout: float | None = None) -> Reply:
        return await self._request(op, args, timeout, None)

    async def stream(
        self, op: str, args: dict[str, Any], on_chunk: ChunkHandler, *, timeout: float | None = None
    ) -> Reply:
        """A streamed request; when ``on_chunk`` raises, the stream is cancelled and the reply says why."""
        return await self._request(op, args, timeout, on_chunk)

    async def download(
        self, op: str, args: dict[str, Any], *, progress: Progress | None = None, timeout: float | None = None
    ) -> Reply:
        """Run the streaming operation ``op`` into its ``destination_path`` on this machine;
        cancelling the calling task cancels the stream and leaves nothing behind."""
        writer = open_writer(op, args, progress)
        if not isinstance(writer, DownloadWriter):
            return writer
        try:
            return writer.finish(await self.stream(op, request_args(args, writer), writer.on_chunk, timeout=timeout))
        finally:
            writer.abort()

    async def _request(
        self, op: str, args: dict[str, Any] | None, timeout: float | None, on_chunk: ChunkHandler | None
    ) -> Reply:
        try:
            return await self._exchange(op, args, timeout, on_chunk)
        except BridgeUnreachable as exc:
            return unreachable_reply(exc)

    async def _exchange(
        self, op: str, args: dict[str, Any] | None, timeout: float | None, on_chunk: ChunkHandler | None
    ) -> Reply:
        lane_asked = on_chunk is not None and self.use_lane and self.connection is not None
        while True:
            got = await self._attempt(op, args, timeout, on_chunk, lane_asked)
            if not isinstance(got, Header):
                return got
            assert on_chunk is not None and self.connection is not None  # a ticket answers only a lane asked for
            try:
                reply = await client_lane.fetch_async(
                    self.ctx, self.connection, op, got, on_chunk, wait_for(op, timeout), sockets=self._lanes
                )
                self._observe(reply)
                return reply
            except client_lane.LaneUnreachable as exc:
                # Not reachable from this machine (an endpoint announced for its own), or the key was refused.
                log.info("client.lane_unreachable", op=op, reason=str(exc))
                lane_asked = False

    async def _attempt(
        self, op: str, args: dict[str, Any] | None, timeout: float | None, on_chunk: ChunkHandler | None, lane: bool
    ) -> Reply | Header:
        sock = self.sock
        if sock is None:
            raise cannot_connect(self.endpoint, "the client is not started")
        if not self._connected.is_set() and not await self.wait_connected(CONNECT_WAIT_S):
            raise not_connected(self.endpoint, f"not connected ({self.state.value})", self.handshake_failure)
        request_id = uuid.uuid4().hex
        waiting = _Waiting(op, asyncio.get_running_loop().create_future(), on_chunk)
        self._waiting[request_id] = waiting
        timeout_ms = int(timeout * 1000) if timeout else None
        try:
            await sock.send_multipart(
                request_frames(
                    request_id, op, args, session=self.session, timeout_ms=timeout_ms, auth=self.auth, lane=lane
                )
            )
            while True:
                # Each chunk restarts the wait, so long streams are bounded by silence, not size.
                seen = waiting.chunks
                try:
                    return await asyncio.wait_for(asyncio.shield(waiting.future), wait_for(op, timeout))
                except TimeoutError:
                    if waiting.chunks == seen:
                        raise no_reply(self.endpoint, op, wait_for(op, timeout)) from None
        except asyncio.CancelledError:
            if on_chunk is not None:
                await self._cancel_stream(request_id)
            raise
        finally:
            self._waiting.pop(request_id, None)

    async def send_frames(self, frames: list[bytes]) -> None:
        """Send a chunk's ack (or a cancel) later than its handler returned: a handler that returns no ack
        paces the stream itself, acknowledging each chunk once it consumed it (a relay to a slower peer).
        An ack of a stream fetched on the bulk lane goes there."""
        sock = self._lanes.get(decode_header(frames[0]).reply_to or "") if self._lanes else None
        sock = sock or self.sock
        if sock is not None:
            with contextlib.suppress(zmq.ZMQError):
                await sock.send_multipart(frames)

    async def _cancel_stream(self, request_id: str) -> None:
        if self.sock is not None:
            with contextlib.suppress(zmq.ZMQError):
                await self.sock.send_multipart([encode_header(CANCEL, reply_to=request_id), b""])

    # ------------------------------------------------------------------ tasks
    async def _receive(self, sock: zmq.asyncio.Socket) -> None:
        while True:
            frames = await sock.recv_multipart()
            try:
                await self._dispatch(sock, frames)
            except ProtocolError as exc:
                log.warning("client.bad_message", error_code=exc.code.value, reason=exc.message)
            except Exception:
                # The last guard: whatever went wrong with one message, the others still arrive.
                log.exception("client.receive_failed")

    async def _dispatch(self, sock: zmq.asyncio.Socket, frames: list[bytes]) -> None:
        header = decode_header(frames[0])
        request_id = header.reply_to or ""
        waiting = self._waiting.get(request_id)
        if waiting is None or waiting.future.done():
            return  # late: the call timed out, was cancelled or failed already
        body = frames[1] if len(frames) > 1 else b""
        if header.kind == CHUNK and waiting.on_chunk is not None:
            waiting.chunks += 1
            try:
                ack = waiting.on_chunk(header, body)
            except Exception as exc:
                # A full disk or a failing progress callback fails this call only.
                log.warning("client.chunk_handler_failed", op=waiting.op, error=f"{type(exc).__name__}: {exc}")
                waiting.future.set_result(handling_failed(waiting.op, exc))
                await self._cancel_stream(request_id)
                return
            if ack:
                await sock.send_multipart(ack)
        elif header.kind == TICKET and waiting.on_chunk is not None:
            waiting.future.set_result(header)  # the calling task fetches the stream there
        elif header.kind == REPLY:
            try:
                reply = checked_reply(waiting.op, decode_body(body, DEFAULT_MAX_SIZE))
            except ProtocolError as exc:
                reply = handling_failed(waiting.op, exc)
            waiting.future.set_result(reply)
            self._observe(reply)

    def _observe(self, reply: Reply) -> None:
        for observe in self.reply_observers:
            try:
                observe(reply)
            except Exception:
                log.exception("client.reply_observer_failed")

    async def _monitor(self, monitor: zmq.asyncio.Socket) -> None:
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())
                failure = failure_of(event, self.connection is not None)
                if failure is not None:
                    if failure != self.handshake_failure:
                        log.warning("client.handshake_failed", endpoint=self.endpoint, reason=failure.detail)
                    self.handshake_failure = failure
                elif event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    self.handshake_failure = None
                    await self._set_state(ConnectionState.CONNECTED)
                elif event["event"] == zmq.EVENT_DISCONNECTED:
                    self._fail_waiting(connection_lost(self.endpoint))
                    await self._set_state(ConnectionState.RECONNECTING)
        finally:
            monitor.close(0)

    def _fail_waiting(self, exc: BridgeUnreachable) -> None:
        for waiting in self._waiting.values():
            if not waiting.future.done():
                waiting.future.set_result(unreachable_reply(exc))

    async def _give_up_later(self) -> None:
        await asyncio.sleep(GIVE_UP_S)
        self._give_up = None  # this task is ending: _set_state must not cancel it
        await self._set_state(ConnectionState.DISCONNECTED)

    async def _set_state(self, state: ConnectionState) -> None:
        if self._give_up is not None:
            self._give_up.cancel()
            self._give_up = None
        if state is ConnectionState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        if state is ConnectionState.RECONNECTING:
            self._give_up = self._tasks.spawn(self._give_up_later(), "give-up")
        if state is self.state:
            return
        log.info("client.connection_state", state=state.value, endpoint=self.endpoint)
        self.state = state
        for listener in list(self._listeners):
            try:
                result = listener(state)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("client.state_listener_failed", state=state.value)
