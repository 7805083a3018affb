"""Injectable clocks: the system clock, or a simulated one for reproducible runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def advance(self, seconds: float) -> None:
        """Called once per evolution tick; only a simulated clock moves."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        pass


class SimulatedClock:
    """Starts at a fixed instant and moves only when advanced (by the ticker)."""

    def __init__(self, start: datetime) -> None:
        self._now = start if start.tzinfo else start.replace(tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


def parse_clock(spec: str | None) -> Clock:
    """``None`` or ``system`` -> SystemClock; an ISO 8601 instant -> SimulatedClock starting there."""
    if spec is None or spec == "system":
        return SystemClock()
    return SimulatedClock(datetime.fromisoformat(spec))
