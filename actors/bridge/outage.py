"""Honest outages: what the bridge answers while the real backend it expects is away.

A real backend is EXPECTED when the persisted allow-list binds a key to mode real (run_all's
bootstrap writes one for a stack with a real server; ``bridgectl backend allow --mode real``).
Memory of a registration is not needed: a bridge restarted while the real server is down
still refuses writes instead of handing them to the mock. While the expected real backend
is not alive, ``protocol.modes.during_outage`` decides by policy: the last known real reply
(``stale``), the mock (``reads``, ``all``) or BACKEND_UNAVAILABLE.

This module also keeps the state the consoles follow (``bridge_status`` and ``bridge.mode``:
mode, policy, real_expected, real_unavailable_since) and keeps a mock's events off the
topics of a stack whose real backend the mock must not be mistaken for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from actors.bridge import routing
from actors.bridge.auth.backends import BackendAllowList
from actors.bridge.auth.principals import Acting
from actors.bridge.config import BridgeConfig, Pending
from actors.bridge.last_real import Known, LastReal, StaleKey, stale_key
from actors.bridge.registry import Backend, Registry
from protocol import responses
from protocol.catalogue import CATALOGUE, Operation
from protocol.codec import decode
from protocol.envelope import reply_frames
from protocol.errors import RETRYABLE, ErrorCode, ProtocolError
from protocol.events import BRIDGE_MODE
from protocol.modes import Mode, OutageAnswer, Policy, default_policy, during_outage

log = structlog.get_logger()

Publish = Callable[[str, dict[str, Any]], None]


def _when(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class Stale:
    """A read answered from the last known real reply."""

    known: Known

    def frames(self, request_id: str | None) -> list[bytes]:
        reply = responses.stale(decode(self.known.body), datetime.fromtimestamp(self.known.received_at, UTC))
        return reply_frames(request_id, reply)


Route = list[bytes] | ProtocolError | Stale


class Outage:
    def __init__(
        self,
        config: BridgeConfig,
        registry: Registry,
        allowed: BackendAllowList,
        publish: Publish,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if config.policy is not None and config.policy not in tuple(Policy):
            raise ValueError(f"fallback policy must be one of {[p.value for p in Policy]}")
        self.config = config
        self.registry = registry
        self.allowed = allowed
        self.publish = publish
        self.wall = wall
        self.last_real = LastReal(config.last_real_bytes)
        self.mock_events_dropped = 0
        self.real_expected = False
        self.since: float | None = None  # wall time the expected real backend was last missed from
        self._published: dict[str, Any] = {}
        self._refresh()
        self._published = self.state()  # the starting state is in bridge_status; events report changes

    @property
    def policy(self) -> Policy:
        return self.config.policy or default_policy(self.real_expected)

    def mode(self) -> Mode:
        """Who answers new requests: ``none`` while the mock is up but may not stand in for the real backend."""
        mode = self.registry.mode()
        if mode is Mode.MOCK and self.real_expected and self.policy in (Policy.STALE, Policy.NONE):
            return Mode.NONE
        return mode

    def state(self) -> dict[str, Any]:
        return {
            "mode": self.mode(),
            "policy": self.policy,
            "real_expected": self.real_expected,
            "real_unavailable_since": _when(self.since),
        }

    def status(self) -> dict[str, Any]:
        return {
            **self.state(),
            "mock_events_dropped": self.mock_events_dropped,
            "last_real_entries": len(self.last_real),
            "last_real_bytes": self.last_real.bytes,
        }

    def _refresh(self) -> None:
        self.real_expected = any(entry.mode is Mode.REAL for entry in self.allowed)
        if not self.real_expected or any(b.mode is Mode.REAL for b in self.registry.alive()):
            self.since = None
        elif self.since is None:
            self.since = self.wall()

    def update(self) -> None:
        """After a registration, a departure or a change of the allow-list: publish ``bridge.mode`` on any change."""
        self._refresh()
        state = self.state()
        if state != self._published:
            previous, self._published = self._published, state
            log.info("bridge.mode_changed", **state, previous=previous["mode"])
            self.publish(BRIDGE_MODE, {**state, "previous": previous["mode"]})

    # ------------------------------------------------------------------ requests
    def _unavailable(self, op: str) -> str:
        when = _when(self.since)
        if when is None:  # a real backend is up, and does not implement this operation (a plugin's)
            return f"no live real backend serves {op!r}"
        return f"the real server is unavailable since {when:%H:%M:%S} UTC"

    def _key(self, operation: Operation, body: bytes, acting: Acting) -> StaleKey | None:
        role = acting.role.value if acting.role is not None else None
        return stale_key(operation, body, role, self.config.max_size)

    def route(self, op: str, operation: Operation | None, is_write: bool, acting: Acting, body: bytes) -> Route:
        """The backends to try for a request, the stale answer to give at once, or the error."""
        policy = self.policy
        streaming = operation is not None and operation.streaming
        answer = during_outage(policy, is_write=is_write, streaming=streaming)
        # Expected for every operation: the mock never answers in a real stack but as a policy lets it.
        expected = self.real_expected
        unavailable = self._unavailable(op)
        if answer is OutageAnswer.LAST_REAL and expected and self.registry.serving(Mode.REAL, op) is None:
            key = self._key(operation, body, acting) if operation is not None else None
            known = self.last_real.get(key) if key is not None else None
            if known is not None:
                return Stale(known)
            return ProtocolError(
                ErrorCode.BACKEND_UNAVAILABLE, f"{unavailable} and no earlier real answer to this {op} request is known"
            )
        if policy is Policy.STALE:
            refusal = f"{unavailable}; {op} was not executed"
            if streaming and not is_write:
                refusal = f"{unavailable}; a download is never answered from memory"
        else:
            kind = "writes" if is_write else "reads"
            refusal = (
                f"{unavailable} and policy {policy.value!r} does not send {kind} to the mock; {op} was not executed"
            )
        return routing.plan(
            self.registry, op, fallback=answer is OutageAnswer.MOCK, real_expected=expected, refusal=refusal
        )

    def remember(self, backend: Backend, pending: Pending, ok: bool, error_code: str | None, body: bytes) -> None:
        """Keep a real backend's final reply to a read, for its next outage (only a policy that uses it)."""
        if backend.mode is not Mode.REAL or pending.is_write or self.policy is not Policy.STALE:
            return
        operation = CATALOGUE.get(pending.op)
        if operation is None or operation.streaming:
            return
        key = self._key(operation, pending.body, pending.acting)
        if key is None:
            return
        if ok:
            self.last_real.remember(key, body, self.wall())
        elif error_code not in RETRYABLE:
            self.last_real.forget(key)  # the real backend's latest answer was not that data any more

    def failed(self, pending: Pending, reason: str) -> Stale | None:
        """The stale answer for a read whose real backend went away before answering, when one is known.

        Only what the real backend answered is kept here, so a mock-only stack never gets one."""
        if reason == "timeout" or pending.is_write or self.policy is not Policy.STALE or not self.real_expected:
            return None
        operation = CATALOGUE.get(pending.op)
        if operation is None or operation.streaming:
            return None
        key = self._key(operation, pending.body, pending.acting)
        known = self.last_real.get(key) if key is not None else None
        return Stale(known) if known is not None else None

    # ------------------------------------------------------------------ events
    def admit_event(self, backend: Backend) -> bool:
        """Whether a backend's event reaches the topics. A mock's is dropped (and counted) while a
        real backend is expected, unless the mock is standing in for it under policy reads or all."""
        if backend.mode is not Mode.MOCK or not self.real_expected:
            return True
        if self.since is not None and self.policy in (Policy.READS, Policy.ALL):
            return True
        self.mock_events_dropped += 1
        return False
