"""The bridge's bookkeeping of answers: the reply cache and the deadline heap.

The reply cache is what makes answers exactly-once: a request id seen again is answered
from here instead of reaching a backend twice. It is bounded by a count and a lifetime.
The deadline heap orders every attempt's deadline; entries are deleted lazily (an
answered or renewed attempt leaves a stale entry the timer skips), which keeps a reply
O(1) instead of a heap removal per answer.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterator

RequestKey = tuple[bytes, str]  # (client identity, request id)


class ReplyCache:
    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[RequestKey, tuple[float, list[bytes]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, key: RequestKey, frames: list[bytes], now: float) -> None:
        self._entries[key] = (now + self.ttl, frames)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def get(self, key: RequestKey) -> list[bytes] | None:
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def expire(self, now: float) -> None:
        # Entries are inserted in time order with one ttl, so the oldest expires first.
        while self._entries:
            first = next(iter(self._entries.values()))
            if first[0] > now:
                break
            self._entries.popitem(last=False)


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
