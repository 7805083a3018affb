"""Turn SIGTERM/SIGINT into a flag that loops check, so actors stop cleanly."""

from __future__ import annotations

import signal
import threading


class StopFlag:
    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self, *_: object) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def install(self) -> StopFlag:
        signal.signal(signal.SIGTERM, self.set)
        signal.signal(signal.SIGINT, self.set)
        return self
