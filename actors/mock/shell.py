"""The mock actor: serves MockCore's persistent, evolving demo data to the bridge.

python -m actors.mock [--connection FILE] [--bridge EP] [--data-dir DIR] [--seed N] [--clients N] [--files N]
                      [--tick SECONDS] [--clock system|ISO-INSTANT]
"""

from __future__ import annotations

import argparse
import gc
from pathlib import Path

import structlog

from actors.backends.connect import add_bridge_arguments, backend_connection
from actors.backends.worker import BackendWorker
from actors.mock.core import MockCore
from runtime.clock import parse_clock
from runtime.credentials import CredentialsError
from runtime.logsetup import configure_logging
from runtime.paths import default_data_dir
from runtime.shutdown import StopFlag

log = structlog.get_logger()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m actors.mock", description="Serve evolving demo data to the bridge."
    )
    add_bridge_arguments(parser, "mock")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="where the mock keeps its state")
    parser.add_argument("--no-persist", action="store_true", help="keep the data in memory only")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=45)
    parser.add_argument("--files", type=int, default=None, help="total files (default: about 20 per client)")
    parser.add_argument("--tick", type=float, default=3.0, help="seconds between evolution steps")
    parser.add_argument("--clock", default="system", help="'system' or an ISO 8601 instant for a simulated clock")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--log-json", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging("mock", json=args.log_json, level=args.log_level)
    try:
        connection = backend_connection(args.connection, args.data_dir, "mock")
    except CredentialsError as exc:
        log.error("mock.no_credentials", reason=str(exc))
        return 2
    bridge = args.bridge or connection.backend
    stop = StopFlag().install()
    data_dir = None if args.no_persist else args.data_dir / "mock"
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    core = MockCore.open(
        data_dir,
        seed=args.seed,
        clock=parse_clock(args.clock),
        clients=args.clients,
        files=args.files,
        tick_seconds=args.tick,
    )
    # The dataset lives as long as the process: keep the collector from rescanning it (latency spikes).
    gc.freeze()
    log.info("mock.started", data_dir=str(data_dir) if data_dir else None, bridge=bridge)
    BackendWorker(core, bridge, heartbeat_interval=args.heartbeat, connection=connection).run(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
