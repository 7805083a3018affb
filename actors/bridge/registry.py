"""Backends known to the bridge: registration, liveness, and who serves an operation.

Bounded: one registration per name (a new instance replaces the old), names come from the
backend allow-list, at most ``max_backends`` in all, and a dead mock registration is
forgotten after ``forget_after`` seconds. A dead *real* one is kept until its name
registers again: it is what tells routing that writes must not land in the mock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol.modes import Mode


@dataclass(slots=True)
class Backend:
    identity: bytes
    name: str
    mode: Mode  # REAL or MOCK, as READY said (the bridge checked the value)
    ops: frozenset[str]
    registered_at: float
    last_seen: float
    pid: int | None = None
    alive: bool = True
    inflight: int = 0
    down_reason: str = ""
    key: str = ""  # the CURVE key it registered with: its later messages must come from the same key
    down_at: float = 0.0
    bulk: str = ""  # its bulk lane's endpoint, as its READY announced (protocol/lane.py); "" for none
    bulk_ipc: str = ""  # its same-host door (ipc://), as its READY announced; "" for none


@dataclass
class Registry:
    heartbeat_interval: float = 1.0
    liveness: int = 3
    backends: dict[bytes, Backend] = field(default_factory=dict)
    max_backends: int = 64
    forget_after: float = 600.0

    def has_room_for(self, identity: bytes, name: str) -> bool:
        return (
            len(self.backends) < self.max_backends
            or identity in self.backends
            or any(b.name == name for b in self.backends.values())
        )

    def register(
        self,
        identity: bytes,
        name: str,
        mode: Mode,
        ops: list[str],
        now: float,
        pid: int | None = None,
        key: str = "",
        bulk: str = "",
        bulk_ipc: str = "",
    ) -> Backend | None:
        """Add a backend; returns the backend of the same name this one replaces, if any."""
        replaced = None
        for other in list(self.backends.values()):
            if other.name == name and other.identity != identity:
                replaced = self.backends.pop(other.identity)
        self.backends[identity] = Backend(
            identity, name, mode, frozenset(ops), now, now, pid, key=key, bulk=bulk, bulk_ipc=bulk_ipc
        )
        return replaced

    def with_key(self, key: str) -> list[Backend]:
        return [b for b in self.backends.values() if b.key == key]

    def forget_dead(self, now: float) -> list[Backend]:
        """Drop mock registrations dead for longer than ``forget_after``; returns them."""
        doomed = [
            b
            for b in self.backends.values()
            if not b.alive and b.mode is not Mode.REAL and now - b.down_at > self.forget_after
        ]
        for backend in doomed:
            del self.backends[backend.identity]
        return doomed

    def seen(self, identity: bytes, now: float) -> Backend | None:
        backend = self.backends.get(identity)
        if backend is not None and backend.alive:
            backend.last_seen = now
            return backend
        return None

    def mark_down(self, identity: bytes, reason: str, now: float = 0.0) -> Backend | None:
        backend = self.backends.get(identity)
        if backend is None or not backend.alive:
            return None
        backend.alive = False
        backend.down_reason = reason
        backend.down_at = now
        return backend

    def remove(self, identity: bytes) -> Backend | None:
        return self.backends.pop(identity, None)

    def expired(self, now: float) -> list[Backend]:
        limit = self.heartbeat_interval * self.liveness
        return [b for b in self.backends.values() if b.alive and now - b.last_seen > limit]

    def alive(self) -> list[Backend]:
        return [b for b in self.backends.values() if b.alive]

    def serving(self, mode: str, op: str) -> Backend | None:
        """The live backend of ``mode`` implementing ``op`` with the fewest requests in flight."""
        best = None
        for b in self.backends.values():
            if b.alive and b.mode == mode and op in b.ops and (best is None or b.inflight < best.inflight):
                best = b
        return best

    def expected(self, mode: str, op: str) -> bool:
        """A backend of ``mode`` that implements ``op`` is known but down (crashed, not said goodbye)."""
        return any(not b.alive and b.mode == mode and op in b.ops for b in self.backends.values())

    def knows_op(self, op: str) -> bool:
        return any(op in b.ops for b in self.backends.values())

    def mode(self) -> Mode:
        modes = {b.mode for b in self.backends.values() if b.alive}
        if Mode.REAL in modes:
            return Mode.REAL
        if Mode.MOCK in modes:
            return Mode.MOCK
        return Mode.NONE

    def describe(self, now: float) -> list[dict[str, Any]]:
        """Every known backend as bridge_status reports it."""
        return [
            {
                "name": b.name,
                "mode": b.mode,
                "pid": b.pid,
                "alive": b.alive,
                "ops": sorted(b.ops),
                "last_heartbeat_age_s": round(now - b.last_seen, 3),
                "inflight": b.inflight,
                "down_reason": b.down_reason or None,
            }
            for b in self.backends.values()
        ]
