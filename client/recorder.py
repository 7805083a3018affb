"""Record from a running stack through the bridge's tap (``bridgectl record FILE``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import zmq

from client.connection import BridgeClient
from protocol.errors import ProtocolError
from protocol.recording import RecordingWriter, envelope_parts, make_header
from runtime.endpoints import connectable

ATTACH_S = 0.3  # a SUB needs a moment before the tap sees the subscription


def record(
    client: BridgeClient,
    path: Path,
    *,
    duration: float | None = None,
    count: int | None = None,
    should_stop: Any = None,
) -> int:
    """Append what passes the bridge to ``path`` until ``duration``/``count``/``should_stop()``; returns entries written."""
    status = client.call("bridge_status")["data"]
    if not status.get("tap_endpoint"):
        raise RuntimeError("this bridge has no tap (started with --tap none)")
    sub = client.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.RCVHWM, 100_000)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(connectable(status["tap_endpoint"], client.endpoint))
    written = 0
    start = time.monotonic()
    config = {"bridge": status.get("frontend_endpoint"), "policy": status.get("policy"), "mode": status.get("mode")}
    try:
        with open(path, "wb") as stream:
            writer = RecordingWriter(stream, make_header(seed=None, started_at=time.time(), config=config))
            time.sleep(ATTACH_S)
            while (duration is None or time.monotonic() - start < duration) and (count is None or written < count):
                if should_stop is not None and should_stop():
                    break
                if not sub.poll(200):
                    continue
                direction, header, body, *_ = sub.recv_multipart()
                try:
                    fields, payload = envelope_parts(header, body)
                except ProtocolError:
                    continue
                writer.append(round(time.monotonic() - start, 6), direction.decode(), fields, payload)
                written += 1
    finally:
        sub.close(0)
    return written
