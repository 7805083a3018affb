"""The backend's end of the bulk lane (protocol/lane.py): tickets, the bulk socket, the streams it serves.

``TicketBook`` holds the live tickets. It is what the ZAP handler asks during a CURVE
handshake on the bulk socket (from the authenticator's thread, hence the lock): a key gets a
connection only while a live ticket names it. ``BulkLane`` owns the socket, polled in the
worker's loop: a redeemed ticket starts its stream on the connection that redeemed it, paced
by that connection's acks, and a ticket nobody redeemed in time is dropped with its stream.
A token is never logged: the request id says which request a ticket belongs to.

The lane may have a second door, a Unix socket for requesters on this host
(actors/backends/lane_ipc.py): no CURVE and no key there, so a ticket is redeemed on it by
its token alone, by a peer the kernel says is our own user or root.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import zmq

from actors.backends import lane_ipc
from actors.backends.api import StreamReply
from actors.backends.stream_pump import pump
from protocol import responses
from protocol.envelope import ACK, CANCEL, CONTROL, Header, decode_header, reply_frames
from protocol.errors import ErrorCode, ProtocolError
from protocol.lane import (
    LANE_CHUNK_SIZE,
    LANE_WINDOW,
    MAX_LANE_MESSAGE,
    REDEEM,
    TICKET_BYTES,
    TICKET_PATTERN,
    TICKET_TTL_S,
    ZAP_DOMAIN,
)
from protocol.modes import Mode
from protocol.streaming import STREAM_IDLE_TIMEOUT_S, StreamSender
from runtime.credentials import ConnectionFile
from runtime.endpoints import DEFAULT_HOST, connectable

log = structlog.get_logger()

HANDSHAKE_MS = 5_000
LOOPBACK = f"tcp://{DEFAULT_HOST}:0"  # what a wildcard bind is announced as without an advertised host
REFUSAL_QUIET_S = 10.0  # at most one log line about refused handshakes this often
DRAIN_LIMIT = 256  # lane messages per turn, so the bridge socket is served in between


@dataclass(slots=True)
class Ticket:
    key: str  # the z85 CURVE public key of the requester the bridge authenticated
    request_id: str
    reply: StreamReply
    expires: float


class TicketBook:
    """Live, unused tickets by token; thread-safe."""

    def __init__(self, ttl: float = TICKET_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._tickets: dict[str, Ticket] = {}
        self.refused = 0  # handshakes refused, in all
        self._refused_said = 0  # of those, how many the log has counted
        self._refusal_logged = -REFUSAL_QUIET_S

    def issue(self, key: str, request_id: str, reply: StreamReply) -> str:
        token = secrets.token_urlsafe(TICKET_BYTES)
        with self._lock:
            self._tickets[token] = Ticket(key, request_id, reply, self.clock() + self.ttl)
        return token

    def redeem(self, token: str, key: str | None) -> Ticket | None:
        """The ticket, used up, when ``token`` names a live one bound to ``key``; else None (and nothing used up).

        ``key`` None: asked on the same-host door, where the file system and the peer's user vouch
        for the requester instead of a key (lane_ipc.py), and the token alone names the ticket."""
        with self._lock:
            ticket = self._tickets.get(token)
            if ticket is None or ticket.expires <= self.clock():
                return None
            if key is not None and not hmac.compare_digest(ticket.key, key):
                return None
            del self._tickets[token]
            return ticket

    def expire(self) -> list[Ticket]:
        """Drop the tickets whose time is up; returns them."""
        now = self.clock()
        with self._lock:
            gone = [token for token, t in self._tickets.items() if t.expires <= now]
            return [self._tickets.pop(token) for token in gone]

    def live_for(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            return any(t.key == key and t.expires > now for t in self._tickets.values())

    def __len__(self) -> int:
        return len(self._tickets)

    def callback(self, domain: str, key: bytes) -> bool:
        """The ZAP decision for the bulk socket (pyzmq's configure_curve_callback interface; z85 bytes)."""
        text = key.decode("ascii", "replace")
        if domain == ZAP_DOMAIN and self.live_for(text):
            return True
        self.refused += 1
        now = time.monotonic()
        if now - self._refusal_logged >= REFUSAL_QUIET_S:  # a flood of handshakes is counted, not logged each
            self._refusal_logged = now
            log.info(
                "lane.key_refused", key=text[:12], refused=self.refused - self._refused_said, reason="no live ticket"
            )
            self._refused_said = self.refused
        return False


@dataclass(slots=True)
class _LaneStream:
    sender: StreamSender
    reply: StreamReply
    key: str
    last_activity: float


Route = tuple[zmq.Socket[bytes], bytes]  # a requester's connection: the door it came by, its routing id


class BulkLane:
    """The bulk socket: a CURVE server with the backend's own key pair, the one the bridge registered it by;
    and with ``ipc_path``, the same-host door (lane_ipc.py)."""

    def __init__(
        self,
        ctx: zmq.Context[Any],
        endpoint: str,
        connection: ConnectionFile,
        mode: Mode,
        *,
        advertise_host: str | None = None,
        book: TicketBook | None = None,
        ipc_path: Path | None = None,
    ) -> None:
        """``endpoint`` is where to bind (a wildcard host or port 0 allowed); ``advertise_host``, when
        given, is the host in the endpoint announced to the bridge, which passes it on to requesters
        (a wildcard one is otherwise announced as 127.0.0.1). ``ipc_path``: the same-host door's socket,
        served when its directory is fit for it (else logged, and the CURVE door alone is served)."""
        self.book = book if book is not None else TicketBook()
        self.mode = mode
        self.streams: dict[Route, _LaneStream] = {}
        self.redeemed = [0, 0]  # tickets redeemed on the CURVE door, on the same-host door
        sock = _router(ctx)
        sock.curve_server = True
        sock.curve_publickey = connection.public_key.encode("ascii")
        sock.curve_secretkey = connection.secret_key.encode("ascii")
        sock.zap_domain = ZAP_DOMAIN.encode()
        sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)  # no ZAP handler answering: nobody gets in
        sock.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_MS)
        sock.bind(endpoint)
        self.sock = sock
        bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        port = bound.rsplit(":", 1)[1]
        self.endpoint = f"tcp://{advertise_host}:{port}" if advertise_host else connectable(bound, LOOPBACK)
        self.local: zmq.Socket[bytes] | None = None
        self.ipc_endpoint = ""
        if ipc_path is not None and lane_ipc.prepare_socket_dir(ipc_path):
            self._open_local(ctx, ipc_path)

    def _open_local(self, ctx: zmq.Context[Any], path: Path) -> None:
        # No CURVE, no ZAP: only our own user (or root) can reach the socket, and it is served only to them.
        local = _router(ctx)
        try:
            self.ipc_endpoint = lane_ipc.bind_socket(local, path)
        except (zmq.ZMQError, OSError) as exc:
            local.close(0)
            log.error("lane.ipc_bind_failed", socket=str(path), error=str(exc), consequence="the CURVE lane only")
            return
        self.local = local

    def sockets(self) -> list[tuple[zmq.Socket[bytes], Callable[[], None]]]:
        """The doors to poll, each with what to do when it is readable."""
        doors = [(self.sock, self.on_readable)]
        if self.local is not None:
            doors.append((self.local, self.on_local_readable))
        return doors

    def announcement(self) -> dict[str, str]:
        """The READY fields that tell the bridge where the lane is."""
        return {"bulk": self.endpoint, **({"bulk_ipc": self.ipc_endpoint} if self.ipc_endpoint else {})}

    def close(self) -> None:
        self.sock.close(0)
        if self.local is not None:
            self.local.close(0)

    def issue(self, key: str, request_id: str, reply: StreamReply) -> str:
        """A ticket for ``reply``, for the requester whose key is ``key`` only."""
        token = self.book.issue(key, request_id, reply)
        log.info("lane.ticket_issued", request_id=request_id, total=reply.total)
        return token

    # ------------------------------------------------------------------ socket
    def on_readable(self) -> None:
        self._drain(self.sock, local=False)

    def on_local_readable(self) -> None:
        assert self.local is not None
        self._drain(self.local, local=True)

    def _drain(self, sock: zmq.Socket[bytes], *, local: bool) -> None:
        for _ in range(DRAIN_LIMIT):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) != 3:
                continue
            peer = _local_peer(frames[1]) if local else _user_id(frames[1])
            if peer is None:
                continue  # on the same-host door: another user (the directory let it through: root's doing)
            try:
                header = decode_header(frames[1].bytes)
            except ProtocolError as exc:
                log.info("lane.message_rejected", error_code=exc.code.value, reason=exc.message)
                continue
            self._on_message((sock, frames[0].bytes), peer, header, local=local)

    def _on_message(self, route: Route, key: str | None, header: Header, *, local: bool) -> None:
        """``key``: the requester's authenticated CURVE key; on the same-host door, ``uid:N``."""
        if header.kind == CONTROL and header.op == REDEEM:
            self._redeem(route, key, header.get("token"), local=local)
            return
        stream = self.streams.get(route)
        if stream is None or stream.key != key or header.reply_to != stream.sender.reply_to:
            return  # nothing in flight for this connection: a late ack or cancel
        if header.kind == ACK:
            stream.sender.on_ack(header.fields["index"])
            stream.last_activity = time.monotonic()
            self._pump(route, stream)
        elif header.kind == CANCEL:
            del self.streams[route]
            log.info("lane.stream_cancelled", request_id=stream.sender.reply_to)
            self._send(route, reply_frames(stream.sender.reply_to, _error(ErrorCode.CANCELLED, "cancelled", self.mode)))

    def _redeem(self, route: Route, key: str | None, token: Any, *, local: bool) -> None:
        ticket = None
        busy = route in self.streams  # checked first: a ticket refused for it stays unused
        if key is not None and not busy and isinstance(token, str) and TICKET_PATTERN.fullmatch(token):
            ticket = self.book.redeem(token, None if local else key)
        if ticket is None or key is None:
            why = "a stream is already in flight on this connection" if busy else "unknown, used, expired or not yours"
            log.warning("lane.redeem_refused", key=(key or "")[:12], reason=why)
            message = f"bulk lane: ticket refused ({why}); request the download again"
            self._send(route, reply_frames(None, _error(ErrorCode.FORBIDDEN, message, self.mode)))
            return
        log.info("lane.ticket_redeemed", request_id=ticket.request_id, door="ipc" if local else "tcp")
        self.redeemed[local] += 1
        sender = StreamSender(ticket.request_id, ticket.reply.total, ticket.reply.read_at, LANE_WINDOW, LANE_CHUNK_SIZE)
        stream = _LaneStream(sender, ticket.reply, key, time.monotonic())
        self.streams[route] = stream
        self._pump(route, stream)

    def _pump(self, route: Route, stream: _LaneStream) -> None:
        final = pump(stream.sender, stream.reply, lambda frames: self._send(route, frames), self.mode)
        if final is not None:
            self.streams.pop(route, None)
            self._send(route, reply_frames(stream.sender.reply_to, final))

    def _send(self, route: Route, frames: list[bytes]) -> None:
        sock, identity = route
        try:
            sock.send_multipart([identity, *frames], zmq.NOBLOCK, copy=False)
        except zmq.ZMQError as exc:  # gone (ROUTER_MANDATORY), or its queue full beyond the window: it stops
            log.info("lane.send_failed", error=str(exc))
            self.streams.pop(route, None)

    # ------------------------------------------------------------------ timers
    def timers(self, now: float) -> None:
        """Drop tickets nobody redeemed in time, and streams whose requester stopped acking."""
        for ticket in self.book.expire():
            log.warning("lane.ticket_expired", request_id=ticket.request_id)
        for route, stream in list(self.streams.items()):
            if now - stream.last_activity > STREAM_IDLE_TIMEOUT_S:
                del self.streams[route]
                log.warning("lane.stream_abandoned", request_id=stream.sender.reply_to, acked=stream.sender.acked)
                message = (
                    f"no ack for {STREAM_IDLE_TIMEOUT_S:g}s after chunk {stream.sender.acked}: the stream was dropped"
                )
                error = _error(ErrorCode.STREAM_ABANDONED, message, self.mode)
                self._send(route, reply_frames(stream.sender.reply_to, error))


def _router(ctx: zmq.Context[Any]) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_LANE_MESSAGE)  # a requester sends a redeem, acks, a cancel
    return sock


def _local_peer(frame: zmq.Frame) -> str | None:
    """``uid:N`` for a peer on the same-host door that may use it (lane_ipc.may_connect), else None."""
    uid = lane_ipc.peer_uid(frame)
    if not lane_ipc.may_connect(uid):
        log.warning("lane.ipc_peer_refused", uid=uid)
        return None
    return f"uid:{uid}"


def _error(code: ErrorCode, message: str, mode: Mode) -> dict[str, Any]:
    return responses.error(code, message, mode=mode)


def _user_id(frame: zmq.Frame) -> str | None:
    """The key ZAP authenticated for this connection (its User-Id)."""
    try:
        value = frame.get("User-Id")
    except zmq.ZMQError:
        return None
    return value if isinstance(value, str) else None
