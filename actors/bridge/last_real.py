"""The last known real answers: what reads got from the real backend, kept for its outages.

Under policy ``stale`` a read the real backend cannot answer now is answered from here,
marked ``stale: true`` with ``as_of`` (when the bridge received the real reply). Only
successful replies of catalogue reads from a backend registered as real are kept; an
error from the real backend for the same read forgets what was known (the latest real
answer was not that data any more).

The key is (operation, canonical arguments, role). Backends never learn who asks, so
today a real answer does not depend on the user; the role is in the key anyway, so that
a reply shaped per role (a field hidden from viewers) can never reach a lower role
through this cache. Bounded in bytes, least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from protocol.catalogue import Operation
from protocol.codec import decode, encode
from protocol.errors import ProtocolError

StaleKey = tuple[str, bytes, str]  # (operation, canonical arguments, role)

ENTRY_OVERHEAD = 200  # bytes an entry costs besides its body and key (objects, dict slots)


@dataclass(frozen=True, slots=True)
class Known:
    body: bytes  # the real reply's body frame, as the real backend sent it
    received_at: float  # wall clock (Unix time) when the bridge received it
    size: int


def _canonical(value: Any) -> Any:
    """Maps with sorted keys, so two spellings of the same arguments make one key."""
    if isinstance(value, dict):
        return [[k, _canonical(value[k])] for k in sorted(value, key=str)]
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def stale_key(operation: Operation, body: bytes, role: str | None, max_size: int) -> StaleKey | None:
    """The key of a read; None when its arguments do not validate (its answer is an error anyway)."""
    try:
        args = operation.validate_args(decode(body, max_size) if body else {})
        return operation.name, encode(_canonical(args)), role or ""
    except ProtocolError:
        return None


class LastReal:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[StaleKey, Known] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, key: StaleKey, body: bytes, received_at: float) -> None:
        self.forget(key)
        size = len(body) + len(key[0]) + len(key[1]) + len(key[2]) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return  # larger than the whole budget: an outage answers it BACKEND_UNAVAILABLE
        self._entries[key] = Known(body, received_at, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self.bytes -= oldest.size

    def forget(self, key: StaleKey) -> None:
        known = self._entries.pop(key, None)
        if known is not None:
            self.bytes -= known.size

    def get(self, key: StaleKey) -> Known | None:
        known = self._entries.get(key)
        if known is not None:
            self._entries.move_to_end(key)
        return known
