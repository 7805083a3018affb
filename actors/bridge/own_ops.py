"""The operations the bridge answers itself: events_since, bridge_status, sign-in, users,
API keys, the backend allow-list and the audit trail.

Each handler takes whom the request runs for (already authorized for the operation's
role), its validated arguments and the peer's address, and returns ``(data, message)``
or raises ProtocolError. The core audits writes and publishes their notices; ``login``
audits itself, since whom it names is only known inside.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
import zmq

from actors.bridge.auth import totp
from actors.bridge.auth.apikeys import ApiKey, KeyKind
from actors.bridge.auth.authority import Authority
from actors.bridge.auth.files import parse_time
from actors.bridge.auth.principals import Acting, PrincipalKind
from actors.bridge.auth.users import User
from actors.bridge.authorize import OK, Gate
from actors.bridge.events import EventLog
from protocol import responses
from protocol.catalogue import Operation
from protocol.codec import decode
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode
from protocol.roles import Role, lowest, parse_role, rank

log = structlog.get_logger()

GENERATED_PASSWORD_BYTES = 18  # 24 URL-safe characters

Result = tuple[Any, str]
Handler = Callable[[Acting, dict[str, Any], str | None], Result]


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _password(given: str | None) -> tuple[str, str | None]:
    """(the password to set, the one to return: only a generated one goes back)."""
    if given is not None:
        return given, None
    generated = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
    return generated, generated


class OwnOperations:
    def __init__(
        self,
        gate: Gate,
        events: EventLog,
        status: Callable[[], dict[str, Any]],
        *,
        bridge_public_key: str,
        drop_backend_key: Callable[[str], None],
        registered_keys: Callable[[], set[str]],
    ) -> None:
        self.gate = gate
        self.auth: Authority = gate.auth
        self.events = events
        self.status = status
        self.bridge_public_key = bridge_public_key
        self.drop_backend_key = drop_backend_key
        self.registered_keys = registered_keys
        self.handlers: dict[str, Handler] = {
            "events_since": lambda _a, args, _p: self._events_since(args),
            "bridge_status": lambda _a, _args, _p: self._bridge_status(),
            "login": self._login,
            "logout": lambda acting, _args, peer: self._logout(acting, peer),
            "whoami": lambda acting, _args, _p: self._whoami(acting),
            "set_settings": lambda acting, args, _p: self._set_settings(acting, args),
            "user_add": lambda _a, args, _p: self._user_add(args),
            "user_list": lambda _a, _args, _p: self._user_list(),
            "user_remove": lambda _a, args, _p: self._user_remove(args),
            "user_passwd": lambda acting, args, _p: self._user_passwd(acting, args),
            "user_role": lambda _a, args, _p: self._user_role(args),
            "user_totp": lambda _a, args, _p: self._user_totp(args),
            "key_new": lambda _a, args, _p: self._key_new(args),
            "key_list": lambda _a, args, _p: self._key_list(args),
            "key_revoke": lambda _a, args, _p: self._key_revoke(args),
            "backend_allow": lambda _a, args, _p: self._backend_allow(args),
            "backend_list": lambda _a, _args, _p: self._backend_list(),
            "backend_revoke": lambda _a, args, _p: self._backend_revoke(args),
            "get_audit_log": lambda _a, args, _p: self._audit_log(args),
        }

    def answer(
        self, operation: Operation, acting: Acting, body: bytes, peer: str | None, max_size: int
    ) -> dict[str, Any]:
        """The standard reply to one of the bridge's own operations; never raises."""
        try:
            args = operation.validate_args(decode(body, max_size) if body else {})
            data, message = self.run(operation, acting, args, peer)
            return responses.success(data, message, mode=Mode.BRIDGE)
        except ProtocolError as exc:
            return responses.from_protocol_error(exc, mode=Mode.BRIDGE)
        except Exception:  # a fault in one of its own operations must not stop the bridge
            log.exception("bridge.own_operation_crashed", op=operation.name)
            return responses.error(ErrorCode.INTERNAL, f"{operation.name} failed inside the bridge", mode=Mode.BRIDGE)

    def run(self, operation: Operation, acting: Acting, args: dict[str, Any], peer: str | None) -> Result:
        handler = self.handlers.get(operation.name)
        if handler is None:
            raise ProtocolError(ErrorCode.UNKNOWN_OPERATION, f"the bridge does not implement {operation.name!r}")
        return handler(acting, args, peer)

    # ------------------------------------------------------------------ bridge
    def _events_since(self, args: dict[str, Any]) -> Result:
        data = self.events.since(args["seq"])
        return data, f"{len(data['events'])} event(s)"

    def _bridge_status(self) -> Result:
        data = self.status()
        return data, f"mode {data['mode']}"

    # ------------------------------------------------------------------ sessions
    def _login(self, acting: Acting, args: dict[str, Any], peer: str | None) -> Result:
        if acting.principal.kind is not PrincipalKind.GUI:
            raise ProtocolError(ErrorCode.FORBIDDEN, "login is for a GUI process; an API key already acts as its user")
        username: str = args["username"]
        throttled = [f"user:{username}", f"peer:{peer}|{args.get('remote_address') or ''}"]
        attempt = {"user": username, "role": None, "via": "gui"}
        wait = self.auth.throttle.wait_s(throttled)
        if wait > 0:
            retry = math.ceil(wait)
            message = f"too many failed sign-ins: try again in {retry} s"
            # Once a quiet period per address: guessing many names from one place writes one line.
            if self.auth.denials.admit(("login-throttled", throttled[1])) is not None:
                self.gate.audit(acting, peer, "login", {}, {}, ErrorCode.RATE_LIMITED.value, message, who=attempt)
            raise ProtocolError(ErrorCode.RATE_LIMITED, message, retry_after_s=retry)
        user = self.auth.stores.users.verify(username, args["password"])
        failure = None if user is not None else "wrong user name or password"
        if user is not None and user.totp_secret is not None:
            if not args.get("totp"):
                # The password was right: asking for the code says nothing a guesser did not type.
                raise ProtocolError(ErrorCode.UNAUTHENTICATED, "enter the code of your authenticator app", totp=True)
            step = totp.matching_step(user.totp_secret, args["totp"], self.auth.clock())
            if step is None or step <= self.auth.totp_steps.get(user.name, -1):
                failure = "wrong or already used code"
            else:
                self.auth.totp_steps[user.name] = step
        if user is None or failure is not None:
            self.auth.throttle.failed(throttled)
            message = failure or "wrong user name or password"
            self.gate.audit(acting, peer, "login", {}, {}, ErrorCode.UNAUTHENTICATED.value, message, who=attempt)
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, message, totp=bool(user and user.totp_secret))
        self.auth.throttle.succeeded(f"user:{username}")
        token, session = self.auth.sessions.open(user.name, acting.principal.public_key)
        who = {"user": user.name, "role": user.role.value, "via": f"gui:{user.name}"}
        self.gate.audit(acting, peer, "login", {}, {}, OK, who=who)
        data = {
            "token": token,
            "user": user.name,
            "role": user.role.value,
            "expires_at": _when(self.auth.sessions.expires_at(session)),
            "idle_timeout_s": self.auth.sessions.idle_s,
            "settings": user.settings,
        }
        return data, f"signed in as {user.name} ({user.role.value})"

    def _logout(self, acting: Acting, peer: str | None) -> Result:
        ended = acting.token is not None and self.auth.sessions.end(acting.token, acting.principal.public_key)
        if ended:
            self.gate.audit(acting, peer, "logout", {}, {}, OK)
        return {"ended": ended}, "signed out" if ended else "no session to end"

    def _whoami(self, acting: Acting) -> Result:
        principal = acting.principal
        user = self.auth.stores.users.get(acting.user) if acting.user else None
        expires_at = None
        if acting.token is not None:
            session = self.auth.sessions.resolve(acting.token, principal.public_key)
            expires_at = _when(self.auth.sessions.expires_at(session))
        data = {
            "kind": principal.kind.value,
            "user": acting.user,
            "role": acting.role.value if acting.role else None,
            "via": acting.via,
            "key_id": principal.key_id,
            "expires_at": expires_at,
            "settings": user.settings if user else {},
        }
        return data, f"{acting.user or 'nobody'} via {acting.via}"

    def _set_settings(self, acting: Acting, args: dict[str, Any]) -> Result:
        if acting.user is None:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "settings belong to a signed-in user")
        settings = self.auth.stores.users.update_settings(acting.user, args["settings"])
        return {"settings": settings}, f"{len(settings)} setting(s)"

    # ------------------------------------------------------------------ users
    def _user_add(self, args: dict[str, Any]) -> Result:
        password, generated = _password(args.get("password"))
        user = self.auth.stores.users.add(args["name"], parse_role(args["role"]), password)
        return {"name": user.name, "role": user.role.value, "password": generated}, f"user {user.name} added"

    def _user_view(self, user: User) -> dict[str, Any]:
        keys = sum(1 for k in self.auth.stores.keys if k.user == user.name and k.active)
        return {
            "name": user.name,
            "role": user.role.value,
            "totp": user.totp_secret is not None,
            "created_at": parse_time(user.created_at),
            "keys": keys,
            "sessions": self.auth.sessions.count_user(user.name),
        }

    def _user_list(self) -> Result:
        items = [self._user_view(u) for u in sorted(self.auth.stores.users, key=lambda u: u.name)]
        return {"items": items, "total": len(items)}, f"{len(items)} user(s)"

    def _last_admin(self, name: str) -> bool:
        users = self.auth.stores.users
        user = users.require(name)
        return user.role is Role.ADMIN and users.admins() <= 1

    def _user_remove(self, args: dict[str, Any]) -> Result:
        name = args["name"]
        if self._last_admin(name):
            raise ProtocolError(ErrorCode.CONFLICT, f"{name} is the last admin: make another user admin first")
        revoked = self.auth.stores.keys.revoke_user(name)
        for key in revoked:
            if key.kind is KeyKind.GUI:
                self.auth.sessions.end_gui(key.public_key)
        ended = self.auth.sessions.end_user(name)
        self.auth.stores.users.remove(name)
        self.auth.totp_steps.pop(name, None)
        data = {"name": name, "revoked_keys": [k.key_id for k in revoked], "ended_sessions": ended}
        return data, f"user {name} removed"

    def _user_passwd(self, acting: Acting, args: dict[str, Any]) -> Result:
        name = args["name"]
        password, generated = _password(args.get("password"))
        self.auth.stores.users.set_password(name, password)
        keep = acting.token if acting.user == name else None
        ended = self.auth.sessions.end_user(name, keep_token=keep)
        return {"name": name, "password": generated}, f"password of {name} changed; {ended} session(s) ended"

    def _user_role(self, args: dict[str, Any]) -> Result:
        name, role = args["name"], parse_role(args["role"])
        if role is not Role.ADMIN and self._last_admin(name):
            raise ProtocolError(ErrorCode.CONFLICT, f"{name} is the last admin: make another user admin first")
        user = self.auth.stores.users.set_role(name, role)
        return {"name": user.name, "role": user.role.value}, f"{name} is now {role.value}"

    def _user_totp(self, args: dict[str, Any]) -> Result:
        name = args["name"]
        secret = totp.new_secret() if args["enable"] else None
        self.auth.stores.users.set_totp(name, secret)
        self.auth.totp_steps.pop(name, None)
        data = {
            "name": name,
            "totp": secret is not None,
            "secret": secret,
            "otpauth_uri": totp.otpauth_uri(secret, name) if secret else None,
        }
        return data, f"TOTP {'required' if secret else 'no longer required'} for {name}"

    # ------------------------------------------------------------------ keys
    def _key_view(self, key: ApiKey) -> dict[str, Any]:
        user = self.auth.stores.users.get(key.user)
        effective = lowest(key.role, user.role).value if (user is not None and key.active) else None
        return {
            "key_id": key.key_id,
            "user": key.user,
            "role": key.role.value,
            "effective_role": effective,
            "kind": key.kind.value,
            "label": key.label,
            "public_key": key.public_key,
            "created_at": parse_time(key.created_at),
            "revoked_at": parse_time(key.revoked_at),
        }

    def _key_new(self, args: dict[str, Any]) -> Result:
        user = self.auth.stores.users.require(args["user"])
        role = parse_role(args["role"]) if args.get("role") is not None else user.role
        if rank(role) > rank(user.role):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"a key of {user.name} cannot be {role.value}: the user is {user.role.value}"
            )
        public, secret = (k.decode("ascii") for k in zmq.curve_keypair())
        key = self.auth.stores.keys.add(user.name, role, public, args.get("label"), KeyKind(args["kind"]))
        data = {**self._key_view(key), "secret_key": secret, "bridge_public_key": self.bridge_public_key}
        del data["effective_role"], data["revoked_at"]
        return data, f"key {key.key_id} for {user.name} ({role.value})"

    def _key_list(self, args: dict[str, Any]) -> Result:
        user = args.get("user")
        items = [self._key_view(k) for k in self.auth.stores.keys if user is None or k.user == user]
        return {"items": items, "total": len(items)}, f"{len(items)} key(s)"

    def _key_revoke(self, args: dict[str, Any]) -> Result:
        key = self.auth.stores.keys.revoke(args["key_id"])
        if key.kind is KeyKind.GUI:
            self.auth.sessions.end_gui(key.public_key)
        return {"key_id": key.key_id, "revoked_at": parse_time(key.revoked_at)}, f"key {key.key_id} revoked"

    # ------------------------------------------------------------------ backends
    def _backend_allow(self, args: dict[str, Any]) -> Result:
        public = args["public_key"]
        holder = self.auth.principals.in_use(public)
        if holder is not None and holder != "an allow-listed backend":
            raise ProtocolError(ErrorCode.CONFLICT, f"this public key is already {holder}'s")
        entry, replaced = self.auth.stores.backends.allow(public, args["name"], args["mode"])
        if replaced is not None:
            self.drop_backend_key(public)  # it registered under its old binding
        data = {
            "public_key": public,
            "name": entry.name,
            "mode": entry.mode.value,
            "replaced": {"name": replaced.name, "mode": replaced.mode.value} if replaced else None,
        }
        return data, f"backend key allowed as {entry.name} ({entry.mode.value})"

    def _backend_list(self) -> Result:
        registered = self.registered_keys()
        items = [
            {"public_key": e.public_key, "name": e.name, "mode": e.mode.value, "registered": e.public_key in registered}
            for e in self.auth.stores.backends
        ]
        return {"items": items, "total": len(items)}, f"{len(items)} backend key(s)"

    def _backend_revoke(self, args: dict[str, Any]) -> Result:
        entry = self.auth.stores.backends.revoke(args["public_key"])
        self.drop_backend_key(entry.public_key)
        return {"public_key": entry.public_key, "name": entry.name}, f"backend key of {entry.name} revoked"

    # ------------------------------------------------------------------ audit
    def _audit_log(self, args: dict[str, Any]) -> Result:
        page = self.auth.audit.page(
            args["offset"],
            args["limit"],
            user=args.get("user"),
            op=args.get("op"),
            outcome=args.get("outcome"),
            since=args.get("since"),
        )
        return page, f"{len(page['items'])} of {page['total']} record(s)"
