"""Wait for something to become ready with no deadline, saying every few seconds what is still missing.

A fixed deadline is wrong for a stack's start-up: generating a big demo dataset can take longer than
any number picked in advance, and a stack that became ready after the deadline was never announced.
So the wait ends only when the thing is ready or the caller stops, and a ``stack.waiting`` line names
what it waits for and for how long, so a slow start is visibly slow rather than silent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger()

PROGRESS_EVERY_S = 5.0
POLL_S = 0.1


@dataclass(frozen=True)
class Probe:
    """One look: ready (with what to say about it) or not yet (with what is missing)."""

    ready: bool
    waiting_for: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def wait_until_ready(
    probe: Callable[[], Probe],
    should_stop: Callable[[], bool],
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress_every: float = PROGRESS_EVERY_S,
    poll: float = POLL_S,
) -> Probe | None:
    """The ready probe, or None when stopped first; logs ``stack.waiting`` every ``progress_every`` seconds."""
    started = clock()
    next_progress = started + progress_every
    while not should_stop():
        look = probe()
        if look.ready:
            return look
        now = clock()
        if now >= next_progress:
            log.info("stack.waiting", waiting_for=look.waiting_for, waited_s=round(now - started, 1))
            # From now, not from the missed mark: a probe slower than the period must not log in a burst.
            next_progress = now + progress_every
        sleep(poll)
    return None
