"""A backend that answers from a recording and re-emits its events (``run_all.py --replay FILE``).

Requests are matched by operation and arguments (defaults filled in from the catalogue,
``destination_path`` ignored since only the requester uses it). In ``any`` order each
match consumes the next recorded reply for that request and the last one is repeated
once they run out (a GUI asks the same things again and again); in ``strict`` order
the request must be the one recorded next. Events are re-emitted with their recorded
spacing (divided by ``speed``; 0 means all at once), counted from the first request the
backend receives, as they were counted from the start of the recording.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog

from actors.backends.api import RequestContext, StreamReply
from protocol.catalogue import BACKEND_OPERATIONS, CATALOGUE
from protocol.codec import encode
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode
from protocol.recording import RecordedExchange, RecordingIndex

log = structlog.get_logger()

IGNORED_ARGS = frozenset({"destination_path"})
TICK_S = 0.05


def request_key(op: str, args: Any) -> bytes:
    """A canonical form of a request: validated arguments, sorted, without requester-only ones."""
    operation = CATALOGUE.get(op)
    try:
        full = operation.validate_args(args) if operation is not None else (args or {})
    except ProtocolError:
        full = args if isinstance(args, dict) else {}
    canonical = {k: full[k] for k in sorted(full, key=str) if k not in IGNORED_ARGS}
    return op.encode() + b"\0" + encode(canonical)


class ReplayCore:
    name = "replay"
    mode = Mode.MOCK  # it stands where the mock stands; the recorded replies keep their own mode

    def __init__(
        self,
        index: RecordingIndex,
        *,
        order: str = "any",
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if order not in ("any", "strict"):
            raise ValueError("order must be 'any' or 'strict'")
        self.order = order
        self.speed = speed
        self.clock = clock
        backend_exchanges = [e for e in index.exchanges if e.reply is not None and e.op in BACKEND_OPERATIONS]
        self._strict: deque[RecordedExchange] = deque(backend_exchanges)
        self._by_key: dict[bytes, deque[RecordedExchange]] = {}
        for exchange in backend_exchanges:
            self._by_key.setdefault(request_key(exchange.op, exchange.args), deque()).append(exchange)
        first_request = min((e.t for e in index.exchanges), default=0.0)
        # Bridge events are the bridge's own business; it makes fresh ones.
        self._events = deque(
            (max(0.0, e.t - first_request), e.topic, e.data) for e in index.events if not e.topic.startswith("bridge.")
        )
        self._started: float | None = None
        self._outbox: list[tuple[str, dict[str, Any]]] = []
        log.info("replay.loaded", requests=len(backend_exchanges), events=len(self._events), order=order)

    def operations(self) -> list[str]:
        return list(BACKEND_OPERATIONS)

    def handle(self, op: str, args: dict[str, Any], ctx: RequestContext) -> dict[str, Any] | StreamReply:
        if self._started is None:
            self._started = self.clock()
        exchange = self._match(op, args)
        reply = dict(exchange.reply or {})
        if exchange.chunks is not None and reply.get("success"):
            content = b"".join(exchange.chunks)
            return StreamReply(len(content), lambda offset, n: content[offset : offset + n], lambda: dict(reply))
        return reply

    def _match(self, op: str, args: dict[str, Any]) -> RecordedExchange:
        key = request_key(op, args)
        if self.order == "strict":
            if not self._strict:
                raise ProtocolError(ErrorCode.NOT_RECORDED, f"the recording has no more requests; got {op}")
            expected = self._strict[0]
            if request_key(expected.op, expected.args) != key:
                raise ProtocolError(
                    ErrorCode.NOT_RECORDED,
                    f"strict replay expected {expected.op}({_args(expected.args)}) next, got {op}({_args(args)})",
                )
            return self._strict.popleft()
        candidates = self._by_key.get(key)
        if not candidates:
            raise ProtocolError(ErrorCode.NOT_RECORDED, f"no recorded reply for {op}({_args(args)})")
        return candidates.popleft() if len(candidates) > 1 else candidates[0]

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        out, self._outbox = self._outbox, []
        return out

    def tick(self) -> None:
        if self._started is None:
            return
        elapsed = self.clock() - self._started
        while self._events and (self.speed == 0 or self._events[0][0] / self.speed <= elapsed):
            _, topic, data = self._events.popleft()
            self._outbox.append((topic, data if isinstance(data, dict) else {"value": data}))

    def tick_interval(self) -> float:
        return TICK_S

    def close(self) -> None:
        log.info("replay.closed", events_left=len(self._events))


def _args(args: Any) -> str:
    if not isinstance(args, dict):
        return ""
    return ", ".join(f"{k}={v!r}" for k, v in args.items() if v is not None and k not in IGNORED_ARGS)
