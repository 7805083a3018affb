"""Following the bridge's events with no gaps (synchronous; bridgectl and tests).

A subscriber misses what is published in the first milliseconds after it connects,
and a PUB socket drops messages for a subscriber whose queue is full; both show up
as a jump in ``seq``, filled from the bridge's ring buffer via ``events_since``. When
the ring no longer holds the missing events, or the bridge restarted (new epoch),
the follower yields a Resync: the caller must take a fresh snapshot.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

import zmq

from client.connection import BridgeClient
from client.sequencer import Delivery, EventSequencer, Resync, event_from_frames
from protocol.codec import decode
from protocol.envelope import decode_header
from runtime.endpoints import connectable

__all__ = ["EventFollower", "Resync"]


class EventFollower:
    def __init__(
        self,
        client: BridgeClient,
        *,
        since: int | None = None,
        topics: tuple[str, ...] = ("",),
        events_endpoint: str | None = None,
    ) -> None:
        self.client = client
        status = self._call("bridge_status", {})
        endpoint = events_endpoint or connectable(status["events_endpoint"], client.endpoint)
        self.sub = client.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        if client.connection is not None:
            client.connection.apply_client(self.sub)  # the events socket lets in the same keys as the frontend
        self.sub.setsockopt(zmq.RCVHWM, 100_000)
        for topic in topics:
            self.sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        self.sub.connect(endpoint)
        self.sequencer = EventSequencer(status["epoch"], status["latest_seq"] if since is None else since)
        self._backlog: deque[Delivery] = deque()
        # Whatever was published before our subscription took effect comes from the ring.
        self._fill()

    @property
    def last_seq(self) -> int:
        return self.sequencer.last_seq

    def close(self) -> None:
        self.sub.close(0)

    def _call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        reply = self.client.call(op, args)
        if not reply.get("success"):
            raise RuntimeError(f"{op} failed: {reply.get('error_code')}: {reply.get('message')}")
        return reply["data"]

    def _fill(self) -> None:
        ask = True
        while ask:
            deliveries, ask = self.sequencer.backfill(self._call("events_since", {"seq": self.sequencer.last_seq}))
            self._backlog.extend(deliveries)

    def next(self, timeout: float) -> Delivery | None:
        """The next event in sequence order (or a Resync), or None after ``timeout`` seconds of quiet."""
        if self._backlog:
            return self._backlog.popleft()
        if not self.sub.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        while True:
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            if len(frames) != 3:
                continue
            header = decode_header(frames[1])
            deliveries, gap = self.sequencer.live(
                event_from_frames(header.fields, decode(frames[2]) if frames[2] else None)
            )
            self._backlog.extend(deliveries)
            if gap:
                self._fill()
        return self._backlog.popleft() if self._backlog else None

    def __iter__(self) -> Iterator[Delivery]:
        while True:
            item = self.next(1.0)
            if item is not None:
                yield item
