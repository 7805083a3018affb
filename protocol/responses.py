"""The one standard reply format every operation uses: its type, its builders, its check.

Backends and the bridge build replies with ``success``/``error`` (plain maps, as the
BackendCore contract in actors/backends/api.py returns them); a requester turns what it
decoded from the wire into a typed ``Reply`` with ``as_reply``, which refuses anything
that is not shaped like one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, cast

from protocol.errors import ErrorCode, ProtocolError


class Reply(TypedDict):
    """What every request gets back, whoever answers."""

    success: bool
    message: str
    mode: str  # a protocol.modes.Mode value: who answered
    timestamp: datetime
    data: Any  # the operation's result; None on failure
    error_code: NotRequired[str]  # an ErrorCode value, on failure only
    details: NotRequired[dict[str, Any]]  # what a failure was about (argument names, ...)
    stale: NotRequired[bool]  # true: the last known real answer, replayed while the real backend is away
    as_of: NotRequired[datetime]  # with stale only: when the bridge received that real answer


def _now() -> datetime:
    return datetime.now(UTC)


def success(data: Any = None, message: str = "OK", *, mode: str, timestamp: datetime | None = None) -> dict[str, Any]:
    return {"success": True, "message": message, "mode": mode, "timestamp": timestamp or _now(), "data": data}


def error(
    code: ErrorCode,
    message: str,
    *,
    mode: str,
    timestamp: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    reply: dict[str, Any] = {
        "success": False,
        "message": message,
        "mode": mode,
        "timestamp": timestamp or _now(),
        "error_code": code.value,
        "data": None,
    }
    if details:
        reply["details"] = details
    return reply


def stale(reply: dict[str, Any], as_of: datetime) -> dict[str, Any]:
    """``reply`` (a real backend's, kept by the bridge) served again during an outage.

    A fresh reply has no ``stale`` field: absent means fresh."""
    return {**reply, "stale": True, "as_of": as_of}


def from_protocol_error(exc: ProtocolError, *, mode: str, timestamp: datetime | None = None) -> dict[str, Any]:
    return error(exc.code, exc.message, mode=mode, timestamp=timestamp, details=exc.details or None)


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {"success": bool, "message": str, "mode": str}
_OPTIONAL_TYPES: dict[str, type | tuple[type, ...]] = {"stale": bool, "as_of": datetime}


def as_reply(raw: Any) -> Reply:
    """``raw`` typed as a Reply; BAD_REQUEST when it lacks a field or a field has the wrong type."""
    if not isinstance(raw, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"a reply must be a map, got {type(raw).__name__}")
    for name, kind in _FIELD_TYPES.items():
        if not isinstance(raw.get(name), kind):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"reply field {name!r} is missing or mistyped", field=name)
    for name, kind in _OPTIONAL_TYPES.items():
        if name in raw and not isinstance(raw[name], kind):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"reply field {name!r} is mistyped", field=name)
    if "as_of" in raw and raw.get("stale") is not True:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "reply field 'as_of' comes only with stale: true", field="as_of")
    if "data" not in raw:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "reply field 'data' is missing", field="data")
    if not raw["success"] and not isinstance(raw.get("error_code"), str):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "a failed reply must carry an error_code", field="error_code")
    # The fields a Reply requires are checked above; the cast only names the result's type.
    return cast(Reply, raw)
