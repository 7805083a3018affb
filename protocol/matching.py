"""Comparing a replayed reply with the recorded one, ignoring what is volatile by nature.

The default matcher ignores: values under keys named in ``VOLATILE_KEYS`` (ids,
timestamps, durations), the exact value of any datetime (only its presence counts),
and the whole ``data`` of operations in ``VOLATILE_OPS`` (host figures, the bridge's
own state), of which only the outcome (success, mode, error_code) is compared.
``Matcher.extended(keys=..., ops=...)`` adds to both sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

VOLATILE_KEYS: frozenset[str] = frozenset(
    {
        "id",
        "request_id",
        "session",
        "timestamp",
        "server_time",
        "started_at",
        "verified_at",
        "uptime_seconds",
        "uptime_s",
        "duration_ms",
        "last_heartbeat_age_s",
        "epoch",
        "pid",
        "destination_path",
    }
)
VOLATILE_OPS: frozenset[str] = frozenset({"get_system_status", "bridge_status", "events_since"})
OUTCOME_KEYS = frozenset({"success", "mode", "error_code"})
MAX_LINES = 20


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Matcher:
    ignore_keys: frozenset[str] = VOLATILE_KEYS
    ignore_data_of: frozenset[str] = VOLATILE_OPS
    _limit: int = field(default=MAX_LINES, compare=False)

    def extended(self, *, keys: tuple[str, ...] = (), ops: tuple[str, ...] = ()) -> Matcher:
        return Matcher(self.ignore_keys | frozenset(keys), self.ignore_data_of | frozenset(ops))

    def diff(self, op: str, recorded: Any, replayed: Any) -> list[str]:
        """Readable differences (``path: recorded X, replayed Y``); empty when they match."""
        lines: list[str] = []
        if op in self.ignore_data_of and isinstance(recorded, dict) and isinstance(replayed, dict):
            # Only the outcome of these counts: their data and message describe the moment.
            recorded = {k: v for k, v in recorded.items() if k in OUTCOME_KEYS}
            replayed = {k: v for k, v in replayed.items() if k in OUTCOME_KEYS}
        self._walk("reply", recorded, replayed, lines)
        if len(lines) > self._limit:
            lines = [*lines[: self._limit], f"... and {len(lines) - self._limit} more differences"]
        return lines

    def _walk(self, path: str, a: Any, b: Any, out: list[str]) -> None:
        if len(out) > self._limit:
            return
        if isinstance(a, datetime) and isinstance(b, datetime):
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b), key=str):
                if key in self.ignore_keys:
                    continue
                if key not in b:
                    out.append(f"{path}.{key}: recorded {_short(a[key])}, missing in the replay")
                elif key not in a:
                    out.append(f"{path}.{key}: not recorded, replayed {_short(b[key])}")
                else:
                    self._walk(f"{path}.{key}", a[key], b[key], out)
            return
        if isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                out.append(f"{path}: recorded {len(a)} items, replayed {len(b)}")
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                self._walk(f"{path}[{i}]", x, y, out)
            return
        if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
            out.append(f"{path}: recorded {type(a).__name__} {_short(a)}, replayed {type(b).__name__} {_short(b)}")
        elif a != b:
            out.append(f"{path}: recorded {_short(a)}, replayed {_short(b)}")
