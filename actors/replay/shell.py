"""The replay actor: serves a recording to the bridge in place of the backends.

python -m actors.replay --recording FILE [--bridge EP] [--order any|strict] [--speed X]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import structlog

from actors.backends.worker import BackendWorker
from actors.replay.core import ReplayCore
from protocol.recording import RecordingError, index_recording, read_recording
from runtime.endpoints import BridgeEndpoints
from runtime.logsetup import configure_logging
from runtime.shutdown import StopFlag

log = structlog.get_logger()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m actors.replay", description="Answer from a recording.")
    parser.add_argument("--recording", type=Path, required=True)
    parser.add_argument("--bridge", default=BridgeEndpoints.default().backend)
    parser.add_argument("--order", choices=["any", "strict"], default="any")
    parser.add_argument("--speed", type=float, default=1.0, help="event speed factor; 0 re-emits all at once")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--log-json", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging("replay", json=args.log_json, level=args.log_level)
    try:
        with open(args.recording, "rb") as stream:
            header, entries = read_recording(stream)
            index = index_recording(header, entries)
    except (OSError, RecordingError) as exc:
        log.error("replay.recording_unreadable", path=str(args.recording), error=str(exc))
        return 2
    core = ReplayCore(index, order=args.order, speed=args.speed)
    BackendWorker(core, args.bridge, heartbeat_interval=args.heartbeat).run(StopFlag().install())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
