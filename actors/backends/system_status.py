"""CPU, memory and disk of the host a backend runs on (shared by the mock and the real server)."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

# From uname(2) alone: platform.platform() may run `uname -p` in a child process on every call.
_PLATFORM = "-".join(filter(None, (platform.system(), platform.release(), platform.machine())))


def _existing(path: Path) -> Path:
    """The path itself or its nearest existing parent (a data dir may not exist yet)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class SystemStatusProbe:
    def __init__(self, disk_path: Path | str) -> None:
        self.disk_path = _existing(Path(disk_path))
        # psutil's non-blocking cpu_percent reports usage since the previous call; the first
        # call has no previous one and says 0.0, so prime it here.
        psutil.cpu_percent(interval=None)

    def collect(self, now: datetime | None = None) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(str(self.disk_path))
        try:
            load = [round(x, 2) for x in psutil.getloadavg()]
        except (AttributeError, OSError):
            load = [0.0, 0.0, 0.0]
        return {
            "hostname": platform.node(),
            "platform": _PLATFORM,
            "cpu_percent": psutil.cpu_percent(interval=None),
            "cpu_count": psutil.cpu_count() or os.cpu_count() or 1,
            "load_average": load,
            "memory": {
                "total": memory.total,
                "available": memory.available,
                "used": memory.used,
                "percent": memory.percent,
            },
            "disk": {
                "path": str(self.disk_path),
                "total": disk.total,
                "used": disk.used,
                "free": disk.free,
                "percent": disk.percent,
            },
            "boot_time": datetime.fromtimestamp(psutil.boot_time(), UTC),
            "timestamp": now or datetime.now(UTC),
        }
