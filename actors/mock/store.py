"""Persistence of the mock: two snapshot generations plus a journal of everything since the older one.

- ``mock_state.msgpack``: the whole world (generation N), written atomically (temp file
  in the same directory, fsync, rename, fsync the directory) and at most every few
  seconds. ``mock_state.previous.msgpack`` is generation N-1: writing N first renames
  N-1's successor into that place, so a damaged snapshot falls back to the one before it.
- ``mock_journal.log``: one record per acknowledged write (fsynced before the reply
  leaves) and per tick (not fsynced: the next write's fsync covers it, and a lost tick
  is never an acknowledged change). When snapshot N lands, this segment (the records
  since N-1) becomes ``mock_journal.previous.log`` and a new one starts, so the records
  since the *previous* snapshot are always on disk. The framing is in ``journal.py``.

Opening reads both segments (a damaged record is skipped and the intact ones after it
are kept; a damaged file is first copied aside), loads the newest snapshot that decodes
(setting a damaged one aside) and replays the records whose seq is above its
``journal_seq``; the mock's state is a pure function of that sequence, so replay
rebuilds exactly the state the requesters saw acknowledged. Only when both generations
are damaged does the mock start from a fresh dataset, and it says so loudly.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

import msgpack
import structlog

from actors.mock import history_data
from actors.mock import journal as journal_format
from actors.mock.records import (
    ACTIVITY_COLUMNS,
    CLIENT_COLUMNS,
    FILE_COLUMNS,
    LOG_COLUMNS,
    Activity,
    Client,
    LogEntry,
    ServerState,
    check_columns,
    file_columns_of,
    file_from_row,
    from_row,
    to_row,
)
from actors.mock.restore_jobs import MockRestoreJobs
from actors.mock.state import MockWorld
from runtime.clock import Clock
from runtime.fsutil import AtomicFile, atomic_write_bytes, fsync_dir, remove_temporaries

log = structlog.get_logger()

SNAPSHOT_NAME = "mock_state.msgpack"
PREVIOUS_SNAPSHOT_NAME = "mock_state.previous.msgpack"
JOURNAL_NAME = "mock_journal.log"
PREVIOUS_JOURNAL_NAME = "mock_journal.previous.log"
FORMAT = "mock-state"
VERSION = 1
T = TypeVar("T")


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, datetime=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, timestamp=3, strict_map_key=False)


def _utc_stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def _seq_gaps(base: int, records: list[dict[str, Any]]) -> int:
    """Records missing between ``base`` and the newest one (seq numbers are consecutive)."""
    missing, previous = 0, base
    for record in records:
        missing += max(0, record["seq"] - previous - 1)
        previous = record["seq"]
    return missing


@dataclass(frozen=True, slots=True)
class Loaded(Generic[T]):
    """A decoded snapshot and the journal records to replay over it."""

    value: T
    records: list[dict[str, Any]]
    from_previous: bool  # the newest snapshot was missing or damaged: generation N-1 was used


class MockStore:
    """The files of one data directory. Counters let tests see how often it writes."""

    def __init__(self, data_dir: Path, *, min_interval: float = 2.0) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.snapshot_path = self.data_dir / SNAPSHOT_NAME
        self.previous_path = self.data_dir / PREVIOUS_SNAPSHOT_NAME
        self.journal_path = self.data_dir / JOURNAL_NAME
        self.previous_journal_path = self.data_dir / PREVIOUS_JOURNAL_NAME
        self.min_interval = min_interval
        self.snapshots_written = 0
        self.records_appended = 0
        self.last_snapshot_seconds = 0.0
        self._last_snapshot_end = time.monotonic()
        self._journal: IO[bytes] | None = None
        # Of an interrupted snapshot or journal rewrite; the real files are intact.
        for path in (self.snapshot_path, self.journal_path, self.previous_journal_path):
            remove_temporaries(path)

    # -- opening --

    def load(self, decode: Callable[[dict[str, Any]], T]) -> Loaded[T] | None:
        """The newest snapshot that decodes and the records since it; None when there is none."""
        records = self._read_journals()
        tried = False
        for generation, path in (("current", self.snapshot_path), ("previous", self.previous_path)):
            if not path.exists():
                continue
            tried = True
            try:
                doc = unpack(path.read_bytes())
                if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                    raise ValueError(f"not a {FORMAT} file")
                if doc.get("version") != VERSION:
                    raise ValueError(f"unsupported {FORMAT} version {doc.get('version')!r}")
                base = int(doc["journal_seq"])
                value = decode(doc)
            except Exception as exc:  # any damage at all: keep the file for inspection, try the older one
                moved = self._move_aside(path, f"{type(exc).__name__}: {exc}")
                log.error("mock.state_corrupt", generation=generation, moved_to=str(moved), error=str(exc))
                continue
            newer = [r for r in records if r["seq"] > base]
            from_previous = generation == "previous"
            lost = _seq_gaps(base, newer)
            if from_previous or lost:
                log.warning(
                    "mock.state_recovered",
                    snapshot=path.name,
                    journal_seq=base,
                    records_replayed=len(newer),
                    records_lost=lost,
                )
            return Loaded(value, newer, from_previous)
        if tried:
            log.error(
                "mock.state_lost",
                reason="every snapshot generation is damaged (set aside for inspection)",
                records_lost=len(records),
            )
        for path in (self.previous_journal_path, self.journal_path):
            if path.exists() and path.stat().st_size:
                self._move_aside(path, "its snapshots are gone" if tried else "journal without a snapshot")
        return None

    def _read_journals(self) -> list[dict[str, Any]]:
        """Every intact record of both segments, by seq; damaged files are copied aside, then repaired."""
        by_seq: dict[int, dict[str, Any]] = {}
        for path in (self.previous_journal_path, self.journal_path):
            if path.exists():
                for record in self._repair(path):
                    by_seq.setdefault(record["seq"], record)
        return [by_seq[seq] for seq in sorted(by_seq)]

    def _repair(self, path: Path) -> list[dict[str, Any]]:
        data = path.read_bytes()
        read = journal_format.parse(data, unpack)
        if read.damaged:
            copy = self._copy_aside(path)
            atomic_write_bytes(path, journal_format.encode_file(read.records, pack))
            log.warning(
                "mock.journal_recovered",
                path=path.name,
                records_kept=len(read.records),
                records_lost=read.records_lost(),
                damaged_bytes=read.damaged_bytes,
                problems=read.problems,
                copy=copy.name,
            )
        elif data and read.version != journal_format.JOURNAL_VERSION:
            atomic_write_bytes(path, journal_format.encode_file(read.records, pack))
            log.info(
                "mock.journal_migrated",
                path=path.name,
                from_version=read.version,
                to_version=journal_format.JOURNAL_VERSION,
                records=len(read.records),
            )
        return read.records

    def _aside_name(self, path: Path, kind: str) -> Path:
        target = path.with_name(f"{path.name}.{kind}-{_utc_stamp()}")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.{kind}-{_utc_stamp()}-{n}")
        return target

    def _copy_aside(self, path: Path) -> Path:
        target = self._aside_name(path, "damaged")
        with open(path, "rb") as src, open(target, "xb") as dst:
            shutil.copyfileobj(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        fsync_dir(self.data_dir)
        return target

    def _move_aside(self, path: Path, reason: str) -> Path:
        target = self._aside_name(path, "corrupt")
        os.replace(path, target)
        fsync_dir(self.data_dir)
        log.warning("mock.file_moved_aside", path=str(path), moved_to=str(target), reason=reason)
        return target

    # -- snapshots --

    def write_snapshot(self, doc: dict[str, Any]) -> None:
        """Make ``doc`` generation N; N-1 and the journal since N-1 stay until N is durable."""
        started = time.monotonic()
        data = pack(doc)
        pending = AtomicFile(self.snapshot_path)
        try:
            pending.write(data)
            pending.file.flush()
            os.fsync(pending.file.fileno())  # N is whole on disk before N-1 moves
            rotate = self.snapshot_path.exists()
            if rotate:
                # A crash between these renames leaves no current snapshot: opening then uses this
                # previous one with the journal, which still holds every record since it.
                os.replace(self.snapshot_path, self.previous_path)
            pending.commit()
        except BaseException:
            pending.abort()
            raise
        if rotate:
            self._rotate_journal()
        self.snapshots_written += 1
        self._last_snapshot_end = time.monotonic()
        self.last_snapshot_seconds = self._last_snapshot_end - started
        log.debug("mock.snapshot_written", bytes=len(data), seconds=round(self.last_snapshot_seconds, 3))

    def _rotate_journal(self) -> None:
        """The records since N-1 become the previous segment (the ones before N-1 are no longer needed)."""
        self.close()
        if self.journal_path.exists():
            os.replace(self.journal_path, self.previous_journal_path)
        self._open_journal()

    def snapshot_due(self) -> bool:
        """Debounce: at least ``min_interval`` apart, and never more than ~10 % of the time."""
        interval = max(self.min_interval, 10 * self.last_snapshot_seconds)
        return time.monotonic() - self._last_snapshot_end >= interval

    # -- journal --

    def _open_journal(self) -> IO[bytes]:
        if self._journal is None:
            if self.journal_path.exists() and self.journal_path.stat().st_size:
                with open(self.journal_path, "rb") as existing:
                    header = existing.read(len(journal_format.FILE_HEADER))
                if header != journal_format.FILE_HEADER:
                    self._repair(self.journal_path)  # never append records of one format to another
            journal = open(self.journal_path, "ab")  # noqa: SIM115 - kept open between writes, closed by close()
            if journal.tell() == 0:
                journal.write(journal_format.FILE_HEADER)
                journal.flush()
                os.fsync(journal.fileno())
                fsync_dir(self.data_dir)  # the new name must survive a power cut too
            self._journal = journal
        return self._journal

    def append(self, record: dict[str, Any], *, sync: bool) -> None:
        journal = self._open_journal()
        journal.write(journal_format.frame(record, pack))
        journal.flush()
        if sync:
            os.fsync(journal.fileno())
        self.records_appended += 1

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
        "history": history_data.encode(world.history),
        "restore_jobs": world.restore_jobs.encode(),
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
    file_columns = file_columns_of(doc["files"]["columns"])  # also those of a state saved before error_message
    for name, columns in (
        ("clients", CLIENT_COLUMNS),
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
        world.add_file(file_from_row(row, file_columns))
    for cid, (count, size) in stored_totals.items():
        client = world.clients[cid]
        if (client.files_count, client.total_size) != (count, size):
            raise ValueError(f"client {cid} aggregates {count}/{size} disagree with its files")
    world.restore_activity(
        [from_row(Activity, row, ACTIVITY_COLUMNS) for row in doc["activity"]["rows"]], doc["activity"].get("next_id")
    )
    world.logs.extend(from_row(LogEntry, row, LOG_COLUMNS) for row in doc["logs"]["rows"])
    world.next_log_id = int(doc["logs"]["next_id"])
    world.history = history_data.decode(doc.get("history"))  # absent in a state saved before runs were kept
    world.restore_jobs = MockRestoreJobs.decode(doc.get("restore_jobs"))  # absent before jobs were kept
    # Move a simulated clock up to where the stored world stopped (a system clock ignores it).
    behind = (doc["clock"] - clock.now()).total_seconds()
    if behind > 0:
        clock.advance(behind)
    return world
