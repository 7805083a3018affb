"""BridgeCore without sockets: routing, fallback policy, deadlines, dedup, liveness, events."""

from __future__ import annotations

from typing import Any

import pytest

from actors.bridge.auth.authority import Authority
from actors.bridge.config import BridgeConfig
from actors.bridge.core import BridgeCore
from protocol import responses
from protocol.catalogue import CATALOGUE
from protocol.codec import decode, encode
from protocol.envelope import (
    ACK,
    CANCEL,
    CHUNK,
    DISCONNECT,
    EVENT,
    HEARTBEAT,
    READY,
    decode_header,
    encode_header,
    reply_frames,
    request_frames,
)
from protocol.errors import ErrorCode
from protocol.modes import Policy
from protocol.roles import Role
from tests.bridge_auth import USERS, make_authority

pytestmark = pytest.mark.timeout(30)

CLIENT = b"client-1"
REAL = b"real-backend"
MOCK = b"mock-backend"
OPS = ["get_clients", "delete_client", "test_connection", "download_file"]


class FakeOutbox:
    def __init__(self) -> None:
        self.clients: list[tuple[bytes, list[bytes]]] = []
        self.backends: list[tuple[bytes, list[bytes]]] = []
        self.published: list[list[bytes]] = []
        self.unreachable: set[bytes] = set()

    def to_client(self, identity: bytes, frames: list[bytes]) -> bool:
        self.clients.append((identity, frames))
        return True

    def to_backend(self, identity: bytes, frames: list[bytes]) -> bool:
        if identity in self.unreachable:
            return False
        self.backends.append((identity, frames))
        return True

    def publish(self, frames: list[bytes]) -> None:
        self.published.append(frames)

    def replies(self) -> list[dict[str, Any]]:
        return [decode(frames[1]) for _, frames in self.clients]

    def requests_to(self, identity: bytes) -> list[list[bytes]]:
        return [f for i, f in self.backends if i == identity and decode_header(f[1]).kind == "request"]

    def topics(self) -> list[str]:
        return [f[0].decode() for f in self.published]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    """One set of users, keys and allowed backends for the module's cores (their audit grows; nobody reads it)."""
    authority, _ = make_authority(tmp_path_factory.mktemp("bridge"))
    return authority


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    """A mock-only stack's trust: no key is allow-listed as real, so the mock serves everything."""
    authority, _ = make_authority(tmp_path_factory.mktemp("demo"), real_backend=False)
    return authority


def make_core(authority: Authority, config: BridgeConfig | None = None) -> tuple[BridgeCore, FakeOutbox, Clock]:
    """A core under policy reads unless told otherwise: these tests are about routing and fallback to the mock
    (the default, stale, is tests/test_bridge_outage.py's)."""
    out, clock = FakeOutbox(), Clock()
    return BridgeCore(config or BridgeConfig(policy=Policy.READS), out, clock, authority=authority), out, clock


@pytest.fixture
def setup(trust: Authority) -> tuple[BridgeCore, FakeOutbox, Clock]:
    return make_core(trust)


def api_key(core: BridgeCore, role: Role = Role.ADMIN) -> str:
    """The public key of the test user of ``role`` (tests.bridge_auth made one API key each)."""
    return next(k.public_key for k in core.auth.stores.keys if k.user == USERS[role] and k.active)


def backend_key(core: BridgeCore, name: str) -> str:
    return next(e.public_key for e in core.auth.stores.backends if e.name == name)


def ready(core: BridgeCore, identity: bytes, mode: str, ops: list[str] = OPS) -> None:
    frames = [identity, b"", encode_header(READY, name=mode, mode=mode, ops=ops), b""]
    core.on_backend(frames, backend_key(core, mode))


def from_backend(core: BridgeCore, identity: bytes, frames: list[bytes]) -> None:
    """A message from the registered backend ``identity``, with the key it registered with."""
    core.on_backend([identity, *frames], core.registry.backends[identity].key)


def beat(core: BridgeCore, identity: bytes) -> None:
    from_backend(core, identity, [b"", encode_header(HEARTBEAT), b""])


def request(
    core: BridgeCore, op: str, args: dict[str, Any] | None = None, rid: str = "r1", role: Role = Role.ADMIN, **kw: Any
) -> None:
    core.on_frontend([CLIENT, *request_frames(rid, op, args, **kw)], api_key(core, role), "127.0.0.1")


def answer(core: BridgeCore, backend: bytes, rid: str, response: dict[str, Any]) -> None:
    from_backend(core, backend, [CLIENT, *reply_frames(rid, response)])


def test_routes_to_real_when_alive_else_mock(setup) -> None:
    core, out, _ = setup
    ready(core, MOCK, "mock")
    request(core, "get_clients", rid="a")
    assert len(out.requests_to(MOCK)) == 1
    ready(core, REAL, "real")
    request(core, "get_clients", rid="b")
    assert len(out.requests_to(REAL)) == 1
    assert core.status()["mode"] == "real"
    assert "bridge.mode" in out.topics() and "bridge.backend" in out.topics()


def test_reply_is_forwarded_untouched_and_write_notice_published(demo: Authority) -> None:
    core, out, _ = make_core(demo)
    ready(core, MOCK, "mock")
    request(core, "delete_client", {"client_id": "c1"}, session="sess")
    answer(core, MOCK, "r1", responses.success({"client_id": "c1"}, mode="mock"))
    (reply,) = out.replies()
    assert reply["success"] and reply["mode"] == "mock"
    notice = decode(out.published[-1][2])
    assert out.topics()[-1] == "bridge.write"
    assert notice == {
        "op": "delete_client",
        "ids": {"client_id": "c1"},
        "session": "sess",
        "request_id": "r1",
        "mode": "mock",
    }


def test_duplicate_request_is_answered_from_cache_not_executed_twice(demo: Authority) -> None:
    core, out, _ = make_core(demo)
    ready(core, MOCK, "mock")
    request(core, "delete_client", {"client_id": "c1"})
    request(core, "delete_client", {"client_id": "c1"})  # in flight: ignored
    answer(core, MOCK, "r1", responses.success(None, mode="mock"))
    request(core, "delete_client", {"client_id": "c1"})  # answered: from the cache
    assert len(out.requests_to(MOCK)) == 1
    assert len(out.replies()) == 2 and all(r["success"] for r in out.replies())


def test_a_retryable_error_is_not_cached_so_the_same_id_resent_gets_a_fresh_answer(trust: Authority) -> None:
    core, out, clock = make_core(trust, BridgeConfig(policy=Policy.NONE))
    request(core, "get_clients", rid="w")  # nobody serves it yet
    ready(core, REAL, "real")
    request(core, "get_clients", rid="w")
    answer(core, REAL, "w", responses.error(ErrorCode.OVERLOADED, "busy", mode="real"))
    request(core, "get_clients", rid="w")
    clock.now += 31  # no reply in time: TIMEOUT, not kept either
    beat(core, REAL)
    core.on_timer()
    request(core, "get_clients", rid="w")
    answer(core, REAL, "w", responses.error(ErrorCode.NOT_FOUND, "no such page", mode="real"))
    request(core, "get_clients", rid="w")  # a real answer: now from the cache
    assert len(out.requests_to(REAL)) == 3
    codes = [r["error_code"] for r in out.replies()]
    assert codes == ["BACKEND_UNAVAILABLE", "OVERLOADED", "TIMEOUT", "NOT_FOUND", "NOT_FOUND"]


def test_an_error_from_a_live_backend_is_its_answer_never_retried_on_the_mock(setup) -> None:
    core, out, _ = setup
    ready(core, REAL, "real")
    ready(core, MOCK, "mock")
    for rid, code in (("a", ErrorCode.INTERNAL), ("b", ErrorCode.NOT_FOUND), ("c", ErrorCode.OVERLOADED)):
        request(core, "get_clients", rid=rid)
        answer(core, REAL, rid, responses.error(code, "the real server says so", mode="real"))
    assert out.requests_to(MOCK) == []
    assert [(r["mode"], r["error_code"]) for r in out.replies()] == [
        ("real", "INTERNAL"),
        ("real", "NOT_FOUND"),
        ("real", "OVERLOADED"),
    ]


def test_write_does_not_fall_back_under_reads_policy(setup) -> None:
    core, out, clock = setup
    ready(core, REAL, "real")
    ready(core, MOCK, "mock")
    request(core, "delete_client", {"client_id": "c"})
    clock.now += 20
    core.on_timer()
    assert out.requests_to(MOCK) == []
    (reply,) = out.replies()
    assert reply["error_code"] in ("TIMEOUT", "BACKEND_UNAVAILABLE")


def test_read_times_out_on_real_then_mock_answers(setup) -> None:
    core, out, clock = setup
    ready(core, REAL, "real")
    ready(core, MOCK, "mock")
    request(core, "get_clients", timeout_ms=2000)
    clock.now += 1.01  # half the budget goes to the real backend
    beat(core, REAL)
    beat(core, MOCK)
    core.on_timer()
    assert len(out.requests_to(MOCK)) == 1
    answer(core, REAL, "r1", responses.success([], mode="real"))  # too late: dropped
    answer(core, MOCK, "r1", responses.success([], mode="mock"))
    assert [r["mode"] for r in out.replies()] == ["mock"]


def test_policy_none_and_all(trust: Authority) -> None:
    for policy, expect_mock in ((Policy.NONE, 0), (Policy.ALL, 1)):
        core, out, _ = make_core(trust, BridgeConfig(policy=policy))
        ready(core, REAL, "real")
        ready(core, MOCK, "mock")
        request(core, "delete_client", {"client_id": "c"})
        from_backend(core, REAL, [b"", encode_header(DISCONNECT), b""])  # went away: unavailable
        assert len(out.requests_to(MOCK)) == expect_mock


def test_dead_backend_after_missed_heartbeats_fails_pending_quickly(setup) -> None:
    core, out, clock = setup
    ready(core, MOCK, "mock")
    request(core, "get_clients")
    clock.now += 3.5
    core.on_timer()
    (reply,) = out.replies()
    assert reply["error_code"] == "BACKEND_UNAVAILABLE"
    request(core, "get_clients", rid="r2")
    assert out.replies()[-1]["error_code"] == "BACKEND_UNAVAILABLE"
    assert core.status()["mode"] == "none"


def test_crashed_real_means_writes_fail_reads_go_to_mock_and_a_goodbye_changes_nothing(setup) -> None:
    core, out, clock = setup
    ready(core, REAL, "real")
    ready(core, MOCK, "mock")
    clock.now += 2.5
    beat(core, MOCK)
    clock.now += 1.0
    core.on_timer()  # real missed 3 beats
    request(core, "delete_client", {"client_id": "c"}, rid="w")
    request(core, "get_clients", rid="r")
    assert out.replies()[0]["error_code"] == "BACKEND_UNAVAILABLE"
    assert len(out.requests_to(MOCK)) == 1
    ready(core, REAL, "real")
    from_backend(core, REAL, [b"", encode_header(DISCONNECT), b""])
    request(core, "delete_client", {"client_id": "c"}, rid="w2")
    # The allow-list still binds a key to mode real: a clean stop is an outage too, never a reason to write to the mock.
    assert out.replies()[-1]["error_code"] == "BACKEND_UNAVAILABLE" and len(out.requests_to(MOCK)) == 1


def test_unreachable_backend_is_marked_down_at_once(setup) -> None:
    core, out, _ = setup
    ready(core, MOCK, "mock")
    out.unreachable.add(MOCK)
    request(core, "get_clients")
    assert out.replies()[0]["error_code"] == "BACKEND_UNAVAILABLE"


def test_bad_input_gets_specific_codes(setup) -> None:
    core, out, _ = setup
    ready(core, MOCK, "mock")
    key = api_key(core)
    core.on_frontend([CLIENT, b"\xc1not msgpack", b""], key)
    core.on_frontend([CLIENT, encode({"v": 2, "kind": "request", "id": "x", "op": "get_clients"}), b""], key)
    core.on_frontend([CLIENT], key)
    request(core, "no_such_op", rid="u")
    core.on_frontend([CLIENT, *request_frames("big", "get_clients")[:1], b"x" * (16 * 1024 * 1024 + 1)], key)
    core.on_frontend([CLIENT, encode_header(CHUNK, reply_to="x", index=0, offset=0), b""], key)
    request(core, "events_since", {"seq": "zero"}, rid="e")
    codes = [r["error_code"] for r in out.replies()]
    assert codes == [
        "BAD_REQUEST",
        "UNSUPPORTED_VERSION",
        "BAD_REQUEST",
        "UNKNOWN_OPERATION",
        "PAYLOAD_TOO_LARGE",
        "BAD_REQUEST",
        "BAD_REQUEST",
    ]
    assert out.requests_to(MOCK) == []


@pytest.mark.parametrize(
    "bad",
    [{"v": 2}, {"v": "1"}, {"kind": "bogus"}, {"op": 5}, {"session": 7}, {"timeout_ms": -1}, {"ts": "x"}],
    ids=lambda bad: next(iter(bad)),
)
def test_a_readable_id_is_echoed_when_one_header_field_is_bad(setup, bad: dict[str, Any]) -> None:
    core, out, _ = setup
    ready(core, MOCK, "mock")
    header = {"v": 1, "kind": "request", "id": "mine", "op": "get_clients", **bad}
    core.on_frontend([CLIENT, encode(header), encode({})], api_key(core), "127.0.0.1")
    ((_, frames),) = out.clients
    assert decode_header(frames[0]).reply_to == "mine"
    assert decode(frames[1])["error_code"] in ("BAD_REQUEST", "UNSUPPORTED_VERSION")
    assert out.requests_to(MOCK) == []


def test_a_header_without_a_body_frame_is_refused_not_executed(setup) -> None:
    core, out, _ = setup
    ready(core, MOCK, "mock")
    core.on_frontend([CLIENT, request_frames("lone", "delete_client")[0]], api_key(core), "127.0.0.1")
    ((_, frames),) = out.clients
    assert decode_header(frames[0]).reply_to == "lone"
    reply = decode(frames[1])
    assert reply["error_code"] == "BAD_REQUEST" and "header frame and a body frame" in reply["message"]
    assert out.requests_to(MOCK) == []


def test_ack_or_cancel_of_an_unknown_stream_is_ignored(setup) -> None:
    core, out, _ = setup
    ready(core, MOCK, "mock")
    for kind, fields in ((ACK, {"index": 0}), (CANCEL, {})):
        core.on_frontend([CLIENT, encode_header(kind, reply_to="nope", **fields), b""], api_key(core), "127.0.0.1")
    assert out.clients == [] and [f for i, f in out.backends if i == MOCK] == []


def test_events_get_gap_free_seq_and_events_since_serves_the_ring(demo: Authority) -> None:
    core, out, _ = make_core(demo, BridgeConfig(ring_size=5))
    ready(core, MOCK, "mock")  # publishes bridge.backend + bridge.mode (seq 1, 2)
    for i in range(6):
        from_backend(core, MOCK, [b"", encode_header(EVENT, topic="activity", ts=1.0), encode({"i": i})])
    seqs = [decode_header(f[1]).fields["seq"] for f in out.published]
    assert seqs == list(range(1, 9))
    assert decode_header(out.published[-1][1]).fields["mode"] == "mock"
    request(core, "events_since", {"seq": 5}, rid="a")
    data = out.replies()[-1]["data"]
    assert [e["seq"] for e in data["events"]] == [6, 7, 8] and not data["gap_too_old"]
    assert data["events"][-1]["data"] == {"i": 5}
    request(core, "events_since", {"seq": 1}, rid="b")
    old = out.replies()[-1]["data"]
    assert old["gap_too_old"] and old["oldest_seq"] == 4 and [e["seq"] for e in old["events"]] == [4, 5, 6, 7, 8]
    # The epoch rides on every page, so a client polling across a bridge restart sees the new run.
    assert {data["epoch"], old["epoch"]} == {core.status()["epoch"]}
    returns = CATALOGUE["events_since"].returns
    assert all(name in returns for name in data), f"the documented reply lacks a field: {returns}"


def test_stream_chunks_renew_deadline_and_pin_the_backend(setup) -> None:
    core, out, clock = setup
    ready(core, REAL, "real")
    ready(core, MOCK, "mock")
    request(core, "download_file", {"file_id": "f", "destination_path": "/tmp/x"}, timeout_ms=1000)
    for i in range(5):
        clock.now += 0.4
        for b in (REAL, MOCK):
            beat(core, b)
        from_backend(core, REAL, [CLIENT, encode_header(CHUNK, reply_to="r1", index=i, offset=i, total=9), b"x"])
        core.on_timer()
    assert out.requests_to(MOCK) == []
    answer(core, REAL, "r1", responses.success({"sha256": "x"}, mode="real"))
    assert out.replies()[-1]["success"]


def test_unknown_backend_is_asked_to_reregister(setup) -> None:
    core, out, _ = setup
    core.on_backend([b"stranger", b"", encode_header(HEARTBEAT), b""], backend_key(core, "mock"))
    ((identity, frames),) = out.backends
    assert identity == b"stranger" and decode_header(frames[1]).fields["op"] == "reregister"
