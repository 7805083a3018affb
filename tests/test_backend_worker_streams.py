"""BackendWorker's side of a stream, without sockets: an abandoned stream is answered, and a
stream whose content turns out damaged ends with that error, not a crash (issue 10, item 9)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from actors.backends.api import RequestContext, StreamReply
from actors.backends.worker import BackendWorker
from protocol import responses
from protocol.codec import decode
from protocol.envelope import ACK, CHUNK, REPLY, decode_header, encode_header, request_frames
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode
from protocol.streaming import CHUNK_SIZE, STREAM_IDLE_TIMEOUT_S, WINDOW

pytestmark = pytest.mark.timeout(30)

ROUTE = b"client-1"
SIZE = (WINDOW + 2) * CHUNK_SIZE  # more than one window: the stream stalls on acks


class StreamingCore:
    """A core whose only operation streams SIZE bytes and ends with ``final``."""

    name = "real"
    mode = Mode.REAL

    def __init__(self, final: Callable[[], dict[str, Any]]) -> None:
        self.final = final

    def operations(self) -> list[str]:
        return ["download_file"]

    def handle(self, op: str, args: dict[str, Any], ctx: RequestContext) -> StreamReply:
        return StreamReply(total=SIZE, read_at=lambda offset, length: b"x" * length, final=self.final)

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        return []

    def tick(self) -> None:
        pass

    def tick_interval(self) -> float:
        return 3600.0

    def close(self) -> None:
        pass


class CapturingWorker(BackendWorker):
    """Keeps the frames it would send the bridge."""

    def __init__(self, core: StreamingCore) -> None:
        super().__init__(core, "inproc://never-connected")
        self.sent: list[list[bytes]] = []

    def _send(self, frames: list[bytes]) -> None:
        self.sent.append(frames)


def make_worker(final: Callable[[], dict[str, Any]]) -> tuple[BackendWorker, list[list[bytes]]]:
    worker = CapturingWorker(StreamingCore(final))
    args = {"file_id": "f", "destination_path": "/tmp/x"}
    worker._on_message([ROUTE, *request_frames("r1", "download_file", args)])
    return worker, worker.sent


def kinds(sent: list[list[bytes]]) -> list[str]:
    return [decode_header(frames[1]).kind for frames in sent if frames[0] == ROUTE]


def final_reply(sent: list[list[bytes]]) -> dict[str, Any]:
    (reply,) = [frames for frames in sent if frames[0] == ROUTE and decode_header(frames[1]).kind == REPLY]
    answer: dict[str, Any] = decode(reply[2])
    return answer


def test_a_stream_nobody_acks_is_dropped_and_answered_stream_abandoned() -> None:
    worker, sent = make_worker(lambda: responses.success({}, mode="real"))
    assert kinds(sent) == [CHUNK] * WINDOW  # then it waits for acks
    later = time.monotonic() + STREAM_IDLE_TIMEOUT_S + 1
    worker._bridge_seen = later  # the bridge is there; only the requester went quiet
    worker._timers(later)
    assert worker.streams == {}
    reply = final_reply(sent)
    assert reply["error_code"] == ErrorCode.STREAM_ABANDONED and reply["mode"] == "real"
    assert "no ack for 30s after chunk 0 of 10" in reply["message"]


def test_an_acked_stream_is_kept_past_the_idle_limit_of_its_start() -> None:
    worker, sent = make_worker(lambda: responses.success({}, mode="real"))
    stream = next(iter(worker.streams.values()))
    stream.last_activity -= STREAM_IDLE_TIMEOUT_S - 1  # it started long ago ...
    worker._on_message([ROUTE, encode_header(ACK, reply_to="r1", index=0), b""])  # ... but an ack just came
    later = time.monotonic() + 2
    worker._bridge_seen = later
    worker._timers(later)
    assert len(worker.streams) == 1 and REPLY not in kinds(sent)


def test_a_final_that_finds_the_content_damaged_is_the_stream_s_error_reply() -> None:
    def damaged() -> dict[str, Any]:
        raise ProtocolError(ErrorCode.FILE_DAMAGED, "rotten", expected_sha256="a" * 64, actual_sha256="b" * 64)

    worker, sent = make_worker(damaged)
    for index in range(SIZE // CHUNK_SIZE):
        worker._on_message([ROUTE, encode_header(ACK, reply_to="r1", index=index), b""])
    reply = final_reply(sent)
    assert reply["error_code"] == ErrorCode.FILE_DAMAGED and reply["mode"] == "real"
    assert reply["details"] == {"expected_sha256": "a" * 64, "actual_sha256": "b" * 64}
    assert worker.streams == {}
