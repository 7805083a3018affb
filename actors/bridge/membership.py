"""Which backends are in: registration (only as the allow-list binds a key), liveness by
heartbeats, goodbyes, revoked keys, and the serving mode they make together.

The core hands in how to publish an event, how to fail over the requests a departed
backend held, and what to recompute when the set of live backends changed (the serving
state and its ``bridge.mode`` event live in actors/bridge/outage.py); everything else
about membership lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from actors.bridge.auth.backends import AllowedBackend
from actors.bridge.authorize import Gate
from actors.bridge.config import BridgeConfig, Outbox
from actors.bridge.registry import Backend, Registry
from actors.bridge.replies import RequestKey
from protocol.envelope import HEARTBEAT, Header, encode_header
from protocol.events import BRIDGE_BACKEND
from protocol.modes import Mode

log = structlog.get_logger()

Publish = Callable[[str, dict[str, Any]], None]
FailPending = Callable[[Backend, str, RequestKey | None], None]
Changed = Callable[[], None]


class Membership:
    def __init__(
        self,
        config: BridgeConfig,
        gate: Gate,
        out: Outbox,
        publish: Publish,
        fail_pending: FailPending,
        changed: Changed,
    ) -> None:
        self.config = config
        self.gate = gate
        self.out = out
        self.publish = publish
        self.fail_pending = fail_pending
        self.update_mode = changed
        self.registry = Registry(
            config.heartbeat_interval,
            config.liveness,
            max_backends=config.max_backends,
            forget_after=config.backend_forget_after,
        )

    def on_ready(self, identity: bytes, header: Header, now: float, allowed: AllowedBackend) -> None:
        name, mode = header.fields["name"], header.fields["mode"]
        ops = [op for op in header.fields["ops"] if isinstance(op, str)]
        if not self.gate.ready_allowed(allowed, name, mode):
            return
        if len(ops) > self.config.max_backend_ops or not self.registry.has_room_for(identity, name):
            log.warning("bridge.backend_refused", backend=name, ops=len(ops), registered=len(self.registry.backends))
            return
        pid = header.fields.get("pid")
        bulk, bulk_ipc = header.fields.get("bulk"), header.fields.get("bulk_ipc")
        replaced = self.registry.register(
            identity,
            name,
            Mode(mode),
            ops,
            now,
            pid if isinstance(pid, int) else None,
            allowed.public_key,
            bulk if isinstance(bulk, str) and bulk.startswith("tcp://") else "",
            bulk_ipc if isinstance(bulk, str) and isinstance(bulk_ipc, str) and bulk_ipc.startswith("ipc://") else "",
        )
        if replaced is not None:
            self.fail_pending(replaced, "replaced by a new instance", None)
        log.info("bridge.backend_up", backend=name, backend_mode=mode, ops=len(ops))
        self.publish(BRIDGE_BACKEND, {"name": name, "mode": mode, "state": "up", "reason": "ready"})
        self.update_mode()

    def down(
        self, backend: Backend, reason: str, now: float, *, remove: bool = False, skip: RequestKey | None = None
    ) -> None:
        if remove:
            self.registry.remove(backend.identity)
            was_alive = backend.alive
            backend.alive = False
        else:
            was_alive = self.registry.mark_down(backend.identity, reason, now) is not None
        if was_alive:
            log.warning("bridge.backend_down", backend=backend.name, backend_mode=backend.mode, reason=reason)
            self.publish(
                BRIDGE_BACKEND, {"name": backend.name, "mode": backend.mode, "state": "down", "reason": reason}
            )
            self.fail_pending(backend, reason, skip)
            self.update_mode()

    def drop_key(self, key: str, now: float) -> None:
        """The key was revoked or rebound: its registrations end now."""
        for backend in self.registry.with_key(key):
            self.down(backend, "key revoked", now, remove=True)

    def heartbeat(self, now: float) -> None:
        """Beat to the live backends, declare the silent ones dead, forget long-dead mocks."""
        beat = encode_header(HEARTBEAT)
        for backend in self.registry.alive():
            if not self.out.to_backend(backend.identity, [b"", beat, b""]):
                # Its connection is gone (a killed process): no need to wait for three silent beats.
                self.down(backend, "unreachable", now)
        for backend in self.registry.expired(now):
            self.down(backend, "missed heartbeats", now)
        for backend in self.registry.forget_dead(now):
            log.info("bridge.backend_forgotten", backend=backend.name, backend_mode=backend.mode)
