"""One supervised child process of the stack: started, watched, restarted with backoff, given up on.

An actor that keeps dying right after its start (a corrupt file, a port in use) is given
up on after a few tries instead of being restarted forever; the log says so and why.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger()

RAPID_FAILURE_S = 5.0  # an exit sooner than this after start counts as a rapid failure
MAX_RAPID_FAILURES = 5
MAX_BACKOFF_S = 10.0


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    rapid_failures: int = 0
    restart_at: float | None = 0.0
    gave_up: bool = False
    restarts: int = field(default=0)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv)
        self.started_at = time.monotonic()
        self.restart_at = None
        log.info("stack.actor_started", child=self.name, pid=self.proc.pid, restarts=self.restarts)

    def check(self, now: float) -> None:
        """Notice an exit and schedule the restart (or give up)."""
        if self.proc is None or self.proc.poll() is None:
            return
        code = self.proc.returncode
        self.proc = None
        rapid = now - self.started_at < RAPID_FAILURE_S
        self.rapid_failures = self.rapid_failures + 1 if rapid else 0
        if self.rapid_failures >= MAX_RAPID_FAILURES:
            self.gave_up = True
            log.error(
                "stack.actor_given_up",
                child=self.name,
                exit_code=code,
                rapid_failures=self.rapid_failures,
                hint="it keeps dying right after start; run it alone to see why",
            )
            return
        backoff = min(0.5 * 2**self.rapid_failures, MAX_BACKOFF_S)
        self.restart_at = now + backoff
        self.restarts += 1
        log.warning("stack.actor_died", child=self.name, exit_code=code, restart_in_s=backoff)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()

    def wait_stopped(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("stack.actor_killed", child=self.name, reason="did not stop in time")
            self.proc.kill()
            self.proc.wait()
