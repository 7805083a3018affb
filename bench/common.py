"""Helpers for benchmarks: processes that cannot outlive the benchmark, deadlines, percentiles, JSON.

Every process a benchmark starts has one owner, ``CHILDREN``. ``spawn`` registers it (in
a session of its own, so its process group holds whatever it starts in turn) and
``stop`` ends it by process group. ``install_cleanup``, called first thing in each
benchmark's ``main``, makes SIGTERM and SIGINT unwind the benchmark (its ``finally``
blocks run) and registers ``stop_all`` with atexit; ``stop_all`` also sweeps children
started by other means (the test harness's ``Stack`` and ``FletServer``). On Linux a
spawned process is also SIGKILLed by the kernel should the benchmark die without
cleaning up (``PR_SET_PDEATHSIG``), so not even ``kill -9`` of the benchmark leaks one.

Every wait has a deadline and fails with a message saying what did not happen. A benchmark
that starts a bridge itself first makes the stack's credentials as run_all does
(``stack_credentials``); every client then connects with the admin's connection file.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from actors.bridge.auth.state import BridgeStores
from client.connection import BridgeClient, BridgeUnreachable
from runtime.bootstrap import Bootstrap, StackEndpoints, bootstrap
from runtime.credentials import ConnectionFile, StackPaths
from runtime.logsetup import configure_logging

ROOT = Path(__file__).resolve().parent.parent

STOP_GRACE_S = 10.0  # SIGTERM -> SIGKILL: actors flush their state and exit well within this
KILL_WAIT_S = 5.0  # after SIGKILL a process is gone at once unless the kernel is stuck on I/O
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class BenchInterrupted(SystemExit):
    """SIGTERM or SIGINT: unwinds the benchmark like ``sys.exit`` so every ``finally`` runs."""


def _kill_group(pid: int, sig: int) -> None:
    """Signal the process group ``pid`` leads (``spawn`` makes every child lead one)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _signal_foreign(child: psutil.Process, sig: int) -> None:
    """Signal a child ``spawn`` did not start: its whole group if it leads one, never our own group."""
    try:
        pgid = os.getpgid(child.pid)
        if pgid == child.pid and pgid != os.getpgid(0):
            os.killpg(pgid, sig)
        else:
            os.kill(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class Children:
    """The processes a benchmark started; nothing here may outlive it."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.grace_s = STOP_GRACE_S

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        self.procs.append(proc)

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every child without waiting: safe inside a signal handler."""
        for proc in self.procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
        for child in self._foreign():
            _signal_foreign(child, sig)

    def stop(self, *procs: subprocess.Popen[bytes]) -> None:
        """SIGTERM each process (a supervisor then stops its own children in order), SIGKILL its
        group after the grace period or once it has exited (leftovers), and reap it."""
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s
        stuck = []
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))
            _kill_group(proc.pid, signal.SIGKILL)
            try:
                proc.wait(KILL_WAIT_S)
            except subprocess.TimeoutExpired:
                stuck.append(proc.pid)
            if proc in self.procs:
                self.procs.remove(proc)
        if stuck:
            raise RuntimeError(f"processes {stuck} survived SIGKILL for {KILL_WAIT_S}s")

    def stop_all(self) -> None:
        """Stop every registered process, then any other child still running."""
        self.stop(*self.procs)
        foreign = self._foreign()
        for child in foreign:
            _signal_foreign(child, signal.SIGTERM)
        _, alive = psutil.wait_procs(foreign, timeout=self.grace_s)
        for child in foreign:  # the leaders that exited may have left members in their groups
            _signal_foreign(child, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=KILL_WAIT_S)

    def _foreign(self) -> list[psutil.Process]:
        mine = {proc.pid for proc in self.procs}
        try:
            return [c for c in psutil.Process().children() if c.pid not in mine]
        except psutil.Error:
            return []


CHILDREN = Children()


def install_cleanup() -> None:
    """SIGTERM/SIGINT stop every child and unwind the benchmark; at exit, stop whatever is left.

    Also sends this process's log lines to stderr, warnings only: stdout carries the JSON result."""
    configure_logging("bench", level="WARNING")
    atexit.register(CHILDREN.stop_all)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


_INTERRUPTED: list[int] = []  # the signal that interrupted the benchmark, once it came


def _on_signal(signum: int, frame: FrameType | None) -> None:
    # A second signal must not interrupt the cleanup this one starts (which is bounded anyway).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _INTERRUPTED.append(signum)
    name = signal.Signals(signum).name
    sys.stderr.write(f"benchmark interrupted by {name}: stopping the processes it started\n")
    CHILDREN.signal_all(signal.SIGTERM)
    raise BenchInterrupted(128 + signum)


def check_interrupted() -> None:
    """Raise the interruption again where its exception may have been swallowed: a signal that
    lands in an at-fork hook (every spawn forks) is reported as "ignored" and lost."""
    if _INTERRUPTED:
        raise BenchInterrupted(128 + _INTERRUPTED[0])


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGKILL the child when the benchmark dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # loaded before the fork: no dlopen in the child
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the benchmark died before the request took effect
            os._exit(1)

    return preexec


def spawn(*argv: str, env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen[bytes]:
    """``python *argv`` in the repository, registered with ``CHILDREN``; output to ``log`` or discarded."""
    check_interrupted()
    with open(log, "ab") if log is not None else open(os.devnull, "wb") as out:  # the child keeps its copy
        try:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent(),  # benchmarks spawn from their one thread; the child only calls prctl
            )
        except subprocess.SubprocessError:
            # A signal that came during the fork is pending in the child too: its handler runs in the
            # child's preexec_fn, which then fails ("Exception occurred in preexec_fn"). That is the
            # interruption, not a failure to start.
            check_interrupted()
            raise
    CHILDREN.add(proc)
    check_interrupted()  # a signal during the fork is lost in its hook: raise it now (the child was signalled)
    return proc


def stack_credentials(
    data_dir: Path, frontend: int, events: int, backend: int, tap: int | None = None, *, real: bool = False
) -> Bootstrap:
    """The keys and connection files of a stack on these local ports, made as run_all makes them.

    ``real``: the stack runs the real server (its key is allow-listed, so the bridge expects it)."""
    endpoints = StackEndpoints(*(f"tcp://127.0.0.1:{port}" for port in (frontend, events, backend, tap or free_port())))
    return bootstrap(data_dir, endpoints, BridgeStores.open(StackPaths(data_dir).bridge), real_server=real)


def admin_connection(creds: Bootstrap) -> ConnectionFile:
    assert creds.admin_connection is not None, "a fresh stack always has its admin"
    return ConnectionFile.load(creds.admin_connection)


def log_tail(path: Path, chars: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as exc:
        return f"(no log: {exc})"


def stop(*procs: subprocess.Popen[bytes]) -> None:
    CHILDREN.stop(*procs)


def wait_exit(proc: subprocess.Popen[bytes], timeout: float, what: str) -> int:
    """The exit code of a process expected to finish on its own within ``timeout`` seconds."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"{what} did not exit within {timeout:.0f}s") from None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result, indent=2) + "\n")


def wait_ready(
    connection: ConnectionFile,
    backend: str,
    timeout: float = 120.0,
    proc: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
) -> None:
    """Until ``backend`` is alive at the bridge; fails at once when ``proc`` (the backend) exits."""
    deadline = time.monotonic() + timeout
    endpoint = connection.frontend
    with BridgeClient(connection=connection, connect_timeout=0.5) as client:
        while time.monotonic() < deadline:
            check_interrupted()  # a backend stopped by our own interruption is no failure of its own
            if proc is not None and proc.poll() is not None:
                tail = log_tail(log) if log is not None else "(its output was discarded)"
                raise RuntimeError(f"{backend} exited with code {proc.returncode} before registering: {tail}")
            try:
                reply = client.call("bridge_status", timeout=1.0)
                if reply["success"] and any(b["name"] == backend and b["alive"] for b in reply["data"]["backends"]):
                    return
            except BridgeUnreachable:
                pass
            time.sleep(0.1)
    raise TimeoutError(f"{backend} did not register at {endpoint} within {timeout:.0f}s")
