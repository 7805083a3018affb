"""JSON state files of the bridge and the timestamps they hold.

Every file is replaced atomically and is 0600 (runtime/credentials.py decides modes);
readers accept what an older or hand-edited file may hold and name the file on error.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runtime.credentials import CredentialsError, private_dir, read_private, write_private


class StateFileError(ValueError):
    """A state file exists but cannot be used; the bridge refuses to start rather than guess."""


def load_json(path: Path) -> Any | None:
    """The JSON value in ``path``; None when the file does not exist yet."""
    if not path.exists():
        return None
    try:
        data = read_private(path, "state file")
    except CredentialsError as exc:
        raise StateFileError(str(exc)) from None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise StateFileError(f"{path} is not valid JSON: {exc}") from None


def save_json(path: Path, value: Any) -> None:
    private_dir(path.parent)
    write_private(path, (json.dumps(value, indent=1, sort_keys=True) + "\n").encode("utf-8"))


def iso(ts: float) -> str:
    """A Unix time as fixed-width ISO 8601 UTC text: sorts (and compares) like the times it names."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: Any) -> datetime | None:
    """A stored timestamp (ISO text or Unix seconds) as an aware datetime; None when absent or unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def as_records(raw: Any, field: str, path: Path) -> list[dict[str, Any]]:
    """The list of records of a store file: ``{"v": 1, field: [...]}``, or a bare list."""
    if raw is None:
        return []
    items = raw.get(field) if isinstance(raw, dict) else raw
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise StateFileError(f"{path}: expected a list of records under {field!r}")
    return items
