"""Honest outages through BridgeCore, without sockets (issue 10, items 1 and 2): policy stale, the
last known real replies, what a real stack's bridge says about itself, and mock events kept
off a real stack's topics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.bridge.auth.authority import Authority
from actors.bridge.auth.state import BridgeStores
from actors.bridge.config import BridgeConfig
from actors.bridge.core import BridgeCore
from actors.bridge.last_real import LastReal, stale_key
from protocol import responses
from protocol.catalogue import CATALOGUE
from protocol.codec import decode, encode
from protocol.envelope import DISCONNECT, EVENT, decode_header, encode_header
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import OutageAnswer, Policy, during_outage
from protocol.roles import Role
from runtime.bootstrap import StackEndpoints, bootstrap
from runtime.credentials import KeyPair, StackPaths
from tests.bridge_auth import make_authority
from tests.test_bridge_core import (
    MOCK,
    REAL,
    Clock,
    FakeOutbox,
    answer,
    beat,
    from_backend,
    ready,
    request,
)

pytestmark = pytest.mark.timeout(30)

OPS = ["get_clients", "get_client_details", "stop_server", "download_file"]
CLIENTS = {"items": [{"id": "c1", "name": "alpha"}], "total": 1}


def core_of(authority: Authority, policy: Policy | None = None) -> tuple[BridgeCore, FakeOutbox, Clock]:
    out, clock = FakeOutbox(), Clock()
    return BridgeCore(BridgeConfig(policy=policy), out, clock, authority=authority), out, clock


@pytest.fixture
def real_stack(tmp_path: Path) -> tuple[BridgeCore, FakeOutbox, Clock]:
    """A stack configured with a real server (a key allow-listed as real), default policy, both backends up."""
    authority, _ = make_authority(tmp_path)
    core, out, clock = core_of(authority)
    ready(core, REAL, "real", OPS)
    ready(core, MOCK, "mock", OPS)
    return core, out, clock


def kill_real(core: BridgeCore, clock: Clock) -> None:
    """The real backend misses three heartbeats (a kill -9) while the mock goes on beating."""
    for _ in range(4):
        clock.now += 1.0
        beat(core, MOCK)
        core.on_timer()
    assert not core.registry.backends[REAL].alive


def last(out: FakeOutbox) -> dict[str, Any]:
    return out.replies()[-1]


def published(out: FakeOutbox, topic: str) -> list[dict[str, Any]]:
    return [decode(f[2]) for f in out.published if f[0] == topic.encode()]


def test_the_default_policy_is_stale_with_a_real_server_and_reads_without(tmp_path: Path) -> None:
    real, _ = make_authority(tmp_path / "real")
    demo, _ = make_authority(tmp_path / "demo", real_backend=False)
    assert core_of(real)[0].status()["policy"] == "stale"
    assert core_of(demo)[0].status()["policy"] == "reads"
    assert core_of(real, Policy.READS)[0].status()["policy"] == "reads"  # --policy overrides
    with pytest.raises(ValueError):
        core_of(real, "sometimes")  # type: ignore[arg-type]


def test_a_read_during_an_outage_is_the_last_real_reply_marked_stale(real_stack) -> None:
    core, out, clock = real_stack
    request(core, "get_clients", {"limit": 50, "offset": 0}, rid="a")
    before = datetime.now(UTC)
    answer(core, REAL, "a", responses.success(CLIENTS, mode="real"))
    fresh = last(out)
    assert "stale" not in fresh and "as_of" not in fresh  # absent means fresh
    kill_real(core, clock)
    request(core, "get_clients", {"offset": 0, "limit": 50}, rid="b")  # the same read, spelt otherwise
    stale = last(out)
    assert (stale["success"], stale["mode"], stale["stale"], stale["data"]) == (True, "real", True, CLIENTS)
    assert before - timedelta(seconds=1) <= stale["as_of"] <= datetime.now(UTC)
    responses.as_reply(stale)  # the documented reply format
    assert out.requests_to(MOCK) == [] and len(out.requests_to(REAL)) == 1
    request(core, "get_clients", {"limit": 51}, rid="c")  # never asked of the real server
    unknown = last(out)
    assert unknown["error_code"] == "BACKEND_UNAVAILABLE" and "no earlier real answer" in unknown["message"]
    assert out.requests_to(MOCK) == []


def test_a_write_during_an_outage_is_refused_saying_since_when_and_audited(real_stack) -> None:
    core, out, clock = real_stack
    kill_real(core, clock)
    since = core.status()["real_unavailable_since"]
    assert isinstance(since, datetime)
    request(core, "stop_server", rid="w")
    refused = last(out)
    assert refused["error_code"] == "BACKEND_UNAVAILABLE" and refused["mode"] == "bridge"
    assert f"unavailable since {since:%H:%M:%S} UTC; stop_server was not executed" in refused["message"]
    assert out.requests_to(MOCK) == []
    audit = core.auth.audit.page(0, 10, op="stop_server")["items"]
    assert audit and audit[0]["outcome"] == "BACKEND_UNAVAILABLE"


def test_an_operation_only_the_mock_knows_is_not_answered_by_it_in_a_real_stack(tmp_path: Path) -> None:
    authority, _ = make_authority(tmp_path)
    core, out, _ = core_of(authority)
    ready(core, REAL, "real", OPS)
    ready(core, MOCK, "mock", [*OPS, "plugin_purge"])
    request(core, "plugin_purge", {"client_id": "c1"}, rid="p")
    assert last(out)["error_code"] == "BACKEND_UNAVAILABLE" and "no live real backend serves" in last(out)["message"]
    assert out.requests_to(MOCK) == []


def test_a_download_is_never_answered_from_memory(real_stack) -> None:
    core, out, clock = real_stack
    args = {"file_id": "f1", "destination_path": "/tmp/x"}
    request(core, "download_file", args, rid="d1")
    answer(core, REAL, "d1", responses.success({"sha256": "x", "size": 0}, mode="real"))
    kill_real(core, clock)
    request(core, "download_file", args, rid="d2")
    assert last(out)["error_code"] == "BACKEND_UNAVAILABLE" and "download" in last(out)["message"]
    assert out.requests_to(MOCK) == []


def test_a_read_in_flight_when_the_real_server_goes_is_answered_stale(real_stack) -> None:
    core, out, _ = real_stack
    request(core, "get_clients", rid="a")
    answer(core, REAL, "a", responses.success(CLIENTS, mode="real"))
    request(core, "get_clients", rid="b")  # sent to the real server, which then says goodbye
    request(core, "stop_server", rid="w")
    from_backend(core, REAL, [b"", encode_header(DISCONNECT), b""])
    replies = {r["error_code"] if not r["success"] else "stale" for r in out.replies()[1:]}
    assert replies == {"stale", "BACKEND_UNAVAILABLE"}
    assert out.requests_to(MOCK) == []
    # Stale answers are of the moment: the same id once the server is back reaches it.
    ready(core, REAL, "real", OPS)
    request(core, "get_clients", rid="b")
    assert len(out.requests_to(REAL)) == 4  # a, b, w, and b again


def test_the_cache_is_per_role_and_forgets_what_the_real_server_denied(real_stack) -> None:
    core, out, clock = real_stack
    request(core, "get_clients", rid="a", role=Role.ADMIN)
    answer(core, REAL, "a", responses.success(CLIENTS, mode="real"))
    request(core, "get_client_details", {"client_id": "c1"}, rid="b")
    answer(core, REAL, "b", responses.success({"client": {"id": "c1"}}, mode="real"))
    request(core, "get_client_details", {"client_id": "c1"}, rid="c")
    answer(core, REAL, "c", responses.error(ErrorCode.NOT_FOUND, "deleted", mode="real"))
    kill_real(core, clock)
    request(core, "get_clients", rid="d", role=Role.VIEWER)
    assert last(out)["error_code"] == "BACKEND_UNAVAILABLE"  # the admin's answer is not the viewer's
    request(core, "get_clients", rid="e", role=Role.ADMIN)
    assert last(out)["stale"] is True
    request(core, "get_client_details", {"client_id": "c1"}, rid="f")
    assert last(out)["error_code"] == "BACKEND_UNAVAILABLE"  # the latest real answer was NOT_FOUND


def test_a_bridge_started_during_an_outage_expects_the_real_server(tmp_path: Path) -> None:
    """Nothing in memory: the allow-list alone says a real server exists (a restarted bridge)."""
    authority, _ = make_authority(tmp_path)
    core, out, _ = core_of(authority)
    ready(core, MOCK, "mock", OPS)
    status = core.status()
    assert status["real_expected"] is True and status["mode"] == "none"
    assert isinstance(status["real_unavailable_since"], datetime)
    request(core, "stop_server", rid="w")
    request(core, "get_clients", rid="r")
    assert [r["error_code"] for r in out.replies()] == ["BACKEND_UNAVAILABLE", "BACKEND_UNAVAILABLE"]
    assert out.requests_to(MOCK) == []
    reads = core_of(authority, Policy.READS)[0]
    assert reads.status()["real_expected"] is True  # and so writes are refused under reads too


def test_bridge_mode_follows_every_change_of_the_state(tmp_path: Path) -> None:
    authority, _ = make_authority(tmp_path, real_backend=False)
    core, out, clock = core_of(authority)
    ready(core, MOCK, "mock", OPS)
    assert published(out, "bridge.mode")[-1] == {
        "mode": "mock",
        "policy": "reads",
        "real_expected": False,
        "real_unavailable_since": None,
        "previous": "none",
    }
    real_key = KeyPair.generate().public
    request(core, "backend_allow", {"public_key": real_key, "name": "real", "mode": "real"}, rid="allow")
    assert last(out)["success"], last(out)
    now_expected = published(out, "bridge.mode")[-1]
    assert now_expected["policy"] == "stale" and now_expected["real_expected"] is True
    assert now_expected["mode"] == "none" and isinstance(now_expected["real_unavailable_since"], datetime)
    core.on_backend([REAL, b"", encode_header("ready", name="real", mode="real", ops=OPS), b""], real_key)
    up = published(out, "bridge.mode")[-1]
    assert (up["mode"], up["real_unavailable_since"], up["previous"]) == ("real", None, "none")
    kill_real(core, clock)
    down = published(out, "bridge.mode")[-1]
    assert down["mode"] == "none" and isinstance(down["real_unavailable_since"], datetime)
    assert core.status()["real_unavailable_since"] == down["real_unavailable_since"]
    count = len(published(out, "bridge.mode"))
    core.on_timer()
    assert len(published(out, "bridge.mode")) == count  # nothing changed, nothing said


def activity(core: BridgeCore, backend: bytes) -> None:
    from_backend(core, backend, [b"", encode_header(EVENT, topic="activity", ts=1.0), encode({"n": 1})])


def test_mock_events_stay_off_a_real_stacks_topics(tmp_path: Path) -> None:
    authority, _ = make_authority(tmp_path)
    for policy, published_while_down in ((None, False), (Policy.READS, True)):
        core, out, clock = core_of(authority, policy)
        ready(core, REAL, "real", OPS)
        ready(core, MOCK, "mock", OPS)
        activity(core, MOCK)  # the real server serves: the mock's world is not this stack's
        activity(core, REAL)
        kill_real(core, clock)
        activity(core, MOCK)
        modes = [decode_header(f[1]).fields["mode"] for f in out.published if f[0] == b"activity"]
        assert modes == ["real", *(["mock"] if published_while_down else [])], policy
        assert core.status()["mock_events_dropped"] == (1 if published_while_down else 2)
    demo, _ = make_authority(tmp_path / "demo", real_backend=False)
    core, out, _ = core_of(demo)
    ready(core, MOCK, "mock", OPS)
    activity(core, MOCK)
    assert [f[0] for f in out.published].count(b"activity") == 1 and core.status()["mock_events_dropped"] == 0


def test_a_failed_heartbeat_send_marks_a_backend_down_at_once(real_stack) -> None:
    core, out, clock = real_stack
    out.unreachable.add(REAL)  # its process was killed: the connection is gone
    clock.now += 1.0
    core.on_timer()
    assert not core.registry.backends[REAL].alive and core.status()["real_unavailable_since"] is not None


def test_the_policy_table_rule() -> None:
    table = {
        (policy, write, stream): during_outage(policy, is_write=write, streaming=stream)
        for policy in Policy
        for write in (False, True)
        for stream in (False, True)
    }
    assert {k for k, v in table.items() if v is OutageAnswer.MOCK} == {
        (Policy.READS, False, False),
        (Policy.READS, False, True),
        (Policy.ALL, False, False),
        (Policy.ALL, False, True),
        (Policy.ALL, True, False),
        (Policy.ALL, True, True),
    }
    assert {k for k, v in table.items() if v is OutageAnswer.LAST_REAL} == {(Policy.STALE, False, False)}


def test_last_real_is_bounded_in_bytes_least_recently_used_first_out() -> None:
    operation = CATALOGUE["get_clients"]
    keys = [stale_key(operation, encode({"offset": n}), "admin", 1 << 20) for n in range(4)]
    assert all(k is not None for k in keys)
    cache = LastReal(max_bytes=3 * (1000 + 300))
    for key in keys[:3]:
        assert key is not None
        cache.remember(key, b"x" * 1000, 1.0)
    assert keys[0] is not None and cache.get(keys[0]) is not None  # used: now the most recent
    assert keys[3] is not None
    cache.remember(keys[3], b"x" * 1000, 2.0)
    assert [cache.get(k) is not None for k in keys if k is not None] == [True, False, True, True]
    assert cache.bytes <= cache.max_bytes
    cache.remember(keys[1] or keys[0], b"x" * 10_000, 3.0)  # larger than the budget: not kept
    assert cache.bytes <= cache.max_bytes
    assert stale_key(operation, encode({"offset": -1}), "admin", 1 << 20) is None  # invalid: no key


def test_a_stale_reply_is_checked_like_any_reply() -> None:
    fresh = responses.success([], mode="real")
    responses.as_reply(responses.stale(fresh, datetime.now(UTC)))
    with pytest.raises(ProtocolError):
        responses.as_reply({**fresh, "as_of": datetime.now(UTC)})  # as_of only with stale: true
    with pytest.raises(ProtocolError):
        responses.as_reply({**fresh, "stale": "yes"})


ENDPOINTS = StackEndpoints(*(f"tcp://127.0.0.1:{port}" for port in (7001, 7002, 7003, 7004)))


def real_bound(data_dir: Path) -> bool:
    stores = BridgeStores.open(StackPaths(data_dir).bridge)
    return any(entry.mode == "real" for entry in stores.backends)


def test_only_a_stack_with_a_real_server_allow_lists_its_key(tmp_path: Path) -> None:
    def run(real_server: bool | None) -> bool:
        bootstrap(tmp_path, ENDPOINTS, BridgeStores.open(StackPaths(tmp_path).bridge), real_server=real_server)
        return real_bound(tmp_path)

    assert run(None) is True  # a bridge started on its own, first time: as before, the local server is allowed
    assert run(False) is False  # run_all --mock-only or --replay: nothing real is expected
    assert run(None) is False  # a bridge's own start leaves the binding as run_all made it
    assert run(True) is True
    assert run(None) is True
    fresh = tmp_path / "mock-only"
    bootstrap(fresh, ENDPOINTS, BridgeStores.open(StackPaths(fresh).bridge), real_server=False)
    assert real_bound(fresh) is False
