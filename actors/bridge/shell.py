"""The bridge actor: a thin socket shell around BridgeCore.

python -m actors.bridge [--data-dir DIR] [--frontend EP] [--events EP] [--backend EP] [--policy stale|reads|all|none]

Every socket is a CURVE server with the bridge's key pair (``<data-dir>/keys/bridge.key_secret``)
and its own ZAP domain (frontend, events, backend, tap), decided by the bridge's ZapGate in
pyzmq's authenticator thread: a key it refuses never gets a connection. The key ZAP accepted
travels with each message (its ``User-Id``) and is what the core authorizes by.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import structlog
import zmq
from zmq.auth.thread import ThreadAuthenticator

from actors.bridge.auth.authority import AuthConfig, Authority
from actors.bridge.auth.files import StateFileError
from actors.bridge.auth.state import BridgeStores
from actors.bridge.auth.zap import Domain
from actors.bridge.config import BridgeConfig
from actors.bridge.core import BridgeCore
from actors.bridge.taps import FileRecorder, SocketTap
from protocol.codec import DEFAULT_MAX_SIZE
from protocol.envelope import MAX_HEADER_SIZE
from protocol.modes import Policy
from runtime.bootstrap import StackEndpoints, bootstrap
from runtime.credentials import CredentialsError, KeyPair, StackPaths, load_key_pair
from runtime.endpoints import DEFAULT_HOST, DEFAULT_TAP_PORT, BridgeEndpoints, connectable, tcp
from runtime.logsetup import configure_logging
from runtime.paths import default_data_dir
from runtime.shutdown import StopFlag

log = structlog.get_logger()

DRAIN_BATCH = 500  # messages taken from one socket before looking at the others
MAX_POLL_MS = 100  # how long a stop signal may wait at most
EVENTS_HWM = 100_000
BRIDGE_KEY = "bridge"  # <data-dir>/keys/bridge.key_secret
HANDSHAKE_MS = 5_000  # a connection that has not finished its CURVE handshake by then is dropped
SUBSCRIPTION_MAX = 4096  # what a subscriber may send on events and tap: (un)subscriptions only


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


def _secure(sock: zmq.Socket, pair: KeyPair, domain: Domain, max_message: int) -> None:
    """Make ``sock`` a CURVE server of ``domain``; call before bind."""
    sock.curve_server = True
    sock.curve_publickey = pair.public.encode("ascii")
    sock.curve_secretkey = pair.secret.encode("ascii")
    sock.zap_domain = domain.value.encode()
    # Without a ZAP handler libzmq would let every CURVE client in: refuse instead.
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    sock.setsockopt(zmq.HANDSHAKE_IVL, HANDSHAKE_MS)
    # A peer cannot make the bridge read a frame larger than this (the core answers a
    # body just over --max-size with PAYLOAD_TOO_LARGE; a larger one ends the connection).
    sock.setsockopt(zmq.MAXMSGSIZE, max_message)


def _router(ctx: zmq.Context, endpoint: str, pair: KeyPair, domain: Domain, max_message: int) -> zmq.Socket:
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    _secure(sock, pair, domain, max_message)
    sock.bind(endpoint)
    return sock


def _property(frame: zmq.Frame, name: str) -> str | None:
    try:
        return frame.get(name)  # type: ignore[return-value]
    except zmq.ZMQError:  # not set for this connection (not TCP, no ZAP)
        return None


def _drain(sock: zmq.Socket[bytes], handle: Callable[[list[bytes]], None]) -> None:
    for _ in range(DRAIN_BATCH):
        try:
            frames = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        handle(frames)


def _drain_authenticated(
    sock: zmq.Socket[bytes], handle: Callable[[list[bytes], str | None, str | None], None]
) -> None:
    """Like _drain, with each message's authenticated key (ZAP's User-Id) and peer address."""
    for _ in range(DRAIN_BATCH):
        try:
            first = sock.recv(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return
        frames = [first.bytes]
        while sock.getsockopt(zmq.RCVMORE):
            frames.append(sock.recv())  # the parts of a message arrive together
        handle(frames, _property(first, "User-Id"), _property(first, "Peer-Address"))


def _bootstrap(data_dir: Path, endpoints: BridgeEndpoints, tap: str) -> None:
    """The local stack's first credentials, when nobody (run_all) created them yet: idempotent."""
    stores = BridgeStores.open(StackPaths(data_dir).bridge)
    bootstrap(data_dir, StackEndpoints(endpoints.frontend, endpoints.events, endpoints.backend, tap), stores)


def serve(
    endpoints: BridgeEndpoints,
    config: BridgeConfig,
    stop: StopFlag,
    *,
    data_dir: Path,
    auth_config: AuthConfig | None = None,
    tap_endpoint: str | None = None,
    recorder: FileRecorder | None = None,
) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    pair = load_key_pair(StackPaths(data_dir).keys, BRIDGE_KEY)
    config = replace(config, public_key=pair.public)
    authority = Authority.open(data_dir, auth_config or AuthConfig())
    gate = authority.zap_gate()
    # pyzmq's authenticator logs with %-style arguments, which structlog's loggers format.
    auth = ThreadAuthenticator(ctx, log=structlog.get_logger().bind(logger="zmq.auth"))
    auth.start()
    for domain in Domain:
        auth.configure_curve_callback(domain.value, gate)
    sockets: list[zmq.Socket] = []
    tap: SocketTap | None = None
    try:
        max_message = config.max_size + MAX_HEADER_SIZE
        frontend = _router(ctx, endpoints.frontend, pair, Domain.FRONTEND, max_message)
        sockets.append(frontend)
        backend = _router(ctx, endpoints.backend, pair, Domain.BACKEND, max_message)
        sockets.append(backend)
        events = ctx.socket(zmq.XPUB)
        sockets.append(events)
        events.setsockopt(zmq.LINGER, 0)
        events.setsockopt(zmq.SNDHWM, EVENTS_HWM)
        _secure(events, pair, Domain.EVENTS, SUBSCRIPTION_MAX)
        events.bind(endpoints.events)
        core = BridgeCore(config, SocketOutbox(frontend, backend, events), authority=authority)
        if tap_endpoint:
            tap = SocketTap(ctx, tap_endpoint, lambda sock: _secure(sock, pair, Domain.TAP, SUBSCRIPTION_MAX))
        core.taps = [t for t in (tap, recorder) if t is not None]
        _loop(core, frontend, backend, events, tap, stop, endpoints)
    finally:
        for sock in sockets:
            sock.close(0)
        if tap is not None:
            tap.close()
        if recorder is not None:
            recorder.close()
        auth.stop()
        authority.close()


def _loop(
    core: BridgeCore,
    frontend: zmq.Socket,
    backend: zmq.Socket,
    events: zmq.Socket,
    tap: SocketTap | None,
    stop: StopFlag,
    endpoints: BridgeEndpoints,
) -> None:
    poller = zmq.Poller()
    for sock in (frontend, backend, events, *([tap.sock] if tap else [])):
        poller.register(sock, zmq.POLLIN)
    log.info(
        "bridge.started",
        frontend=endpoints.frontend,
        events=endpoints.events,
        backend=endpoints.backend,
        policy=core.outage.policy,
        real_expected=core.outage.real_expected,
        epoch=core.events.epoch,
        public_key=core.config.public_key,
    )

    def on_subscription(frames: list[bytes]) -> None:
        if frames and frames[0][:1] in (b"\x00", b"\x01"):
            log.debug(
                "bridge.subscription", subscribe=frames[0][:1] == b"\x01", topic=frames[0][1:].decode(errors="replace")
            )

    def on_backend(frames: list[bytes], key: str | None, _peer: str | None) -> None:
        core.on_backend(frames, key)

    try:
        wake = core.on_timer()
        while not stop.is_set():
            timeout_ms = max(0, min(MAX_POLL_MS, int((wake - time.monotonic()) * 1000) + 1))
            ready = dict(poller.poll(timeout_ms))
            if frontend in ready:
                _drain_authenticated(frontend, core.on_frontend)
            if backend in ready:
                _drain_authenticated(backend, on_backend)
            if events in ready:
                _drain(events, on_subscription)
            if tap is not None and tap.sock in ready:
                _drain(tap.sock, tap.on_subscription)
            wake = core.on_timer() if time.monotonic() >= wake else core.next_wake()
    finally:
        log.info("bridge.stopping", inflight=len(core.pending))


def main(argv: list[str] | None = None) -> int:
    defaults = BridgeEndpoints.default()
    parser = argparse.ArgumentParser(
        prog="python -m actors.bridge", description="Route requests to the real or mock backend."
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="keys in DIR/keys, the bridge's users, keys and audit log in DIR/bridge (default %(default)s)",
    )
    parser.add_argument("--frontend", default=defaults.frontend, help="ROUTER for clients (default %(default)s)")
    parser.add_argument("--events", default=defaults.events, help="XPUB for events (default %(default)s)")
    parser.add_argument("--backend", default=defaults.backend, help="ROUTER for backends (default %(default)s)")
    parser.add_argument(
        "--policy",
        type=Policy,
        choices=list(Policy),
        default=None,
        help="what answers while the expected real backend is away (default: stale when a backend key is "
        "allow-listed as real, else reads)",
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
    parser.add_argument(
        "--session-idle", type=float, default=AuthConfig.session_idle_s, help="seconds a GUI session may sit idle"
    )
    parser.add_argument(
        "--session-max", type=float, default=AuthConfig.session_absolute_s, help="seconds a GUI session lasts at most"
    )
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
    auth_config = AuthConfig(session_idle_s=args.session_idle, session_absolute_s=args.session_max)
    recorder = None
    try:
        _bootstrap(args.data_dir, endpoints, tap_endpoint or tcp(DEFAULT_HOST, DEFAULT_TAP_PORT))
        if args.record is not None:
            meta = json.loads(args.record_meta)
            recorder = FileRecorder(args.record, seed=meta.pop("seed", None), config=meta)
        serve(
            endpoints,
            config,
            StopFlag().install(),
            data_dir=args.data_dir,
            auth_config=auth_config,
            tap_endpoint=tap_endpoint,
            recorder=recorder,
        )
    except zmq.ZMQError as exc:
        log.error("bridge.socket_error", error=str(exc))
        return 1
    except (CredentialsError, StateFileError) as exc:
        log.error("bridge.credentials_unusable", error=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
