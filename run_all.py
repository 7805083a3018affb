"""Run the whole local stack: each actor its own process, supervised.

    python run_all.py [--gui web|none] [--gui-port 8550] [--duration SECONDS] [--data-dir DIR] [--seed N] [--clients N] ...

Restarts an actor that dies (with backoff; gives up after repeated rapid failures and
says so); on Ctrl-C or SIGTERM stops everything cleanly and exits 0.

Before anything starts, ``runtime.bootstrap`` makes sure the data directory holds the
stack's credentials: every bridge socket is CURVE-authenticated, each actor gets its
connection file, and the first admin's password waits in ``<data-dir>/credentials/admin-password``
(the log names the file, never the password). ``bridgectl`` on this machine uses
``<data-dir>/credentials/admin.json`` with no flag.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from actors.agent.sample import ensure_sample
from actors.bridge.auth.state import BridgeStores
from actors.server.keys import ServerKeys, enrollment_token
from client.connection import BridgeClient, BridgeUnreachable
from protocol.modes import Policy
from runtime.bootstrap import Bootstrap, StackEndpoints, bootstrap
from runtime.credentials import ConnectionFile, StackPaths
from runtime.endpoints import (
    DEFAULT_BACKEND_PORT,
    DEFAULT_EVENTS_PORT,
    DEFAULT_FRONTEND_PORT,
    DEFAULT_HOST,
    DEFAULT_TAP_PORT,
    BridgeEndpoints,
    tcp,
)
from runtime.logsetup import configure_logging
from runtime.paths import default_data_dir
from runtime.readiness import Probe, wait_until_ready
from runtime.shutdown import StopFlag
from runtime.supervisor import Child

log = structlog.get_logger()

STOP_GRACE_S = 8.0
LOOP_S = 0.1
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def build_children(ns: argparse.Namespace, endpoints: BridgeEndpoints, creds: Bootstrap) -> list[Child]:
    py = sys.executable
    common = ["--log-level", ns.log_level] + (["--log-json"] if ns.log_json else [])
    bridge = [
        py,
        "-m",
        "actors.bridge",
        "--frontend",
        endpoints.frontend,
        "--events",
        endpoints.events,
        "--backend",
        endpoints.backend,
        *(["--policy", ns.policy] if ns.policy is not None else []),
        "--tap",
        tcp(ns.host, ns.tap_port),
        "--data-dir",
        str(ns.data_dir),
        *common,
    ]
    if ns.record is not None:
        meta = {
            "seed": ns.seed,
            "clients": ns.clients,
            "files": ns.files,
            "tick": ns.tick,
            "clock": ns.clock,
            "policy": ns.policy or "default",
        }
        bridge += ["--record", str(ns.record), "--record-meta", json.dumps(meta)]
    mock = [
        py,
        "-m",
        "actors.mock",
        "--connection",
        str(creds.connections["mock"]),
        "--data-dir",
        str(ns.data_dir),
        "--seed",
        str(ns.seed),
        "--clients",
        str(ns.clients),
        "--tick",
        str(ns.tick),
        "--clock",
        ns.clock,
        *common,
    ]
    if ns.files is not None:
        mock += ["--files", str(ns.files)]
    if ns.replay is not None:
        # A recording stands in for the backends: same bridge, same clients, recorded answers.
        mock = [
            py,
            "-m",
            "actors.replay",
            "--connection",
            str(creds.connections["replay"]),
            "--recording",
            str(ns.replay),
            "--order",
            ns.replay_order,
            "--speed",
            str(ns.replay_speed),
            *common,
        ]
    children = [Child("bridge", bridge), Child("replay" if ns.replay is not None else "mock", mock)]
    if not ns.mock_only and ns.replay is None:
        children += real_children(ns, creds, common)
    if ns.gui == "web":
        gui = [
            py,
            "-m",
            "gui",
            "--connection",
            str(creds.connections["gui"]),
            "--host",
            ns.host,
            "--port",
            str(ns.gui_port),
            "--export-dir",
            str(ns.data_dir / "exports"),
            "--download-dir",
            str(ns.data_dir / "gui" / "downloads"),
            *common,
        ]
        children.append(Child("gui", gui))
    return children


def real_children(ns: argparse.Namespace, creds: Bootstrap, common: list[str]) -> list[Child]:
    """The real backup server plus one demo agent backing up ``<data-dir>/sample`` every 30 s.

    The server's key pair and enrollment token are prepared here, before either starts,
    so the demo agent can enroll on its first try (it gets the token file and the key path).
    """
    py = sys.executable
    keys_dir = ns.data_dir / "server" / "keys"
    ServerKeys.load(keys_dir)
    enrollment_token(keys_dir, None)
    ensure_sample(ns.data_dir / "sample")
    agents = f"tcp://{ns.host}:{ns.agents_port}"
    server = [
        py,
        "-m",
        "actors.server",
        "--connection",
        str(creds.connections["server"]),
        "--agents",
        agents,
        "--data-dir",
        str(ns.data_dir),
        *common,
    ]
    agent = [
        py,
        "-m",
        "actors.agent",
        "backup",
        str(ns.data_dir / "sample"),
        "--server",
        agents,
        "--name",
        "demo-agent",
        "--watch",
        "30",
        "--config-dir",
        str(ns.data_dir / "agent"),
        "--data-dir",
        str(ns.data_dir),
        "--enroll-token-file",
        str(keys_dir / "enroll_token"),
        "--no-progress",
        *common,
    ]
    return [Child("server", server), Child("agent", agent)]


def bridge_probe(client: BridgeClient, frontend: str) -> Probe:
    """Ready once the bridge answers and names a live backend; otherwise what is still missing."""
    try:
        reply = client.call("bridge_status", timeout=0.5)
    except BridgeUnreachable as exc:
        return Probe(False, f"the bridge at {frontend} ({exc})")
    if not reply["success"]:
        return Probe(False, f"the bridge's status ({reply['error_code']}: {reply['message']})")
    backends = reply["data"]["backends"]
    if any(b["alive"] for b in backends):
        alive = sorted(b["name"] for b in backends if b["alive"])
        return Probe(True, details={"mode": reply["data"]["mode"], "alive": alive})
    known = ", ".join(f"{b['name']} ({b['down_reason'] or 'not alive'})" for b in backends)
    # A mock generating a big dataset registers only when its data is ready: say so rather than look stuck.
    return Probe(False, f"a live backend: {known or 'none registered yet (a big dataset may still be generating)'}")


def announce_when_ready(
    connection: ConnectionFile | None, ns: argparse.Namespace, gui_url: str | None, should_stop: Callable[[], bool]
) -> None:
    """Log ``stack.ready`` once a backend is alive, however long that takes, asking the bridge as the admin."""
    if connection is None:
        log.warning("stack.readiness_unchecked", reason="no admin connection file to ask the bridge with")
        return
    with BridgeClient(connection=connection, connect_timeout=0.5) as client:
        ready = wait_until_ready(lambda: bridge_probe(client, connection.frontend), should_stop)
    if ready is not None:
        log.info(
            "stack.ready",
            frontend=connection.frontend,
            events=connection.events,
            backend=connection.backend,
            gui=gui_url,
            try_it=try_it(ns.data_dir),
            **ready.details,
        )


def try_it(data_dir: Path) -> str:
    flag = "" if data_dir == default_data_dir() else f" --data-dir {data_dir}"
    return f"bridgectl{flag} call get_clients"


def supervise(
    children: list[Child],
    stop: StopFlag,
    until: float | None,
    ns: argparse.Namespace,
    admin: ConnectionFile | None,
    gui_url: str | None,
) -> int:
    for child in children:
        child.start()
    # Its own thread: supervision (restarts, --duration, Ctrl-C) must go on however long start-up takes.
    supervising = threading.Event()
    supervising.set()
    watcher = threading.Thread(
        target=announce_when_ready,
        args=(admin, ns, gui_url, lambda: stop.is_set() or not supervising.is_set()),
        name="readiness",
        daemon=True,
    )
    watcher.start()
    while not stop.is_set():
        now = time.monotonic()
        if until is not None and now >= until:
            log.info("stack.duration_reached")
            break
        for child in children:
            child.check(now)
            if child.proc is None and not child.gave_up and child.restart_at is not None and now >= child.restart_at:
                child.start()
        if all(c.gave_up for c in children):
            log.error("stack.all_actors_given_up")
            supervising.clear()
            return 1
        time.sleep(LOOP_S)
    supervising.clear()
    watcher.join()
    log.info("stack.stopping")
    # GUI and backends first, so backends can say goodbye to a bridge that is still there.
    for group in (children[1:], children[:1]):
        for child in group:
            child.stop()
        deadline = time.monotonic() + STOP_GRACE_S
        for child in group:
            child.wait_stopped(deadline)
    log.info("stack.stopped")
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="run_all.py", description="Run the bridge and its backends as supervised processes."
    )
    p.add_argument(
        "--gui", choices=["web", "none"], default="web", help="start the web GUI or not (default %(default)s)"
    )
    p.add_argument("--gui-port", type=int, default=int(os.environ.get("GUI_PORT", 8550)), help="the web GUI's port")
    p.add_argument("--duration", type=float, help="run this many seconds, then stop cleanly")
    p.add_argument(
        "--data-dir", type=Path, default=default_data_dir(), help="where state is kept (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=42, help="seed of the mock's data")
    p.add_argument("--clients", type=int, default=45, help="clients in a fresh mock dataset")
    p.add_argument("--files", type=int, help="files in a fresh mock dataset (default about 20 per client)")
    p.add_argument("--tick", type=float, default=3.0, help="seconds between mock evolution steps")
    p.add_argument("--clock", default="system", help="'system' or an ISO 8601 instant (simulated clock)")
    p.add_argument(
        "--policy",
        type=Policy,
        choices=list(Policy),
        help="what answers while the real server is away (default: stale with a real server; "
        "--mock-only and --replay expect none, so the mock answers everything)",
    )
    p.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default %(default)s)")
    p.add_argument(
        "--frontend-port", type=int, default=int(os.environ.get("BRIDGE_FRONTEND_PORT", DEFAULT_FRONTEND_PORT))
    )
    p.add_argument("--events-port", type=int, default=int(os.environ.get("BRIDGE_EVENTS_PORT", DEFAULT_EVENTS_PORT)))
    p.add_argument("--backend-port", type=int, default=int(os.environ.get("BRIDGE_BACKEND_PORT", DEFAULT_BACKEND_PORT)))
    p.add_argument(
        "--tap-port",
        type=int,
        default=int(os.environ.get("BRIDGE_TAP_PORT", DEFAULT_TAP_PORT)),
        help="the bridge's tap for recorders (bridgectl record)",
    )
    p.add_argument("--record", type=Path, help="record every request, reply and event into this file")
    p.add_argument("--replay", type=Path, help="serve this recording instead of the backends")
    p.add_argument("--replay-order", choices=["any", "strict"], default="any", help="how requests are matched")
    p.add_argument(
        "--replay-speed", type=float, default=1.0, help="speed factor for re-emitted events (0: as fast as possible)"
    )
    p.add_argument("--mock-only", action="store_true", help="start neither the real backup server nor the demo agent")
    p.add_argument(
        "--agents-port",
        type=int,
        default=int(os.environ.get("BACKUP_AGENTS_PORT", 5560)),
        help="port of the real server's agent socket (default %(default)s)",
    )
    p.add_argument("--log-json", action="store_true", help="JSON log lines")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str] | None = None) -> int:
    ns = make_parser().parse_args(argv)
    configure_logging("run_all", json=ns.log_json, level=ns.log_level)
    ns.data_dir.mkdir(parents=True, exist_ok=True)
    if ns.record is not None and ns.record.exists():
        log.warning("stack.recording_overwritten", path=str(ns.record))
        ns.record.unlink()
    endpoints = BridgeEndpoints.on_ports(
        ns.host, frontend=ns.frontend_port, events=ns.events_port, backend=ns.backend_port
    )
    stop = StopFlag().install()
    until = time.monotonic() + ns.duration if ns.duration is not None else None
    log.info(
        "stack.starting",
        data_dir=str(ns.data_dir),
        frontend=endpoints.frontend,
        events=endpoints.events,
        backend=endpoints.backend,
    )
    if ns.host not in LOOPBACK:
        # Said out loud: other machines can reach these ports. Every one of them asks for credentials.
        log.warning(
            "stack.reachable_from_other_machines",
            host=ns.host,
            ports=[ns.frontend_port, ns.events_port, ns.backend_port, ns.tap_port, ns.agents_port]
            + ([ns.gui_port] if ns.gui == "web" else []),
            guarded_by="CURVE keys on every bridge socket (connection files), enrollment for agents, sign-in for the GUI",
        )
    stack = StackEndpoints(endpoints.frontend, endpoints.events, endpoints.backend, tcp(ns.host, ns.tap_port))
    try:
        stores = BridgeStores.open(StackPaths(ns.data_dir).bridge)
        # The real server's allow-listed key is what tells the bridge a real backend is expected.
        creds = bootstrap(ns.data_dir, stack, stores, real_server=not ns.mock_only and ns.replay is None)
        admin = ConnectionFile.load(creds.admin_connection) if creds.admin_connection else None
    except (ValueError, OSError) as exc:  # CredentialsError and the stores' StateFileError are ValueErrors
        log.error("stack.credentials_failed", data_dir=str(ns.data_dir), error=str(exc))
        return 1
    gui_url = f"http://{ns.host}:{ns.gui_port}" if ns.gui == "web" else None
    if gui_url:
        log.info("stack.gui", url=gui_url)
    return supervise(build_children(ns, endpoints, creds), stop, until, ns, admin, gui_url)


if __name__ == "__main__":
    raise SystemExit(main())
