"""Login throttling per user and per peer address.

The first ``free_failures`` failures cost nothing; after that each failure doubles the
wait before the next attempt is even checked (``base_s``, 2×, 4×… up to ``max_s``). A
key with no failure for ``forget_s`` starts afresh. A success clears the user's count,
not the address's, so one good account cannot launder guesses at others. Memory is an
LRU of ``max_keys`` entries.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(slots=True)
class _Failures:
    count: int
    last: float
    blocked_until: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        free_failures: int = 3,
        base_s: float = 1.0,
        max_s: float = 300.0,
        forget_s: float = 900.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.base_s = base_s
        self.max_s = max_s
        self.forget_s = forget_s
        self.max_keys = max_keys
        self.clock = clock
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def _current(self, key: str, now: float) -> _Failures | None:
        entry = self._failures.get(key)
        if entry is not None and now - entry.last > self.forget_s:
            del self._failures[key]
            return None
        return entry

    def wait_s(self, keys: Iterable[str]) -> float:
        """Seconds before an attempt for these keys may be checked (0: now)."""
        now = self.clock()
        waits = [entry.blocked_until - now for key in keys if (entry := self._current(key, now)) is not None]
        return max([0.0, *waits])

    def failed(self, keys: Iterable[str]) -> None:
        now = self.clock()
        for key in keys:
            entry = self._current(key, now) or _Failures(0, now)
            entry.count += 1
            entry.last = now
            if entry.count >= self.free_failures:
                delay = self.base_s * 2 ** min(entry.count - self.free_failures, 32)
                entry.blocked_until = now + min(self.max_s, delay)
            self._failures[key] = entry
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
