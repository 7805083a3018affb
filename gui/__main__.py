"""Serve the console as a web app attached to a running stack.

python -m gui [--connection FILE] [--endpoint tcp://HOST:PORT] [--host 127.0.0.1] [--port 8550]

The GUI process authenticates to the bridge with its own key (a connection file of kind
``gui``); users sign in on its login page, and it acts for them with their role.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import structlog

from gui.config import GuiConfig
from gui.downloads import DownloadLinks
from runtime.credentials import ENV_CONNECTION, ConnectionFile, CredentialsError, credentials_dir
from runtime.endpoints import ENV_ENDPOINT
from runtime.logsetup import configure_logging
from runtime.paths import default_data_dir

log = structlog.get_logger()

DEFAULT_PORT = 8550
GUI_CONNECTION = "gui.json"


def gui_connection_path(arg: str | None) -> Path:
    """``--connection FILE``, else ``$BRIDGE_CONNECTION``, else the default stack's GUI connection file."""
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get(ENV_CONNECTION)
    return Path(env).expanduser() if env else credentials_dir(default_data_dir()) / GUI_CONNECTION


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
    parser.add_argument(
        "--connection",
        help=f"the GUI's connection file (default ${ENV_CONNECTION}, else <data-dir>/credentials/gui.json)",
    )
    parser.add_argument(
        "--download-dir",
        type=Path,
        default=default_data_dir() / "gui" / "downloads",
        help="private folder (0700) where files wait, for a minute at most, until the browser fetches them",
    )
    parser.add_argument("--log-json", action="store_true")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging("gui", json=args.log_json, level=args.log_level)
    # A closed tab's session (and its bridge connection) is released after this many seconds.
    os.environ.setdefault("FLET_SESSION_TIMEOUT", "60")
    try:
        connection = ConnectionFile.load(gui_connection_path(args.connection))
    except CredentialsError as exc:
        log.error("gui.no_connection", error=str(exc))
        return 2
    from gui.app import make_main
    from gui.server import serve

    config = GuiConfig(args.endpoint, args.export_dir, DownloadLinks(args.download_dir), connection)
    log.info("gui.serving", url=f"http://{args.host}:{args.port}", endpoint=args.endpoint or connection.frontend)
    serve(make_main(config), config.links, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
