"""Honest outages with real processes (issue 10, items 1 and 2): a stack run by run_all with its real
server, killed with SIGKILL again and again, and a bridge restarted while the server is down.

Also measures how soon the bridge says so after a kill: the first stale reply, and the
``bridge.mode`` event that sets ``real_unavailable_since`` (logged as ``outage.timing``)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import psutil
import pytest
import structlog

from client.connection import BridgeClient
from client.errors import BridgeUnreachable
from tests.conftest import ROOT, Stack, ok, wait_until

pytestmark = [pytest.mark.timeout(240), pytest.mark.processes]

log = structlog.get_logger()

READS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("get_clients", {}),
    ("get_server_status", {}),
    ("get_recent_activity", {"limit": 20}),
)
KILLS = 4
UP_BEFORE_KILL_S = 6.5  # run_all restarts an actor that lived over 5 s after 0.5 s (psutil start times are ±1 s)


@dataclass
class Seen:
    at: float  # wall clock
    op: str
    reply: dict[str, Any] | None  # None: no reply at all


def read_loop(stack: Stack, stop: threading.Event, seen: list[Seen]) -> None:
    with stack.client() as c:
        n = 0
        while not stop.is_set():
            op, args = READS[n % len(READS)]
            n += 1
            try:
                reply: dict[str, Any] | None = dict(c.call(op, args, timeout=10))
            except BridgeUnreachable:
                reply = None
            seen.append(Seen(time.time(), op, reply))
            time.sleep(0.02)


def honest(reply: dict[str, Any] | None) -> bool:
    """Fresh or stale real data, or BACKEND_UNAVAILABLE: never the mock, never silence."""
    if reply is None:
        return False
    if reply["success"]:
        return bool(reply["mode"] == "real")
    return bool(reply["error_code"] == "BACKEND_UNAVAILABLE")


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def fresh(reply: dict[str, Any] | None) -> bool:
    return reply is not None and reply["success"] and reply["mode"] == "real" and "stale" not in reply


def answered_fresh(seen: list[Seen], since: float) -> bool:
    return {s.op for s in seen if s.at > since and fresh(s.reply)} >= {op for op, _ in READS}


def all_events(c: BridgeClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    seq = 0
    while True:
        page = ok(c.call("events_since", {"seq": seq}))
        events += page["events"]
        seq = page["events"][-1]["seq"] if page["events"] else seq
        if not page["more"]:
            return events


@pytest.fixture
def real_stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "stack", "--tick", "0.5", real=True)
    stack.start(backend="server", timeout=60)
    try:
        yield stack
    finally:
        stack.stop()


def test_kill_9_of_the_server_again_and_again_never_gets_a_mock_reply(real_stack: Stack) -> None:
    stack = real_stack
    with stack.client() as c:
        status = ok(c.call("bridge_status"))
        assert (status["policy"], status["real_expected"], status["mode"]) == ("stale", True, "real")
    seen: list[Seen] = []
    stop = threading.Event()
    reader = threading.Thread(target=read_loop, args=(stack, stop, seen), daemon=True)
    reader.start()
    kills: list[float] = []
    try:
        for _ in range(KILLS):
            pid = stack.wait_backend_alive("server", 60)["pid"]
            up_since = psutil.Process(pid).create_time()
            time.sleep(max(0.0, up_since + UP_BEFORE_KILL_S - time.time()))
            # A fresh real answer to every read since this server came up: an outage has something to show.
            wait_until(partial(answered_fresh, seen, up_since), 30, 0.05, "fresh real answers")
            kills.append(time.time())
            os.kill(pid, signal.SIGKILL)
            wait_until(
                lambda: any(s.at > kills[-1] and s.reply and s.reply.get("stale") for s in seen), 15, 0.02, "stale"
            )
        stack.wait_backend_alive("server", 60)
        # The figures below need a fresh answer after the last return too (the reader could be stopped first).
        back = time.time()
        wait_until(partial(answered_fresh, seen, back), 30, 0.05, "fresh real answers after the last return")
    finally:
        stop.set()
        reader.join(20)
    dishonest = [s for s in seen if not honest(s.reply)]
    assert not dishonest, dishonest[:5]
    assert not any(s.reply and s.reply["mode"] == "mock" for s in seen)
    with stack.client() as c:
        events = all_events(c)
        status = ok(c.call("bridge_status"))
    assert [e for e in events if e["mode"] == "mock"] == []
    assert status["mock_events_dropped"] > 0  # the mock ticked all along: none of it reached the topics
    outages = [e for e in events if e["topic"] == "bridge.mode" and e["data"]["real_unavailable_since"] is not None]
    returns = [e["ts"] for e in events if e["topic"] == "bridge.mode" and e["data"]["mode"] == "real"]
    to_stale, to_event, outage, to_fresh = [], [], [], []
    for killed in kills:
        to_stale.append(min(s.at for s in seen if s.at > killed and s.reply and s.reply.get("stale")) - killed)
        to_event.append(min(e["ts"] for e in outages if e["ts"] > killed) - killed)
        back = min(ts for ts in returns if ts > killed)  # the restarted server registered
        outage.append(back - killed)
        to_fresh.append(min(s.at for s in seen if s.at > back and fresh(s.reply)) - back)
    log.info(
        "outage.timing",
        kills=len(kills),
        replies=len(seen),
        stale=sum(1 for s in seen if s.reply and s.reply.get("stale")),
        unavailable=sum(1 for s in seen if s.reply and not s.reply["success"]),
        kill_to_first_stale_reply_s=[round(x, 3) for x in to_stale],
        kill_to_bridge_mode_event_s=[round(x, 3) for x in to_event],
        kill_to_server_back_s=[round(x, 3) for x in outage],
        server_back_to_fresh_reply_s=[round(x, 3) for x in to_fresh],
    )
    assert max(to_event) < 2.0, to_event  # the GUI's banner follows this event: within 2 s of the kill


def test_a_bridge_restarted_while_the_server_is_down_still_refuses_writes(real_stack: Stack) -> None:
    stack = real_stack
    assert stack.proc is not None
    bridge = psutil.Process(stack.child_pid("bridge"))
    argv = bridge.cmdline()
    server = stack.child_pid("server")
    with stack.client() as c:
        ok(c.call("get_clients"))  # the old bridge knew a real answer: the new one will not
    os.kill(stack.proc.pid, signal.SIGSTOP)  # run_all restarts nothing meanwhile
    replacement: subprocess.Popen[bytes] | None = None
    try:
        os.kill(server, signal.SIGKILL)
        bridge.kill()
        # A zombie until run_all, stopped, reaps it: its sockets are closed all the same.
        wait_until(lambda: gone(bridge), 10, 0.02, "the bridge killed")
        started = datetime.now(UTC)
        with open(stack.data_dir / "bridge-again.log", "ab") as out:
            replacement = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        stack.wait_backend_alive("mock", 30)  # the mock re-registers; the server never comes back
        with stack.client() as c:
            status = ok(c.call("bridge_status"))
            assert (status["policy"], status["real_expected"], status["mode"]) == ("stale", True, "none")
            since = status["real_unavailable_since"]
            assert started - timedelta(seconds=1) <= since <= datetime.now(UTC)
            write = c.call("stop_server")
            assert (write["success"], write["error_code"], write["mode"]) == (False, "BACKEND_UNAVAILABLE", "bridge")
            assert f"since {since:%H:%M:%S} UTC; stop_server was not executed" in write["message"]
            read = c.call("get_clients")
            assert (read["error_code"], read["mode"]) == ("BACKEND_UNAVAILABLE", "bridge")  # nothing known yet
            audit = ok(c.call("get_audit_log", {"op": "stop_server"}))["items"]
            assert audit[0]["outcome"] == "BACKEND_UNAVAILABLE"
    finally:
        if replacement is not None:
            replacement.kill()
            replacement.wait(10)
        os.kill(stack.proc.pid, signal.SIGCONT)
