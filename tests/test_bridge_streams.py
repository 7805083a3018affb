"""A streamed reply through BridgeCore: chunks and acks keep it alive, and the requester hears
when the backend would give up on it (issue 10, item 9)."""

from __future__ import annotations

from typing import Any

import pytest

from actors.bridge.auth.authority import Authority
from actors.bridge.config import BridgeConfig
from actors.bridge.core import BridgeCore
from protocol import responses
from protocol.codec import decode
from protocol.envelope import ACK, CANCEL, CHUNK, decode_header, encode_header
from protocol.errors import RETRYABLE, ErrorCode
from protocol.modes import Policy
from protocol.streaming import STREAM_IDLE_TIMEOUT_S
from tests.bridge_auth import make_authority
from tests.test_bridge_core import CLIENT, REAL, Clock, FakeOutbox, answer, api_key, beat, from_backend, make_core
from tests.test_bridge_core import ready as register
from tests.test_bridge_core import request as send_request

pytestmark = pytest.mark.timeout(30)

ARGS = {"file_id": "f", "destination_path": "/tmp/x"}
Setup = tuple[BridgeCore, FakeOutbox, Clock]


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    authority, _ = make_authority(tmp_path_factory.mktemp("streams"))
    return authority


@pytest.fixture
def setup(trust: Authority) -> Setup:
    core, out, clock = make_core(trust, BridgeConfig(policy=Policy.READS))
    register(core, REAL, "real")
    return core, out, clock


def chunk(core: BridgeCore, index: int) -> None:
    from_backend(core, REAL, [CLIENT, encode_header(CHUNK, reply_to="r1", index=index, offset=index, total=8), b"x"])


def ack(core: BridgeCore, index: int) -> None:
    core.on_frontend([CLIENT, encode_header(ACK, reply_to="r1", index=index), b""], api_key(core), "127.0.0.1")


def wait(core: BridgeCore, clock: Clock, seconds: float) -> None:
    """Let ``seconds`` pass in steps, the backend heartbeating all along (it is alive, only slow)."""
    end = clock.now + seconds
    while clock.now < end:
        clock.now = min(end, clock.now + 0.5)
        beat(core, REAL)
        core.on_timer()


def replies(out: FakeOutbox) -> list[dict[str, Any]]:
    """The replies the requester got (chunks aside)."""
    return [decode(frames[1]) for _, frames in out.clients if decode_header(frames[0]).kind == "reply"]


def errors(out: FakeOutbox) -> list[str]:
    return [r["error_code"] for r in replies(out) if not r["success"]]


def cancels_to_backend(out: FakeOutbox) -> list[dict[str, Any]]:
    headers = [decode_header(frames[1]) for identity, frames in out.backends if identity == REAL]
    return [h.fields for h in headers if h.kind == CANCEL]


def test_acks_renew_the_deadline_of_a_consumer_slow_to_ack_its_last_chunks(setup: Setup) -> None:
    """The issue's case: timeout_ms=2000, every chunk sent by 1.4 s, acks trickling in 1.5 s apart."""
    core, out, clock = setup
    send_request(core, "download_file", ARGS, timeout_ms=2000)
    for index in range(8):
        clock.now += 0.175
        chunk(core, index)
    for index in range(8):
        wait(core, clock, 1.5)
        ack(core, index)
    assert replies(out) == [], "no TIMEOUT while the consumer keeps acking"
    answer(core, REAL, "r1", responses.success({"sha256": "x"}, mode="real"))
    assert [r["success"] for r in replies(out)] == [True]


def test_a_repeated_ack_does_not_keep_a_stream_alive(setup: Setup) -> None:
    core, out, clock = setup
    send_request(core, "download_file", ARGS, timeout_ms=2000)
    chunk(core, 0)
    for _ in range(3):
        wait(core, clock, 1.5)
        ack(core, 0)  # only the first counts: the backend sent nothing since
    assert errors(out) == ["TIMEOUT"]


def test_an_unacked_stream_is_abandoned_when_the_backend_drops_it_not_a_deadline_later(setup: Setup) -> None:
    core, out, clock = setup
    send_request(core, "download_file", ARGS)  # its own deadline: 60 s
    for index in range(8):
        chunk(core, index)  # the window is full: the backend waits for acks that never come
    wait(core, clock, STREAM_IDLE_TIMEOUT_S - 1)
    assert replies(out) == []
    wait(core, clock, 1.5)
    assert errors(out) == ["STREAM_ABANDONED"]
    assert "chunk 0" in replies(out)[0]["message"]
    # The backend is told to let go at once, whether or not it got there first.
    assert [c["reply_to"] for c in cancels_to_backend(out)] == ["r1"]
    # The backend's own answer (it drops the stream at the same limit) comes too late to count.
    answer(core, REAL, "r1", responses.error(ErrorCode.STREAM_ABANDONED, "dropped", mode="real"))
    assert len(replies(out)) == 1


def test_a_backend_that_stops_sending_is_a_timeout_not_an_abandoned_stream(setup: Setup) -> None:
    core, out, clock = setup
    send_request(core, "download_file", ARGS, timeout_ms=5000)
    chunk(core, 0)
    ack(core, 0)
    wait(core, clock, 5.5)
    assert errors(out) == ["TIMEOUT"]


def test_an_abandoned_stream_is_retryable_so_a_resent_id_downloads_again(setup: Setup) -> None:
    assert ErrorCode.STREAM_ABANDONED.value in RETRYABLE
    core, out, clock = setup
    send_request(core, "download_file", ARGS, timeout_ms=2000)
    chunk(core, 0)
    wait(core, clock, 2.5)
    assert errors(out) == ["STREAM_ABANDONED"]
    send_request(core, "download_file", ARGS, timeout_ms=2000)
    assert len(out.requests_to(REAL)) == 2 and len(replies(out)) == 1
    assert decode(out.requests_to(REAL)[-1][2]) == ARGS
