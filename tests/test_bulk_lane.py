"""The bulk lane over real CURVE sockets: a ticket gets its stream to the key it names, once, in time; nothing else
gets anything (actors/backends/lane.py, client/lane.py)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
import zmq
from zmq.auth.thread import ThreadAuthenticator

from actors.backends.api import StreamReply
from actors.backends.lane import BulkLane, TicketBook
from actors.bridge.auth.principals import Acting, Principal, PrincipalKind
from actors.bridge.config import Pending
from actors.bridge.lanes import backend_header, forwarded_header, wants_lane
from actors.bridge.registry import Backend
from client import lane as client_lane
from client.download import DownloadWriter
from client.lane import LaneUnreachable
from protocol import responses
from protocol.catalogue import CATALOGUE
from protocol.envelope import TICKET, Header, decode_header, encode_header
from protocol.errors import ErrorCode
from protocol.lane import LANE_CHUNK_SIZE, ZAP_DOMAIN, redeem_frames
from protocol.modes import Mode
from protocol.recording import scrubbed_frames
from protocol.roles import Role
from runtime.credentials import ConnectionFile
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)

CONTENT = os.urandom(3 * LANE_CHUNK_SIZE + 12345)  # several chunks and a short last one


def connection(name: str) -> ConnectionFile:
    public, secret = zmq.curve_keypair()
    unused = "tcp://127.0.0.1:1"
    return ConnectionFile(unused, unused, unused, unused, public.decode(), public.decode(), secret.decode(), name=name)


def stream_of(data: bytes) -> StreamReply:
    def final() -> dict[str, Any]:
        return responses.success({"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}, mode=Mode.REAL)

    return StreamReply(len(data), lambda offset, length: data[offset : offset + length], final)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Served:
    lane: BulkLane
    clock: FakeClock
    ctx: zmq.Context[Any]

    def ticket(self, key: str, request_id: str = "req-1", data: bytes = CONTENT) -> Header:
        token = self.lane.issue(key, request_id, stream_of(data))
        ipc = {"ipc_endpoint": self.lane.ipc_endpoint} if self.lane.ipc_endpoint else {}
        frame = encode_header(
            TICKET, reply_to=request_id, token=token, endpoint=self.lane.endpoint, server_key=SERVER.public_key, **ipc
        )
        return decode_header(frame)


SERVER = connection("server")


@pytest.fixture
def served() -> Iterator[Served]:
    with serving() as lane:
        yield lane


@contextlib.contextmanager
def serving(ipc_path: Path | None = None) -> Iterator[Served]:
    """A bulk lane served by a thread, as the worker's loop serves it, with its ZAP handler."""
    ctx: zmq.Context[Any] = zmq.Context()
    auth = ThreadAuthenticator(ctx, log=structlog.get_logger().bind(logger="zmq.auth"))
    auth.start()
    clock = FakeClock()
    book = TicketBook(ttl=10.0, clock=clock)
    lane = BulkLane(ctx, "tcp://127.0.0.1:0", SERVER, Mode.REAL, book=book, ipc_path=ipc_path)
    auth.configure_curve_callback(ZAP_DOMAIN, lane.book)
    stop = threading.Event()
    poller = zmq.Poller()
    handlers = dict(lane.sockets())
    for sock in handlers:
        poller.register(sock, zmq.POLLIN)

    def loop() -> None:
        while not stop.is_set():
            for sock, _ in poller.poll(20):
                handlers[sock]()
            lane.timers(time.monotonic())

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield Served(lane, clock, ctx)
    finally:
        stop.set()
        thread.join(5)
        lane.close()
        auth.stop()
        ctx.term()


def fetch(served: Served, who: ConnectionFile, ticket: Header, into: list[bytes] | None = None) -> dict[str, Any]:
    got = into if into is not None else []

    def on_chunk(header: Header, data: bytes | memoryview) -> list[bytes]:
        got.append(bytes(data))
        return [encode_header("ack", reply_to=header.reply_to, index=header.fields["index"]), b""]

    # A refused handshake is silence: wait less than the ticket's lifetime for it.
    return dict(client_lane.fetch(served.ctx, who, "download_archive", ticket, on_chunk, 5.0, first_wait=1.5))


def test_the_key_a_ticket_names_gets_its_stream_in_order_and_then_the_final_reply(served: Served) -> None:
    alice = connection("alice")
    got: list[bytes] = []
    reply = fetch(served, alice, served.ticket(alice.public_key), got)
    assert reply["success"] is True and reply["mode"] == "real"
    assert b"".join(got) == CONTENT and len(got) == 4 and reply["data"]["size"] == len(CONTENT)
    assert len(served.lane.book) == 0 and not served.lane.streams  # used up, and nothing left in flight


def test_the_download_writer_takes_a_lane_stream_and_checks_it(served: Served, tmp_path: Any) -> None:
    alice = connection("alice")
    writer = DownloadWriter(str(tmp_path / "out.bin"))
    reply = writer.finish(
        client_lane.fetch(served.ctx, alice, "download_file", served.ticket(alice.public_key), writer.on_chunk, 5.0)
    )
    assert reply["success"] is True and (tmp_path / "out.bin").read_bytes() == CONTENT


def test_another_key_is_refused_at_the_handshake_and_gets_nothing(served: Served) -> None:
    alice, mallory = connection("alice"), connection("mallory")
    ticket = served.ticket(alice.public_key)
    got: list[bytes] = []
    with pytest.raises(LaneUnreachable):  # silence: mallory has alice's token, not her key
        fetch(served, mallory, ticket, got)
    assert got == []
    assert fetch(served, alice, ticket)["success"] is True  # the ticket was not used up by the attempt


def test_a_key_with_a_ticket_of_its_own_cannot_redeem_someone_elses(served: Served) -> None:
    alice, mallory = connection("alice"), connection("mallory")
    alices = served.ticket(alice.public_key, "req-alice")
    served.ticket(mallory.public_key, "req-mallory")  # lets mallory's handshake through
    got: list[bytes] = []
    reply = fetch(served, mallory, alices, got)
    assert reply["error_code"] == ErrorCode.FORBIDDEN.value and got == []
    assert fetch(served, alice, alices)["success"] is True


def test_a_ticket_is_used_once(served: Served) -> None:
    alice = connection("alice")
    ticket = served.ticket(alice.public_key)
    assert fetch(served, alice, ticket)["success"] is True
    served.ticket(alice.public_key, "req-2")  # alice may still connect, with a live ticket of hers
    got: list[bytes] = []
    again = fetch(served, alice, ticket, got)
    assert again["error_code"] == ErrorCode.FORBIDDEN.value and got == []


def test_an_expired_ticket_gets_nothing(served: Served) -> None:
    alice = connection("alice")
    ticket = served.ticket(alice.public_key)
    served.clock.now += 10.5
    got: list[bytes] = []
    with pytest.raises(LaneUnreachable):  # no live ticket: no handshake
        fetch(served, alice, ticket, got)
    assert got == []
    served.ticket(alice.public_key, "req-2")  # a fresh one lets her in, the old one still refused
    assert fetch(served, alice, ticket, got)["error_code"] == ErrorCode.FORBIDDEN.value and got == []


def test_a_forged_token_gets_nothing(served: Served) -> None:
    alice = connection("alice")
    served.ticket(alice.public_key)
    forged = decode_header(
        encode_header(
            TICKET, reply_to="req-1", token="x" * 43, endpoint=served.lane.endpoint, server_key=SERVER.public_key
        )
    )
    assert fetch(served, alice, forged)["error_code"] == ErrorCode.FORBIDDEN.value


def test_the_requester_must_trust_the_registered_server_key(served: Served) -> None:
    alice, impostor = connection("alice"), connection("impostor")
    ticket = served.ticket(alice.public_key)
    wrong = decode_header(
        encode_header(
            TICKET,
            reply_to="req-1",
            token=ticket.fields["token"],
            endpoint=served.lane.endpoint,
            server_key=impostor.public_key,
        )
    )
    with pytest.raises(LaneUnreachable):  # the handshake fails
        fetch(served, alice, wrong)
    assert fetch(served, alice, ticket)["success"] is True


def test_recordings_and_the_tap_never_carry_a_token() -> None:
    token = "t" * 43
    frame = encode_header(TICKET, reply_to="r", token=token, endpoint="tcp://127.0.0.1:1", server_key=SERVER.public_key)
    for header in (frame, redeem_frames(token)[0]):
        scrubbed = scrubbed_frames(header, b"")
        assert scrubbed is not None and token.encode() not in scrubbed[0] and b"token" not in scrubbed[0]


def pending_download(header: dict[str, Any], key: str) -> tuple[Header, Pending]:
    parsed = decode_header(encode_header("request", **header))
    frame = forwarded_header(parsed, encode_header("request", **header))
    acting = Acting.as_itself(Principal(PrincipalKind.API_KEY, key, "ada", Role.OPERATOR, "k1"))
    pending = Pending(b"id", "r1", "download_archive", False, None, frame, b"", [b"srv"], 10.0, 10.0, acting)
    pending.lane = wants_lane(parsed, CATALOGUE.get("download_archive"))
    return parsed, pending


def test_the_bridge_names_the_requesters_key_only_to_a_backend_with_a_lane_and_never_a_clients_own() -> None:
    alice = connection("alice")
    real = Backend(b"srv", "server", Mode.REAL, frozenset(), 0.0, 0.0, key=SERVER.public_key, bulk="tcp://h:1")
    mock = Backend(b"mock", "mock", Mode.MOCK, frozenset(), 0.0, 0.0)
    _, asked = pending_download(
        {"id": "r1", "op": "download_archive", "lane": True, "lane_key": "forged"}, alice.public_key
    )
    assert decode_header(backend_header(asked, real, recording=False)).get("lane_key") == alice.public_key
    for backend, recording in ((mock, False), (real, True)):  # no lane there, or a recording must hold the bytes
        assert "lane_key" not in decode_header(backend_header(asked, backend, recording=recording)).fields
    _, plain = pending_download({"id": "r1", "op": "download_archive", "lane_key": "forged"}, alice.public_key)
    assert "lane_key" not in decode_header(backend_header(plain, real, recording=False)).fields


def test_a_requester_that_fails_on_a_chunk_cancels_and_the_backend_lets_the_stream_go(served: Served) -> None:
    alice = connection("alice")
    seen: list[int] = []

    def on_chunk(header: Header, data: bytes | memoryview) -> list[bytes]:
        seen.append(header.fields["index"])
        if header.fields["index"] == 1:
            raise OSError("disk full")
        return [encode_header("ack", reply_to=header.reply_to, index=header.fields["index"]), b""]

    reply = client_lane.fetch(served.ctx, alice, "download_archive", served.ticket(alice.public_key), on_chunk, 5.0)
    assert reply["error_code"] == ErrorCode.INTERNAL.value and "disk full" in reply["message"] and seen == [0, 1]
    wait_until(lambda: not served.lane.streams, 5, what="the backend lets the cancelled stream go")


def test_refused_handshakes_are_counted(served: Served) -> None:
    before = served.lane.book.refused
    with pytest.raises(LaneUnreachable):
        fetch(served, connection("nobody"), served.ticket(connection("alice").public_key))
    assert served.lane.book.refused > before
