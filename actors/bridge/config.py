"""The bridge core's vocabulary: its configuration, its ports (outbox, taps), a pending request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from actors.bridge.auth.principals import Acting
from protocol.codec import DEFAULT_MAX_SIZE
from protocol.modes import Policy

PLUGIN_TIMEOUT_S = 10.0
MIB = 1024 * 1024


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
    policy: Policy | None = None  # None: stale when a real backend is allow-listed, else reads (modes.default_policy)
    heartbeat_interval: float = 1.0
    liveness: int = 3
    ring_size: int = 10_000
    reply_cache_ttl: float = 60.0
    reply_cache_size: int = 10_000
    reply_cache_bytes: int = 64 * MIB
    reply_cache_peer_bytes: int = 8 * MIB
    last_real_bytes: int = 32 * MIB  # the last known real replies, for policy stale
    max_inflight: int = 10_000
    max_inflight_per_peer: int = 256
    max_size: int = DEFAULT_MAX_SIZE
    max_backends: int = 64
    max_backend_ops: int = 1_000  # operations one READY may list
    backend_forget_after: float = 600.0
    events_endpoint: str = ""
    frontend_endpoint: str = ""
    tap_endpoint: str = ""
    public_key: str = ""  # the bridge's CURVE public key (key_new hands it out with a new key)


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
    acting: Acting  # who asked: the audit names them, and only their key may ack or cancel
    peer: str | None = None
    attempt: int = 0
    started: float = field(default=0.0)
    attempt_deadline: float = 0.0
    chunks: int = 0  # stream chunks passed to the requester
    acked: int = 0  # of those, how many it acknowledged
    lane: bool = False  # the requester asked for the bulk lane (actors/bridge/lanes.py)

    @property
    def backend(self) -> bytes:
        return self.plan[self.attempt]
