"""The real backup server actor: serves a server core to the bridge and backup agents over CURVE.

    python -m actors.server [--connection FILE] [--bridge EP] --agents EP --data-dir DIR
                            [--server-class module:Class] [--enroll-token TOKEN] [--allow-keys FILE]
                            [--scrub-interval SECONDS]

The bridge side is the shared BackendWorker (registers as backend "server", mode "real"),
a CURVE client of the bridge with the key pair of its connection file (default
``<data-dir>/credentials/server.json``, written by run_all).
The agents' ROUTER socket is polled in the same loop (BackendWorker's ``extra``); it is
CURVE-encrypted with the server's key pair (``<data-dir>/server/keys/``) and every
handshake is authenticated by a ZAP handler asking the core's KeyRing. So is the bulk lane
(``--bulk``, actors/backends/lane.py): downloads fetched straight from here with a ticket the
bridge handed out, CURVE with the connection file's key pair, a handshake let through only
for a key a live ticket names; and, for requesters on this host, a Unix socket in
``<data-dir>/server/run/`` (``--bulk-ipc``, actors/backends/lane_ipc.py) without CURVE, which
the directory's permissions and the peer's user guard instead.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

import structlog
import zmq
from zmq.auth.thread import ThreadAuthenticator

from actors.backends.connect import add_bridge_arguments, backend_connection
from actors.backends.lane import BulkLane
from actors.backends.worker import BackendWorker
from actors.server.agents import AgentGateway
from actors.server.core import DEFAULT_AGENTS, ServerConfig
from actors.server.scrub import DEFAULT_INTERVAL_S as DEFAULT_SCRUB_INTERVAL_S
from protocol.agent_messages import CHUNK_SIZE, HEARTBEAT_S, MAX_HEADER, WINDOW, ZAP_DOMAIN, Buffer
from protocol.catalogue_restore_jobs import QUEUED_EXPIRY_S
from protocol.lane import IPC_SOCKET, RUN_DIR
from protocol.lane import ZAP_DOMAIN as BULK_ZAP_DOMAIN
from runtime.credentials import CredentialsError
from runtime.endpoints import DEFAULT_HOST
from runtime.logsetup import configure_logging
from runtime.paths import default_data_dir
from runtime.shutdown import StopFlag
from runtime.tuning import tune_malloc

log = structlog.get_logger()

DRAIN_LIMIT = 256  # agent messages per turn, so the bridge socket is served in between


class AgentLink:
    """Moves messages between the agents' ROUTER socket and the core's AgentGateway."""

    def __init__(self, sock: zmq.Socket, gateway: AgentGateway) -> None:
        self.sock = sock
        self.gateway = gateway

    def on_readable(self) -> None:
        # Every message of this batch was already queued when the batch began: liveness counts from here.
        received_at = self.gateway.clock()
        drained = False
        for _ in range(DRAIN_LIMIT):
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                drained = True
                break
            if len(frames) < 2:
                continue
            header = frames[1]
            # The authenticated key (ZAP's User-Id) and the address travel with each message.
            key, peer = _property(header, "User-Id"), _property(header, "Peer-Address")
            # The body stays a zero-copy buffer: a 1 MiB chunk goes to the hash and the file as is.
            payload: list[Buffer] = [header.bytes, *(memoryview(f.buffer) for f in frames[2:])]
            try:
                self.gateway.on_message(frames[0].bytes, payload, key, peer, received_at)
            except Exception:
                log.exception("server.agent_message_crashed")
        self.gateway.end_of_batch(drained)
        self.flush()

    def flush(self) -> None:
        for route, frames in self.gateway.drain_outbox():
            try:
                self.sock.send_multipart([route, *frames], zmq.NOBLOCK, copy=False)
            except zmq.Again:
                log.warning("server.agent_send_dropped", reason="the agent's queue is full")
            except zmq.ZMQError as exc:  # ROUTER_MANDATORY: the agent is gone
                log.debug("server.agent_gone", error=str(exc))


def _property(frame: zmq.Frame, name: str) -> str | None:
    try:
        value = frame.get(name)
    except zmq.ZMQError:  # not set for this connection (no ZAP, not TCP)
        return None
    return value if isinstance(value, str) else None


def load_class(spec: str) -> type:
    module_name, _, class_name = spec.partition(":")
    if not class_name:
        raise SystemExit(f"--server-class must be module:Class, got {spec!r}")
    return getattr(importlib.import_module(module_name), class_name)


def agents_socket(ctx: zmq.Context, core: Any, endpoint: str, chunk_size: int) -> zmq.Socket:
    sock = ctx.socket(zmq.ROUTER)
    sock.curve_server = True
    sock.curve_publickey = core.keys.public
    sock.curve_secretkey = core.keys.secret
    sock.zap_domain = ZAP_DOMAIN.encode()
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.LINGER, 0)
    # A peer cannot make us buffer more than one chunk plus its header per message.
    sock.setsockopt(zmq.MAXMSGSIZE, chunk_size + MAX_HEADER)
    sock.bind(endpoint)
    return sock


def ipc_path(args: argparse.Namespace) -> Path | None:
    """Where the same-host door's socket goes; None for none."""
    if args.bulk_ipc == "none":
        return None
    path = Path(args.bulk_ipc) if args.bulk_ipc else args.data_dir / "server" / RUN_DIR / IPC_SOCKET
    return path.absolute()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.server", description="The real backup server actor.")
    add_bridge_arguments(parser, "server")
    parser.add_argument("--agents", default=DEFAULT_AGENTS, help="endpoint the agents connect to (default %(default)s)")
    parser.add_argument(
        "--data-dir", type=Path, default=default_data_dir(), help="the server keeps its data in DIR/server"
    )
    parser.add_argument("--server-class", default="actors.server.core:BackupServer", help="module:Class of the core")
    parser.add_argument("--enroll-token", help="enrollment token (default: the stored one, generated at first start)")
    parser.add_argument("--allow-keys", type=Path, help="extra file of allowed agent public keys, one per line")
    parser.add_argument("--window", type=int, default=WINDOW, help="chunks an agent may have in flight")
    parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="bytes per chunk")
    parser.add_argument("--agent-heartbeat", type=float, default=HEARTBEAT_S, help="seconds between agent heartbeats")
    parser.add_argument("--heartbeat", type=float, default=1.0, help="seconds between heartbeats to the bridge")
    parser.add_argument(
        "--scrub-interval",
        type=float,
        metavar="SECONDS",
        default=DEFAULT_SCRUB_INTERVAL_S,
        help="seconds between storage scrubs that re-hash every blob (default %(default)s; 0: only on demand)",
    )
    parser.add_argument(
        "--restore-expiry",
        type=float,
        metavar="HOURS",
        default=QUEUED_EXPIRY_S / 3600,
        help="hours a restore job waits for its client's agent before it ends expired (default %(default)s)",
    )
    parser.add_argument(
        "--bulk",
        default=f"tcp://{DEFAULT_HOST}:0",
        help="endpoint of the bulk lane downloads are fetched from, announced to the bridge "
        "(default %(default)s: any free port; 'none': every download through the bridge)",
    )
    parser.add_argument(
        "--bulk-host",
        help="host announced for the bulk lane, the one clients on other machines reach "
        f"(default: the bound address; {DEFAULT_HOST} for a wildcard one)",
    )
    parser.add_argument(
        "--bulk-ipc",
        help="Unix socket of the bulk lane for clients on this host, as this user "
        f"(default: DATA_DIR/server/{RUN_DIR}/{IPC_SOCKET}; 'none': the CURVE lane only)",
    )
    parser.add_argument("--log-json", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging("server", json=args.log_json, level=args.log_level)
    try:
        connection = backend_connection(args.connection, args.data_dir, "server")
    except CredentialsError as exc:
        log.error("server.no_credentials", reason=str(exc))
        return 2
    bridge = args.bridge or connection.backend
    tune_malloc()
    stop = StopFlag().install()
    config = ServerConfig(
        data_dir=args.data_dir,
        agents_endpoint=args.agents,
        enroll_token=args.enroll_token,
        allow_list=args.allow_keys,
        window=args.window,
        chunk_size=args.chunk_size,
        heartbeat_s=args.agent_heartbeat,
        scrub_interval_s=args.scrub_interval,
        restore_expiry_s=args.restore_expiry * 3600,
    )
    core = load_class(args.server_class)(config)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    gateway: AgentGateway | None = getattr(core, "agents", None)
    auth: ThreadAuthenticator | None = None
    sock: zmq.Socket | None = None
    extra: list[tuple[zmq.Socket, Any]] = []
    link: AgentLink | None = None
    lane: BulkLane | None = None
    try:
        if gateway is not None or args.bulk != "none":
            # pyzmq's authenticator logs with %-style arguments, which structlog's loggers format.
            auth = ThreadAuthenticator(ctx, log=structlog.get_logger().bind(logger="zmq.auth"))
            auth.start()
        if args.bulk != "none":
            assert auth is not None
            try:
                lane = BulkLane(
                    ctx, args.bulk, connection, core.mode, advertise_host=args.bulk_host, ipc_path=ipc_path(args)
                )
            except zmq.ZMQError as exc:
                log.error("server.bulk_bind_failed", endpoint=args.bulk, error=str(exc))
                core.close()
                return 1
            auth.configure_curve_callback(BULK_ZAP_DOMAIN, lane.book)
        if gateway is not None:
            assert auth is not None
            auth.configure_curve_callback(ZAP_DOMAIN, core.keyring)
            try:
                sock = agents_socket(ctx, core, args.agents, args.chunk_size)
            except zmq.ZMQError as exc:
                log.error("server.agents_bind_failed", endpoint=args.agents, error=str(exc))
                core.close()
                return 1
            link = AgentLink(sock, gateway)
            extra = [(sock, link.on_readable)]
        log.info(
            "server.started",
            bridge=bridge,
            agents=args.agents if gateway else None,
            bulk=lane.endpoint if lane else None,
            bulk_ipc=lane.ipc_endpoint if lane else None,
            server_key=str(core.keys.public_file) if gateway else None,
            core=args.server_class,
        )
        BackendWorker(
            core,
            bridge,
            heartbeat_interval=args.heartbeat,
            extra=extra,
            after_turn=link.flush if link else None,
            connection=connection,
            lane=lane,
        ).run(stop)
    finally:
        if sock is not None:
            sock.close(0)
        if lane is not None:
            lane.close()
        if auth is not None:
            auth.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
