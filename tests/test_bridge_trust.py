"""Trust through BridgeCore, without sockets: sign-in and sessions, TOTP, the audit trail,
forged backend registrations, the reply cache's byte bounds and the in-flight share per peer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zmq
from structlog.testing import capture_logs

from actors.bridge.auth import totp
from actors.bridge.config import BridgeConfig
from actors.bridge.core import BridgeCore
from actors.bridge.replies import ReplyCache
from actors.bridge.taps import FileRecorder
from protocol import responses
from protocol.codec import decode
from protocol.envelope import READY, decode_header, encode_header, reply_frames, request_frames
from protocol.recording import read_recording
from protocol.roles import Role
from tests.bridge_auth import PASSWORDS, USERS, StackKeys, WallClock, make_authority
from tests.test_bridge_core import CLIENT, MOCK, REAL, Clock, FakeOutbox, answer, beat, ready

pytestmark = pytest.mark.timeout(30)

GUI = b"gui-tab"
ADA, VERA = USERS[Role.ADMIN], USERS[Role.VIEWER]


class Stack:
    """A core with its authority, clocks and outbox, and helpers to talk to it as each principal."""

    def __init__(self, tmp_path: Path, config: BridgeConfig | None = None, *, real_backend: bool = False) -> None:
        """``real_backend``: allow-list a key as real (the bridge then expects it; by default a mock-only stack)."""
        self.wall, self.monotonic = WallClock(), WallClock(1000.0)
        self.authority, self.keys = make_authority(
            tmp_path, wall=self.wall, monotonic=self.monotonic, real_backend=real_backend
        )
        self.out, self.clock = FakeOutbox(), Clock()
        self.core = BridgeCore(config or BridgeConfig(), self.out, self.clock, authority=self.authority)
        self._ids = 0

    @property
    def k(self) -> StackKeys:
        return self.keys

    def send(
        self, op: str, args: dict[str, Any] | None = None, *, key: str, route: bytes = CLIENT, **kw: Any
    ) -> dict[str, Any] | None:
        """Send a request; its reply (None when none came yet)."""
        self._ids += 1
        rid = f"r{self._ids}"
        before = len(self.out.clients)
        self.core.on_frontend([route, *request_frames(rid, op, args, **kw)], key, "192.0.2.1")
        replies = [decode(f[1]) for _, f in self.out.clients[before:]]
        return replies[-1] if replies else None

    def admin(self, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        reply = self.send(op, args, key=self.k.api[Role.ADMIN])
        assert reply is not None
        return reply

    def login(self, user: str, password: str, gui: str | None = None, **extra: Any) -> dict[str, Any]:
        reply = self.send("login", {"username": user, "password": password, **extra}, key=gui or self.k.gui, route=GUI)
        assert reply is not None
        return reply

    def audit(self, **filters: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.authority.audit.page(0, 1000, **filters)["items"]
        return items


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    return Stack(tmp_path)


# ---------------------------------------------------------------------------- sign-in


def test_a_gui_signs_in_and_acts_as_that_user_with_a_token_bound_to_its_key(stack: Stack) -> None:
    reply = stack.login(VERA, PASSWORDS[Role.VIEWER])
    assert reply["success"] and reply["data"]["user"] == VERA and reply["data"]["role"] == "viewer"
    token = reply["data"]["token"]
    me = stack.send("whoami", key=stack.k.gui, route=GUI, auth=token)
    assert me is not None and me["data"]["user"] == VERA and me["data"]["via"] == f"gui:{VERA}"
    assert me["data"]["expires_at"] == reply["data"]["expires_at"]
    other_gui = zmq.curve_keypair()[0].decode()
    stack.authority.principals.gui_keys = frozenset({stack.k.gui, other_gui})
    stolen = stack.send("get_clients", key=other_gui, route=GUI, auth=token)
    assert stolen is not None and stolen["error_code"] == "UNAUTHENTICATED" and "another console" in stolen["message"]
    api = stack.send("get_clients", key=stack.k.api[Role.VIEWER], auth=token)
    assert api is not None and api["error_code"] == "BAD_REQUEST"  # an API key is its own user
    login_by_api_key = stack.send(
        "login", {"username": ADA, "password": PASSWORDS[Role.ADMIN]}, key=stack.k.api[Role.VIEWER]
    )
    assert login_by_api_key is not None and login_by_api_key["error_code"] == "FORBIDDEN"
    (record,) = stack.audit(op="login", outcome="ok")
    assert record["who"] == {"user": VERA, "role": "viewer", "via": f"gui:{VERA}"} and record["peer"] == "192.0.2.1"


def test_a_session_follows_the_users_current_role_and_ends_with_logout(stack: Stack) -> None:
    token = stack.login(VERA, PASSWORDS[Role.VIEWER])["data"]["token"]
    ready(stack.core, MOCK, "mock", ["delete_client"])
    denied = stack.send("delete_client", {"client_id": "c"}, key=stack.k.gui, route=GUI, auth=token)
    assert denied is not None and denied["error_code"] == "FORBIDDEN"
    assert stack.admin("user_role", {"name": VERA, "role": "admin"})["success"]
    allowed = stack.send("delete_client", {"client_id": "c"}, key=stack.k.gui, route=GUI, auth=token)
    assert allowed is None and len(stack.out.requests_to(MOCK)) == 1  # on its way to the backend
    request = stack.out.requests_to(MOCK)[0]
    assert "auth" not in decode_header(request[1]).fields  # the token never reaches a backend
    bye = stack.send("logout", key=stack.k.gui, route=GUI, auth=token)
    assert bye is not None and bye["data"] == {"ended": True}
    after = stack.send("get_clients", key=stack.k.gui, route=GUI, auth=token)
    assert after is not None and after["error_code"] == "UNAUTHENTICATED"
    again = stack.send("logout", key=stack.k.gui, route=GUI, auth=token)
    assert again is not None and again["data"] == {"ended": False}


def test_sessions_expire(stack: Stack) -> None:
    token = stack.login(VERA, PASSWORDS[Role.VIEWER])["data"]["token"]
    stack.wall.now += stack.authority.config.session_idle_s + 1
    reply = stack.send("whoami", key=stack.k.gui, route=GUI, auth=token)
    assert reply is not None and reply["error_code"] == "UNAUTHENTICATED" and "expired" in reply["message"]


def test_wrong_passwords_are_refused_audited_and_throttled(stack: Stack) -> None:
    unknown = stack.login("nobody", "wrong password")
    assert unknown["error_code"] == "UNAUTHENTICATED" and unknown["message"] == "wrong user name or password"
    for _ in range(2):
        reply = stack.login(ADA, "wrong password")
        assert reply["message"] == unknown["message"]  # the same answer for a known name
    throttled = stack.login(ADA, PASSWORDS[Role.ADMIN])  # three failures from this peer: even the right one waits
    assert throttled["error_code"] == "RATE_LIMITED" and throttled["details"]["retry_after_s"] >= 1
    stack.monotonic.now += 1.1
    assert stack.login(ADA, PASSWORDS[Role.ADMIN])["success"]
    failures = stack.audit(op="login", outcome="UNAUTHENTICATED")
    assert len(failures) == 3 and {r["who"]["user"] for r in failures} == {ADA, "nobody"}
    assert stack.audit(op="login", outcome="RATE_LIMITED")


def test_guessing_many_names_from_one_address_writes_a_bounded_audit(stack: Stack) -> None:
    for i in range(200):
        stack.login(f"guess{i}", "wrong password", remote_address="203.0.113.5")
    assert len(stack.audit(op="login", outcome="UNAUTHENTICATED")) == 3  # then the address waits
    assert len(stack.audit(op="login", outcome="RATE_LIMITED")) == 1
    assert len(stack.authority.throttle) <= 4


def test_a_browser_address_is_throttled_apart_from_others_on_the_same_gui(stack: Stack) -> None:
    for _ in range(3):
        stack.login(ADA, "wrong password", remote_address="198.51.100.9")
    blocked = stack.login(VERA, PASSWORDS[Role.VIEWER], remote_address="198.51.100.9")
    assert blocked["error_code"] == "RATE_LIMITED"
    assert stack.login(VERA, PASSWORDS[Role.VIEWER], remote_address="198.51.100.10")["success"]


def test_totp_is_asked_for_checked_and_never_accepted_twice(stack: Stack) -> None:
    enabled = stack.admin("user_totp", {"name": VERA, "enable": True})["data"]
    secret = enabled["secret"]
    assert enabled["otpauth_uri"].startswith("otpauth://totp/")
    ask = stack.login(VERA, PASSWORDS[Role.VIEWER])
    assert ask["error_code"] == "UNAUTHENTICATED" and ask["details"]["totp"] is True
    code = totp.code_at(secret, totp.step_of(stack.wall.now))
    assert stack.login(VERA, PASSWORDS[Role.VIEWER], totp=code)["success"]
    replay = stack.login(VERA, PASSWORDS[Role.VIEWER], totp=code)
    assert replay["error_code"] == "UNAUTHENTICATED" and "code" in replay["message"]
    wrong = stack.login(VERA, "wrong password", totp=code)
    assert wrong["message"] == "wrong user name or password"


def test_secrets_never_reach_notices_logs_or_the_audit(stack: Stack, tmp_path: Path) -> None:
    recording = tmp_path / "rec.bin"
    recorder = FileRecorder(recording, seed=None, config={})
    stack.core.taps = [recorder]
    with capture_logs() as logs:
        generated = stack.admin("user_add", {"name": "carol", "role": "operator"})["data"]["password"]
        stack.admin("user_passwd", {"name": "carol", "password": "a chosen secret"})
        token = stack.login("carol", "a chosen secret")["data"]["token"]
        key = stack.admin("key_new", {"user": "carol"})["data"]
        totp_secret = stack.admin("user_totp", {"name": "carol", "enable": True})["data"]["secret"]
        stack.core.on_frontend(
            [CLIENT, encode_header("request", id="x1", op="whoami", x_api_key="hunter2"), b""], stack.k.api[Role.ADMIN]
        )
    recorder.close()
    secrets = [generated, "a chosen secret", token, key["secret_key"], totp_secret, "hunter2"]
    notices = b"".join(f[2] for f in stack.out.published)
    audit = (tmp_path / "bridge" / "audit.log").read_bytes()
    recorded = recording.read_bytes()
    for secret in secrets:
        assert secret.encode() not in notices and secret.encode() not in audit and secret.encode() not in recorded
        assert not any(secret in repr(entry) for entry in logs)
    _, entries = read_recording(open(recording, "rb"))  # noqa: SIM115 - read to the end below
    headers = [e.envelope["header"] for e in entries]
    assert headers and not any("x_api_key" in h or "auth" in h for h in headers)


# ---------------------------------------------------------------------------- users and keys


def test_users_and_keys_are_managed_by_admins(stack: Stack) -> None:
    added = stack.admin("user_add", {"name": "dan", "role": "operator", "password": "dans password"})["data"]
    assert added == {"name": "dan", "role": "operator", "password": None}
    key = stack.admin("key_new", {"user": "dan", "role": "viewer", "label": "cron"})["data"]
    assert key["role"] == "viewer" and key["bridge_public_key"] == stack.core.config.public_key
    assert zmq.curve_public(key["secret_key"].encode()).decode() == key["public_key"]
    me = stack.send("whoami", key=key["public_key"])
    assert me is not None and me["data"]["user"] == "dan" and me["data"]["role"] == "viewer"
    too_high = stack.admin("key_new", {"user": "dan", "role": "admin"})
    assert too_high["error_code"] == "BAD_REQUEST"
    listed = stack.admin("key_list", {"user": "dan"})["data"]["items"]
    assert [(k["key_id"], k["effective_role"]) for k in listed] == [(key["key_id"], "viewer")]
    users = {u["name"]: u for u in stack.admin("user_list")["data"]["items"]}
    assert users["dan"]["keys"] == 1 and users["dan"]["role"] == "operator" and not users["dan"]["totp"]
    removed = stack.admin("user_remove", {"name": "dan"})["data"]
    assert removed["revoked_keys"] == [key["key_id"]]
    gone = stack.send("whoami", key=key["public_key"])
    assert gone is not None and gone["error_code"] == "UNAUTHENTICATED"
    last = stack.admin("user_remove", {"name": ADA})
    assert last["error_code"] == "CONFLICT" and "last admin" in last["message"]
    assert stack.admin("user_role", {"name": ADA, "role": "viewer"})["error_code"] == "CONFLICT"


def test_own_writes_are_audited_and_noticed_with_their_ids(stack: Stack) -> None:
    stack.admin("user_add", {"name": "erin", "role": "viewer"})
    failed = stack.admin("user_add", {"name": "erin", "role": "viewer"})
    assert failed["error_code"] == "CONFLICT"
    outcomes = [(r["outcome"], r["ids"]) for r in stack.audit(op="user_add")]
    assert outcomes == [("CONFLICT", {"name": "erin"}), ("ok", {"name": "erin"})]
    notices = [decode(f[2]) for f in stack.out.published if f[0] == b"bridge.write"]
    assert [(n["op"], n["ids"], n["mode"]) for n in notices] == [("user_add", {"name": "erin"}, "bridge")]


def test_a_write_is_audited_before_its_reply_leaves(stack: Stack) -> None:
    seen: list[int] = []
    original = stack.out.to_client

    def to_client(identity: bytes, frames: list[bytes]) -> bool:
        seen.append(len(stack.authority.audit))
        return original(identity, frames)

    stack.out.to_client = to_client  # type: ignore[method-assign]
    ready(stack.core, MOCK, "mock", ["delete_client"])
    before = len(stack.authority.audit)
    stack.send("delete_client", {"client_id": "c1"}, key=stack.k.api[Role.ADMIN])
    answer(stack.core, MOCK, "r1", responses.success({"client_id": "c1"}, mode="mock"))
    assert seen == [before + 1]
    stack.send("delete_client", {"client_id": "c2"}, key=stack.k.api[Role.ADMIN])
    stack.clock.now += 20
    beat(stack.core, MOCK)
    stack.core.on_timer()
    (record, first) = stack.audit(op="delete_client")
    assert record["outcome"] == "TIMEOUT" and record["ids"] == {"client_id": "c2"}
    assert first["outcome"] == "ok" and first["who"]["via"] == f"api_key:{stack.k.key_ids[Role.ADMIN]}"


# ---------------------------------------------------------------------------- backends


def ready_as(core: BridgeCore, identity: bytes, name: str, mode: str, key: str | None) -> None:
    core.on_backend([identity, b"", encode_header(READY, name=name, mode=mode, ops=["get_clients"]), b""], key)


def test_forged_registrations_are_refused_and_serve_nobody(stack: Stack) -> None:
    core = stack.core
    stranger = zmq.curve_keypair()[0].decode()
    ready_as(core, b"forger", "server", "real", stranger)  # not allow-listed
    ready_as(core, b"mock-as-real", "mock", "real", stack.k.mock)  # a mock key claiming mode real
    ready_as(core, b"mock-renamed", "real", "mock", stack.k.mock)  # ... or another backend's name
    ready_as(core, b"no-key", "mock", "mock", None)
    assert core.registry.backends == {} and core.status()["mode"] == "none"
    reply = stack.send("get_clients", key=stack.k.api[Role.VIEWER])
    assert reply is not None and reply["error_code"] == "BACKEND_UNAVAILABLE"
    assert stack.out.backends == []  # no request ever went to a forger
    refused = stack.audit(outcome="UNAUTHENTICATED")
    assert {r["op"] for r in refused} == {"backend", "ready"}
    assert any("said READY as mock (real)" in r["message"] for r in refused)


def test_a_backend_speaks_only_with_the_key_it_registered_with_until_revoked(tmp_path: Path) -> None:
    stack = Stack(tmp_path, real_backend=True)
    core = stack.core
    ready(core, REAL, "real", ["get_clients"])
    ready(core, MOCK, "mock", ["get_clients"])
    stack.send("get_clients", key=stack.k.api[Role.VIEWER])
    # The mock's key sends a reply for the real backend's request, from the real backend's identity.
    core.on_backend([REAL, CLIENT, *responses_frames("r1", "forged")], stack.k.mock)
    assert not [f for _, f in stack.out.clients]
    answer(core, REAL, "r1", responses.success(["genuine"], mode="real"))
    assert decode(stack.out.clients[-1][1][1])["data"] == ["genuine"]
    assert stack.admin("backend_revoke", {"public_key": stack.k.real})["success"]
    assert REAL not in core.registry.backends and core.status()["mode"] == "mock"
    listed = {b["name"]: b["registered"] for b in stack.admin("backend_list")["data"]["items"]}
    assert listed == {"mock": True}


def responses_frames(rid: str, data: Any) -> list[bytes]:
    return reply_frames(rid, responses.success(data, mode="real"))


def test_the_registry_forgets_dead_mocks_keeps_dead_reals_and_is_bounded(tmp_path: Path) -> None:
    stack = Stack(tmp_path, BridgeConfig(backend_forget_after=60, max_backends=2), real_backend=True)
    core = stack.core
    ready(core, REAL, "real")
    ready(core, MOCK, "mock")
    extra = zmq.curve_keypair()[0].decode()
    stack.authority.stores.allow_backend(extra, "third", "mock")
    ready_as(core, b"third", "third", "mock", extra)
    assert set(core.registry.backends) == {REAL, MOCK}  # full: a third name waits
    for _ in range(4):
        stack.clock.now += 1.0
        core.on_timer()
    stack.clock.now += 61
    core.on_timer()
    assert set(core.registry.backends) == {REAL}  # the crashed real stays: writes must not go to the mock
    for _ in range(3):
        ready(core, MOCK, "mock")
    assert len(core.registry.backends) == 2


# ---------------------------------------------------------------------------- limits per peer


def test_the_reply_cache_is_bounded_in_bytes_in_all_and_per_peer() -> None:
    cache = ReplyCache(ttl=60, max_entries=1000, max_bytes=10_000, max_peer_bytes=3_000)
    reply = [b"h", b"x" * 999]  # 1000 bytes
    for i in range(10):
        cache.remember((b"greedy", f"r{i}"), reply, now=0)
    assert cache.peer_bytes(b"greedy") == 3_000 and cache.get((b"greedy", "r9")) is not None
    assert cache.get((b"greedy", "r0")) is None  # its own oldest went, nobody else's
    for peer in range(10):
        cache.remember((bytes([peer]), "r"), reply, now=1)
    assert cache.bytes <= 10_000 and len(cache) == 10
    cache.remember((b"huge", "r"), [b"h", b"x" * 5_000], now=2)
    assert cache.get((b"huge", "r")) is None and cache.bytes <= 10_000
    cache.remember((b"owned", "r"), reply, now=3, owner="alice")
    assert cache.get((b"owned", "r"), owner="mallory") is None and cache.get((b"owned", "r"), owner="alice")
    cache.expire(now=1_000)
    assert len(cache) == 0 and cache.bytes == 0 and cache.peer_bytes(b"greedy") == 0


def test_a_peer_over_its_in_flight_share_alone_gets_overloaded(tmp_path: Path) -> None:
    stack = Stack(tmp_path, BridgeConfig(max_inflight_per_peer=4, max_inflight=100))
    ready(stack.core, MOCK, "mock", ["get_clients"])
    key = stack.k.api[Role.VIEWER]
    replies = [stack.send("get_clients", key=key, route=b"greedy") for _ in range(6)]
    assert replies[:4] == [None] * 4
    assert [r and r["error_code"] for r in replies[4:]] == ["OVERLOADED", "OVERLOADED"]
    assert "you have 4 requests in flight" in replies[4]["message"]  # type: ignore[index]
    assert stack.send("get_clients", key=key, route=b"modest") is None  # another peer is served
    assert len(stack.out.requests_to(MOCK)) == 5


def test_events_and_status_still_work_for_viewers(stack: Stack) -> None:
    reply = stack.send("events_since", {"seq": 0}, key=stack.k.api[Role.VIEWER])
    assert reply is not None and reply["success"]
    status = stack.send("bridge_status", key=stack.k.api[Role.VIEWER])
    assert status is not None and status["data"]["mode"] == "none"
