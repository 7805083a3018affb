"""Shared helpers: free ports, waiting on conditions, and a real multi-process stack."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from client.connection import BridgeClient, BridgeUnreachable
from runtime.credentials import ENV_CONNECTION, ConnectionFile, CredentialsError, StackPaths

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def ok(reply: Mapping[str, Any]) -> Any:
    """The data of a successful reply; a failed one fails the test with the whole reply shown."""
    assert reply["success"], reply
    return reply["data"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(
    predicate: Callable[[], T | None], timeout: float = 10.0, interval: float = 0.02, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run_async(coroutine_fn: Callable[[], Any]) -> Any:
    """Run an async test body on a fresh event loop in its own thread (Playwright's sync API keeps
    a loop running in the main thread once the browser fixture is up, so asyncio.run would refuse).

    When the wait is interrupted (pytest-timeout's alarm), the body is cancelled and given a moment
    to unwind; a body stuck beyond that is left to its daemon thread. Joining it instead hung a whole
    suite run on one stuck test: the timeout fired, then the join waited forever."""
    import asyncio
    import threading

    started: dict[str, Any] = {}
    outcome: dict[str, Any] = {}
    finished = threading.Event()

    async def body() -> Any:
        started["task"] = asyncio.current_task()
        return await coroutine_fn()

    def run() -> None:
        try:
            with asyncio.Runner() as runner:
                started["loop"] = runner.get_loop()
                outcome["value"] = runner.run(body())
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc
        finally:
            finished.set()

    thread = threading.Thread(target=run, name="run-async", daemon=True)
    thread.start()
    try:
        finished.wait()
    except BaseException:
        loop, task = started.get("loop"), started.get("task")
        if loop is not None and task is not None:
            loop.call_soon_threadsafe(task.cancel)
        finished.wait(10)
        raise
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


class Stack:
    """``run_all.py`` on free ports with its own data directory, in its own process group.

    Every client of the stack signs in with the admin connection file run_all's bootstrap
    writes (``<data-dir>/credentials/admin.json``): ``client()``, ``connection``, and ``env()``
    for a bridgectl subprocess."""

    def __init__(self, data_dir: Path, *extra: str, real: bool = False) -> None:
        """``real``: also run the real backup server and its demo agent (default: the mock only)."""
        self.data_dir = data_dir
        self.ports = {"frontend": free_port(), "events": free_port(), "backend": free_port(), "tap": free_port()}
        self.endpoint = f"tcp://127.0.0.1:{self.ports['frontend']}"
        self.argv = [
            sys.executable,
            str(ROOT / "run_all.py"),
            "--gui",
            "none",
            "--data-dir",
            str(data_dir),
            "--frontend-port",
            str(self.ports["frontend"]),
            "--events-port",
            str(self.ports["events"]),
            "--backend-port",
            str(self.ports["backend"]),
            "--tap-port",
            str(self.ports["tap"]),
            "--log-json",
            *(["--agents-port", str(free_port())] if real else ["--mock-only"]),
            *extra,
        ]
        self.log_path = data_dir / "stack.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0, backend: str | None = None) -> Stack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child process writes to it
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self.wait_backend_alive(backend or ("replay" if "--replay" in self.argv else "mock"), timeout)
        except BaseException:
            self.stop()  # never leave a half-started stack behind
            raise
        return self

    @property
    def paths(self) -> StackPaths:
        return StackPaths(self.data_dir)

    @property
    def connection(self) -> ConnectionFile:
        """The admin's connection file (read anew: a restarted stack may have other ports)."""
        return ConnectionFile.load(self.paths.admin_connection)

    def connection_of(self, name: str) -> ConnectionFile:
        """The connection file ``credentials/NAME.json`` (mock, server, replay, gui)."""
        return ConnectionFile.load(self.paths.connection(name))

    def client(self, **kw: Any) -> BridgeClient:
        return BridgeClient(self.endpoint, connection=self.connection, **kw)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a bridgectl run against this stack as its admin."""
        return dict(os.environ, **{ENV_CONNECTION: str(self.paths.admin_connection)}, **extra)

    def status(self) -> dict[str, Any]:
        with self.client(connect_timeout=0.5) as c:
            return c.call("bridge_status", timeout=1.0)["data"]

    def backend(self, name: str) -> dict[str, Any] | None:
        try:
            return next((b for b in self.status()["backends"] if b["name"] == name), None)
        except (BridgeUnreachable, CredentialsError):  # not up yet, or run_all has not written admin.json yet
            return None

    def wait_backend_alive(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        def alive() -> dict[str, Any] | None:
            assert self.proc is not None and self.proc.poll() is None, f"run_all exited early:\n{self.log()}"
            b = self.backend(name)
            return b if b and b["alive"] else None

        return wait_until(alive, timeout, 0.05, f"backend {name} alive")

    def child_pid(self, actor: str) -> int:
        """Pid of the running ``actors.<actor>`` process of this stack."""
        assert self.proc is not None
        for child in psutil.Process(self.proc.pid).children():
            if f"actors.{actor}" in child.cmdline():
                return child.pid
        raise AssertionError(f"no running actors.{actor} under run_all")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        code = self.proc.wait()
        self.proc = None
        return code


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    stacks: list[Stack] = []

    def make(*extra: str, data_dir: Path | None = None, start: bool = True) -> Stack:
        stack = Stack(data_dir or tmp_path / f"stack{len(stacks)}", *extra)
        stacks.append(stack)
        return stack.start() if start else stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="module")
def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One stack for the read-mostly tests of a module (fast tick so events flow)."""
    stack = Stack(tmp_path_factory.mktemp("shared"), "--tick", "0.3").start()
    yield stack
    stack.stop()


# The headless browser for the GUI tests (one per test session) and the cassette plugin.
from tests.cassettes import cassette, pytest_addoption, pytest_configure  # noqa: E402,F401
from tests.gui_harness import browser  # noqa: E402,F401

# -- the fast path: `make test-fast` runs only the tests that start no process --------------

# Fixtures and modules that start processes; their tests are marked `processes` at collection.
PROCESS_FIXTURES = frozenset(
    {"make_stack", "shared_stack", "bridge_stack", "server", "gui_stack", "browser", "cassette"}
)
PROCESS_MODULES = frozenset(
    {
        "tests.test_stack",
        "tests.test_server_e2e",
        "tests.test_gui_e2e",
        "tests.test_gui_harness_smoke",
        "tests.test_replay",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())) or (
            module is not None and module.__name__ in PROCESS_MODULES
        ):
            item.add_marker(pytest.mark.processes)


@pytest.fixture(autouse=True)
def _no_processes_on_the_fast_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under ``-m "not processes"`` a test that starts a process fails, so the marker stays honest."""
    if request.config.getoption("markexpr") != "not processes":
        return

    def refuse(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{request.node.nodeid} starts a process: mark it @pytest.mark.processes")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


GUI_FAILURES = Path(os.environ.get("GUI_FAILURE_DIR", "/tmp/gui-failures"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed browser test leaves, for every page still open, a screenshot and its accessibility
    text under ``$GUI_FAILURE_DIR``: the only way to see what the browser showed in a CI run."""
    outcome: Any = yield
    report = outcome.get_result()
    chromium = getattr(item, "funcargs", {}).get("browser")
    if chromium is None or not report.failed or call.when != "call":
        return
    GUI_FAILURES.mkdir(parents=True, exist_ok=True)
    stem = item.nodeid.replace("/", "_").replace("::", "-")
    for c, context in enumerate(chromium.contexts):
        for p, page in enumerate(context.pages):
            with contextlib.suppress(Exception):
                page.screenshot(path=str(GUI_FAILURES / f"{stem}-{c}-{p}.png"), timeout=5_000)
            with contextlib.suppress(Exception):
                tree = page.locator("flt-semantics-host").inner_text(timeout=5_000)
                (GUI_FAILURES / f"{stem}-{c}-{p}.txt").write_text(f"{page.url}\n{renderer_state(page)}\n{tree}\n")


def renderer_state(page: Any) -> str:
    """How Flutter draws this page: multi-threaded skwasm (a cross-origin isolated page) rasterizes on a
    worker, whose failures (flutter/flutter#190039) reach no console; Flet's loading overlay still in
    the page means no frame was ever shown, whatever the accessibility tree says."""
    try:
        state = page.evaluate(
            """() => ({isolated: window.crossOriginIsolated, skwasm: !!window._flutter_skwasmInstance,
                       no_frame_yet: !!document.getElementById('loading')})""",
        )
    except Exception as exc:  # a page that runs no script any more still has its tree written
        return f"renderer state unknown: {type(exc).__name__}"
    return " ".join(f"{k}={v}" for k, v in state.items())


@pytest.fixture(autouse=True)
def _close_browser_tabs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Close every tab a browser test left open (a failed test never reaches its own close): an open
    tab keeps its GUI session polling and its page drawing, which slows every later browser test."""
    yield
    if "browser" in request.fixturenames:
        for context in list(request.getfixturevalue("browser").contexts):
            with contextlib.suppress(Exception):
                context.close()
