"""A map whose size also counts in a total shared by many maps: the server's active transfers.

Each agent session holds its open uploads and its restores in such maps, all counting into
one ``Tally``, so the status reads the number of active transfers instead of summing over
every session each time.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class Tally:
    count: int = 0


class TallyMap(MutableMapping[K, V]):
    """A dict that adds its entries to ``tally`` (every removal path of MutableMapping goes through __delitem__)."""

    def __init__(self, tally: Tally | None = None) -> None:
        self.tally = tally if tally is not None else Tally()
        self._items: dict[K, V] = {}

    def __getitem__(self, key: K) -> V:
        return self._items[key]

    def __setitem__(self, key: K, value: V) -> None:
        if key not in self._items:
            self.tally.count += 1
        self._items[key] = value

    def __delitem__(self, key: K) -> None:
        del self._items[key]
        self.tally.count -= 1

    def __iter__(self) -> Iterator[K]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"TallyMap({self._items!r})"
