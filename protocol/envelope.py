"""The envelope: a small header frame for routing plus a body frame.

A message on the wire is two frames, ``[header, body]`` (ROUTER sockets add their
routing frames in front). The header is a msgpack map that names the message kind and
carries the routing fields; the body is a msgpack value (arguments, a reply, event
data) or, for stream chunks, raw bytes. Relays read the header and forward the body
untouched. Unknown header fields are ignored so newer peers can add fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from protocol import PROTOCOL_VERSION
from protocol.codec import DEFAULT_MAX_SIZE, decode, encode
from protocol.errors import ErrorCode, ProtocolError

MAX_HEADER_SIZE = 64 * 1024
MAX_ID_LENGTH = 128

# Message kinds and the header fields each requires (name -> accepted types).
REQUEST = "request"
REPLY = "reply"
CHUNK = "chunk"
ACK = "ack"
CANCEL = "cancel"
EVENT = "event"
READY = "ready"
HEARTBEAT = "heartbeat"
DISCONNECT = "disconnect"
CONTROL = "control"
TICKET = "ticket"  # a streamed reply to fetch from the backend's bulk lane (protocol/lane.py)

_STR = (str,)
_INT = (int,)
_BOOL = (bool,)
_LIST = (list,)
_OPT_STR = (str, type(None))
_OPT_INT = (int, type(None))
_NUM = (int, float)

REQUIRED_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {
    REQUEST: {"id": _STR, "op": _STR},
    REPLY: {"ok": _BOOL},  # reply_to is null only when the request could not be read
    CHUNK: {"reply_to": _STR, "index": _INT, "offset": _INT},
    ACK: {"reply_to": _STR, "index": _INT},
    CANCEL: {"reply_to": _STR},
    EVENT: {"topic": _STR},
    READY: {"name": _STR, "mode": _STR, "ops": _LIST},
    HEARTBEAT: {},
    DISCONNECT: {},
    CONTROL: {"op": _STR},
    TICKET: {"reply_to": _STR, "token": _STR},
}

OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {
    "session": _OPT_STR,
    "timeout_ms": _OPT_INT,
    "ts": (*_NUM, type(None)),
    "error_code": _OPT_STR,
    "mode": _OPT_STR,
    "seq": _OPT_INT,
    "total": _OPT_INT,
    "id": _OPT_STR,
    "reply_to": _OPT_STR,
    "epoch": _OPT_STR,
    # A user session token (from `login`) with which a GUI process acts for that user. The
    # bridge honours it only from the GUI key that signed in; it never reaches a backend's rights.
    "auth": _OPT_STR,
    # The bulk lane (protocol/lane.py): a requester asks for it, the bridge names the requester's
    # key to a backend that has one, a backend announces its endpoint, a ticket names where to fetch.
    "lane": _BOOL,
    "lane_key": _STR,
    "bulk": _STR,
    "bulk_ipc": _STR,  # the same-host door (a Unix socket), announced and passed on as ``ipc_endpoint``
    "ipc_endpoint": _STR,
    "endpoint": _STR,
    "server_key": _STR,
    "token": _STR,
}

KINDS = frozenset(REQUIRED_FIELDS)


@dataclass(slots=True)
class Header:
    """A validated header. ``fields`` holds every field as received (unknown ones too)."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    @property
    def id(self) -> str | None:
        return self.fields.get("id")

    @property
    def op(self) -> str | None:
        return self.fields.get("op")

    @property
    def reply_to(self) -> str | None:
        return self.fields.get("reply_to")


# Per kind: every field with a known type (required ones and the optional ones).
_FIELD_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    kind: {**OPTIONAL_FIELDS, **required} for kind, required in REQUIRED_FIELDS.items()
}
_ID_FIELDS = frozenset({"id", "reply_to", "session", "auth"})


def _type_error(name: str, value: Any, types: tuple[type, ...]) -> ProtocolError:
    wanted = "/".join("null" if t is type(None) else t.__name__ for t in types)
    return ProtocolError(
        ErrorCode.BAD_REQUEST, f"header field {name!r} must be {wanted}, got {type(value).__name__}", field=name
    )


def parse_header(value: Any) -> Header:
    """Validate an already-decoded header map (this runs for every message: keep it lean)."""
    if type(value) is not dict:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"header must be a map, got {type(value).__name__}")
    version = value.get("v")
    if version is None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "header field 'v' (protocol version) is missing", field="v")
    if type(version) is not int:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "header field 'v' must be int", field="v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            ErrorCode.UNSUPPORTED_VERSION,
            f"protocol version {version} is not supported (this peer speaks {PROTOCOL_VERSION})",
            supported=[PROTOCOL_VERSION],
        )
    kind = value.get("kind")
    if type(kind) is not str or kind not in KINDS:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"header field 'kind' must be one of {sorted(KINDS)}", field="kind")
    for name in REQUIRED_FIELDS[kind]:
        if name not in value:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{kind} header lacks required field {name!r}", field=name)
    known = _FIELD_TYPES[kind]
    for name, field_value in value.items():
        types = known.get(name)
        if types is None:
            continue  # unknown fields are ignored (forward compatibility)
        # Exact type match: msgpack yields exact types, and a bool must not pass as an int.
        if type(field_value) not in types:
            raise _type_error(name, field_value, types)
        if name in _ID_FIELDS and field_value is not None and not 0 < len(field_value) <= MAX_ID_LENGTH:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"header field {name!r} must be 1..{MAX_ID_LENGTH} characters")
    timeout = value.get("timeout_ms")
    if timeout is not None and timeout <= 0:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "header field 'timeout_ms' must be positive", field="timeout_ms")
    return Header(kind=kind, fields=value)


def decode_header(frame: bytes) -> Header:
    return parse_header(decode(frame, MAX_HEADER_SIZE))


def readable_id(frame: bytes) -> str | None:
    """The ``id`` of a header that failed validation, when it can still be read.

    The error reply then names that id, so the client waiting on it hears at once
    instead of timing out on a reply addressed to nobody.
    """
    if len(frame) > MAX_HEADER_SIZE:
        return None
    try:
        value = decode(frame, MAX_HEADER_SIZE)
    except ProtocolError:
        return None
    request_id = value.get("id") if type(value) is dict else None
    return request_id if type(request_id) is str and 0 < len(request_id) <= MAX_ID_LENGTH else None


def decode_body(frame: bytes, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    if not frame:
        return None
    return decode(frame, max_size)


def encode_header(kind: str, **fields: Any) -> bytes:
    fields["v"] = PROTOCOL_VERSION
    fields["kind"] = kind
    return encode(fields)


def request_frames(
    request_id: str,
    op: str,
    args: dict[str, Any] | None = None,
    *,
    session: str | None = None,
    timeout_ms: int | None = None,
    ts: float | None = None,
    auth: str | None = None,
    lane: bool = False,
) -> list[bytes]:
    header: dict[str, Any] = {"id": request_id, "op": op}
    if lane:
        header["lane"] = True
    if session is not None:
        header["session"] = session
    if auth is not None:
        header["auth"] = auth
    if timeout_ms is not None:
        header["timeout_ms"] = timeout_ms
    if ts is not None:
        header["ts"] = ts
    return [encode_header(REQUEST, **header), encode(args or {})]


def reply_frames(reply_to: str | None, response: dict[str, Any]) -> list[bytes]:
    """Frames of a reply; the header repeats ok/error_code/mode so relays need not open the body."""
    header: dict[str, Any] = {"reply_to": reply_to, "ok": bool(response.get("success")), "mode": response.get("mode")}
    if not header["ok"]:
        header["error_code"] = response.get("error_code")
    return [encode_header(REPLY, **header), encode(response)]


def event_frames(topic: str, data: dict[str, Any], *, mode: str, ts: float, event_id: str | None = None) -> list[bytes]:
    header: dict[str, Any] = {"topic": topic, "mode": mode, "ts": ts}
    if event_id is not None:
        header["id"] = event_id
    return [encode_header(EVENT, **header), encode(data)]
