"""What every bridgectl command shares: exit codes, JSON and table output, failed replies."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from protocol.codec import to_jsonable
from protocol.responses import Reply

# 0: done; 1: the bridge answered but refused or failed it; 2: not reached, or a usage mistake.
EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE = 0, 1, 2, 2


class UsageError(Exception):
    """A command line bridgectl cannot run (exit 2, the message on stderr)."""


def dump(value: Any, out: TextIO, *, indent: int | None = 2) -> None:
    out.write(json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False) + "\n")
    out.flush()


def table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Columns padded to their widest cell; the first row is the heading."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n")


def failed(reply: Reply) -> int:
    """Say why the bridge refused a request (stderr) and give the exit status for it."""
    sys.stderr.write(f"bridgectl: {reply['error_code']}: {reply['message']}\n")
    return EXIT_FAILED


def text(value: Any) -> str:
    """A cell: null shows as '-', datetimes as ISO text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    jsonable = to_jsonable(value)
    return jsonable if isinstance(jsonable, str) else json.dumps(jsonable)
