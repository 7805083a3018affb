"""A bounded "say it once a minute" filter for refusals that a flood could repeat without end.

``admit(key)`` is true the first time a key is seen in ``quiet_s`` and then says how many
times it was suppressed meanwhile; the table of keys is an LRU of ``max_keys`` entries,
so a flood of distinct keys costs bounded memory (an evicted key is simply admitted
again). Thread-safe: the ZAP thread and the bridge's thread both report refusals.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(slots=True)
class _Seen:
    last: float
    suppressed: int = 0


class QuietFilter:
    def __init__(self, quiet_s: float = 60.0, max_keys: int = 4096, clock: Callable[[], float] = time.monotonic):
        self.quiet_s = quiet_s
        self.max_keys = max_keys
        self.clock = clock
        self.total = 0  # every refusal, admitted or not
        self._seen: OrderedDict[Hashable, _Seen] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def admit(self, key: Hashable) -> int | None:
        """None: stay quiet. Otherwise report it, with this many repeats suppressed since the last report."""
        now = self.clock()
        with self._lock:
            self.total += 1
            seen = self._seen.get(key)
            if seen is not None and now - seen.last < self.quiet_s:
                seen.suppressed += 1
                return None
            repeated = seen.suppressed if seen is not None else 0
            self._seen[key] = _Seen(now)
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)
            return repeated
