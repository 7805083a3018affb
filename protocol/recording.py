"""The recording format: an append-only msgpack stream.

The first object is a header ``{format, format_version, protocol_version, seed,
started_at, config}`` (``started_at``: a float, Unix time in seconds); every later object
is an entry ``{t, direction, envelope}`` where ``t`` is seconds since the start,
``direction`` is one of ``DIRECTIONS`` and ``envelope`` is ``{header: map, body: any}``.
Each entry is flushed as it is written, so a crash loses at most the entry being written.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import msgpack

from protocol import PROTOCOL_VERSION
from protocol.catalogue import OPERATIONS
from protocol.codec import decode, encode
from protocol.envelope import CHUNK, decode_header
from protocol.errors import ProtocolError

FORMAT = "backup-console-recording"
# Which way a message went: an entry's ``direction``, and the first frame of the bridge's tap.
CLIENT_TO_BRIDGE = "client->bridge"  # requests, acks and cancels
BRIDGE_TO_CLIENT = "bridge->client"  # replies and stream chunks
EVENT = "event"  # events the bridge published
DIRECTIONS = (CLIENT_TO_BRIDGE, BRIDGE_TO_CLIENT, EVENT)
FORMAT_VERSION = 1
SECRET_MARKERS = ("key", "token", "secret", "password", "totp", "auth", "otpauth")


class RecordingError(Exception):
    """A recording cannot be read; names the byte offset where it went wrong."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.offset = offset


# Whatever the catalogue marks secret is dropped too, even under a name no marker catches.
CATALOGUE_SECRETS: frozenset[str] = frozenset(
    name for op in OPERATIONS for name in (*op.secret_args, *op.secret_results)
)


def is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return name in CATALOGUE_SECRETS or any(m in lowered for m in SECRET_MARKERS)


def scrub_secrets(value: Any) -> Any:
    """Drop map entries whose key names a secret, at any depth (headers and bodies alike)."""
    if isinstance(value, dict):
        return {k: scrub_secrets(v) for k, v in value.items() if not (isinstance(k, str) and is_secret_name(k))}
    if isinstance(value, list):
        return [scrub_secrets(v) for v in value]
    return value


def scrubbed_frames(header: bytes, body: bytes) -> tuple[bytes, bytes] | None:
    """A message's frames with every secret removed, for a tap; None when the header is unreadable.

    Frames without a secret come back as they were (no re-encoding); chunk bodies are raw bytes."""
    try:
        fields, payload = envelope_parts(header, body)
    except ProtocolError:
        return None
    clean_fields = scrub_secrets(fields)
    if len(clean_fields) != len(fields):
        header = encode(clean_fields)
    if isinstance(payload, (dict, list)):
        clean = scrub_secrets(payload)
        if clean != payload:
            body = encode(clean)
    return header, body


def envelope_parts(header: bytes, body: bytes) -> tuple[dict[str, Any], Any]:
    """Decode a message's frames for a recording; chunk bodies (raw bytes) stay bytes.
    Raises ProtocolError for an unreadable header; an unreadable body is kept as bytes."""
    parsed = decode_header(header)
    if parsed.kind == CHUNK:
        return parsed.fields, body
    if not body:
        return parsed.fields, None
    try:
        return parsed.fields, decode(body)
    except ProtocolError:
        return parsed.fields, body


def make_header(*, seed: int | None, started_at: float, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "protocol_version": PROTOCOL_VERSION,
        "seed": seed,
        "started_at": started_at,
        "config": scrub_secrets(config),
    }


@dataclass(slots=True)
class RecordedMessage:
    t: float
    direction: str
    envelope: dict[str, Any]


class RecordingWriter:
    def __init__(self, stream: IO[bytes], header: dict[str, Any] | None) -> None:
        """``header`` None continues a recording that already has one."""
        self._stream = stream
        if header is not None:
            self._write(header)

    def _write(self, value: Any) -> None:
        self._stream.write(encode(value))
        self._stream.flush()

    def append(self, t: float, direction: str, header: dict[str, Any], body: Any) -> None:
        envelope = {"header": scrub_secrets(header), "body": scrub_secrets(body)}
        self._write({"t": t, "direction": direction, "envelope": envelope})


def read_recording(stream: IO[bytes]) -> tuple[dict[str, Any], Iterator[RecordedMessage]]:
    """Return the header and an iterator of entries; raises RecordingError naming the offset."""
    unpacker = msgpack.Unpacker(stream, raw=False, timestamp=3, strict_map_key=False)
    try:
        header = unpacker.unpack()
    except msgpack.OutOfData:
        raise RecordingError("recording is empty or its header is truncated", 0) from None
    except Exception as exc:
        raise RecordingError(f"recording header is corrupt: {exc}", 0) from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingError(f"not a {FORMAT} file", 0)
    if header.get("format_version") != FORMAT_VERSION:
        raise RecordingError(f"unsupported recording format_version {header.get('format_version')!r}", 0)

    def entries() -> Iterator[RecordedMessage]:
        while True:
            offset = unpacker.tell()
            try:
                raw = unpacker.unpack()
            except msgpack.OutOfData:
                if unpacker.tell() != offset or stream.read(1):
                    raise RecordingError("recording is truncated inside an entry", offset) from None
                return
            except Exception as exc:
                raise RecordingError(f"corrupt entry: {exc}", offset) from None
            if not (isinstance(raw, dict) and {"t", "direction", "envelope"} <= raw.keys()):
                raise RecordingError("entry lacks t, direction or envelope", offset)
            yield RecordedMessage(raw["t"], raw["direction"], raw["envelope"])

    return header, entries()


@dataclass(slots=True)
class RecordedExchange:
    """One request of a recording with what answered it."""

    t: float
    request_id: str
    op: str
    args: Any
    session: str | None
    reply: dict[str, Any] | None = None
    chunks: list[bytes] | None = None


@dataclass(slots=True)
class RecordedEvent:
    t: float
    topic: str
    mode: str | None
    data: Any


@dataclass
class RecordingIndex:
    header: dict[str, Any]
    exchanges: list[RecordedExchange]
    events: list[RecordedEvent]
    duration: float


def index_recording(header: dict[str, Any], entries: Iterator[RecordedMessage]) -> RecordingIndex:
    """Pair each recorded request with its reply (and stream chunks); list the events."""
    exchanges: list[RecordedExchange] = []
    by_id: dict[str, RecordedExchange] = {}
    events: list[RecordedEvent] = []
    last_t = 0.0
    for entry in entries:
        last_t = max(last_t, float(entry.t))
        head = entry.envelope.get("header") or {}
        body = entry.envelope.get("body")
        kind = head.get("kind")
        if entry.direction == CLIENT_TO_BRIDGE and kind == "request":
            exchange = RecordedExchange(entry.t, head.get("id", ""), head.get("op", ""), body, head.get("session"))
            exchanges.append(exchange)
            by_id[exchange.request_id] = exchange
        elif entry.direction == BRIDGE_TO_CLIENT:
            answered = by_id.get(head.get("reply_to") or "")
            if answered is None:
                continue
            exchange = answered
            if kind == "chunk":
                exchange.chunks = (exchange.chunks or []) + [body if isinstance(body, bytes) else b""]
            elif kind == "reply" and isinstance(body, dict):
                exchange.reply = body
        elif entry.direction == EVENT:
            events.append(RecordedEvent(entry.t, head.get("topic", ""), head.get("mode"), body))
    return RecordingIndex(header, exchanges, events, last_t)
