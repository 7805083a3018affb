"""Gap detection for the bridge's event stream, shared by the sync and async followers.

Pure logic: it is told what arrived (a live event, or a page of ``events_since``) and
says what to deliver, in ``seq`` order, with no duplicates, and when to resync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Resync:
    """Events were lost for good; reload state from scratch. Following resumes after ``latest_seq``."""

    reason: str
    latest_seq: int


Delivery = dict[str, Any] | Resync


class EventSequencer:
    def __init__(self, epoch: str, last_seq: int) -> None:
        self.epoch = epoch
        self.last_seq = last_seq

    def live(self, event: dict[str, Any]) -> tuple[list[Delivery], bool]:
        """A live event arrived; returns (deliveries, needs_backfill)."""
        seq = event.get("seq")
        if not isinstance(seq, int):
            return [], False
        if event.get("epoch") != self.epoch:
            return [], True  # the bridge restarted: events_since will say so
        if seq <= self.last_seq:
            return [], False
        if seq == self.last_seq + 1:
            self.last_seq = seq
            return [event], False
        return [], True

    def backfill(self, page: dict[str, Any]) -> tuple[list[Delivery], bool]:
        """A reply of ``events_since(last_seq)``; returns (deliveries, ask_again)."""
        if page["epoch"] != self.epoch:
            self.epoch = page["epoch"]
            self.last_seq = page["latest_seq"]
            return [Resync("the bridge restarted", self.last_seq)], False
        out: list[Delivery] = []
        if page["gap_too_old"]:
            out.append(Resync(f"events after {self.last_seq} left the bridge's ring buffer", page["latest_seq"]))
            self.last_seq = page["oldest_seq"] - 1
            return out, True
        for event in page["events"]:
            if event["seq"] > self.last_seq:
                self.last_seq = event["seq"]
                out.append(event)
        return out, bool(page["more"])


def event_from_frames(header_fields: dict[str, Any], data: Any) -> dict[str, Any]:
    """The event dict a live message stands for (same shape as events_since's)."""
    event = {k: v for k, v in header_fields.items() if k not in ("v", "kind")}
    event["data"] = data
    return event
