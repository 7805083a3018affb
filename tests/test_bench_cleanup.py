"""An interrupted benchmark (SIGTERM, Ctrl-C) leaves no process behind, whoever started it."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.processes

# A child that ignores SIGTERM and has a child of its own (same group, also deaf to SIGTERM):
# only SIGKILL of the whole process group ends both.
STUBBORN = textwrap.dedent(
    """
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    subprocess.Popen([sys.executable, "-c", code])
    time.sleep(600)
    """
)

# A benchmark with one child from bench.common.spawn and one started behind its back in a
# session of its own, as the test harness's Stack and FletServer do; then it waits.
BENCHMARK = textwrap.dedent(
    f"""
    import subprocess, sys, time
    sys.path.insert(0, {str(ROOT)!r})
    from bench.common import CHILDREN, install_cleanup, spawn
    install_cleanup()
    CHILDREN.grace_s = 0.5
    spawn("-c", {STUBBORN!r})
    subprocess.Popen([sys.executable, "-c", {STUBBORN!r}], start_new_session=True)
    time.sleep(600)
    """
)


def gone(pids: list[int]) -> bool:
    def dead(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # dead, waiting for its reaper
        except psutil.NoSuchProcess:
            return True

    return all(dead(pid) for pid in pids)


def interrupt_and_check(bench: subprocess.Popen[bytes], children: int, sig: signal.Signals) -> None:
    """Once ``bench`` has ``children`` descendants, send ``sig``; it must exit and take them all along."""
    me = psutil.Process(bench.pid)
    try:
        descendants = wait_until(
            lambda: (found := me.children(recursive=True)) and len(found) >= children and found,
            timeout=30,
            what=f"{children} processes under the benchmark",
        )
        pids = [p.pid for p in descendants]
        bench.send_signal(sig)
        _, err = bench.communicate(timeout=30)
        assert bench.returncode == 128 + sig, err.decode(errors="replace")
        assert f"interrupted by {sig.name}".encode() in err
        wait_until(lambda: gone(pids), timeout=10, what=f"no survivor among {pids}")
    finally:
        for child in psutil.Process(bench.pid).children(recursive=True) if bench.poll() is None else []:
            child.kill()
        bench.kill()
        bench.wait(10)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_benchmark_stops_every_process_it_started(sig: signal.Signals) -> None:
    bench = subprocess.Popen([sys.executable, "-c", BENCHMARK], stderr=subprocess.PIPE)
    interrupt_and_check(bench, children=4, sig=sig)


def test_an_interrupted_roundtrip_benchmark_stops_its_bridge_mock_and_servers() -> None:
    bench = subprocess.Popen(
        [sys.executable, "bench/bench_roundtrip.py", "--rounds", "1000000"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    interrupt_and_check(bench, children=5, sig=signal.SIGTERM)  # bridge, mock, two echo servers, a relay
