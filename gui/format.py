"""Human-readable values for the views."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "—"
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def human_duration(seconds: float | None) -> str:
    if not seconds:
        return "—"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def when(value: Any) -> str:
    if not isinstance(value, datetime):
        return "—" if value is None else str(value)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def cell(value: Any) -> str:
    """One table cell: datetimes and sizes readable, long text shortened."""
    if isinstance(value, datetime):
        return when(value)
    if value is None:
        return "—"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"
