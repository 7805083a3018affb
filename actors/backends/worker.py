"""The socket shell that serves a BackendCore to the bridge (used by the mock and the real server).

It registers with READY, heartbeats, re-registers when the bridge restarts, validates
arguments against the catalogue, runs the core, streams StreamReply results with
credit-based flow control, forwards the core's events, and ticks the core. Its DEALER is
a CURVE client with the backend's connection file: the bridge lets in only allow-listed
backend keys, each under the name and mode it is bound to. With a bulk lane
(actors/backends/lane.py) it announces the lane's endpoint in READY and answers a streamed
request the bridge names a requester's key for with a ticket to fetch it there.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import zmq

from actors.backends.api import BackendCore, RequestContext, StreamReply
from actors.backends.lane import BulkLane
from actors.backends.stream_pump import pump
from protocol import responses
from protocol.catalogue import CATALOGUE
from protocol.codec import DEFAULT_MAX_SIZE
from protocol.envelope import (
    ACK,
    CANCEL,
    CONTROL,
    DISCONNECT,
    HEARTBEAT,
    READY,
    REQUEST,
    TICKET,
    Header,
    decode_body,
    decode_header,
    encode_header,
    event_frames,
    reply_frames,
)
from protocol.errors import ErrorCode, ProtocolError
from protocol.streaming import STREAM_IDLE_TIMEOUT_S, StreamSender
from runtime.credentials import ConnectionFile
from runtime.handshake import WATCHED, HandshakeFailure, latest_failure
from runtime.shutdown import StopFlag

log = structlog.get_logger()

MAX_POLL_MS = 100
SEND_TIMEOUT_MS = 2000


@dataclass(slots=True)
class _Stream:
    sender: StreamSender
    reply: StreamReply
    route: bytes
    last_activity: float


class BackendWorker:
    def __init__(
        self,
        core: BackendCore,
        endpoint: str,
        *,
        heartbeat_interval: float = 1.0,
        liveness: int = 3,
        max_size: int = DEFAULT_MAX_SIZE,
        extra: Sequence[tuple[zmq.Socket, Callable[[], None]]] = (),
        after_turn: Callable[[], None] | None = None,
        connection: ConnectionFile | None = None,
        lane: BulkLane | None = None,
    ) -> None:
        """``extra``: more sockets polled in the same loop, each with the handler that drains it
        when readable (the real server's agent socket). ``after_turn``: called after every turn
        of the loop, so a shell can send what the core queued for its own sockets.
        ``connection``: the backend's key pair and the bridge's public key (None: no CURVE,
        which only a bridge without authentication accepts). ``lane``: the bulk lane, polled in the same loop."""
        self.core = core
        self.endpoint = endpoint
        self.connection = connection
        # The bridge lets a backend key register only under the name it is allow-listed as.
        self.name = connection.name if connection is not None and connection.name else core.name
        self._monitor: zmq.Socket | None = None
        self._failure: HandshakeFailure | None = None
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.max_size = max_size
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
        self.sock: zmq.Socket | None = None
        self.streams: dict[tuple[bytes, str], _Stream] = {}
        self._ops = frozenset(core.operations())
        self._bridge_seen = 0.0
        self._next_beat = 0.0
        self._next_tick = 0.0
        self.extra = list(extra)
        self.lane = lane
        if lane is not None:
            self.extra.extend(lane.sockets())
        self.after_turn = after_turn
        self._poller: zmq.Poller | None = None

    # ------------------------------------------------------------------ socket
    def _connect(self) -> None:
        self._close_socket(0)
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 1000)
        sock.setsockopt(zmq.SNDTIMEO, SEND_TIMEOUT_MS)
        if self.connection is not None:
            self.connection.apply_client(sock)
        # Read when the bridge stays silent: a refused key is then named in the log.
        self._monitor = sock.get_monitor_socket(WATCHED)
        sock.connect(self.endpoint)
        self.sock = sock
        if self.extra:
            self._poller = zmq.Poller()
            self._poller.register(sock, zmq.POLLIN)
            for extra_sock, _ in self.extra:
                self._poller.register(extra_sock, zmq.POLLIN)
        self.streams.clear()
        self._bridge_seen = time.monotonic()
        self._send_ready()

    def _close_socket(self, linger: int | None) -> None:
        if self.sock is None:
            return
        self.sock.disable_monitor()
        if self._monitor is not None:
            self._monitor.close(0)
            self._monitor = None
        self.sock.close(linger)
        self.sock = None

    def _silence_reason(self) -> str | None:
        if self._monitor is None:
            return None
        self._failure = latest_failure(self._monitor, self.connection is not None, self._failure)
        return self._failure.detail if self._failure is not None else None

    def _send_ready(self) -> None:
        bulk = self.lane.announcement() if self.lane is not None else {}
        header = encode_header(
            READY, name=self.name, mode=self.core.mode, ops=sorted(self._ops), pid=os.getpid(), **bulk
        )
        self._send([b"", header, b""])
        log.info("backend.ready_sent", bridge=self.endpoint, name=self.name, ops=len(self._ops))

    def _send(self, frames: list[bytes]) -> None:
        assert self.sock is not None
        try:
            self.sock.send_multipart(frames, copy=False)
        except zmq.Again:
            log.error("backend.send_timeout", bridge=self.endpoint)

    # ------------------------------------------------------------------ loop
    def run(self, stop: StopFlag) -> None:
        self._connect()
        try:
            while not stop.is_set():
                now = time.monotonic()
                wake = min(self._next_beat, self._next_tick)
                assert self.sock is not None
                timeout = max(0, min(MAX_POLL_MS, int((wake - now) * 1000) + 1))
                if self._poller is not None:
                    self._poll_all(timeout)
                elif self.sock.poll(timeout, zmq.POLLIN):
                    self._drain()
                self._timers(time.monotonic())
                if self.after_turn is not None:
                    self.after_turn()
        finally:
            if self.sock is not None:
                self._send([b"", encode_header(DISCONNECT), b""])
                self._close_socket(None)
            self.core.close()
            log.info("backend.stopped")

    def _poll_all(self, timeout: int) -> None:
        assert self._poller is not None
        ready = dict(self._poller.poll(timeout))
        if self.sock in ready:
            self._drain()
        for extra_sock, handler in self.extra:
            if extra_sock in ready:
                handler()
                self._flush_events()

    def _drain(self) -> None:
        assert self.sock is not None
        for _ in range(500):
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            self._bridge_seen = time.monotonic()
            self._on_message(frames)
        self._flush_events()

    def _timers(self, now: float) -> None:
        if now >= self._next_beat:
            self._next_beat = now + self.heartbeat_interval
            if now - self._bridge_seen > self.heartbeat_interval * self.liveness:
                log.warning("backend.bridge_silent_reconnecting", bridge=self.endpoint, reason=self._silence_reason())
                self._connect()
            else:
                self._send([b"", encode_header(HEARTBEAT), b""])
            for key, stream in list(self.streams.items()):
                if now - stream.last_activity > STREAM_IDLE_TIMEOUT_S:
                    self._abandon(key, stream)
            if self.lane is not None:
                self.lane.timers(now)
        if now >= self._next_tick:
            self._next_tick = now + self.core.tick_interval()
            try:
                self.core.tick()
            except Exception:
                log.exception("backend.tick_failed")
            self._flush_events()

    def _flush_events(self) -> None:
        for topic, data in self.core.drain_events():
            self._send([b"", *event_frames(topic, data, mode=self.core.mode, ts=time.time())])

    # ------------------------------------------------------------------ messages
    def _on_message(self, frames: list[bytes]) -> None:
        if len(frames) != 3:
            log.warning("backend.message_malformed", frames=len(frames))
            return
        route, header_frame, body = frames
        try:
            header = decode_header(header_frame)
        except ProtocolError as exc:
            log.warning("backend.message_rejected", error_code=exc.code.value, reason=exc.message)
            return
        kind = header.kind
        if kind == REQUEST:
            self._on_request(route, header, body)
        elif kind == ACK:
            stream = self.streams.get((route, header.reply_to or ""))
            if stream is not None:
                stream.sender.on_ack(header.fields["index"])
                stream.last_activity = time.monotonic()
                self._pump(route, stream)
        elif kind == CANCEL:
            stream = self.streams.pop((route, header.reply_to or ""), None)
            if stream is not None:
                log.info("backend.stream_cancelled", request_id=header.reply_to)
                self._reply(
                    route,
                    stream.sender.reply_to,
                    responses.error(ErrorCode.CANCELLED, "download cancelled by the requester", mode=self.core.mode),
                )
        elif kind == CONTROL and header.op == "reregister":
            self._send_ready()
        elif kind != HEARTBEAT:
            log.warning("backend.kind_unexpected", kind=kind)

    def _reply(self, route: bytes, request_id: str, response: dict[str, Any]) -> None:
        self._send([route, *reply_frames(request_id, response)])

    def _on_request(self, route: bytes, header: Header, body: bytes) -> None:
        request_id: str = header.fields["id"]
        op: str = header.fields["op"]
        structlog.contextvars.bind_contextvars(request_id=request_id, session=header.get("session"))
        try:
            response = self._execute(op, body, RequestContext(request_id, header.get("session")))
            lane_key = header.get("lane_key")
            if isinstance(response, StreamReply) and self.lane is not None and isinstance(lane_key, str):
                token = self.lane.issue(lane_key, request_id, response)
                self._send([route, encode_header(TICKET, reply_to=request_id, token=token, total=response.total), b""])
                return
            if isinstance(response, StreamReply):
                self._start_stream(route, request_id, response)
                return
            self._reply(route, request_id, response)
        finally:
            structlog.contextvars.unbind_contextvars("request_id", "session")

    def _execute(self, op: str, body: bytes, ctx: RequestContext) -> dict[str, Any] | StreamReply:
        mode = self.core.mode
        try:
            if op not in self._ops:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_OPERATION, f"backend {self.core.name!r} does not implement {op!r}"
                )
            raw_args = decode_body(body, self.max_size)
            operation = CATALOGUE.get(op)
            args = operation.validate_args(raw_args) if operation is not None else (raw_args or {})
            return self.core.handle(op, args, ctx)
        except ProtocolError as exc:
            log.info("backend.request_failed", op=op, error_code=exc.code.value, reason=exc.message)
            return responses.from_protocol_error(exc, mode=mode)
        except Exception as exc:
            log.exception("backend.request_crashed", op=op)
            return responses.error(
                ErrorCode.INTERNAL, f"{op} failed inside the {mode} backend: {type(exc).__name__}: {exc}", mode=mode
            )

    def _start_stream(self, route: bytes, request_id: str, reply: StreamReply) -> None:
        stream = _Stream(StreamSender(request_id, reply.total, reply.read_at), reply, route, time.monotonic())
        self.streams[(route, request_id)] = stream
        self._pump(route, stream)

    def _abandon(self, key: tuple[bytes, str], stream: _Stream) -> None:
        """Drop a stream whose requester stopped acking, and say so: the bridge passes the
        answer on if the requester still waits (it may have said the same already)."""
        log.warning("backend.stream_abandoned", request_id=key[1], acked=stream.sender.acked)
        del self.streams[key]
        message = (
            f"no ack for {STREAM_IDLE_TIMEOUT_S:g}s after chunk {stream.sender.acked} of "
            f"{stream.sender.chunk_count}: the stream was dropped"
        )
        self._reply(key[0], key[1], responses.error(ErrorCode.STREAM_ABANDONED, message, mode=self.core.mode))

    def _pump(self, route: bytes, stream: _Stream) -> None:
        final = pump(stream.sender, stream.reply, lambda frames: self._send([route, *frames]), self.core.mode)
        if final is not None:
            self.streams.pop((route, stream.sender.reply_to), None)
            self._reply(route, stream.sender.reply_to, final)
