"""A synchronous connection to the bridge (bridgectl, tests, benchmarks).

Each connection is a DEALER with a stable routing id (its session), so the bridge's
reply cache recognises a re-sent request even across TCP reconnects. It is a CURVE
client with the key pair of its connection file (runtime/credentials.py): given, else
the one ``$BRIDGE_CONNECTION`` names; without one the bridge lets nothing through.
Failures follow client/errors.py: no connection or no reply raises ``BridgeUnreachable``
(code UNAUTHENTICATED when the bridge refused the key); a reply that cannot be handled
here is an error reply with mode ``local``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import zmq

from client import lane
from client.errors import BridgeUnreachable, decoded_reply, handling_failed, no_reply, not_connected
from protocol.catalogue import CATALOGUE
from protocol.envelope import CANCEL, CHUNK, REPLY, TICKET, Header, decode_header, encode_header, request_frames
from protocol.responses import Reply
from runtime.credentials import ConnectionFile, connection_from_env
from runtime.endpoints import client_endpoint
from runtime.handshake import WATCHED, HandshakeFailure, latest_failure

__all__ = ["BridgeClient", "BridgeUnreachable", "ChunkHandler", "StreamHandler", "wait_for"]

CONNECT_TIMEOUT_S = 3.0
REPLY_GRACE_S = 2.0  # on top of the operation's deadline: the bridge answers within it

ChunkHandler = Callable[[Header, bytes], list[bytes] | None]
# What the sync client's stream takes: over the bulk lane a chunk is a view of the message received.
StreamHandler = lane.ChunkHandler


def client_connection(connection: ConnectionFile | None) -> ConnectionFile | None:
    """The credentials a client uses: the given connection file, else ``$BRIDGE_CONNECTION``'s."""
    return connection if connection is not None else connection_from_env()


def frontend_of(endpoint: str | None, connection: ConnectionFile | None) -> str:
    """Explicit endpoint, else the connection file's frontend, else $BRIDGE_ENDPOINT or the default."""
    return endpoint or (connection.frontend if connection is not None else None) or client_endpoint(None)


class BridgeClient:
    def __init__(
        self,
        endpoint: str | None = None,
        *,
        connection: ConnectionFile | None = None,
        session: str | None = None,
        context: zmq.Context | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.connection = client_connection(connection)
        self.endpoint = frontend_of(endpoint, self.connection)
        self.session = session or uuid.uuid4().hex
        self.connect_timeout = connect_timeout
        self.auth: str | None = None  # a user session's token, sent with every request when set
        # Streamed requests ask for the backend's bulk lane (protocol/lane.py), which needs this key pair.
        self.use_lane = self.connection is not None
        self.lane_same_host = True  # False: the lane's CURVE door even on the server's host (client/lane.py)
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTING_ID, self.session.encode())
        # Queue only on live connections, so "not connected" is visible instead of silent.
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        if self.connection is not None:
            self.connection.apply_client(self.sock)
        # Says why a connection did not come up (a refused key, another bridge's key).
        self._monitor = self.sock.get_monitor_socket(WATCHED)
        self._failure: HandshakeFailure | None = None
        self.sock.connect(self.endpoint)

    def close(self) -> None:
        if self.sock.closed:
            return
        self.sock.disable_monitor()
        self._monitor.close(0)
        self.sock.close(0)

    def __enter__(self) -> BridgeClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send_request(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        request_id: str | None = None,
        timeout_ms: int | None = None,
        lane: bool = False,
    ) -> str:
        request_id = request_id or uuid.uuid4().hex
        if not self.sock.poll(int(self.connect_timeout * 1000), zmq.POLLOUT):
            self._failure = latest_failure(self._monitor, self.connection is not None, self._failure)
            raise not_connected(self.endpoint, f"no connection within {self.connect_timeout:g}s", self._failure)
        self.sock.send_multipart(
            request_frames(request_id, op, args, session=self.session, timeout_ms=timeout_ms, auth=self.auth, lane=lane)
        )
        return request_id

    def receive(self, timeout: float) -> tuple[Header, bytes] | None:
        """The next message for this connection, or None after ``timeout`` seconds."""
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        header_frame, *rest = self.sock.recv_multipart()
        return decode_header(header_frame), (rest[0] if rest else b"")

    def messages_for(self, op: str, request_id: str, timeout: float) -> Iterator[tuple[Header, bytes]]:
        """Chunks and the final reply of one request; the deadline restarts with each message."""
        while True:
            got = self.receive(timeout)
            if got is None:
                raise no_reply(self.endpoint, op, timeout)
            header, body = got
            if header.reply_to != request_id:
                continue  # a late reply to an earlier, abandoned request
            yield header, body
            if header.kind in (REPLY, TICKET):
                return

    def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> Reply:
        """One request, one standard reply. Raises BridgeUnreachable."""
        timeout_ms = int(timeout * 1000) if timeout else None
        request_id = self.send_request(op, args, request_id=request_id, timeout_ms=timeout_ms)
        for header, body in self.messages_for(op, request_id, wait_for(op, timeout)):
            if header.kind == REPLY:
                return self._decode(op, body)
            if header.kind == CHUNK:
                raise ValueError(f"{op} streams its reply; use client.download.download")
        raise AssertionError("unreachable")

    def stream(
        self,
        op: str,
        args: dict[str, Any],
        on_chunk: StreamHandler,
        *,
        timeout: float | None = None,
        use_lane: bool | None = None,
    ) -> Reply:
        """A streamed request: ``on_chunk`` gets each chunk and returns frames to send back (the ack).

        When ``on_chunk`` raises, the stream is cancelled and the reply says why (INTERNAL). With
        ``use_lane`` the chunks may come from the backend's bulk lane (client/lane.py) instead of
        the bridge, when the bridge answers with a ticket: the same chunks, acks and final reply.
        A lane that does not answer at all is asked no more: the request goes again through the bridge."""
        timeout_ms = int(timeout * 1000) if timeout else None
        lane_asked = self.use_lane if use_lane is None else use_lane
        request_id = self.send_request(op, args, timeout_ms=timeout_ms, lane=lane_asked)
        for header, body in self.messages_for(op, request_id, wait_for(op, timeout)):
            if header.kind == TICKET and self.connection is not None:
                try:
                    return lane.fetch(
                        self.ctx,
                        self.connection,
                        op,
                        header,
                        on_chunk,
                        wait_for(op, timeout),
                        same_host=self.lane_same_host,
                    )
                except lane.LaneUnreachable:
                    # Not reachable from this machine (an endpoint announced for its own), or the key was refused.
                    return self.stream(op, args, on_chunk, timeout=timeout, use_lane=False)
            if header.kind == CHUNK:
                try:
                    frames = on_chunk(header, body)
                except Exception as exc:
                    # Later chunks of this request are skipped by messages_for of the next call.
                    self.sock.send_multipart([encode_header(CANCEL, reply_to=request_id), b""])
                    return handling_failed(op, exc)
                if frames:
                    self.sock.send_multipart(frames)
            elif header.kind == REPLY:
                return self._decode(op, body)
        raise AssertionError("unreachable")

    @staticmethod
    def _decode(op: str, body: bytes) -> Reply:
        return decoded_reply(op, body)


def wait_for(op: str, timeout: float | None) -> float:
    operation = CATALOGUE.get(op)
    base = timeout or (operation.timeout_s if operation else 10.0)
    return base + REPLY_GRACE_S
