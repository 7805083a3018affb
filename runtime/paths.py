"""The per-user data directory."""

from __future__ import annotations

import os
from pathlib import Path

APP_DIR = "backup-console"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / APP_DIR
