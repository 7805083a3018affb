"""Export rows (activity, logs) to CSV or JSON files on the GUI's machine."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from protocol.codec import to_jsonable
from runtime.fsutil import atomic_write_bytes


def export_rows(rows: list[dict[str, Any]], directory: Path, stem: str, fmt: str) -> Path:
    """Write ``rows`` atomically to ``directory/stem-<utc time>.<fmt>``; returns the path."""
    if fmt not in ("csv", "json"):
        raise ValueError(f"unknown export format {fmt!r}")
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = directory / f"{stem}-{stamp}.{fmt}"
    plain = to_jsonable(rows)
    out = io.StringIO(newline="")
    if fmt == "json":
        json.dump(plain, out, indent=2, ensure_ascii=False)
    else:
        columns = list(dict.fromkeys(k for row in plain for k in row))
        writer = csv.DictWriter(out, fieldnames=columns)
        writer.writeheader()
        writer.writerows(plain)
    atomic_write_bytes(target, out.getvalue().encode("utf-8"))
    return target
