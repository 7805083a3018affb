"""Serve the console as a web app attached to a running stack.

python -m gui [--endpoint tcp://HOST:PORT] [--host 127.0.0.1] [--port 8550]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import structlog

from runtime.endpoints import ENV_ENDPOINT, client_endpoint
from runtime.logsetup import configure_logging
from runtime.paths import default_data_dir

log = structlog.get_logger()

DEFAULT_PORT = 8550


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gui", description="The backup console, served as a web app.")
    parser.add_argument("--endpoint", help=f"bridge frontend (default ${ENV_ENDPOINT} or tcp://127.0.0.1:5555)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to serve on (default %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP port (default %(default)s)")
    parser.add_argument(
        "--export-dir",
        type=Path,
        default=default_data_dir() / "exports",
        help="where activity and log exports are written",
    )
    parser.add_argument("--log-json", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging("gui", json=args.log_json, level=args.log_level)
    # Serve only: never try to open a browser or a desktop window, and take every asset from
    # the installed flet-web package (the machine may have no internet).
    os.environ["FLET_FORCE_WEB_SERVER"] = "true"
    # A closed tab's session (and its bridge connection) is released after this many seconds.
    os.environ.setdefault("FLET_SESSION_TIMEOUT", "60")
    import flet as ft

    from gui.app import make_main

    endpoint = client_endpoint(args.endpoint)
    log.info("gui.serving", url=f"http://{args.host}:{args.port}", endpoint=endpoint)
    ft.run(
        make_main(endpoint, args.export_dir), view=ft.AppView.WEB_BROWSER, host=args.host, port=args.port, no_cdn=True
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
