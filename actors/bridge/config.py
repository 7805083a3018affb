"""The bridge core's vocabulary: its configuration, its ports (outbox, taps), a pending request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from protocol.codec import DEFAULT_MAX_SIZE
from protocol.modes import Policy

PLUGIN_TIMEOUT_S = 10.0


class Tap(Protocol):
    """Sees every message that passes the bridge (recorders); ``active`` False costs nothing."""

    @property
    def active(self) -> bool: ...

    def record(self, direction: str, header: bytes, body: bytes) -> None: ...


CLIENT_IN = "client->bridge"
CLIENT_OUT = "bridge->client"
EVENT_OUT = "event"


class Outbox(Protocol):
    """Where the core's messages go; frames exclude the peer's routing identity."""

    def to_client(self, identity: bytes, frames: list[bytes]) -> bool: ...

    def to_backend(self, identity: bytes, frames: list[bytes]) -> bool: ...

    def publish(self, frames: list[bytes]) -> None: ...


@dataclass(frozen=True)
class BridgeConfig:
    policy: Policy = Policy.READS
    heartbeat_interval: float = 1.0
    liveness: int = 3
    ring_size: int = 10_000
    reply_cache_ttl: float = 60.0
    reply_cache_size: int = 10_000
    max_inflight: int = 10_000
    max_size: int = DEFAULT_MAX_SIZE
    events_endpoint: str = ""
    frontend_endpoint: str = ""
    tap_endpoint: str = ""


@dataclass(slots=True)
class Pending:
    identity: bytes
    request_id: str
    op: str
    is_write: bool
    session: str | None
    header: bytes
    body: bytes
    plan: list[bytes]  # backend identities, in the order to try
    deadline: float
    timeout: float
    attempt: int = 0
    started: float = field(default=0.0)
    attempt_deadline: float = 0.0

    @property
    def backend(self) -> bytes:
        return self.plan[self.attempt]
