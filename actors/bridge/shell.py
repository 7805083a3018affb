"""The bridge actor: a thin socket shell around BridgeCore.

python -m actors.bridge [--frontend EP] [--events EP] [--backend EP] [--policy reads|all|none]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import structlog
import zmq

from actors.bridge.config import BridgeConfig, Tap
from actors.bridge.core import BridgeCore
from actors.bridge.taps import FileRecorder, SocketTap
from protocol.codec import DEFAULT_MAX_SIZE
from protocol.modes import Policy
from runtime.endpoints import DEFAULT_HOST, DEFAULT_TAP_PORT, BridgeEndpoints, connectable, tcp
from runtime.logsetup import configure_logging
from runtime.shutdown import StopFlag

log = structlog.get_logger()

DRAIN_BATCH = 500  # messages taken from one socket before looking at the others
MAX_POLL_MS = 100  # how long a stop signal may wait at most
EVENTS_HWM = 100_000


class SocketOutbox:
    def __init__(self, frontend: zmq.Socket, backend: zmq.Socket, events: zmq.Socket) -> None:
        self.frontend = frontend
        self.backend = backend
        self.events = events

    def to_client(self, identity: bytes, frames: list[bytes]) -> bool:
        return self._send(self.frontend, identity, frames, "client")

    def to_backend(self, identity: bytes, frames: list[bytes]) -> bool:
        return self._send(self.backend, identity, frames, "backend")

    def publish(self, frames: list[bytes]) -> None:
        try:
            self.events.send_multipart(frames, zmq.NOBLOCK, copy=False)
        except zmq.Again:
            log.warning("bridge.event_dropped_hwm", topic=frames[0])

    @staticmethod
    def _send(sock: zmq.Socket, identity: bytes, frames: list[bytes], peer: str) -> bool:
        try:
            sock.send_multipart([identity, *frames], zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            # Its queue is full: drop rather than stall everyone; the deadline answers for it.
            log.warning("bridge.peer_queue_full", peer=peer)
            return True
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                log.info("bridge.peer_unreachable", peer=peer)
                return False
            raise


def _router(ctx: zmq.Context, endpoint: str) -> zmq.Socket:
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.bind(endpoint)
    return sock


def _drain(sock: zmq.Socket[bytes], handle: Callable[[list[bytes]], None]) -> None:
    for _ in range(DRAIN_BATCH):
        try:
            frames = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        handle(frames)


def serve(
    endpoints: BridgeEndpoints,
    config: BridgeConfig,
    stop: StopFlag,
    *,
    tap_endpoint: str | None = None,
    recorder: FileRecorder | None = None,
) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    frontend = _router(ctx, endpoints.frontend)
    backend = _router(ctx, endpoints.backend)
    events = ctx.socket(zmq.XPUB)
    events.setsockopt(zmq.LINGER, 0)
    events.setsockopt(zmq.SNDHWM, EVENTS_HWM)
    events.bind(endpoints.events)
    core = BridgeCore(config, SocketOutbox(frontend, backend, events))
    tap = SocketTap(ctx, tap_endpoint) if tap_endpoint else None
    taps: list[Tap] = [t for t in (tap, recorder) if t is not None]
    core.taps = taps
    poller = zmq.Poller()
    for sock in (frontend, backend, events, *([tap.sock] if tap else [])):
        poller.register(sock, zmq.POLLIN)
    log.info(
        "bridge.started",
        frontend=endpoints.frontend,
        events=endpoints.events,
        backend=endpoints.backend,
        policy=config.policy,
        epoch=core.events.epoch,
    )

    def on_subscription(frames: list[bytes]) -> None:
        if frames and frames[0][:1] in (b"\x00", b"\x01"):
            log.debug(
                "bridge.subscription", subscribe=frames[0][:1] == b"\x01", topic=frames[0][1:].decode(errors="replace")
            )

    try:
        wake = core.on_timer()
        while not stop.is_set():
            timeout_ms = max(0, min(MAX_POLL_MS, int((wake - time.monotonic()) * 1000) + 1))
            ready = dict(poller.poll(timeout_ms))
            if frontend in ready:
                _drain(frontend, core.on_frontend)
            if backend in ready:
                _drain(backend, core.on_backend)
            if events in ready:
                _drain(events, on_subscription)
            if tap is not None and tap.sock in ready:
                _drain(tap.sock, tap.on_subscription)
            wake = core.on_timer() if time.monotonic() >= wake else core.next_wake()
    finally:
        log.info("bridge.stopping", inflight=len(core.pending))
        for sock in (frontend, backend, events):
            sock.close(0)
        if tap is not None:
            tap.close()
        if recorder is not None:
            recorder.close()


def main(argv: list[str] | None = None) -> int:
    defaults = BridgeEndpoints.default()
    parser = argparse.ArgumentParser(
        prog="python -m actors.bridge", description="Route requests to the real or mock backend."
    )
    parser.add_argument("--frontend", default=defaults.frontend, help="ROUTER for clients (default %(default)s)")
    parser.add_argument("--events", default=defaults.events, help="XPUB for events (default %(default)s)")
    parser.add_argument("--backend", default=defaults.backend, help="ROUTER for backends (default %(default)s)")
    parser.add_argument(
        "--policy",
        type=Policy,
        choices=list(Policy),
        default=Policy.READS,
        help="fallback policy (default %(default)s)",
    )
    parser.add_argument("--ring-size", type=int, default=10_000, help="events kept for events_since")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="heartbeat interval in seconds")
    parser.add_argument("--max-size", type=int, default=DEFAULT_MAX_SIZE, help="largest accepted frame in bytes")
    parser.add_argument(
        "--tap",
        default=tcp(DEFAULT_HOST, DEFAULT_TAP_PORT),
        help="PUB of every message, for recorders (default %(default)s; 'none' to disable)",
    )
    parser.add_argument("--record", type=Path, help="write every message to this recording file")
    parser.add_argument("--record-meta", default="{}", help="JSON map stored in the recording's header (seed, config)")
    parser.add_argument("--log-json", action="store_true", help="JSON log lines")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging("bridge", json=args.log_json, level=args.log_level)
    endpoints = BridgeEndpoints(args.frontend, args.events, args.backend)
    tap_endpoint = None if args.tap == "none" else args.tap
    config = BridgeConfig(
        policy=args.policy,
        heartbeat_interval=args.heartbeat,
        ring_size=args.ring_size,
        max_size=args.max_size,
        events_endpoint=connectable(args.events, args.frontend),
        frontend_endpoint=args.frontend,
        tap_endpoint=connectable(tap_endpoint, args.frontend) if tap_endpoint else "",
    )
    recorder = None
    if args.record is not None:
        meta = json.loads(args.record_meta)
        recorder = FileRecorder(args.record, seed=meta.pop("seed", None), config=meta)
    try:
        serve(endpoints, config, StopFlag().install(), tap_endpoint=tap_endpoint, recorder=recorder)
    except zmq.ZMQError as exc:
        log.error("bridge.socket_error", error=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
