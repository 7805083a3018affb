"""Requests waiting for a backend, counted per peer so one peer cannot take everyone's share.

The bridge refuses a request with OVERLOADED when its peer already has ``per_peer``
requests in flight (that peer alone is told to slow down), or when the whole table is
full.
"""

from __future__ import annotations

from collections.abc import Iterator

from actors.bridge.config import Pending
from actors.bridge.replies import RequestKey
from protocol.errors import ErrorCode, ProtocolError


class PendingTable:
    def __init__(self) -> None:
        self._items: dict[RequestKey, Pending] = {}
        self._per_peer: dict[bytes, int] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: RequestKey) -> bool:
        return key in self._items

    def get(self, key: RequestKey) -> Pending | None:
        return self._items.get(key)

    def items(self) -> Iterator[tuple[RequestKey, Pending]]:
        """A snapshot: callers fail requests over (and so remove them) while iterating."""
        return iter(list(self._items.items()))

    def of_peer(self, identity: bytes) -> int:
        return self._per_peer.get(identity, 0)

    @property
    def peers(self) -> int:
        return len(self._per_peer)

    def refusal(self, identity: bytes, per_peer: int, total: int) -> ProtocolError | None:
        """OVERLOADED for a peer over its share (it alone slows down), or for everyone when all is full."""
        mine = self.of_peer(identity)
        if mine >= per_peer:
            return ProtocolError(
                ErrorCode.OVERLOADED, f"you have {mine} requests in flight (at most {per_peer}); retry later"
            )
        if len(self._items) >= total:
            return ProtocolError(ErrorCode.OVERLOADED, f"{len(self._items)} requests in flight; retry later")
        return None

    def add(self, key: RequestKey, pending: Pending) -> None:
        if key in self._items:
            raise ValueError(f"request {key!r} is already in flight")
        self._items[key] = pending
        self._per_peer[key[0]] = self._per_peer.get(key[0], 0) + 1

    def pop(self, key: RequestKey) -> Pending | None:
        pending = self._items.pop(key, None)
        if pending is not None:
            left = self._per_peer[key[0]] - 1
            if left:
                self._per_peer[key[0]] = left
            else:
                del self._per_peer[key[0]]
        return pending
