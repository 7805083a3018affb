"""The agents' gateway at thousands of sessions (issue 10, item 11), without sockets and with a fake clock.

A burst of hellos processed late must not expire live sessions, a batch costs only the sessions it
touched, and the status that every hello and goodbye changes is computed once per tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.server.agents import BACKLOG_GRACE_PERIODS
from actors.server.core import BackupServer, ServerConfig
from protocol.agent_messages import SERVER_TO_AGENT, CreditLedger, Message, decode_message, encode_message
from runtime.curve_keys import enrollment_keypair

pytestmark = pytest.mark.timeout(120)

FLEET = 2000
BURST = 500
DRAIN_LIMIT = 256  # what the shell takes off the socket per turn


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Fleet:
    """Simulated agents talking to the core's gateway in batches, as the shell hands them over."""

    def __init__(self, core: BackupServer, clock: FakeClock) -> None:
        self.core, self.clock = core, clock
        self.keys: dict[bytes, str] = {}
        self.enroll_key = enrollment_keypair(core.token)[0].decode()

    def enroll(self, n: int) -> list[bytes]:
        routes = []
        for _ in range(n):
            public = zmq.curve_keypair()[0].decode()
            route = f"agent-{len(self.keys)}".encode()
            msg = encode_message(
                "enroll", public_key=public, name=route.decode(), hostname="h", platform="p", version="1"
            )
            self.core.agents.on_message(b"enroller", msg, self.enroll_key, "10.0.0.1")
            self.keys[route] = public
            routes.append(route)
        self.core.agents.end_of_batch()
        self.core.agents.drain_outbox()
        return routes

    def batch(
        self, messages: list[tuple[bytes, str]], received_at: float, drained: bool, cost: dict[str, float] | None = None
    ) -> None:
        """One turn of the shell: every message stamped with the batch's receive time; ``cost``: seconds per type."""
        gateway = self.core.agents
        for route, type_ in messages:
            fields: dict[str, Any] = {}
            if type_ == "hello":
                fields = {"name": route.decode(), "hostname": "h", "platform": "p", "version": "1"}
            gateway.on_message(route, encode_message(type_, **fields), self.keys[route], "10.0.0.1", received_at)
            self.clock.t += (cost or {}).get(type_, 0.0)
        gateway.end_of_batch(drained)

    def replies(self) -> list[tuple[bytes, Message]]:
        return [(route, decode_message(frames, SERVER_TO_AGENT)) for route, frames in self.core.agents.drain_outbox()]

    def in_batches(
        self, messages: list[tuple[bytes, str]], cost: dict[str, float] | None = None, tick: bool = False
    ) -> None:
        """As the shell drains a backlog: DRAIN_LIMIT per turn, the last turn finding the queue empty."""
        for start in range(0, len(messages), DRAIN_LIMIT):
            chunk = messages[start : start + DRAIN_LIMIT]
            self.batch(chunk, self.clock.t, drained=start + DRAIN_LIMIT >= len(messages), cost=cost)
            if tick:  # the server's tick comes due between two turns
                self.core.tick()


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    core = BackupServer(ServerConfig(tmp_path, log_file=False))
    clock = FakeClock()
    core.agents.clock = clock
    yield Fleet(core, clock)
    core.close()


def topics(core: BackupServer) -> list[str]:
    return [t for t, _ in core.drain_events()]


def test_a_late_burst_of_hellos_does_not_expire_live_sessions(fleet: Fleet) -> None:
    live = fleet.enroll(FLEET)
    newcomers = fleet.enroll(BURST)
    fleet.in_batches([(r, "hello") for r in live])
    fleet.core.tick()
    fleet.replies()
    assert len(fleet.core.agents.sessions) == FLEET
    # Every live agent heartbeats on time at 1001, but behind a burst of 500 hellos that cost 6 ms each:
    # the shell needs 3 s to reach the heartbeats, and the server ticks between its turns.
    fleet.clock.t = 1001.0
    # (The newcomers' own first heartbeats queue up behind the same burst.)
    backlog = [(r, "hello") for r in newcomers] + [(r, "heartbeat") for r in live + newcomers]
    fleet.in_batches(backlog, cost={"hello": 0.006, "heartbeat": 0.00005}, tick=True)
    assert fleet.clock.t - 1000.0 > 3 * fleet.core.agents.settings.heartbeat_s  # the old verdict: all lost
    lost = [m for _, m in fleet.replies() if m.type == "error"]
    assert lost == []
    assert len(fleet.core.agents.sessions) == FLEET + BURST
    assert not any("lost" in row["message"] for row in fleet.core.get_recent_activity(limit=1000))


def test_a_backlog_postpones_the_verdict_for_a_bounded_time(fleet: Fleet) -> None:
    (route,) = fleet.enroll(1)
    fleet.batch([(route, "hello")], fleet.clock.t, drained=True)
    grace = fleet.core.agents.settings.heartbeat_s * fleet.core.agents.settings.liveness * BACKLOG_GRACE_PERIODS
    fleet.clock.t += 1.0
    fleet.batch([], fleet.clock.t, drained=False)  # a flood that never drains
    fleet.clock.t += grace - 0.5  # silent for longer than the limit, but maybe queued: not yet
    fleet.core.tick()
    assert fleet.core.agents.has_session(fleet.core.agents.sessions[route].client_id)
    fleet.clock.t += 1.0  # the backlog has lasted its grace: the silent agent is judged
    fleet.core.tick()
    assert fleet.core.agents.sessions == {}
    fleet.batch([], fleet.clock.t, drained=True)
    assert fleet.core.agents.backlog_since is None


def test_liveness_counts_from_the_batch_arrival_not_its_processing(fleet: Fleet) -> None:
    (route,) = fleet.enroll(1)
    fleet.batch([(route, "hello")], 1000.0, drained=True)
    fleet.clock.t = 1005.0  # handled late, but taken off the socket at 1002
    fleet.batch([(route, "heartbeat")], 1002.0, drained=True)
    assert fleet.core.agents.sessions[route].last_seen == 1002.0
    fleet.batch([(route, "heartbeat")], 1001.0, drained=True)  # an older stamp never moves it back
    assert fleet.core.agents.sessions[route].last_seen == 1002.0


def test_end_of_batch_visits_only_the_sessions_it_touched(fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    routes = fleet.enroll(FLEET)
    fleet.in_batches([(r, "hello") for r in routes])
    visited: list[int] = []
    take_pending = CreditLedger.take_pending

    def counting(self: CreditLedger) -> int:
        visited.append(1)
        return take_pending(self)

    monkeypatch.setattr(CreditLedger, "take_pending", counting)
    fleet.batch([(routes[7], "heartbeat")], fleet.clock.t, drained=True)
    assert len(visited) == 1
    fleet.batch([(r, "heartbeat") for r in routes[:10]], fleet.clock.t, drained=True)
    assert len(visited) == 11
    fleet.batch([], fleet.clock.t, drained=True)
    assert len(visited) == 11


def test_server_changed_is_coalesced_to_one_per_tick(fleet: Fleet) -> None:
    routes = fleet.enroll(BURST)
    fleet.core.tick()
    topics(fleet.core)
    fleet.in_batches([(r, "hello") for r in routes])
    fleet.in_batches([(r, "bye") for r in routes[:100]])
    assert "server.changed" not in topics(fleet.core)  # hellos and goodbyes only mark the status
    fleet.core.tick()
    events = fleet.core.drain_events()
    changed = [data for topic, data in events if topic == "server.changed"]
    assert len(changed) == 1
    assert changed[0]["status"]["clients_connected"] == BURST - 100
    fleet.core.tick()
    assert "server.changed" not in topics(fleet.core)  # nothing changed since
