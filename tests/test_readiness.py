"""run_all's start-up wait (issue 10, item 12): no deadline, progress while waiting, ready whenever it is."""

from __future__ import annotations

import itertools

from structlog.testing import capture_logs

from runtime.readiness import Probe, wait_until_ready


class FakeTime:
    """A clock that moves only when the waiter sleeps, plus a probe that turns ready at a set instant."""

    def __init__(self, ready_at: float) -> None:
        self.now = 0.0
        self.ready_at = ready_at
        self.probes = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def probe(self) -> Probe:
        self.probes += 1
        if self.now >= self.ready_at:
            return Probe(True, details={"mode": "mock"})
        return Probe(False, "a live backend: none registered yet")


def test_ready_after_a_long_generation_is_still_announced() -> None:
    # The case of the issue: data ready at 22 s, past the old fixed 20 s deadline.
    fake = FakeTime(ready_at=22.0)
    with capture_logs() as logs:
        got = wait_until_ready(fake.probe, lambda: False, clock=fake.clock, sleep=fake.sleep)
    assert got is not None and got.ready and got.details == {"mode": "mock"}
    assert fake.now >= 22.0
    waiting = [e for e in logs if e["event"] == "stack.waiting"]
    # One line every 5 s of waiting (5, 10, 15, 20), each naming what is missing and for how long.
    assert [round(e["waited_s"]) for e in waiting] == [5, 10, 15, 20]
    assert all(e["waiting_for"] == "a live backend: none registered yet" for e in waiting)


def test_ready_at_once_logs_no_progress() -> None:
    fake = FakeTime(ready_at=0.0)
    with capture_logs() as logs:
        got = wait_until_ready(fake.probe, lambda: False, clock=fake.clock, sleep=fake.sleep)
    assert got is not None and got.ready
    assert fake.probes == 1 and logs == []


def test_a_stalled_probe_does_not_log_in_bursts() -> None:
    # The first look stalls 20 s (a bridge still binding): progress resumes at one line per 5 s, no catch-up burst.
    fake = FakeTime(ready_at=40.0)
    stalls = [20.0]

    def stalling_probe() -> Probe:
        fake.now += stalls.pop() if stalls else 0.0
        return fake.probe()

    with capture_logs() as logs:
        wait_until_ready(stalling_probe, lambda: False, clock=fake.clock, sleep=fake.sleep)
    waited = [e["waited_s"] for e in logs if e["event"] == "stack.waiting"]
    assert waited[0] == 20.0
    assert all(b - a >= 5 for a, b in itertools.pairwise(waited)), waited


def test_stopping_ends_the_wait_without_ready() -> None:
    fake = FakeTime(ready_at=float("inf"))
    got = wait_until_ready(fake.probe, lambda: fake.now >= 3.0, clock=fake.clock, sleep=fake.sleep)
    assert got is None and 3.0 <= fake.now < 3.5
