"""How a backend actor finds the bridge and its own credentials: ``--bridge`` and ``--connection``.

Every backend connects with the connection file of its key pair (allow-listed by the
bridge under one name and mode). On the stack's machine the default is the one run_all's
bootstrap wrote: ``<data-dir>/credentials/NAME.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.credentials import ConnectionFile, CredentialsError, credentials_dir


def add_bridge_arguments(parser: argparse.ArgumentParser, connection_name: str) -> None:
    parser.add_argument("--bridge", help="bridge backend endpoint (default: the connection file's)")
    parser.add_argument(
        "--connection",
        type=Path,
        help=f"connection file with this backend's key pair (default <data-dir>/credentials/{connection_name}.json)",
    )


def backend_connection(arg: Path | None, data_dir: Path, connection_name: str) -> ConnectionFile:
    """The connection file to use; CredentialsError says where it looked and how to get one."""
    if arg is not None:
        return ConnectionFile.load(arg)
    path = credentials_dir(data_dir) / f"{connection_name}.json"
    if not path.exists():
        raise CredentialsError(
            f"no connection file at {path}: run_all.py creates those of the local stack; for a backend on "
            "another machine an admin makes one (bridgectl backend allow --name NAME --mode MODE --out FILE) "
            "and you pass --connection FILE"
        )
    return ConnectionFile.load(path)
