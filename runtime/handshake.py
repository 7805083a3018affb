"""Why a CURVE connection did not come up, from the socket's monitor events (clients and backends).

With every bridge socket behind CURVE and ZAP, "not connected" has three causes a user can
act on: nothing listens there, the bridge refused this key (unknown or revoked), or the
handshake failed because the connection file names another bridge's public key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import zmq
from zmq.utils.monitor import parse_monitor_message

# The events a client watches: its handshakes, and losing the connection.
WATCHED = (
    zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_DISCONNECTED
)
ZAP_REFUSED = 400  # the ZAP status code of a refused key (RFC 27)


@dataclass(frozen=True, slots=True)
class HandshakeFailure:
    refused: bool  # True: the bridge refused the key; False: the handshake itself failed
    detail: str


def failure_of(event: Mapping[str, Any], curve: bool) -> HandshakeFailure | None:
    """The failure a monitor event reports, or None for any other event."""
    kind = event["event"]
    if kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
        status = event["value"]
        if status == ZAP_REFUSED:
            return HandshakeFailure(
                True, "the bridge refused this key (unknown, revoked or not allowed on this socket)"
            )
        return HandshakeFailure(True, f"the bridge's authentication answered status {status}")
    if kind == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        if curve:
            return HandshakeFailure(
                False, "the CURVE handshake failed: the connection file's bridge_public_key is not this bridge's key"
            )
        return HandshakeFailure(False, "the handshake failed")
    if kind == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        hint = "" if curve else " (this client has no connection file: the bridge accepts only CURVE clients)"
        return HandshakeFailure(False, f"the handshake failed: the security mechanisms differ{hint}")
    return None


def latest_failure(
    monitor: zmq.Socket[bytes], curve: bool, failure: HandshakeFailure | None = None
) -> HandshakeFailure | None:
    """Drain ``monitor`` without waiting: the last failure since the last successful handshake
    (``failure``: the one known before, as libzmq may not retry after a refusal)."""
    while True:
        try:
            event = parse_monitor_message(monitor.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:
            return failure
        if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            failure = None
        else:
            failure = failure_of(event, curve) or failure
