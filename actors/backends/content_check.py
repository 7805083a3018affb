"""A download that checks what it streams against the file's recorded SHA-256 (both backends).

A file whose stored content is missing, or known to be damaged, is refused before any
chunk with FILE_DAMAGED. Otherwise the stream hashes every byte it sends, and its final
reply confirms the content or, when the bytes turned out not to match, is FILE_DAMAGED
itself (the requester then keeps nothing). ``allow_damaged`` fetches what is stored
anyway: the final reply then says ``damaged: true`` and gives both hashes, ``sha256``
being that of the bytes sent, so the requester's own check still holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actors.backends.api import StreamReply
from protocol.errors import ErrorCode, ProtocolError
from protocol.streaming import CHUNK_SIZE

MISSING = "missing"
DAMAGED = "damaged"

Reply = Callable[[Any, str], dict[str, Any]]  # (data, message) -> the backend's success reply


@dataclass(frozen=True, slots=True)
class StoredFile:
    file_id: str
    name: str
    path: str
    sha256: str  # as recorded when it was backed up
    destination_path: str


def damaged(file: StoredFile, actual: str, problem: str) -> ProtocolError:
    """FILE_DAMAGED for ``file``: its content is ``problem`` (MISSING, or DAMAGED and hashing to ``actual``)."""
    if problem == MISSING:
        found, remedy = "is missing", "nothing is stored to fetch"
    else:
        found, remedy = f"hashes to {actual[:12]}…", "download_file with allow_damaged: true fetches it as it is"
    return ProtocolError(
        ErrorCode.FILE_DAMAGED,
        f"the stored content of {file.path} {found}, not its recorded sha256 {file.sha256[:12]}…; {remedy}",
        file_id=file.file_id,
        expected_sha256=file.sha256,
        actual_sha256=actual,
        problem=problem,
    )


@dataclass
class _Hashing:
    """Reads in order (as a stream sender does), hashing what it hands out."""

    read_at: Callable[[int, int], bytes]
    sent: int = 0
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)

    def __call__(self, offset: int, length: int) -> bytes:
        if offset != self.sent:
            raise ValueError(f"a checked stream is read in order: asked for offset {offset}, next is {self.sent}")
        data = self.read_at(offset, length)
        self.digest.update(data)
        self.sent += len(data)
        return data


def checked_stream(
    file: StoredFile, total: int, read_at: Callable[[int, int], bytes], allow_damaged: bool, reply: Reply
) -> StreamReply:
    """``total`` bytes of ``file``'s stored content, checked as they go (see the module's docstring)."""
    hashing = _Hashing(read_at)

    def final() -> dict[str, Any]:
        actual = hashing.digest.hexdigest()
        intact = actual == file.sha256
        if not intact and not allow_damaged:
            raise damaged(file, actual, DAMAGED)
        data = {
            "file_id": file.file_id,
            "name": file.name,
            "size": hashing.sent,
            "sha256": actual,
            "expected_sha256": file.sha256,
            "damaged": not intact,
            "chunks": -(-hashing.sent // CHUNK_SIZE),
            "destination_path": file.destination_path,
        }
        if intact:
            return reply(data, f"Downloaded {file.name}")
        return reply(
            data, f"Downloaded {file.name} as stored, DAMAGED: sha256 {actual[:12]}…, recorded {file.sha256[:12]}…"
        )

    return StreamReply(total=total, read_at=hashing, final=final)
