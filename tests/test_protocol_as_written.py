"""What docs/protocol.md states about 0-byte downloads, recordings and the tap, held to the code
(issue 10, item 9). get_files with an unknown client is NOT_FOUND: tests/contract/test_files.py."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

import pytest
import zmq

from actors.backends.content_check import StoredFile, checked_stream
from actors.bridge.auth.authority import Authority
from actors.bridge.config import BridgeConfig
from actors.bridge.taps import FileRecorder, SocketTap
from client.download import DownloadWriter
from protocol import responses
from protocol.codec import decode, encode
from protocol.envelope import ACK, CHUNK, EVENT, decode_header, encode_header
from protocol.modes import Policy
from protocol.recording import DIRECTIONS, read_recording
from protocol.streaming import StreamSender
from tests.bridge_auth import make_authority
from tests.test_bridge_core import CLIENT, MOCK, answer, api_key, from_backend, make_core, ready, request

pytestmark = pytest.mark.timeout(30)

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


# -- 0-byte downloads: 0 chunks --


def test_a_zero_byte_stream_is_no_chunk_and_an_immediate_final_reply() -> None:
    sender = StreamSender("r1", total=0, read_at=lambda offset, length: pytest.fail("nothing to read"))
    assert sender.chunk_count == 0 and list(sender.ready_chunks()) == [] and sender.done
    file = StoredFile("f", "empty.txt", "/e/empty.txt", EMPTY_SHA256, "/tmp/empty.txt")
    stream = checked_stream(file, 0, lambda offset, length: b"", False, lambda data, message: data)
    final = stream.final()
    assert (final["size"], final["chunks"], final["sha256"], final["damaged"]) == (0, 0, EMPTY_SHA256, False)


def test_a_download_of_no_chunk_writes_an_empty_file(tmp_path: Path) -> None:
    writer = DownloadWriter(str(tmp_path / "empty.txt"))
    reply = writer.finish(responses.as_reply(responses.success({"sha256": EMPTY_SHA256, "size": 0}, mode="real")))
    assert reply["success"] and (tmp_path / "empty.txt").read_bytes() == b""
    assert "0 chunks" in DOC and "A 0-byte file is 0 chunks" in DOC


# -- the recording's directions, and its started_at --


class ListTap:
    active = True

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (direction, kind)

    def record(self, direction: str, header: bytes, body: bytes) -> None:
        self.seen.append((direction, decode_header(header).kind))


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    authority, _ = make_authority(tmp_path_factory.mktemp("as-written"))
    return authority


def test_the_bridge_taps_exactly_the_documented_directions(trust: Authority) -> None:
    core, _, _ = make_core(trust, BridgeConfig(policy=Policy.READS))
    tap = ListTap()
    core.taps.append(tap)
    ready(core, MOCK, "mock")  # the bridge publishes bridge.* events
    request(core, "download_file", {"file_id": "f", "destination_path": "/tmp/x"})
    from_backend(core, MOCK, [CLIENT, encode_header(CHUNK, reply_to="r1", index=0, offset=0, total=1), b"x"])
    core.on_frontend([CLIENT, encode_header(ACK, reply_to="r1", index=0), b""], api_key(core), "127.0.0.1")
    answer(core, MOCK, "r1", responses.success({}, mode="mock"))
    from_backend(core, MOCK, [b"", encode_header(EVENT, topic="activity", ts=1.0), encode({})])
    assert set(tap.seen) == {
        ("client->bridge", "request"),
        ("client->bridge", "ack"),
        ("bridge->client", "chunk"),
        ("bridge->client", "reply"),
        ("event", "event"),
    }
    assert {direction for direction, _ in tap.seen} == set(DIRECTIONS)
    for direction in DIRECTIONS:
        assert f"| `{direction}` |" in DOC


def test_a_recording_starts_at_a_float_unix_time(tmp_path: Path) -> None:
    path = tmp_path / "r.rec"
    before = time.time()
    recorder = FileRecorder(path, seed=None, config={})
    recorder.record("client->bridge", encode_header("ack", reply_to="r", index=0), b"")
    recorder.close()
    with open(path, "rb") as stream:
        header, entries = read_recording(stream)
        (entry,) = list(entries)
    assert type(header["started_at"]) is float and before <= header["started_at"] <= time.time()
    assert type(entry.t) is float and entry.direction in DIRECTIONS
    assert "`started_at` is a float: Unix time in seconds" in DOC


# -- the tap's framing --


def test_the_tap_publishes_direction_header_body_and_a_wall_clock_ts() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    tap = SocketTap(ctx, "inproc://tap-framing", lambda sock: None)
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    try:
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect("inproc://tap-framing")
        assert tap.sock.poll(5000), "the subscription never reached the tap"
        tap.on_subscription([tap.sock.recv()])
        assert tap.active
        header = encode_header("request", id="r1", op="login", auth="secret-token")
        before = time.time()
        tap.record("client->bridge", header, encode({"username": "u", "password": "p"}))
        assert sub.poll(5000)
        frames: list[Any] = sub.recv_multipart()
        assert len(frames) == 4
        direction, head, body, ts = frames
        assert direction == b"client->bridge"
        assert decode_header(head).fields.get("auth") is None and decode_header(head).fields["op"] == "login"
        assert decode(body) == {"username": "u"}  # secrets removed
        assert before <= float(ts.decode("ascii")) <= time.time()
    finally:
        sub.close(0)
        tap.close()
    assert "four frames, `[direction, header, body, ts]`" in DOC
