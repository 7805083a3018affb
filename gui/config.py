"""What the GUI process was started with, shared by every tab."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gui.downloads import DownloadLinks
from runtime.credentials import ConnectionFile


@dataclass(frozen=True, slots=True)
class GuiConfig:
    endpoint: str | None  # None: the connection file's frontend
    export_dir: Path  # where activity and log exports are written (chosen by whoever started the GUI)
    links: DownloadLinks  # the one-time browser download links of this process
    connection: ConnectionFile | None = None  # the GUI process's own key (kind gui)
