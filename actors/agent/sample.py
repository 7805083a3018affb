"""A small, realistic folder for the demo agent that run_all.py starts (created once, never rewritten).

Deterministic content (no randomness): the same data directory always shows the same
files, so a restarted stack backs up nothing new until someone edits the folder.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

import structlog

log = structlog.get_logger()

_NOTES = [
    ("Meeting notes", "Agreed to move the quarterly review to Thursday. Backups of the finance share run nightly."),
    ("Shopping list", "coffee beans, oat milk, batteries (AA), printer paper, a new USB stick"),
    ("Ideas", "Try restoring one file a month from the backup server, to know that restores work."),
    ("Travel", "Train at 08:12, platform 4. Hotel booking reference KX-2231. Bring the charger."),
]


def _png(width: int, height: int, seed: int) -> bytes:
    """A valid little PNG with a deterministic gradient."""
    rows = b"".join(
        b"\x00"
        + bytes(
            v
            for x in range(width)
            for v in ((x * 7 + y * 3 + seed * 11) % 256, (x * 2 + seed * 5) % 256, (y * 5 + seed) % 256)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _csv(month: int) -> str:
    lines = ["date,description,amount_eur"]
    for day in range(1, 21):
        amount = ((month * 37 + day * 13) % 9000) / 100
        lines.append(f"2025-{month:02d}-{day:02d},item {day},{amount:.2f}")
    return "\n".join(lines) + "\n"


def _files() -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for title, body in _NOTES:
        files[f"documents/notes/{title.lower().replace(' ', '-')}.md"] = f"# {title}\n\n{body}\n".encode()
    for month in range(1, 7):
        files[f"documents/finance/expenses-2025-{month:02d}.csv"] = _csv(month).encode()
    files["documents/letters/landlord.txt"] = b"Dear Ms. Novak,\n\nthe heating in flat 3 works again. Thank you.\n"
    files["documents/letters/insurance.txt"] = b"Policy 44-0912: please update the address to Elm Street 12.\n"
    for i in range(8):
        files[f"photos/2025/holiday-{i + 1:02d}.png"] = _png(24 + i, 16 + i, i)
    for name, value in {
        "editor": {"theme": "dark", "tab_size": 4},
        "sync": {"interval_min": 30, "paths": ["~/docs"]},
    }.items():
        files[f"config/{name}.json"] = (json.dumps(value, indent=2) + "\n").encode()
    files["projects/website/index.html"] = b"<!doctype html>\n<title>Home</title>\n<h1>Hello</h1>\n"
    files["projects/website/style.css"] = b"body { font-family: sans-serif; margin: 2rem; }\n"
    files["projects/tools/backup_check.py"] = (
        b"import hashlib, sys\nprint(hashlib.sha256(open(sys.argv[1], 'rb').read()).hexdigest())\n"
    )
    files["projects/tools/README.md"] = b"# tools\n\nSmall helpers. `backup_check.py FILE` prints a SHA-256.\n"
    files["music/playlist.m3u"] = b"#EXTM3U\nsong-one.mp3\nsong-two.mp3\n"
    files["archive/old-report.bin"] = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(512))
    files["todo.txt"] = b"- renew passport\n- back up the laptop (done: this folder!)\n"
    return files


def ensure_sample(folder: Path) -> bool:
    """Create the sample folder unless it exists; returns True when it was created now."""
    if folder.exists():
        return False
    tmp = folder.with_name(folder.name + ".creating")
    for rel, content in _files().items():
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    tmp.rename(folder)  # whole or not at all: a crash mid-way leaves only the .creating folder
    log.info("stack.sample_created", folder=str(folder), files=len(_files()))
    return True
