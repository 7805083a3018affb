"""The replay actor: serves a recording to the bridge in place of the backends.

python -m actors.replay --recording FILE [--connection FILE] [--bridge EP] [--order any|strict] [--speed X]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import structlog

from actors.backends.connect import add_bridge_arguments, backend_connection
from actors.backends.worker import BackendWorker
from actors.replay.core import ReplayCore
from protocol.recording import RecordingError, index_recording, read_recording
from runtime.credentials import CredentialsError
from runtime.logsetup import configure_logging
from runtime.paths import default_data_dir
from runtime.shutdown import StopFlag

log = structlog.get_logger()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.replay", description="Answer from a recording.")
    parser.add_argument("--recording", type=Path, required=True)
    add_bridge_arguments(parser, "replay")
    parser.add_argument(
        "--data-dir", type=Path, default=default_data_dir(), help="where the default connection file is looked for"
    )
    parser.add_argument("--order", choices=["any", "strict"], default="any")
    parser.add_argument("--speed", type=float, default=1.0, help="event speed factor; 0 re-emits all at once")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--log-json", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging("replay", json=args.log_json, level=args.log_level)
    try:
        connection = backend_connection(args.connection, args.data_dir, "replay")
    except CredentialsError as exc:
        log.error("replay.no_credentials", reason=str(exc))
        return 2
    try:
        with open(args.recording, "rb") as stream:
            header, entries = read_recording(stream)
            index = index_recording(header, entries)
    except (OSError, RecordingError) as exc:
        log.error("replay.recording_unreadable", path=str(args.recording), error=str(exc))
        return 2
    core = ReplayCore(index, order=args.order, speed=args.speed)
    BackendWorker(
        core, args.bridge or connection.backend, heartbeat_interval=args.heartbeat, connection=connection
    ).run(StopFlag().install())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
