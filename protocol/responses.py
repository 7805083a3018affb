"""Builders for the one standard reply format every operation uses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from protocol.errors import ErrorCode, ProtocolError

MODES = ("real", "mock", "bridge", "local", "replay")  # local: refused by the client library before sending


def _now() -> datetime:
    return datetime.now(UTC)


def success(
    data: Any = None,
    message: str = "OK",
    *,
    mode: str,
    timestamp: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    reply = {"success": True, "message": message, "mode": mode, "timestamp": timestamp or _now(), "data": data}
    reply.update(extra)
    return reply


def error(
    code: ErrorCode,
    message: str,
    *,
    mode: str,
    timestamp: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    reply = {
        "success": False,
        "message": message,
        "mode": mode,
        "timestamp": timestamp or _now(),
        "error_code": code.value,
        "data": None,
    }
    reply.update(extra)
    return reply


def from_protocol_error(exc: ProtocolError, *, mode: str, timestamp: datetime | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {"details": exc.details} if exc.details else {}
    return error(exc.code, exc.message, mode=mode, timestamp=timestamp, **extra)
