"""protocol/: purity, codec, envelope validation, catalogue validation, streaming, recording."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime

import msgpack
import pytest

from protocol import PROTOCOL_VERSION
from protocol.catalogue import CATALOGUE, OPERATIONS, get_operation
from protocol.codec import decode, encode
from protocol.envelope import REQUEST, decode_header, encode_header, reply_frames, request_frames
from protocol.errors import ErrorCode, ProtocolError
from protocol.operation import Arg, ArgType
from protocol.recording import RecordingError, RecordingWriter, make_header, read_recording
from protocol.responses import error, success
from protocol.streaming import StreamReceiver, StreamSender

pytestmark = pytest.mark.timeout(30)


@pytest.mark.processes
def test_importing_protocol_does_not_import_zmq() -> None:
    code = (
        "import sys, pkgutil, importlib, protocol\n"
        "for m in pkgutil.iter_modules(protocol.__path__): importlib.import_module('protocol.' + m.name)\n"
        "bad = [n for n in sys.modules if n == 'zmq' or n.startswith('zmq.') or n.split('.')[0] in "
        "('actors', 'client', 'gui', 'runtime')]\n"
        "print(','.join(bad)); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"protocol imports {result.stdout} / {result.stderr}"


def test_codec_round_trips_datetimes_as_utc() -> None:
    aware = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    naive = datetime(2026, 1, 2, 3, 4, 5)
    out = decode(encode({"a": aware, "b": naive, "c": [1, "x", b"\x00"]}))
    assert out["a"] == aware
    assert out["b"] == naive.replace(tzinfo=UTC)
    assert out["c"] == [1, "x", b"\x00"]


def test_codec_size_limit_and_garbage() -> None:
    with pytest.raises(ProtocolError) as big:
        decode(b"\x00" * 101, max_size=100)
    assert big.value.code is ErrorCode.PAYLOAD_TOO_LARGE
    for garbage in (b"\xc1", b"\x92\x01", encode(1) + b"extra", b"\x91" * 100_000):
        with pytest.raises(ProtocolError) as bad:
            decode(garbage)
        assert bad.value.code is ErrorCode.BAD_REQUEST


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ({"kind": "request", "id": "a", "op": "x"}, ErrorCode.BAD_REQUEST),  # no version
        ({"v": 99, "kind": "request", "id": "a", "op": "x"}, ErrorCode.UNSUPPORTED_VERSION),
        ({"v": PROTOCOL_VERSION, "kind": "nonsense"}, ErrorCode.BAD_REQUEST),
        ({"v": PROTOCOL_VERSION, "kind": "request", "op": "x"}, ErrorCode.BAD_REQUEST),  # no id
        ({"v": PROTOCOL_VERSION, "kind": "request", "id": 5, "op": "x"}, ErrorCode.BAD_REQUEST),
        ({"v": PROTOCOL_VERSION, "kind": "request", "id": "", "op": "x"}, ErrorCode.BAD_REQUEST),
        ({"v": PROTOCOL_VERSION, "kind": "request", "id": "a", "op": "x", "timeout_ms": True}, ErrorCode.BAD_REQUEST),
        ({"v": PROTOCOL_VERSION, "kind": "request", "id": "a", "op": "x", "timeout_ms": -1}, ErrorCode.BAD_REQUEST),
        ({"v": True, "kind": "request", "id": "a", "op": "x"}, ErrorCode.BAD_REQUEST),
        ([1, 2], ErrorCode.BAD_REQUEST),
    ],
)
def test_header_validation(header: object, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as exc:
        decode_header(msgpack.packb(header))
    assert exc.value.code is code


def test_header_ignores_unknown_fields() -> None:
    header = decode_header(encode_header(REQUEST, id="r1", op="get_clients", future_field={"x": 1}))
    assert header.kind == REQUEST and header.op == "get_clients" and header.id == "r1"


def test_request_and_reply_frames() -> None:
    header, body = request_frames("r1", "get_files", {"limit": 5}, session="s", timeout_ms=100)
    parsed = decode_header(header)
    assert (parsed.op, parsed.get("session"), parsed.get("timeout_ms")) == ("get_files", "s", 100)
    assert decode(body) == {"limit": 5}
    rh, rb = reply_frames("r1", error(ErrorCode.NOT_FOUND, "nope", mode="mock"))
    reply_header = decode_header(rh)
    assert reply_header.fields["ok"] is False and reply_header.fields["error_code"] == "NOT_FOUND"
    assert reply_header.fields["mode"] == "mock" and decode(rb)["message"] == "nope"


def test_response_builders_have_the_standard_fields() -> None:
    ok = success({"x": 1}, "fine", mode="real")
    assert {"success", "message", "mode", "timestamp", "data"} <= ok.keys() and ok["success"] is True
    bad = error(ErrorCode.CONFLICT, "busy", mode="mock", details={"a": 1})
    assert bad["success"] is False and bad["error_code"] == "CONFLICT" and bad["details"] == {"a": 1}


def test_catalogue_covers_the_seed_api() -> None:
    seed = {
        "get_clients",
        "get_client_details",
        "resolve_client",
        "disconnect_client",
        "delete_client",
        "get_files",
        "get_client_files",
        "delete_file",
        "download_file",
        "verify_file",
        "get_database_info",
        "get_table_data",
        "update_row",
        "delete_row",
        "get_server_status",
        "get_system_status",
        "get_recent_activity",
        "start_server",
        "stop_server",
        "get_logs",
        "test_connection",
        "events_since",
        "bridge_status",
    }
    assert seed <= set(CATALOGUE)
    assert len({op.name for op in OPERATIONS}) == len(OPERATIONS)
    assert "get_all_clients_from_db" in CATALOGUE["get_clients"].aliases


def test_argument_validation() -> None:
    op = get_operation("get_files")
    assert op.validate_args({}) == {"client_id": None, "offset": 0, "limit": 100, "filters": None}
    for bad in ({"limit": "5"}, {"limit": 0}, {"limit": True}, {"nope": 1}, {"offset": -1}, [1]):
        with pytest.raises(ProtocolError) as exc:
            op.validate_args(bad)
        assert exc.value.code is ErrorCode.BAD_REQUEST
    with pytest.raises(ProtocolError) as missing:
        get_operation("delete_client").validate_args({})
    assert "client_id" in missing.value.message
    with pytest.raises(ProtocolError) as unknown:
        get_operation("drop_everything")
    assert unknown.value.code is ErrorCode.UNKNOWN_OPERATION
    assert (
        get_operation("update_row").validate_args({"table_name": "t", "row_id": 3, "updated_data": {}})["row_id"] == 3
    )


def test_stream_sender_respects_credit_and_receiver_checks_order() -> None:
    content = bytes(range(256)) * 40  # 10 240 bytes
    sender = StreamSender("r", len(content), lambda off, n: content[off : off + n], window=3, chunk_size=1000)
    receiver = StreamReceiver("r")
    sent = list(sender.ready_chunks())
    assert len(sent) == 3 and not list(sender.ready_chunks())  # window exhausted
    while not sender.done:
        for header, data in sent:
            h = decode_header(header)
            receiver.on_chunk(h.fields["index"], h.fields["offset"], h.fields["total"], data)
            sender.on_ack(h.fields["index"])
        sent = list(sender.ready_chunks())
    assert receiver.received == len(content) == receiver.total
    import hashlib

    assert receiver.sha256 == hashlib.sha256(content).hexdigest()
    with pytest.raises(ProtocolError):
        StreamReceiver("r").on_chunk(1, 1000, 10, b"x")


def test_recording_round_trip_scrubs_secrets_and_names_corrupt_offset() -> None:
    buf = io.BytesIO()
    writer = RecordingWriter(buf, make_header(seed=7, started_at=1.0, config={"agent_key": "s3cret", "port": 5}))
    writer.append(0.5, "client->bridge", {"kind": "request", "op": "x"}, {"token": "t", "a": 1})
    data = buf.getvalue()
    header, entries = read_recording(io.BytesIO(data))
    assert header["seed"] == 7 and header["config"] == {"port": 5}
    (entry,) = list(entries)
    assert entry.direction == "client->bridge" and entry.envelope["body"] == {"a": 1}
    _, truncated = read_recording(io.BytesIO(data[:-3]))
    with pytest.raises(RecordingError) as exc:
        list(truncated)
    assert exc.value.offset > 0
    with pytest.raises(RecordingError):
        read_recording(io.BytesIO(b""))


@pytest.mark.parametrize("big", [2**63, 2**64 - 1])
def test_integers_beyond_64_bits_are_bad_request_in_any_frame(big: int) -> None:
    for value in ({"offset": big}, {"filters": {"size": [1, big]}}, {big: "as a key"}, big):
        with pytest.raises(ProtocolError) as exc:
            decode(encode(value))
        assert exc.value.code is ErrorCode.BAD_REQUEST and "64-bit" in exc.value.message
    header = encode({"v": 1, "kind": "request", "id": "r", "op": "get_clients", "timeout_ms": big})
    with pytest.raises(ProtocolError, match="64-bit"):
        decode_header(header)


def test_the_64_bit_limits_themselves_pass() -> None:
    edges = {"low": -(2**63), "high": 2**63 - 1, "size": 2**40}
    assert decode(encode(edges)) == edges


def test_arguments_without_declared_bounds_are_still_64_bit() -> None:
    assert CATALOGUE["get_clients"].validate_args({"offset": 2**63 - 1})["offset"] == 2**63 - 1
    unbounded = Arg("n", ArgType.INTEGER, "An integer with no declared bounds.")
    for arg, value in ((CATALOGUE["get_clients"].args[0], 2**63), (unbounded, 2**63), (unbounded, -(2**63) - 1)):
        with pytest.raises(ProtocolError, match=r"must be [<>]= -?9223372036854775") as exc:
            arg.validate(value)
        assert exc.value.code is ErrorCode.BAD_REQUEST
