"""Persistence of the mock: an atomic snapshot plus a journal of everything since.

- ``mock_state.msgpack``: the whole world, written atomically (temp file in the same
  directory, fsync, rename, fsync the directory) and at most every few seconds.
- ``mock_journal.log``: one record per acknowledged write (fsynced before the reply
  leaves) and per tick (not fsynced: the next write's fsync covers it, and a lost
  tick is never an acknowledged change). Each record is ``>II`` (length, crc32) then
  msgpack ``{seq, op, args, at}``. After each snapshot the journal is truncated.

Opening loads the snapshot and replays the records whose seq is above the snapshot's
``journal_seq``; the mock's state is a pure function of that sequence, so replay
rebuilds exactly the state the requesters saw acknowledged.
"""

from __future__ import annotations

import os
import random
import struct
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgpack
import structlog

from actors.mock.records import (
    ACTIVITY_COLUMNS,
    CLIENT_COLUMNS,
    FILE_COLUMNS,
    LOG_COLUMNS,
    Activity,
    Client,
    FileRecord,
    LogEntry,
    ServerState,
    check_columns,
    from_row,
    to_row,
)
from actors.mock.state import MockWorld
from runtime.clock import Clock
from runtime.fsutil import atomic_write_bytes, fsync_dir, remove_temporaries

log = structlog.get_logger()

SNAPSHOT_NAME = "mock_state.msgpack"
JOURNAL_NAME = "mock_journal.log"
FORMAT = "mock-state"
VERSION = 1
_RECORD_HEADER = struct.Struct(">II")
MAX_RECORD = 64 * 1024 * 1024
T = TypeVar("T")


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, datetime=True)


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, timestamp=3, strict_map_key=False)


def _utc_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


class MockStore:
    """The files of one data directory. Counters let tests see how often it writes."""

    def __init__(self, data_dir: Path, *, min_interval: float = 2.0) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_path = self.data_dir / SNAPSHOT_NAME
        self.journal_path = self.data_dir / JOURNAL_NAME
        self.min_interval = min_interval
        self.snapshots_written = 0
        self.records_appended = 0
        self.last_snapshot_seconds = 0.0
        self._last_snapshot_end = time.monotonic()
        self._journal: Any = None
        remove_temporaries(self.snapshot_path)  # of an interrupted snapshot write; the real file is intact

    # -- snapshot --

    def load_snapshot(self, decode: Callable[[dict[str, Any]], T]) -> T | None:
        """Decode the snapshot; None when there is none or it was unreadable (then moved aside)."""
        if not self.snapshot_path.exists():
            if self.journal_path.exists() and self.journal_path.stat().st_size:
                self._move_aside(self.journal_path, "journal without a snapshot")
            return None
        try:
            doc = _unpack(self.snapshot_path.read_bytes())
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"not a {FORMAT} file")
            if doc.get("version") != VERSION:
                raise ValueError(f"unsupported {FORMAT} version {doc.get('version')!r}")
            return decode(doc)
        except Exception as exc:  # any damage at all: keep the file for inspection, start afresh
            moved = self._move_aside(self.snapshot_path, f"{type(exc).__name__}: {exc}")
            log.error("mock.state_corrupt", path=str(self.snapshot_path), moved_to=str(moved), error=str(exc))
            if self.journal_path.exists():
                self._move_aside(self.journal_path, "its snapshot was corrupt")
            return None

    def _move_aside(self, path: Path, reason: str) -> Path:
        target = path.with_name(f"{path.name}.corrupt-{_utc_stamp()}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.corrupt-{_utc_stamp()}-{n}")
        os.replace(path, target)
        fsync_dir(self.data_dir)
        log.warning("mock.file_moved_aside", path=str(path), moved_to=str(target), reason=reason)
        return target

    def write_snapshot(self, doc: dict[str, Any]) -> None:
        """Atomically replace the snapshot, then empty the journal it now covers."""
        started = time.monotonic()
        data = _pack(doc)
        atomic_write_bytes(self.snapshot_path, data)
        # Records up to doc's journal_seq are in the snapshot; a crash before this
        # truncation is harmless because replay skips them by seq.
        journal = self._open_journal()
        journal.truncate(0)
        os.fsync(journal.fileno())
        self.snapshots_written += 1
        self._last_snapshot_end = time.monotonic()
        self.last_snapshot_seconds = self._last_snapshot_end - started
        log.debug("mock.snapshot_written", bytes=len(data), seconds=round(self.last_snapshot_seconds, 3))

    def snapshot_due(self) -> bool:
        """Debounce: at least ``min_interval`` apart, and never more than ~10 % of the time."""
        interval = max(self.min_interval, 10 * self.last_snapshot_seconds)
        return time.monotonic() - self._last_snapshot_end >= interval

    # -- journal --

    def _open_journal(self) -> Any:
        if self._journal is None:
            created = not self.journal_path.exists()
            self._journal = open(self.journal_path, "ab")  # noqa: SIM115 - kept open between writes, closed by close()
            if created:
                fsync_dir(self.data_dir)  # the new name must survive a power cut too
        return self._journal

    def append(self, record: dict[str, Any], *, sync: bool) -> None:
        payload = _pack(record)
        journal = self._open_journal()
        journal.write(_RECORD_HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
        journal.flush()
        if sync:
            os.fsync(journal.fileno())
        self.records_appended += 1

    def read_journal(self) -> list[dict[str, Any]]:
        """Every intact record; a torn or damaged tail is cut off (with a warning)."""
        if not self.journal_path.exists():
            return []
        data = self.journal_path.read_bytes()
        records: list[dict[str, Any]] = []
        pos = 0
        problem = ""
        while pos < len(data):
            if len(data) - pos < _RECORD_HEADER.size:
                problem = "torn record header"
                break
            length, crc = _RECORD_HEADER.unpack_from(data, pos)
            start = pos + _RECORD_HEADER.size
            if length > MAX_RECORD or start + length > len(data):
                problem = "torn record"
                break
            payload = data[start : start + length]
            if zlib.crc32(payload) != crc:
                problem = "checksum mismatch"
                break
            try:
                record = _unpack(payload)
            except Exception:
                problem = "undecodable record"
                break
            if not (
                isinstance(record, dict) and isinstance(record.get("seq"), int) and isinstance(record.get("op"), str)
            ):
                problem = "malformed record"
                break
            records.append(record)
            pos = start + length
        if problem:
            log.warning(
                "mock.journal_tail_ignored",
                path=str(self.journal_path),
                reason=problem,
                offset=pos,
                dropped_bytes=len(data) - pos,
                records_kept=len(records),
            )
            # Cut the damage off so new records are not appended behind unreadable bytes.
            with open(self.journal_path, "r+b") as journal:
                journal.truncate(pos)
                os.fsync(journal.fileno())
        return records

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None


# -- the world as a snapshot document --


def _table(records: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    return {"columns": list(columns), "rows": [to_row(r, columns) for r in records]}


def encode_world(world: MockWorld, journal_seq: int) -> dict[str, Any]:
    version, state, gauss = world.rng.getstate()
    return {
        "format": FORMAT,
        "version": VERSION,
        "seed": world.seed,
        "journal_seq": journal_seq,
        "rng_state": [version, list(state), gauss],
        "clock": world.now(),
        "config": {**world.config, "target_files": world.target_files},
        "clients": _table(world.clients.values(), CLIENT_COLUMNS),
        "files": _table(world.files.values(), FILE_COLUMNS),
        "activity": {**_table(world.activity.values(), ACTIVITY_COLUMNS), "next_id": world.next_activity_id},
        "logs": {**_table(world.logs, LOG_COLUMNS), "next_id": world.next_log_id},
        "server": world.server.to_dict(),
    }


def decode_world(doc: dict[str, Any], clock: Clock) -> MockWorld:
    """Rebuild a world; raises (KeyError, ValueError, ...) on any inconsistency."""
    version, state, gauss = doc["rng_state"]
    rng = random.Random()
    rng.setstate((version, tuple(state), gauss))
    config = dict(doc["config"])
    world = MockWorld(
        seed=int(doc["seed"]),
        rng=rng,
        clock=clock,
        server=ServerState(**doc["server"]),
        target_files=int(config.pop("target_files")),
        config=config,
    )
    for name, columns in (
        ("clients", CLIENT_COLUMNS),
        ("files", FILE_COLUMNS),
        ("activity", ACTIVITY_COLUMNS),
        ("logs", LOG_COLUMNS),
    ):
        check_columns(doc[name]["columns"], columns, name)
    stored_totals: dict[str, tuple[int, int]] = {}
    for row in doc["clients"]["rows"]:
        client = from_row(Client, row, CLIENT_COLUMNS)
        stored_totals[client.id] = (client.files_count, client.total_size)
        # Aggregates are rebuilt from the files below; the stored ones only cross-check.
        client.files_count, client.total_size = 0, 0
        world.add_client(client)
    for row in doc["files"]["rows"]:
        world.add_file(from_row(FileRecord, row, FILE_COLUMNS))
    for cid, (count, size) in stored_totals.items():
        client = world.clients[cid]
        if (client.files_count, client.total_size) != (count, size):
            raise ValueError(f"client {cid} aggregates {count}/{size} disagree with its files")
    world.restore_activity(
        [from_row(Activity, row, ACTIVITY_COLUMNS) for row in doc["activity"]["rows"]], doc["activity"].get("next_id")
    )
    world.logs.extend(from_row(LogEntry, row, LOG_COLUMNS) for row in doc["logs"]["rows"])
    world.next_log_id = int(doc["logs"]["next_id"])
    # Move a simulated clock up to where the stored world stopped (a system clock ignores it).
    behind = (doc["clock"] - clock.now()).total_seconds()
    if behind > 0:
        clock.advance(behind)
    return world
