"""The agent's progress display: one rewritten line on a terminal, periodic log events otherwise.

On a terminal the user sees live counts and the rate on stderr; when stderr is a pipe or
a file (run_all, CI, cron) a ``agent.progress`` structured event every few seconds keeps
the log readable instead of filling it with carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import structlog

log = structlog.get_logger()

TTY_EVERY_S = 0.2
LOG_EVERY_S = 5.0
CLEAR_COLUMNS = 100  # wider than the longest live progress line, so wiping it leaves nothing


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Progress:
    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if enabled is None else enabled
        self.found = self.checked = self.stored = 0
        self.sent_bytes = 0
        self.total_bytes: int | None = None
        self.started = time.monotonic()
        self._last = self.started if not self.tty else 0.0
        self._dirty_line = False

    def update(self, found: int = 0, checked: int = 0, stored: int = 0, sent_bytes: int = 0) -> None:
        self.found += found
        self.checked += checked
        self.stored += stored
        self.sent_bytes += sent_bytes
        now = time.monotonic()
        if now - self._last >= (TTY_EVERY_S if self.tty else LOG_EVERY_S):
            self._last = now
            self._show(now)

    def _show(self, now: float) -> None:
        rate = self.sent_bytes / max(now - self.started, 1e-6)
        if self.tty:
            of = f" of {human(self.total_bytes)}" if self.total_bytes else ""
            text = (
                f"\r{self.label}: {self.checked}/{self.found} files checked, {self.stored} stored, "
                f"{human(self.sent_bytes)}{of} sent, {human(rate)}/s "
            )
            self.stream.write(text)
            self.stream.flush()
            self._dirty_line = True
        else:
            log.info(
                "agent.progress",
                found=self.found,
                checked=self.checked,
                stored=self.stored,
                sent_bytes=self.sent_bytes,
                bytes_per_s=int(rate),
            )

    def finish(self, text: str) -> None:
        """End the live line and print a final one (terminal), or log nothing (the caller logs)."""
        if self.tty:
            if self._dirty_line:
                self.stream.write("\r" + " " * CLEAR_COLUMNS + "\r")
            self.stream.write(text + "\n")
            self.stream.flush()
