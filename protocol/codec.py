"""msgpack codec with a datetime extension and a size limit on decode.

Datetimes travel as msgpack's standard Timestamp extension (type -1), which every
msgpack implementation understands; they decode as timezone-aware UTC datetimes.
Naive datetimes are taken to be UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgpack

from protocol.errors import ErrorCode, ProtocolError

DEFAULT_MAX_SIZE = 16 * 1024 * 1024
# Every integer on the wire is a signed 64-bit one: msgpack also carries unsigned ones up
# to 2**64 - 1, which SQLite and most languages cannot hold (they became INTERNAL errors).
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_UINT64_MARKER = b"\xcf"  # msgpack writes any integer above INT64_MAX in this form only


def first_beyond_int64(value: Any) -> int | None:
    """The first integer in ``value`` (nested maps and lists too) outside 64 bits, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                return item
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return None


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        # Only naive datetimes reach here (aware ones are packed natively).
        return msgpack.Timestamp.from_datetime(obj.replace(tzinfo=UTC))
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot encode object of type {type(obj).__name__}")


def encode(obj: Any) -> bytes:
    """Encode one value; raises ProtocolError(INTERNAL) for values msgpack cannot carry."""
    try:
        return msgpack.packb(obj, use_bin_type=True, datetime=True, default=_default)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProtocolError(ErrorCode.INTERNAL, f"cannot encode message: {exc}") from exc


def decode(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> Any:
    """Decode one value; every failure is a ProtocolError with a specific code."""
    if len(data) > max_size:
        raise ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"frame of {len(data)} bytes exceeds the limit of {max_size} bytes",
            size=len(data),
            limit=max_size,
        )
    try:
        value = msgpack.unpackb(data, raw=False, timestamp=3, strict_map_key=False)
    except Exception as exc:  # msgpack raises many unrelated types for garbage
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"frame is not valid msgpack: {type(exc).__name__}: {exc}") from exc
    # The walk runs only when the frame may hold a uint64 (a byte scan in C otherwise).
    if _UINT64_MARKER in data and (beyond := first_beyond_int64(value)) is not None:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"integer {beyond} is outside the signed 64-bit range [{INT64_MIN}, {INT64_MAX}]"
        )
    return value


def to_jsonable(obj: Any) -> Any:
    """Turn a decoded value into something json.dumps accepts (for CLIs and logs)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$bytes": len(obj)}
    return obj
