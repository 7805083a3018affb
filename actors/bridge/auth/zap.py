"""The ZAP decision for each of the bridge's sockets, and the rate-limited record of refusals.

pyzmq's ThreadAuthenticator asks ``ZapGate.callback(domain, key)`` during every CURVE
handshake; a refused key never gets a connection, so nothing it sends reaches the
bridge. Per domain:

* ``frontend``: API keys (not revoked, their user present) and GUI keys;
* ``events``: the same (viewer is the lowest role, so every API key qualifies);
* ``tap``: API keys acting as admin only (the tap carries every message);
* ``backend``: allow-listed backend keys only.

A refusal is logged (``bridge.key_refused``) and audited at most once per key per
minute, through a bounded LRU, and at most ``max_per_period`` times a minute in all: a
flood of handshakes, with one key or with fresh random ones, cannot grow memory or files.
"""

from __future__ import annotations

import math
import threading
from enum import StrEnum
from typing import Any

import structlog

from actors.bridge.auth.audit import AuditLog
from actors.bridge.auth.principals import Principal, PrincipalKind, Principals
from actors.bridge.auth.ratelimit import QuietFilter
from protocol.errors import ErrorCode
from protocol.roles import Role

log = structlog.get_logger()


class Domain(StrEnum):
    FRONTEND = "frontend"
    EVENTS = "events"
    BACKEND = "backend"
    TAP = "tap"


def allowed(domain: str, principal: Principal | None) -> bool:
    if principal is None:
        return False
    if domain in (Domain.FRONTEND, Domain.EVENTS):
        return principal.kind in (PrincipalKind.API_KEY, PrincipalKind.GUI)
    if domain == Domain.TAP:
        return principal.kind is PrincipalKind.API_KEY and principal.role is Role.ADMIN
    if domain == Domain.BACKEND:
        return principal.kind is PrincipalKind.BACKEND
    return False


class Refusals:
    """Refused keys and forged registrations, said once per key per quiet period, and at most
    ``max_per_period`` records in all per period: a flood of fresh random keys is counted
    (``others_suppressed`` in the next record), not written one line each."""

    def __init__(self, audit: AuditLog, quiet: QuietFilter, max_per_period: int = 100) -> None:
        self.audit = audit
        self.quiet = quiet
        self.max_per_period = max_per_period
        self._lock = threading.Lock()
        self._period_start = -math.inf
        self._in_period = 0
        self._suppressed = 0

    @property
    def total(self) -> int:
        return self.quiet.total

    def _within_budget(self) -> int | None:
        """None: over this period's budget. Otherwise the refusals suppressed since the last record."""
        now = self.quiet.clock()
        with self._lock:
            if now - self._period_start >= self.quiet.quiet_s:
                self._period_start, self._in_period = now, 0
            if self._in_period >= self.max_per_period:
                self._suppressed += 1
                return None
            self._in_period += 1
            suppressed, self._suppressed = self._suppressed, 0
            return suppressed

    def refused(self, key: str, where: str, reason: str, *, peer: str | None = None, op: str = "connect") -> None:
        repeated = self.quiet.admit((key, where))
        if repeated is None:
            return
        others = self._within_budget()
        if others is None:
            return
        log.warning("bridge.key_refused", key=key[:8] + "…", socket=where, reason=reason, repeated=repeated or None)
        record: dict[str, Any] = {
            "who": {"user": None, "role": None, "via": "anonymous"},
            "peer": peer,
            "op": op,
            "ids": {"public_key": key},
            "args": {"socket": where},
            "outcome": ErrorCode.UNAUTHENTICATED.value,
            "message": reason,
        }
        if repeated:
            record["repeated"] = repeated
        if others:
            record["others_suppressed"] = others
        try:
            self.audit.append(record)
        except OSError as exc:  # a full disk must not take the ZAP thread down
            log.error("bridge.audit_write_failed", error=str(exc))


class ZapGate:
    """pyzmq's credentials provider: ``callback(domain, key)`` with the key as z85 bytes."""

    def __init__(self, principals: Principals, refusals: Refusals) -> None:
        self.principals = principals
        self.refusals = refusals

    def callback(self, domain: str, key: bytes) -> bool:
        text = key.decode("ascii", "replace")
        principal = self.principals.resolve(text)
        if allowed(domain, principal):
            return True
        reason = "unknown or revoked key" if principal is None else f"a {principal.kind.value} key may not use it"
        self.refusals.refused(text, domain, reason)
        return False
