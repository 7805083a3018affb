"""Default endpoints and their environment overrides: the one place they are defined."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_HOST = "127.0.0.1"
DEFAULT_FRONTEND_PORT = 5555
DEFAULT_EVENTS_PORT = 5556
DEFAULT_BACKEND_PORT = 5557
DEFAULT_TAP_PORT = 5558

ENV_ENDPOINT = "BRIDGE_ENDPOINT"  # the frontend: the one address clients need


def tcp(host: str, port: int) -> str:
    return f"tcp://{host}:{port}"


@dataclass(frozen=True, slots=True)
class BridgeEndpoints:
    frontend: str
    events: str
    backend: str

    @classmethod
    def on_ports(cls, host: str = DEFAULT_HOST, *, frontend: int, events: int, backend: int) -> BridgeEndpoints:
        return cls(tcp(host, frontend), tcp(host, events), tcp(host, backend))

    @classmethod
    def default(cls) -> BridgeEndpoints:
        return cls.on_ports(frontend=DEFAULT_FRONTEND_PORT, events=DEFAULT_EVENTS_PORT, backend=DEFAULT_BACKEND_PORT)


def client_endpoint(explicit: str | None = None) -> str:
    """Where a client finds the bridge: explicit value, else $BRIDGE_ENDPOINT, else the default."""
    return explicit or os.environ.get(ENV_ENDPOINT) or tcp(DEFAULT_HOST, DEFAULT_FRONTEND_PORT)


def connectable(bound: str, frontend: str) -> str:
    """Turn an endpoint a peer bound (maybe on a wildcard) into one a client can connect to."""
    if "://*:" in bound or "://0.0.0.0:" in bound:
        host = frontend.split("://", 1)[1].rsplit(":", 1)[0]
        return bound.replace("*", host, 1).replace("0.0.0.0", host, 1)
    return bound
