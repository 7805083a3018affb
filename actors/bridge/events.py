"""The bridge's event log: a global gap-free sequence and a ring buffer of recent events."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from actors.bridge.authorize import request_args
from protocol.catalogue import CATALOGUE
from protocol.codec import decode
from protocol.envelope import EVENT, encode_header

EVENTS_PER_CALL = 1000


@dataclass(slots=True)
class StoredEvent:
    seq: int
    topic: str
    header: dict[str, Any]
    body: bytes


class EventLog:
    def __init__(self, epoch: str, size: int = 10_000) -> None:
        self.epoch = epoch
        self.seq = 0
        self._ring: deque[StoredEvent] = deque(maxlen=size)

    def stamp(self, topic: str, fields: dict[str, Any], body: bytes) -> list[bytes]:
        """Give an event the next sequence number; returns the frames to publish."""
        self.seq += 1
        header = {
            "topic": topic,
            "mode": fields.get("mode"),
            "ts": fields.get("ts"),
            "seq": self.seq,
            "epoch": self.epoch,
        }
        if fields.get("id") is not None:
            header["id"] = fields["id"]
        self._ring.append(StoredEvent(self.seq, topic, header, body))
        return [topic.encode(), encode_header(EVENT, **header), body]

    @property
    def oldest_seq(self) -> int:
        return self._ring[0].seq if self._ring else self.seq + 1

    def since(self, seq: int) -> dict[str, Any]:
        """Events after ``seq``; ``gap_too_old`` when some of them have left the ring."""
        oldest = self.oldest_seq
        gap_too_old = seq + 1 < oldest and seq < self.seq
        start = max(seq + 1, oldest)
        events: list[dict[str, Any]] = []
        if start <= self.seq:
            first_index = start - oldest
            for i in range(first_index, min(len(self._ring), first_index + EVENTS_PER_CALL)):
                stored = self._ring[i]
                event = dict(stored.header)
                event["data"] = decode(stored.body) if stored.body else None
                events.append(event)
        last = events[-1]["seq"] if events else max(seq, start - 1)
        return {
            "events": events,
            "latest_seq": self.seq,
            "oldest_seq": oldest,
            "gap_too_old": gap_too_old,
            "more": last < self.seq,
            "epoch": self.epoch,
        }


def write_notice(op: str, body: bytes, session: str | None, request_id: str, mode: str) -> dict[str, Any]:
    """The data of a ``bridge.write`` event: which operation touched which ids, for whom."""
    operation = CATALOGUE.get(op)
    # The catalogue says which arguments are ids; a plugin operation declares none.
    ids = operation.ids_of(request_args(body)) if operation is not None else {}
    return {"op": op, "ids": ids, "session": session, "request_id": request_id, "mode": mode}
