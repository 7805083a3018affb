"""Per request: who sent it (from the CURVE key ZAP authenticated), whom it runs for, whether
that role may run it, and the audit records these decisions and every write leave.

Nothing a client writes grants anything: the principal comes from the key, a GUI acts for
a user only through a session token bound to that GUI's own key, and the role compared
with the operation's is the user's current one.
"""

from __future__ import annotations

from typing import Any

import structlog

from actors.bridge.auth.authority import Authority
from actors.bridge.auth.backends import AllowedBackend
from actors.bridge.auth.principals import Acting, Principal, PrincipalKind
from actors.bridge.auth.zap import Domain
from protocol.catalogue import Operation
from protocol.codec import decode
from protocol.errors import ErrorCode, ProtocolError
from protocol.recording import scrub_secrets
from protocol.roles import Role, allows

log = structlog.get_logger()

PLUGIN_ROLE = Role.ADMIN  # an operation only a plugin backend knows may do anything: admins only
OK = "ok"


def request_args(body: bytes) -> dict[str, Any]:
    """A request's arguments for notices and the audit; {} when the body is not a map."""
    if not body:
        return {}
    try:
        args = decode(body)
    except ProtocolError:
        return {}
    return args if isinstance(args, dict) else {}


def audit_fields(operation: Operation | None, args: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(ids, the other arguments minus secrets) of a request, as the audit stores them."""
    if operation is None:
        return {}, scrub_secrets(args)
    ids = operation.ids_of(args)
    hidden = set(ids) | set(operation.secret_args)
    return ids, scrub_secrets({k: v for k, v in args.items() if k not in hidden})


class Gate:
    def __init__(self, authority: Authority) -> None:
        self.auth = authority

    def principal(self, key: str | None, peer: str | None) -> Principal:
        """The principal of a frontend message's key; UNAUTHENTICATED when it is nobody (any more)."""
        principal = self.auth.principals.resolve(key)
        if principal is None:
            self.auth.refusals.refused(
                key or "(no key)", Domain.FRONTEND, "unknown or revoked key", peer=peer, op="request"
            )
            raise ProtocolError(
                ErrorCode.UNAUTHENTICATED, "this key is unknown or was revoked: use a current connection file"
            )
        if principal.kind is PrincipalKind.BACKEND:
            raise ProtocolError(ErrorCode.FORBIDDEN, "a backend key may only use the backend socket")
        return principal

    def acting(self, principal: Principal, token: Any, peer: str | None, *, lenient: bool = False) -> Acting:
        """Whom the request runs for. ``lenient``: a bad token means "nobody" instead of an error (logout)."""
        if principal.kind is not PrincipalKind.GUI:
            if token is not None:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST, "the auth header is for GUI sessions; an API key is its user"
                )
            return Acting.as_itself(principal)
        if token is None:
            return Acting.as_itself(principal)
        try:
            session = self.auth.sessions.resolve(token, principal.public_key)
            user = self.auth.stores.users.get(session.user)
            if user is None:
                self.auth.sessions.end(token, principal.public_key)
                raise ProtocolError(ErrorCode.UNAUTHENTICATED, f"user {session.user!r} was removed")
        except ProtocolError as exc:
            if lenient:
                return Acting.as_itself(principal)
            self.auth.refusals.refused(principal.public_key, "session", exc.message, peer=peer, op="request")
            raise
        return Acting(principal, user.name, user.role, f"gui:{user.name}", token)

    def require(self, acting: Acting, op: str, operation: Operation | None, body: bytes, peer: str | None) -> None:
        """Pass, or raise: UNAUTHENTICATED for a GUI with nobody signed in, FORBIDDEN (audited) for a low role."""
        need = operation.role if operation is not None else PLUGIN_ROLE
        if allows(acting.role, need):
            return
        if acting.role is None:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, f"{op} needs a signed-in user: sign in first")
        assert need is not None  # allows() passes every request needing no role
        message = f"{op} needs role {need.value}; you are {acting.role.value}"
        repeated = self.auth.denials.admit((acting.principal.public_key, acting.user, op))
        if repeated is not None:
            log.warning("bridge.role_denied", op=op, user=acting.user, role=acting.role.value, needed=need.value)
            ids, args = audit_fields(operation, request_args(body))
            self.audit(acting, peer, op, ids, args, ErrorCode.FORBIDDEN.value, message, repeated=repeated or None)
        raise ProtocolError(ErrorCode.FORBIDDEN, message, needed=need.value, role=acting.role.value)

    def ready_allowed(self, allowed: AllowedBackend, name: str, mode: str) -> bool:
        """A backend key says READY only under the name and mode it is bound to (a mock never speaks as real)."""
        if (name, mode) == (allowed.name, allowed.mode):
            return True
        reason = f"key bound to {allowed.name} ({allowed.mode}) said READY as {name} ({mode})"
        self.auth.refusals.refused(allowed.public_key, Domain.BACKEND, reason, op="ready")
        return False

    def audit(
        self,
        acting: Acting,
        peer: str | None,
        op: str,
        ids: dict[str, Any],
        args: dict[str, Any],
        outcome: str,
        message: str | None = None,
        *,
        repeated: int | None = None,
        who: dict[str, Any] | None = None,
    ) -> None:
        record: dict[str, Any] = {
            "who": who or acting.who(),
            "peer": peer,
            "op": op,
            "ids": ids,
            "args": args,
            "outcome": outcome,
        }
        if message:
            record["message"] = message
        if repeated:
            record["repeated"] = repeated
        try:
            self.auth.audit.append(record)
        except OSError as exc:
            # What was done is done (a backend executed it): say so loudly, answer anyway.
            log.error("bridge.audit_write_failed", op=op, error=str(exc))

    def audit_request(
        self,
        acting: Acting,
        peer: str | None,
        operation: Operation | None,
        op: str,
        body: bytes,
        outcome: str,
        message: str | None = None,
    ) -> None:
        ids, args = audit_fields(operation, request_args(body))
        self.audit(acting, peer, op, ids, args, outcome, message)
