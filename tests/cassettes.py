"""Cassettes: run a test against a recorded session instead of a live mock.

Mark a test ``@pytest.mark.cassette("name")`` and take the ``cassette`` fixture: a Stack
serving ``tests/recordings/<name>.rec`` through the replay backend. Recording is never
silent: ``pytest --record-cassettes -k <test>`` runs the test against a seeded mock
with a simulated clock and writes the cassette; without the flag a missing cassette
fails the test with the command that creates it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Stack

RECORDINGS = Path(__file__).resolve().parent / "recordings"
MOCK_ARGS = ("--seed", "7", "--clock", "2026-01-01T00:00:00+00:00")


@dataclass
class Cassette:
    stack: Stack
    path: Path
    recording: bool  # True while (re)recording against the mock


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-cassettes",
        action="store_true",
        help="(re)record the cassettes of the selected tests against a seeded mock",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cassette(name, tick=3600, real=False): run against tests/recordings/<name>.rec; "
        "real=True records the real server and its demo agent",
    )


@pytest.fixture
def cassette(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cassette]:
    marker = request.node.get_closest_marker("cassette")
    if marker is None:
        raise pytest.UsageError("the cassette fixture needs @pytest.mark.cassette(name)")
    path = RECORDINGS / f"{marker.args[0]}.rec"
    recording = bool(request.config.getoption("--record-cassettes"))
    if recording:
        tick = str(marker.kwargs.get("tick", 3600))
        stack = Stack(
            tmp_path / "record",
            *MOCK_ARGS,
            "--tick",
            tick,
            "--record",
            str(path),
            real=bool(marker.kwargs.get("real", False)),
        ).start()
    elif not path.exists():
        pytest.fail(
            f"cassette {path.name} is missing; record it with: "
            f"make test ARGS='--record-cassettes -k {request.node.name}'"
        )
    else:
        stack = Stack(tmp_path / "replay", "--replay", str(path)).start()
    try:
        yield Cassette(stack, path, recording)
    finally:
        stack.stop()
