"""The bridge's bookkeeping of answers: the reply cache and the deadline heap.

The reply cache is what makes answers exactly-once: a request id seen again is answered
from here instead of reaching a backend twice. It is bounded by a count, a lifetime, and
bytes (in all and per peer), so peers repeating large reads cannot grow the bridge.
The deadline heap orders every attempt's deadline; entries are deleted lazily (an
answered or renewed attempt leaves a stale entry the timer skips), which keeps a reply
O(1) instead of a heap removal per answer.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from protocol.errors import RETRYABLE

RequestKey = tuple[bytes, str]  # (client identity, request id)


@dataclass(slots=True)
class _Cached:
    expires: float
    frames: list[bytes]
    size: int
    owner: str | None  # the CURVE key that asked: nobody else is answered from this entry


class ReplyCache:
    """Bounded by entries, by bytes in all, and by bytes per peer (one peer's big replies
    push out its own older ones, not everyone's)."""

    def __init__(self, ttl: float, max_entries: int, max_bytes: int, max_peer_bytes: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_peer_bytes = max_peer_bytes
        self.bytes = 0
        self._entries: OrderedDict[RequestKey, _Cached] = OrderedDict()  # oldest first
        self._peers: dict[bytes, OrderedDict[str, None]] = {}  # per identity, its request ids oldest first
        self._peer_bytes: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peer_bytes(self, identity: bytes) -> int:
        return self._peer_bytes.get(identity, 0)

    def remember(
        self, key: RequestKey, frames: list[bytes], now: float, owner: str | None = None, error_code: str | None = None
    ) -> None:
        self._drop(key)
        if error_code in RETRYABLE:
            # A failure of the moment is not the request's answer: the same id resent after
            # the outage must reach a backend again, not get the stale error back.
            return
        size = sum(len(f) for f in frames)
        if size > self.max_peer_bytes:
            return  # never kept: a duplicate of this request is executed again, as if it came late
        identity, request_id = key
        self._entries[key] = _Cached(now + self.ttl, frames, size, owner)
        self._peers.setdefault(identity, OrderedDict())[request_id] = None
        self._peer_bytes[identity] = self._peer_bytes.get(identity, 0) + size
        self.bytes += size
        while self._peer_bytes[identity] > self.max_peer_bytes:
            self._drop((identity, next(iter(self._peers[identity]))))
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def get(self, key: RequestKey, owner: str | None = None) -> list[bytes] | None:
        entry = self._entries.get(key)
        if entry is None or entry.owner != owner:
            return None
        return entry.frames

    def _drop(self, key: RequestKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        identity, request_id = key
        self.bytes -= entry.size
        remaining = self._peer_bytes[identity] - entry.size
        ids = self._peers[identity]
        del ids[request_id]
        if ids:
            self._peer_bytes[identity] = remaining
        else:
            del self._peers[identity], self._peer_bytes[identity]

    def expire(self, now: float) -> None:
        # Entries are inserted in time order with one ttl, so the oldest expires first.
        while self._entries:
            key, first = next(iter(self._entries.items()))
            if first.expires > now:
                break
            self._drop(key)


class Deadlines:
    def __init__(self) -> None:
        self._heap: list[tuple[float, RequestKey, int]] = []

    def push(self, when: float, key: RequestKey, attempt: int) -> None:
        heapq.heappush(self._heap, (when, key, attempt))

    def due(self, now: float) -> Iterator[tuple[RequestKey, int]]:
        """Pop every entry due by ``now``; the caller decides whether it is still current."""
        while self._heap and self._heap[0][0] <= now:
            _, key, attempt = heapq.heappop(self._heap)
            yield key, attempt

    def earliest(self) -> float | None:
        return self._heap[0][0] if self._heap else None
