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


def number(n: int | float | None) -> str:
    """Every count and figure the console shows, one way: thousands separated ("100,010"), so two
    numbers side by side read alike. A fraction keeps one decimal."""
    if n is None:
        return "—"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.1f}"
    return f"{int(n):,}"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` things in words: "1 row", "2 rows", "1,000 files" (``plural`` for irregular nouns)."""
    return f"{number(n)} {noun if n == 1 else plural or noun + 's'}"


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
    """One table cell: datetimes readable, numbers as everywhere else, long text shortened."""
    if isinstance(value, datetime):
        return when(value)
    if value is None:
        return "—"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"
