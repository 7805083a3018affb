"""Re-send a recording's requests to a stack and compare each reply with the recorded one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.connection import BridgeClient
from protocol.envelope import Header
from protocol.matching import Matcher
from protocol.recording import RecordedExchange, RecordingIndex, index_recording, read_recording
from protocol.responses import Reply
from protocol.streaming import StreamReceiver


@dataclass
class Mismatch:
    number: int
    op: str
    lines: list[str]


@dataclass
class ReplayReport:
    sent: int = 0
    skipped: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def load(path: Path) -> RecordingIndex:
    with open(path, "rb") as stream:
        header, entries = read_recording(stream)
        return index_recording(header, entries)


def _replay_stream(client: BridgeClient, exchange: RecordedExchange) -> Reply:
    """A streamed request: consume (and acknowledge) the chunks, return the final reply."""
    receiver: StreamReceiver | None = None

    def on_chunk(header: Header, data: bytes | memoryview) -> list[bytes]:
        nonlocal receiver
        receiver = receiver or StreamReceiver(header.reply_to or "")
        return receiver.on_chunk(header.fields["index"], header.fields["offset"], header.get("total") or 0, data)

    return client.stream(exchange.op, exchange.args or {}, on_chunk)


def replay(
    index: RecordingIndex,
    client: BridgeClient,
    *,
    matcher: Matcher | None = None,
    pace: str = "fast",
    on_result: Callable[[int, RecordedExchange, list[str]], None] | None = None,
) -> ReplayReport:
    """Send every recorded request that got a reply, in order; ``pace='original'`` keeps the gaps."""
    matcher = matcher or Matcher()
    report = ReplayReport()
    start = time.monotonic()
    for number, exchange in enumerate(index.exchanges, 1):
        if exchange.reply is None:
            report.skipped += 1  # never answered while recording (e.g. the stack stopped)
            continue
        if pace == "original":
            delay = exchange.t - index.exchanges[0].t - (time.monotonic() - start)
            if delay > 0:
                time.sleep(delay)
        if exchange.chunks is not None:
            reply = _replay_stream(client, exchange)
        else:
            reply = client.call(exchange.op, exchange.args if isinstance(exchange.args, dict) else {})
        report.sent += 1
        lines = matcher.diff(exchange.op, exchange.reply, reply)
        if lines:
            report.mismatches.append(Mismatch(number, exchange.op, lines))
        if on_result is not None:
            on_result(number, exchange, lines)
    return report


def summary(index: RecordingIndex) -> dict[str, Any]:
    """Counts per operation and topic, duration, and the header (for ``bridgectl recording show``)."""
    ops: dict[str, int] = {}
    failures: dict[str, int] = {}
    for exchange in index.exchanges:
        ops[exchange.op] = ops.get(exchange.op, 0) + 1
        if exchange.reply is not None and not exchange.reply.get("success"):
            failures[exchange.op] = failures.get(exchange.op, 0) + 1
    topics: dict[str, int] = {}
    for event in index.events:
        topics[event.topic] = topics.get(event.topic, 0) + 1
    return {
        "format_version": index.header.get("format_version"),
        "protocol_version": index.header.get("protocol_version"),
        "seed": index.header.get("seed"),
        "started_at": index.header.get("started_at"),
        "config": index.header.get("config"),
        "duration_s": round(index.duration, 3),
        "requests": len(index.exchanges),
        "unanswered": sum(1 for e in index.exchanges if e.reply is None),
        "streams": sum(1 for e in index.exchanges if e.chunks is not None),
        "events": len(index.events),
        "per_op": dict(sorted(ops.items())),
        "failures_per_op": dict(sorted(failures.items())),
        "per_topic": dict(sorted(topics.items())),
    }


__all__ = ["Mismatch", "ReplayReport", "load", "replay", "summary"]
