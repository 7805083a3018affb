"""The agent protocol between backup agents and the backup server (pure: no sockets).

A message is two frames, ``[header, body]`` (the server's ROUTER adds the peer's
routing frame in front). The header is a msgpack map ``{"v": 1, "t": TYPE, ...}``; the
body is raw bytes for ``chunk`` and ``data`` messages and empty otherwise. The full
description, with the flow control and the enrollment, is docs/agent-protocol.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from protocol.codec import decode, encode
from protocol.errors import ErrorCode, ProtocolError

Buffer = bytes | memoryview  # a frame as sent or received, copied or not

AGENT_PROTOCOL_VERSION = 1
MAX_HEADER = 512 * 1024  # a manifest of MAX_BATCH long paths fits
MAX_PATH = 4096
MAX_NAME = 255
MAX_BATCH = 500  # manifest entries per message
CHUNK_SIZE = 1024 * 1024
WINDOW = 16  # chunks an agent may have in flight (unacknowledged) per session
HEARTBEAT_S = 1.0
LIVENESS = 3  # missed heartbeats before a peer counts as gone
ZAP_DOMAIN = "agents"
DEFAULT_AGENTS_ENDPOINT = "tcp://127.0.0.1:5560"  # where agents find the server unless told otherwise
# The enrollment key pair is derived from the token (see docs/agent-protocol.md); the label
# keeps the derivation specific to this use.
ENROLL_KEY_LABEL = b"backup-console/agent-enrollment/v1\x00"

# Error codes in ``error``/``failed`` messages: the bridge's codes plus the agent-only ones.
NO_SESSION = "NO_SESSION"  # say hello first (the server restarted, or we were disconnected)
STOPPED = "STOPPED"  # the server does not accept agents right now
CREDIT_EXCEEDED = "CREDIT_EXCEEDED"
HASH_MISMATCH = "HASH_MISMATCH"
SIZE_MISMATCH = "SIZE_MISMATCH"
# The server's storage is full (a chunk, a blob or a row could not be written): nothing of the upload
# is kept, and the agent stops its run (it cannot finish until space is freed on the server).
STORAGE_FULL = ErrorCode.STORAGE_FULL.value
# The permission bits of a file's mode, as backed up and restored: never setuid, setgid or sticky (a
# restore must not hand anyone privileges the operator did not mean to give).
MODE_BITS = 0o777

_S = (str,)
_I = (int,)
_B = (bool,)
_L = (list,)
_D = (dict,)
_OS = (str, type(None))

# type -> required header fields and their types (exact match, bools are not ints).
AGENT_TO_SERVER: dict[str, dict[str, tuple[type, ...]]] = {
    "hello": {"name": _S, "hostname": _S, "platform": _S, "version": _S},
    "enroll": {"public_key": _S, "name": _S, "hostname": _S, "platform": _S, "version": _S},
    "heartbeat": {},
    "manifest": {"batch": _I, "entries": _L},
    "chunk": {"u": _S, "i": _I, "o": _I, "last": _B},
    "abort": {"u": _S},
    "report": {"skipped": _L},
    "done": {"summary": (dict,)},
    "fetch": {"r": _S, "file_id": _S},
    "fetch_ack": {"r": _S, "i": _I},
    "bye": {},
    # restore jobs (restore_to_agent): the agent drives them, see docs/agent-protocol.md
    "job_next": {"job": _S, "cursor": _S},
    "job_progress": {"job": _S, "files_done": _I, "bytes_done": _I},
    "job_checkpoint": {"job": _S, "cursor": _S, "counts": _D, "problems": _L, "end": _B},
    "job_failed": {"job": _S, "code": _S, "message": _S},
    "job_stopped": {"job": _S, "counts": _D, "problems": _L},
}
SERVER_TO_AGENT: dict[str, dict[str, tuple[type, ...]]] = {
    "welcome": {"client_id": _S, "heartbeat_s": (int, float), "window": _I, "chunk_size": _I, "max_batch": _I},
    "enrolled": {"client_id": _S},
    "pong": {},
    "manifest_result": {"batch": _I, "send": _L, "need_hash": _L, "skip": _L, "linked": _L, "refused": _L},
    "credit": {"n": _I},
    "stored": {"u": _S, "file_id": _S, "version": _I, "sha256": _S, "dedup": _B},
    "failed": {"u": _S, "code": _S, "message": _S},
    "fetch_meta": {"r": _S, "file_id": _S, "name": _S, "size": _I, "sha256": _S},
    "data": {"r": _S, "i": _I, "o": _I},
    "fetch_end": {"r": _S},
    "restore_job": {
        "job": _S,
        "destination": _S,
        "overwrite": _S,
        "files_total": _I,
        "bytes_total": _I,
        "cursor": _S,
        "counts": _D,
    },
    "job_items": {"job": _S, "items": _L, "cursor": _S, "end": _B},
    "job_cancel": {"job": _S},
    "error": {"code": _S, "message": _S},
    "disconnect": {"reason": _S},
}
# Fields that only some messages of a type carry (first/last chunk, references in errors).
OPTIONAL: dict[str, tuple[type, ...]] = {
    "path": _S,
    "size": _I,
    "mtime_ns": _I,
    "sha256": _OS,
    "ref": (str, int, type(None)),
    "server_version": _S,
    "pid": _I,
    "reason": _S,
    "version": _I,  # fetch: a version of the file (restore jobs); absent: its newest
    "mode": _I,  # chunk (first): the file's permission bits; absent from an older agent
}


class AgentProtocolError(Exception):
    """A malformed agent-protocol message; ``code`` is one of the error codes above or BAD_REQUEST."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class Message:
    type: str
    fields: dict[str, Any]
    body: Buffer = b""  # the server keeps a received chunk as the socket's buffer: no copy of 1 MiB

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


def encode_message(type_: str, body: Buffer = b"", **fields: Any) -> list[Buffer]:
    fields["v"] = AGENT_PROTOCOL_VERSION
    fields["t"] = type_
    return [encode(fields), body]


def decode_message(frames: Sequence[Buffer], schema: dict[str, dict[str, tuple[type, ...]]]) -> Message:
    """Parse ``[header, body]`` against ``schema`` (AGENT_TO_SERVER or SERVER_TO_AGENT)."""
    if len(frames) != 2:
        raise AgentProtocolError(f"a message has 2 frames (header, body), got {len(frames)}")
    try:
        header = decode(bytes(frames[0]), MAX_HEADER)
    except ProtocolError as exc:
        raise AgentProtocolError(exc.message) from exc
    if type(header) is not dict:
        raise AgentProtocolError("the header must be a map")
    if header.get("v") != AGENT_PROTOCOL_VERSION:
        raise AgentProtocolError(f"agent protocol version {header.get('v')!r} is not {AGENT_PROTOCOL_VERSION}")
    type_ = header.get("t")
    required = schema.get(type_) if type(type_) is str else None
    if required is None:
        raise AgentProtocolError(f"unknown message type {type_!r}")
    for name, types in required.items():
        if name not in header:
            raise AgentProtocolError(f"{type_} lacks field {name!r}")
        if type(header[name]) not in types:
            raise AgentProtocolError(f"{type_}.{name} has the wrong type {type(header[name]).__name__}")
    for name, types in OPTIONAL.items():
        if name in header and name not in required and type(header[name]) not in types:
            raise AgentProtocolError(f"{type_}.{name} has the wrong type {type(header[name]).__name__}")
    return Message(str(type_), header, frames[1])


def file_mode(value: Any) -> int | None:
    """A file's mode as an agent reported it, reduced to its permission bits; None when absent."""
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise AgentProtocolError("a file mode is a non-negative integer")
    return value & MODE_BITS


# -- paths as agents report them --------------------------------------------------------------

_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_client_path(path: Any) -> str | None:
    """None when ``path`` is an acceptable absolute path on a client, else why not.

    The server never opens these paths (blobs are named by hash), but restores and the
    console show them, so a traversal (``..``), a relative or an empty component, or a
    control character is refused outright instead of being "cleaned".
    """
    if not isinstance(path, str) or not path:
        return "must be a non-empty string"
    if len(path) > MAX_PATH:
        return f"must be at most {MAX_PATH} characters"
    if _CONTROL.search(path):
        return "must not contain control characters"
    if path.startswith("/"):
        parts = path[1:].split("/")
    elif _DRIVE.match(path):
        parts = re.split(r"[\\/]", path[3:])
    else:
        return "must be absolute ('/...' or 'C:\\...')"
    if any(part in ("", ".", "..") for part in parts):
        return "must not contain empty, '.' or '..' components"
    return None


def file_name_of(path: str) -> str:
    """The last component of a path that passed check_client_path."""
    cut = path.rfind("/") if path.startswith("/") else max(path.rfind("/"), path.rfind("\\"))
    return path[cut + 1 :]


def check_file_name(name: Any) -> str | None:
    """None when ``name`` is a single, harmless path component (restores write it)."""
    if not isinstance(name, str) or not name:
        return "must be a non-empty string"
    if len(name) > MAX_NAME:
        return f"must be at most {MAX_NAME} characters"
    if name in (".", "..") or "/" in name or "\\" in name or _CONTROL.search(name):
        return "must be one path component without separators, control characters, '.' or '..'"
    return None


def has_traversal(path: str) -> bool:
    """True when a destination path has a '..' component (restores refuse those)."""
    return any(part == ".." for part in re.split(r"[\\/]", path))


# -- credit-based flow control ----------------------------------------------------------------


@dataclass(slots=True)
class Credit:
    """Sender side of a credit window: at most ``window`` messages unacknowledged."""

    window: int
    sent: int = 0
    acked: int = 0

    @property
    def available(self) -> int:
        return self.window - (self.sent - self.acked)

    def spend(self) -> None:
        self.sent += 1

    def grant(self, n: int) -> None:
        # More acks than sends would let a confused peer inflate our window: cap them.
        self.acked = min(self.sent, self.acked + max(0, n))


@dataclass(slots=True)
class CreditLedger:
    """Receiver side: counts what a peer sent against what it was granted."""

    window: int
    received: int = 0
    returned: int = 0  # credits given back so far (beyond the initial window)
    pending: int = 0  # consumed but not yet returned (sent in one ``credit`` per batch)

    def on_message(self) -> bool:
        """Account for one received message; False when the peer exceeded its credit."""
        self.received += 1
        return self.received <= self.window + self.returned

    def consumed(self) -> None:
        self.pending += 1

    def take_pending(self) -> int:
        n, self.pending = self.pending, 0
        self.returned += n
        return n
