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
from runtime.handshake import WATCHED, latest_failure

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
    reply = client.call("bridge_status")
    if not reply["success"]:
        raise RuntimeError(f"bridge_status failed: {reply['error_code']}: {reply['message']}")
    status = reply["data"]
    if not status.get("tap_endpoint"):
        raise RuntimeError("this bridge has no tap (started with --tap none)")
    sub = client.ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    if client.connection is not None:
        client.connection.apply_client(sub)  # the tap lets in admin API keys only
    sub.setsockopt(zmq.RCVHWM, 100_000)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    monitor = sub.get_monitor_socket(WATCHED)
    sub.connect(connectable(status["tap_endpoint"], client.endpoint))
    written = 0
    start = time.monotonic()
    config = {"bridge": status.get("frontend_endpoint"), "policy": status.get("policy"), "mode": status.get("mode")}
    try:
        time.sleep(ATTACH_S)  # what passes meanwhile waits in the SUB's queue
        # A SUB the tap refused would just stay silent: say so instead of recording nothing.
        failure = latest_failure(monitor, client.connection is not None)
        if failure is not None:
            raise RuntimeError(f"the bridge's tap did not let this client in: {failure.detail}")
        with open(path, "wb") as stream:
            writer = RecordingWriter(stream, make_header(seed=None, started_at=time.time(), config=config))
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
        sub.disable_monitor()
        monitor.close(0)
        sub.close(0)
    return written
