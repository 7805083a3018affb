"""The mock's journal files: how records are framed, read back, repaired and migrated.

Format 2 (current): the file starts with ``mock-journal v2\\n``; each record is

    SYNC (4 bytes) | length (>I) | crc32(payload) (>I) | crc32(SYNC + length + crc) (>I) | payload

where the payload is msgpack ``{seq, op, args, at}``. The header has its own checksum,
so a damaged length is never trusted, and the SYNC marker lets a reader find the next
record after any damage: one damaged record costs that record, never the ones after it.

Format 1 (the first one, no file header): each record is ``>II`` (length, crc32) then the
payload. It is still read (a damaged payload is skipped by its length when what follows
is intact; a damaged length loses the rest) and rewritten as format 2 when opened.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JOURNAL_VERSION = 2
FILE_HEADER = b"mock-journal v2\n"
_HEADER_PREFIX = b"mock-journal v"
SYNC = b"\xd5\x8fMJ"
_FRAME = struct.Struct(">4sIII")  # SYNC, length, payload crc, header crc
_V1_FRAME = struct.Struct(">II")  # length, payload crc
MAX_RECORD = 64 * 1024 * 1024


@dataclass
class JournalRead:
    """What one journal file held: the intact records and an account of the damage."""

    version: int
    records: list[dict[str, Any]] = field(default_factory=list)
    damaged_bytes: int = 0
    # One entry per damaged region: how many intact records preceded it (to count the lost ones).
    damage_at: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def damaged(self) -> bool:
        return bool(self.damage_at)

    def records_lost(self) -> int:
        """Records lost to the damage: the gap in seq around each damaged region, at least one each."""
        lost = 0
        for index in self.damage_at:
            before = self.records[index - 1]["seq"] if index > 0 else None
            after = self.records[index]["seq"] if index < len(self.records) else None
            gap = after - before - 1 if before is not None and after is not None else 0
            lost += max(1, gap)
        return lost

    def _damage(self, problem: str, nbytes: int) -> None:
        # Damage with no intact record in between is one region (its seq gap tells how many were lost).
        if not self.damage_at or self.damage_at[-1] != len(self.records):
            self.damage_at.append(len(self.records))
            self.problems.append(problem)
        self.damaged_bytes += nbytes


def frame(record: dict[str, Any], pack: Callable[[Any], bytes]) -> bytes:
    payload = pack(record)
    head = SYNC + struct.pack(">II", len(payload), zlib.crc32(payload))
    return head + struct.pack(">I", zlib.crc32(head)) + payload


def _valid(record: Any) -> bool:
    return isinstance(record, dict) and isinstance(record.get("seq"), int) and isinstance(record.get("op"), str)


def _decode(payload: bytes, unpack: Callable[[bytes], Any]) -> dict[str, Any] | None:
    try:
        record = unpack(payload)
    except Exception:  # any undecodable payload is damage, whatever msgpack raises
        return None
    return record if _valid(record) else None


def file_version(data: bytes) -> int:
    """The format of a journal file's bytes (an empty file is of the current format)."""
    if not data:
        return JOURNAL_VERSION
    if data.startswith(_HEADER_PREFIX):
        end = data.find(b"\n", 0, 32)
        digits = data[len(_HEADER_PREFIX) : end] if end > 0 else b""
        if digits.isdigit():
            return int(digits)
        return -1
    return 1


def parse(data: bytes, unpack: Callable[[bytes], Any]) -> JournalRead:
    version = file_version(data)
    if version == 1:
        return _parse_v1(data, unpack)
    if version != JOURNAL_VERSION:
        read = JournalRead(version)
        read._damage(f"unknown journal format {version}", len(data))
        return read
    return _parse_v2(data, unpack)


def _parse_v2(data: bytes, unpack: Callable[[bytes], Any]) -> JournalRead:
    read = JournalRead(JOURNAL_VERSION)
    pos = len(FILE_HEADER) if data.startswith(FILE_HEADER) else 0
    size = len(data)
    while pos < size:
        if size - pos >= _FRAME.size:
            sync, length, crc, head_crc = _FRAME.unpack_from(data, pos)
            if sync == SYNC and zlib.crc32(data[pos : pos + 12]) == head_crc and length <= MAX_RECORD:
                start = pos + _FRAME.size
                end = start + length
                if end > size:
                    read._damage("torn record", size - pos)
                    break
                payload = data[start:end]
                record = _decode(payload, unpack) if zlib.crc32(payload) == crc else None
                if record is None:
                    read._damage("damaged record", end - pos)  # its header is intact: skip exactly it
                else:
                    read.records.append(record)
                pos = end
                continue
        # A damaged or torn header: resume at the next SYNC marker (or give up the rest).
        following = data.find(SYNC, pos + 1)
        skip_to = following if following >= 0 else size
        read._damage("damaged record header" if following >= 0 else "torn or damaged tail", skip_to - pos)
        pos = skip_to
    return read


def _parse_v1(data: bytes, unpack: Callable[[bytes], Any]) -> JournalRead:
    read = JournalRead(1)
    pos = 0
    size = len(data)
    while pos < size:
        if size - pos < _V1_FRAME.size:
            read._damage("torn record header", size - pos)
            break
        length, crc = _V1_FRAME.unpack_from(data, pos)
        start = pos + _V1_FRAME.size
        if length > MAX_RECORD or start + length > size:
            read._damage("torn record", size - pos)
            break
        payload = data[start : start + length]
        record = _decode(payload, unpack) if zlib.crc32(payload) == crc else None
        if record is not None:
            read.records.append(record)
            pos = start + length
            continue
        # Format 1 cannot tell a damaged length from a damaged payload: trust the length only
        # when an intact record follows it (or the file ends exactly there).
        after = start + length
        if after == size or _v1_intact_at(data, after, unpack):
            read._damage("damaged record", after - pos)
            pos = after
            continue
        read._damage("damaged record (the rest is unreadable in format 1)", size - pos)
        break
    return read


def _v1_intact_at(data: bytes, pos: int, unpack: Callable[[bytes], Any]) -> bool:
    if len(data) - pos < _V1_FRAME.size:
        return False
    length, crc = _V1_FRAME.unpack_from(data, pos)
    start = pos + _V1_FRAME.size
    if length > MAX_RECORD or start + length > len(data):
        return False
    payload = data[start : start + length]
    return zlib.crc32(payload) == crc and _decode(payload, unpack) is not None


def encode_file(records: list[dict[str, Any]], pack: Callable[[Any], bytes]) -> bytes:
    """A whole journal file of the current format holding ``records``."""
    return FILE_HEADER + b"".join(frame(r, pack) for r in records)
