"""An asyncio connection to the bridge (the GUI: one per browser session).

One receive task dispatches replies and stream chunks to the waiting calls by request
id; a monitor task turns the socket's connect/disconnect events into a connection
state (connected / reconnecting / disconnected) that listeners can show. Calls never
raise for transport problems: they return a standard error reply with mode "local".
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from client.connection import wait_for
from client.download import Progress, open_writer
from protocol import responses
from protocol.codec import DEFAULT_MAX_SIZE
from protocol.envelope import CANCEL, CHUNK, REPLY, Header, decode_body, decode_header, encode_header, request_frames
from protocol.errors import ErrorCode, ProtocolError
from runtime.endpoints import client_endpoint

log = structlog.get_logger()

CONNECT_WAIT_S = 1.5  # how long a call waits for a missing connection before failing
GIVE_UP_S = 5.0  # reconnecting longer than this is shown as disconnected


class ConnectionState(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


ChunkHandler = Callable[[Header, bytes], list[bytes] | None]
StateListener = Callable[[ConnectionState], Awaitable[None] | None]


@dataclass(slots=True)
class _Waiting:
    future: asyncio.Future[dict[str, Any]]
    on_chunk: ChunkHandler | None = None
    chunks: int = field(default=0)


def local_error(code: ErrorCode, message: str) -> dict[str, Any]:
    return responses.error(code, message, mode="local")


class AsyncBridgeClient:
    def __init__(
        self, endpoint: str | None = None, *, session: str | None = None, context: zmq.asyncio.Context | None = None
    ) -> None:
        self.endpoint = client_endpoint(endpoint)
        self.session = session or uuid.uuid4().hex
        self.ctx = context or zmq.asyncio.Context.instance()
        self.state = ConnectionState.DISCONNECTED
        self._listeners: list[StateListener] = []
        self.reply_observers: list[Callable[[dict[str, Any]], None]] = []  # see every reply (e.g. its mode)
        self._waiting: dict[str, _Waiting] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._connected = asyncio.Event()
        self._give_up: asyncio.TimerHandle | None = None
        self.sock: zmq.asyncio.Socket | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> AsyncBridgeClient:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, self.session.encode())
        sock.setsockopt(zmq.IMMEDIATE, 1)
        sock.setsockopt(zmq.RECONNECT_IVL, 100)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        sock.connect(self.endpoint)
        self.sock = sock
        self._tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._monitor(monitor))]
        return self

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._fail_waiting("the connection was closed")
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
    async def call(
        self, op: str, args: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        return await self._request(op, args, timeout, None)

    async def stream(
        self, op: str, args: dict[str, Any], on_chunk: ChunkHandler, *, timeout: float | None = None
    ) -> dict[str, Any]:
        return await self._request(op, args, timeout, on_chunk)

    async def download(
        self, file_id: str, destination_path: str, *, progress: Progress | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """download_file into ``destination_path`` on this machine; cancelling the task cancels the stream."""
        writer = open_writer(destination_path, progress)
        if isinstance(writer, dict):
            return writer
        try:
            reply = await self.stream(
                "download_file",
                {"file_id": file_id, "destination_path": str(writer.destination)},
                writer.on_chunk,
                timeout=timeout,
            )
            return writer.finish(reply)
        finally:
            writer.abort()

    async def _request(
        self, op: str, args: dict[str, Any] | None, timeout: float | None, on_chunk: ChunkHandler | None
    ) -> dict[str, Any]:
        if self.sock is None:
            return local_error(ErrorCode.BACKEND_UNAVAILABLE, "the client is not started")
        if not self._connected.is_set() and not await self.wait_connected(CONNECT_WAIT_S):
            return local_error(
                ErrorCode.BACKEND_UNAVAILABLE, f"not connected to the bridge at {self.endpoint} ({self.state.value})"
            )
        request_id = uuid.uuid4().hex
        waiting = _Waiting(asyncio.get_running_loop().create_future(), on_chunk)
        self._waiting[request_id] = waiting
        timeout_ms = int(timeout * 1000) if timeout else None
        try:
            await self.sock.send_multipart(
                request_frames(request_id, op, args, session=self.session, timeout_ms=timeout_ms)
            )
            while True:
                # Each chunk restarts the wait, so long streams are bounded by silence, not size.
                seen = waiting.chunks
                try:
                    return await asyncio.wait_for(asyncio.shield(waiting.future), wait_for(op, timeout))
                except TimeoutError:
                    if waiting.chunks == seen:
                        return local_error(
                            ErrorCode.TIMEOUT, f"no reply from the bridge to {op} within {wait_for(op, timeout):.0f}s"
                        )
        except asyncio.CancelledError:
            if on_chunk is not None and self.sock is not None:
                with contextlib.suppress(zmq.ZMQError):
                    await self.sock.send_multipart([encode_header(CANCEL, reply_to=request_id), b""])
            raise
        finally:
            self._waiting.pop(request_id, None)

    # ------------------------------------------------------------------ tasks
    async def _receive(self) -> None:
        assert self.sock is not None
        while True:
            frames = await self.sock.recv_multipart()
            try:
                header = decode_header(frames[0])
                waiting = self._waiting.get(header.reply_to or "")
                if waiting is None or waiting.future.done():
                    continue
                body = frames[1] if len(frames) > 1 else b""
                if header.kind == CHUNK and waiting.on_chunk is not None:
                    waiting.chunks += 1
                    reply = waiting.on_chunk(header, body)
                    if reply:
                        await self.sock.send_multipart(reply)
                elif header.kind == REPLY:
                    reply = decode_body(body, DEFAULT_MAX_SIZE)
                    for observe in self.reply_observers:
                        observe(reply)
                    waiting.future.set_result(reply)
            except ProtocolError as exc:
                log.warning("client.bad_message", error_code=exc.code.value, reason=exc.message)

    async def _monitor(self, monitor: zmq.asyncio.Socket) -> None:
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())
                if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    await self._set_state(ConnectionState.CONNECTED)
                elif event["event"] == zmq.EVENT_DISCONNECTED:
                    self._fail_waiting("the connection to the bridge was lost; the outcome is unknown")
                    await self._set_state(ConnectionState.RECONNECTING)
        finally:
            monitor.close(0)

    def _fail_waiting(self, message: str) -> None:
        for waiting in self._waiting.values():
            if not waiting.future.done():
                waiting.future.set_result(local_error(ErrorCode.BACKEND_UNAVAILABLE, message))

    async def _set_state(self, state: ConnectionState) -> None:
        if self._give_up is not None:
            self._give_up.cancel()
            self._give_up = None
        if state is ConnectionState.CONNECTED:
            self._connected.set()
        else:
            self._connected.clear()
        if state is ConnectionState.RECONNECTING:
            loop = asyncio.get_running_loop()
            self._give_up = loop.call_later(
                GIVE_UP_S, lambda: asyncio.ensure_future(self._set_state(ConnectionState.DISCONNECTED))
            )
        if state is self.state:
            return
        log.info("client.connection_state", state=state.value, endpoint=self.endpoint)
        self.state = state
        for listener in list(self._listeners):
            result = listener(state)
            if asyncio.iscoroutine(result):
                await result
