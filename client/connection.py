"""A synchronous connection to the bridge (bridgectl, tests, benchmarks).

Each connection is a DEALER with a stable routing id (its session), so the bridge's
reply cache recognises a re-sent request even across TCP reconnects.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import zmq

from protocol.catalogue import CATALOGUE
from protocol.codec import DEFAULT_MAX_SIZE
from protocol.envelope import CHUNK, REPLY, Header, decode_body, decode_header, request_frames
from runtime.endpoints import client_endpoint

CONNECT_TIMEOUT_S = 3.0
REPLY_GRACE_S = 2.0  # on top of the operation's deadline: the bridge answers within it


class BridgeUnreachable(Exception):
    """The bridge did not accept a connection or did not answer in time."""


class BridgeClient:
    def __init__(
        self,
        endpoint: str | None = None,
        *,
        session: str | None = None,
        context: zmq.Context | None = None,
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.endpoint = client_endpoint(endpoint)
        self.session = session or uuid.uuid4().hex
        self.connect_timeout = connect_timeout
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.ROUTING_ID, self.session.encode())
        # Queue only on live connections, so "not connected" is visible instead of silent.
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        self.sock.connect(self.endpoint)

    def close(self) -> None:
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
    ) -> str:
        request_id = request_id or uuid.uuid4().hex
        if not self.sock.poll(int(self.connect_timeout * 1000), zmq.POLLOUT):
            raise BridgeUnreachable(
                f"cannot connect to the bridge at {self.endpoint} within {self.connect_timeout:.0f}s"
            )
        self.sock.send_multipart(request_frames(request_id, op, args, session=self.session, timeout_ms=timeout_ms))
        return request_id

    def send_frames(self, frames: list[bytes]) -> None:
        """Send raw frames (tests of bad input)."""
        if not self.sock.poll(int(self.connect_timeout * 1000), zmq.POLLOUT):
            raise BridgeUnreachable(f"cannot connect to the bridge at {self.endpoint}")
        self.sock.send_multipart(frames)

    def receive(self, timeout: float) -> tuple[Header, bytes] | None:
        """The next message for this connection, or None after ``timeout`` seconds."""
        if not self.sock.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        header_frame, *rest = self.sock.recv_multipart()
        return decode_header(header_frame), (rest[0] if rest else b"")

    def messages_for(self, request_id: str, timeout: float) -> Iterator[tuple[Header, bytes]]:
        """Chunks and the final reply of one request; the deadline restarts with each message."""
        while True:
            got = self.receive(timeout)
            if got is None:
                raise BridgeUnreachable(f"no reply from the bridge at {self.endpoint} within {timeout:.1f}s")
            header, body = got
            if header.reply_to != request_id:
                continue  # a late reply to an earlier, abandoned request
            yield header, body
            if header.kind == REPLY:
                return

    def call(
        self,
        op: str,
        args: dict[str, Any] | None = None,
        *,
        timeout: float | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """One request, one standard reply dict. Raises BridgeUnreachable."""
        timeout_ms = int(timeout * 1000) if timeout else None
        request_id = self.send_request(op, args, request_id=request_id, timeout_ms=timeout_ms)
        for header, body in self.messages_for(request_id, wait_for(op, timeout)):
            if header.kind == REPLY:
                return decode_body(body, DEFAULT_MAX_SIZE)
            if header.kind == CHUNK:
                raise ValueError(f"{op} streams its reply; use client.download.download_file")
        raise AssertionError("unreachable")

    def stream(
        self,
        op: str,
        args: dict[str, Any],
        on_chunk: Callable[[Header, bytes], list[bytes] | None],
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """A streamed request: ``on_chunk`` gets each chunk and returns frames to send back (the ack)."""
        request_id = self.send_request(op, args, timeout_ms=int(timeout * 1000) if timeout else None)
        for header, body in self.messages_for(request_id, wait_for(op, timeout)):
            if header.kind == CHUNK:
                reply = on_chunk(header, body)
                if reply:
                    self.sock.send_multipart(reply)
            elif header.kind == REPLY:
                return decode_body(body, DEFAULT_MAX_SIZE)
        raise AssertionError("unreachable")


def wait_for(op: str, timeout: float | None) -> float:
    operation = CATALOGUE.get(op)
    base = timeout or (operation.timeout_s if operation else 10.0)
    return base + REPLY_GRACE_S
