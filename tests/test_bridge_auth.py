"""The bridge's trust stores and policies, one at a time: users, TOTP, API keys, principals,
sessions, the login throttle, the audit trail, ZAP decisions and rate-limited refusals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import zmq

from actors.bridge.auth import totp
from actors.bridge.auth.apikeys import ApiKeyStore, KeyKind
from actors.bridge.auth.audit import AuditLog
from actors.bridge.auth.backends import BackendAllowList
from actors.bridge.auth.principals import PrincipalKind, Principals
from actors.bridge.auth.ratelimit import QuietFilter
from actors.bridge.auth.sessions import SessionTable
from actors.bridge.auth.throttle import LoginThrottle
from actors.bridge.auth.users import UserStore
from actors.bridge.auth.zap import Domain, Refusals
from protocol.errors import ProtocolError
from protocol.roles import Role
from tests.bridge_auth import FAST_HASHER, WallClock, make_authority

pytestmark = pytest.mark.timeout(30)


def public() -> str:
    return zmq.curve_keypair()[0].decode()


# ---------------------------------------------------------------------------- users


def test_passwords_are_argon2id_and_the_store_survives_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "bridge" / "users.json"
    users = UserStore(path, FAST_HASHER)
    users.add("ada", Role.ADMIN, "correct horse")
    stored = json.loads(path.read_text())["users"][0]
    assert stored["password_hash"].startswith("$argon2id$") and "correct horse" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again = UserStore(path, FAST_HASHER)
    assert again.verify("ada", "correct horse") is not None
    assert again.verify("ada", "wrong horse") is None and again.verify("nobody", "correct horse") is None


def test_user_names_passwords_and_duplicates_are_checked(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json", FAST_HASHER)
    users.add("ada", Role.ADMIN, "long enough")
    for name, password, code in (
        ("ada", "long enough", "CONFLICT"),
        ("a b", "long enough", "BAD_REQUEST"),
        ("x" * 65, "long enough", "BAD_REQUEST"),
        ("bob", "short", "BAD_REQUEST"),
    ):
        with pytest.raises(ProtocolError) as caught:
            users.add(name, Role.VIEWER, password)
        assert caught.value.code == code
    with pytest.raises(ProtocolError, match="no user"):
        users.set_role("nobody", Role.ADMIN)


def test_a_weak_hash_is_upgraded_at_the_next_sign_in(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    UserStore(path, FAST_HASHER).add("ada", Role.ADMIN, "correct horse")
    stronger = type(FAST_HASHER)(time_cost=2, memory_cost=16, parallelism=1)
    users = UserStore(path, stronger)
    before = users.require("ada").password_hash
    assert users.verify("ada", "correct horse") is not None
    after = UserStore(path, stronger).require("ada").password_hash
    assert after != before and "t=2" in after


def test_settings_merge_drop_on_null_and_are_bounded(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json", FAST_HASHER)
    users.add("ada", Role.ADMIN, "long enough")
    assert users.update_settings("ada", {"theme": "dark", "page": 50}) == {"theme": "dark", "page": 50}
    assert users.update_settings("ada", {"page": None}) == {"theme": "dark"}
    assert UserStore(tmp_path / "users.json", FAST_HASHER).require("ada").settings == {"theme": "dark"}
    with pytest.raises(ProtocolError, match="at most"):
        users.update_settings("ada", {f"k{i}": i for i in range(65)})
    with pytest.raises(ProtocolError, match="bytes"):
        users.update_settings("ada", {"big": "x" * 20_000})


# ---------------------------------------------------------------------------- TOTP


def test_totp_matches_the_rfc_6238_vectors() -> None:
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # base32 of "12345678901234567890"
    # RFC 6238 appendix B, SHA-1, 8 digits; the 6-digit code is its last 6 digits.
    for t, eight in ((59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (2000000000, "69279037")):
        assert totp.code_at(secret, totp.step_of(t)) == eight[-6:]


def test_totp_accepts_one_step_of_drift_and_nothing_more() -> None:
    secret = totp.new_secret()
    now = 1_700_000_000.0
    step = totp.step_of(now)
    assert totp.matching_step(secret, totp.code_at(secret, step - 1), now) == step - 1
    assert totp.matching_step(secret, totp.code_at(secret, step + 1), now) == step + 1
    assert totp.matching_step(secret, totp.code_at(secret, step + 2), now) is None
    assert totp.matching_step(secret, "abcdef", now) is None and totp.matching_step(secret, "12345", now) is None
    uri = totp.otpauth_uri(secret, "ada")
    assert uri.startswith("otpauth://totp/backup-console%3Aada?") and f"secret={secret}" in uri


# ---------------------------------------------------------------------------- keys and principals


def test_an_api_key_never_acts_above_its_user_and_revoked_keys_are_nobody(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.json", FAST_HASHER)
    keys = ApiKeyStore(tmp_path / "api_keys.json")
    backends = BackendAllowList(tmp_path / "backends.json")
    users.add("ada", Role.OPERATOR, "long enough")
    admin_key = keys.add("ada", Role.ADMIN, public(), "too high")
    viewer_key = keys.add("ada", Role.VIEWER, public(), None)
    principals = Principals(users, keys, backends, [gui := public()])
    assert principals.resolve(admin_key.public_key).role is Role.OPERATOR  # type: ignore[union-attr]
    assert principals.resolve(viewer_key.public_key).role is Role.VIEWER  # type: ignore[union-attr]
    users.set_role("ada", Role.VIEWER)
    assert principals.resolve(admin_key.public_key).role is Role.VIEWER  # type: ignore[union-attr]
    keys.revoke(admin_key.key_id)
    assert principals.resolve(admin_key.public_key) is None
    with pytest.raises(ProtocolError, match="revoked"):
        keys.revoke(admin_key.key_id)
    users.remove("ada")
    assert principals.resolve(viewer_key.public_key) is None
    assert principals.resolve(gui).kind is PrincipalKind.GUI  # type: ignore[union-attr]
    assert principals.resolve(public()) is None and principals.resolve(None) is None
    reopened = ApiKeyStore(tmp_path / "api_keys.json")
    assert not reopened.active(admin_key.key_id, admin_key.public_key)
    assert reopened.active(viewer_key.key_id, viewer_key.public_key)


def test_a_gui_kind_key_is_a_gui_principal(tmp_path: Path) -> None:
    authority, _ = make_authority(tmp_path)
    key = authority.stores.keys.add("ada", Role.ADMIN, public(), "second console", KeyKind.GUI)
    principal = authority.principals.resolve(key.public_key)
    assert principal is not None and principal.kind is PrincipalKind.GUI and principal.role is None


def test_the_backend_allow_list_binds_name_and_mode(tmp_path: Path) -> None:
    allow = BackendAllowList(tmp_path / "backends.json")
    key = public()
    entry, replaced = allow.allow(key, "server", "real")
    assert replaced is None and entry.mode == "real"
    assert allow.allow(key, "server", "real") == (entry, None)  # idempotent
    moved, replaced = allow.allow(key, "mock", "mock")
    assert replaced == entry and moved.mode == "mock"
    assert BackendAllowList(tmp_path / "backends.json").get(key) == moved
    for bad in (("not a key", "x", "real"), (public(), "bad name!", "real"), (public(), "x", "bridge")):
        with pytest.raises(ProtocolError):
            allow.allow(*bad)
    allow.revoke(key)
    assert allow.get(key) is None


# ---------------------------------------------------------------------------- sessions and throttle


def test_sessions_expire_idle_and_absolute_and_are_bound_to_their_gui() -> None:
    clock = WallClock(0.0)
    sessions = SessionTable(idle_s=100, absolute_s=250, clock=clock)
    token, _ = sessions.open("ada", "gui-a")
    with pytest.raises(ProtocolError, match="another console"):
        sessions.resolve(token, "gui-b")
    for _ in range(2):
        clock.now += 99
        assert sessions.resolve(token, "gui-a").user == "ada"  # use keeps it alive ...
    clock.now += 99
    with pytest.raises(ProtocolError, match="expired"):  # ... but never past the absolute limit
        sessions.resolve(token, "gui-a")
    idle, _ = sessions.open("ada", "gui-a")
    clock.now += 100
    with pytest.raises(ProtocolError, match="expired"):
        sessions.resolve(idle, "gui-a")
    with pytest.raises(ProtocolError, match="unknown"):
        sessions.resolve("made-up", "gui-a")


def test_sessions_are_bounded_and_end_by_user_gui_or_logout() -> None:
    sessions = SessionTable(max_sessions=3, clock=WallClock(0.0))
    tokens = [sessions.open("ada", "gui")[0] for _ in range(5)]
    assert len(sessions) == 3
    with pytest.raises(ProtocolError):
        sessions.resolve(tokens[0], "gui")  # the least recently used went first
    assert sessions.end(tokens[4], "gui") and not sessions.end(tokens[4], "gui")
    assert sessions.end_user("ada", keep_token=tokens[3]) == 1 and len(sessions) == 1
    assert sessions.end_gui("gui") == 1 and len(sessions) == 0


def test_the_throttle_waits_after_three_failures_doubling_and_forgets() -> None:
    clock = WallClock(0.0)
    throttle = LoginThrottle(free_failures=3, base_s=1.0, max_s=8.0, forget_s=600, clock=clock)
    keys = ["user:ada", "peer:10.0.0.1"]
    for _ in range(2):
        throttle.failed(keys)
        assert throttle.wait_s(keys) == 0
    waits = []
    for _ in range(5):
        throttle.failed(keys)
        waits.append(throttle.wait_s(keys))
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0]
    throttle.succeeded("user:ada")
    assert throttle.wait_s(["user:ada"]) == 0 and throttle.wait_s(["peer:10.0.0.1"]) == 8.0
    clock.now += 601
    assert throttle.wait_s(keys) == 0


def test_the_throttle_is_bounded() -> None:
    throttle = LoginThrottle(max_keys=100, clock=WallClock(0.0))
    for i in range(10_000):
        throttle.failed([f"user:guess{i}"])
    assert len(throttle) == 100


# ---------------------------------------------------------------------------- audit


def test_the_audit_survives_reopen_pages_newest_first_and_filters(tmp_path: Path) -> None:
    clock = WallClock(1_000.0)
    path = tmp_path / "bridge" / "audit.log"
    audit = AuditLog(path, clock)
    for i in range(30):
        clock.now += 1
        who = {"user": "ada" if i % 2 else "bob", "role": "admin", "via": "x"}
        audit.append({"who": who, "op": "delete_file" if i % 3 else "login", "outcome": "ok", "ids": {"i": i}})
    audit.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    audit = AuditLog(path, clock)
    page = audit.page(0, 5)
    assert page["total"] == 30 and [r["ids"]["i"] for r in page["items"]] == [29, 28, 27, 26, 25]
    assert [r["ids"]["i"] for r in audit.page(28, 5)["items"]] == [1, 0]
    ada_logins = audit.page(0, 100, user="ada", op="login")
    assert ada_logins["total"] == 5 and all(r["ids"]["i"] % 6 == 3 for r in ada_logins["items"])
    recent = audit.page(0, 100, since=1_026)
    assert recent["total"] == 5 and recent["items"][-1]["ts"].timestamp() == 1_026


def test_a_torn_last_line_is_cut_and_a_bad_line_skipped(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    audit = AuditLog(path, WallClock())
    audit.append({"op": "first", "outcome": "ok"})
    audit.append({"op": "second", "outcome": "ok"})
    audit.close()
    with open(path, "ab") as stream:
        stream.write(b'not json\n{"op": "torn", "outc')  # a corrupt line, then a kill -9 mid-record
    audit = AuditLog(path, WallClock())
    assert path.read_bytes().endswith(b"not json\n")
    audit.append({"op": "third", "outcome": "ok"})
    assert [r["op"] for r in audit.page(0, 10, outcome="ok")["items"]] == ["third", "second", "first"]


def test_large_arguments_are_summarised_not_stored(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.log", WallClock())
    record = audit.append({"op": "update_row", "args": {"updated_data": {"note": "x" * 100_000}}})
    assert record["args"] == {"truncated": True, "bytes": record["args"]["bytes"]}
    assert (tmp_path / "audit.log").stat().st_size < 1_000


# ---------------------------------------------------------------------------- ZAP


def test_zap_allows_each_socket_only_its_principals(tmp_path: Path) -> None:
    authority, keys = make_authority(tmp_path)
    gate = authority.zap_gate()
    expectations = {
        keys.api[Role.ADMIN]: {Domain.FRONTEND, Domain.EVENTS, Domain.TAP},
        keys.api[Role.VIEWER]: {Domain.FRONTEND, Domain.EVENTS},
        keys.gui: {Domain.FRONTEND, Domain.EVENTS},
        keys.mock: {Domain.BACKEND},
        public(): set(),
    }
    for key, domains in expectations.items():
        assert {d for d in Domain if gate.callback(d.value, key.encode())} == domains, key


def test_refusals_are_recorded_once_a_minute_per_key_and_bounded_in_all(tmp_path: Path) -> None:
    monotonic = WallClock(0.0)
    authority, _ = make_authority(tmp_path, monotonic=monotonic)
    gate = authority.zap_gate()
    stranger = public()
    for _ in range(1_000):
        assert not gate.callback("frontend", stranger.encode())
    assert len(authority.audit) == 1
    flood = 3_000  # fresh random keys: a handshake flood (fewer than the LRU holds, so the stranger stays)
    for _ in range(flood):
        gate.callback("frontend", public().encode())
    assert len(authority.audit) == Refusals(authority.audit, QuietFilter()).max_per_period
    recorded = len(authority.audit) - 1
    monotonic.now += 61
    gate.callback("frontend", stranger.encode())
    (record,) = authority.audit.page(0, 1)["items"]
    assert record["ids"] == {"public_key": stranger} and record["repeated"] == 999
    assert record["others_suppressed"] == flood - recorded
    for _ in range(10_000):
        gate.callback("frontend", public().encode())
    assert len(authority.refusals.quiet) == authority.config.max_refusal_keys  # memory: an LRU
