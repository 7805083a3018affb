"""Following the bridge's events with no gaps: SUB for live events, events_since to fill holes.

A subscriber misses what is published in the first milliseconds after it connects,
and a PUB socket drops messages for a subscriber whose queue is full; both show up
here as a jump in ``seq``, which is filled from the bridge's ring buffer. When the
ring no longer holds the missing events, or the bridge restarted (new ``epoch``),
the follower yields a Resync: the caller must take a fresh snapshot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import zmq

from client.connection import BridgeClient
from protocol.codec import decode
from protocol.envelope import decode_header
from runtime.endpoints import connectable


@dataclass(frozen=True, slots=True)
class Resync:
    """Events were lost for good; reload state from scratch. ``latest_seq`` is where following resumes."""

    reason: str
    latest_seq: int


class EventFollower:
    def __init__(self, client: BridgeClient, *, since: int | None = None, topics: tuple[str, ...] = ("",),
                 events_endpoint: str | None = None) -> None:
        self.client = client
        status = self._call("bridge_status", {})
        self.epoch: str = status["epoch"]
        endpoint = events_endpoint or connectable(status["events_endpoint"], client.endpoint)
        self.sub = client.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.RCVHWM, 100_000)
        for topic in topics:
            self.sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.sub.connect(endpoint)
        self.last_seq: int = status["latest_seq"] if since is None else since
        self._backlog: deque[dict[str, Any] | Resync] = deque()
        # Whatever was published before our subscription took effect comes from the ring.
        self._fill()

    def close(self) -> None:
        self.sub.close(0)

    def _call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        reply = self.client.call(op, args)
        if not reply.get("success"):
            raise RuntimeError(f"{op} failed: {reply.get('error_code')}: {reply.get('message')}")
        return reply["data"]

    def _fill(self) -> None:
        """Queue every event after last_seq from the bridge's ring buffer."""
        while True:
            data = self._call("events_since", {"seq": self.last_seq})
            if data["epoch"] != self.epoch:
                self.epoch = data["epoch"]
                self.last_seq = data["latest_seq"]
                self._backlog.append(Resync("the bridge restarted", self.last_seq))
                return
            if data["gap_too_old"]:
                self._backlog.append(Resync(f"events after {self.last_seq} left the bridge's ring buffer", data["latest_seq"]))
                self.last_seq = data["oldest_seq"] - 1
                continue
            for event in data["events"]:
                self._accept(event)
            if not data["more"]:
                return

    def _accept(self, event: dict[str, Any]) -> None:
        if event["seq"] > self.last_seq:
            self.last_seq = event["seq"]
            self._backlog.append(event)

    def next(self, timeout: float) -> dict[str, Any] | Resync | None:
        """The next event in sequence order (or a Resync), or None after ``timeout`` seconds of quiet."""
        if self._backlog:
            return self._backlog.popleft()
        if not self.sub.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        while True:
            try:
                _topic, header_frame, body = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            except ValueError:
                continue
            header = decode_header(header_frame)
            seq, epoch = header.get("seq"), header.get("epoch")
            if epoch != self.epoch or seq > self.last_seq + 1:
                self._fill()
                if seq is not None and seq <= self.last_seq:
                    continue
            if seq == self.last_seq + 1:
                event = {k: v for k, v in header.fields.items() if k not in ("v", "kind")}
                event["data"] = decode(body) if body else None
                self._accept(event)
        return self._backlog.popleft() if self._backlog else None

    def __iter__(self) -> Iterator[dict[str, Any] | Resync]:
        while True:
            item = self.next(1.0)
            if item is not None:
                yield item
