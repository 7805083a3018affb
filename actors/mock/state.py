"""The mock's world: every record, the aggregates and indexes over them, and the events.

All changes go through the methods here so per-client ``files_count``/``total_size``,
the server totals and the sorted indexes can never drift from the records (they are
maintained incrementally, never recomputed by scanning). Operations, the database view
and the ticker all act on one ``MockWorld``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import structlog

from actors.backends.dbview import path_key
from actors.backends.filters import fold
from actors.mock import history_data
from actors.mock.generator import MockDataGenerator
from actors.mock.history import MockHistory
from actors.mock.index import SortedIndex
from actors.mock.records import ACTIVITY_LIMIT, LOG_LIMIT, Activity, Client, FileRecord, LogEntry, ServerState
from actors.mock.restore_jobs import MockRestoreJobs
from protocol.catalogue import CLIENT_STATUSES, FILE_STATUSES
from protocol.events import ACTIVITY, CLIENT_CHANGED, FILE_CHANGED, SERVER_CHANGED
from runtime.clock import Clock

log = structlog.get_logger()

EVENT_LIMIT = 20_000
# Fields whose change moves a record in the index of the same name; text sorts case-folded
# like the real server's NOCASE columns.
CLIENT_SORT_KEYS: dict[str, Any] = {
    "name": lambda c: fold(c.name),
    "last_seen": lambda c: c.last_seen,
    "status": lambda c: c.status,
    "total_size": lambda c: c.total_size,
}
FILE_SORT_KEYS: dict[str, Any] = {
    "name": lambda f: fold(f.name),
    "size": lambda f: f.size,
    "modified_at": lambda f: f.modified_at,
    "path": lambda f: fold(f.path),
}


class MockWorld:
    def __init__(
        self,
        *,
        seed: int,
        rng: random.Random,
        clock: Clock,
        server: ServerState,
        target_files: int,
        config: dict[str, Any],
    ) -> None:
        self.seed = seed
        self.rng = rng
        self.gen = MockDataGenerator(rng, seed)
        self.clock = clock
        self.server = server
        self.target_files = target_files
        self.config = config  # what the dataset was generated with (clients, files)
        self.clients: dict[str, Client] = {}
        self.files: dict[str, FileRecord] = {}
        self.files_by_client: dict[str, dict[str, FileRecord]] = {}
        self.activity: dict[str, Activity] = {}
        # Numbered like the real server's activity rows (never reused), not drawn from the RNG.
        self.next_activity_id = 1
        self.logs: deque[LogEntry] = deque(maxlen=LOG_LIMIT)
        self.next_log_id = 1
        self.storage_used = 0
        self.client_status_counts: dict[str, int] = dict.fromkeys(CLIENT_STATUSES, 0)
        self.file_status_counts: dict[str, int] = dict.fromkeys(FILE_STATUSES, 0)
        # dicts, not sets: iteration order must not depend on string hashing.
        self.uploading: dict[str, None] = {}
        self.names: dict[str, dict[str, None]] = {}
        self.taken_paths: set[tuple[str, str]] = set()  # membership only, never iterated
        self.client_index = {k: SortedIndex(fn, self.clients.values) for k, fn in CLIENT_SORT_KEYS.items()}
        self.file_index = {k: SortedIndex(fn, self.files.values) for k, fn in FILE_SORT_KEYS.items()}
        self.events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=EVENT_LIMIT)
        self.history = MockHistory()  # backup runs as snapshots, versions of files
        self.restore_jobs = MockRestoreJobs()  # restore_to_agent, carried out over ticks
        self._pinned: datetime | None = None
        self._overflowing = False

    # -- time --

    def now(self) -> datetime:
        return self._pinned if self._pinned is not None else self.clock.now()

    @contextmanager
    def pinned(self, at: datetime | None) -> Iterator[None]:
        """Replay a journal record at the instant it first ran, whatever the clock says now."""
        previous, self._pinned = self._pinned, at
        try:
            yield
        finally:
            self._pinned = previous

    # -- clients --

    def add_client(self, client: Client) -> None:
        self.clients[client.id] = client
        self.files_by_client.setdefault(client.id, {})
        self.names.setdefault(fold(client.name), {})[client.id] = None
        self.client_status_counts[client.status] += 1
        for index in self.client_index.values():
            index.add(client)

    def update_client(self, client: Client, **changes: Any) -> None:
        moved = [self.client_index[k] for k in changes if k in self.client_index]
        for index in moved:
            index.discard(client)
        if "name" in changes:
            self._forget_name(client)
        if "status" in changes:
            self.client_status_counts[client.status] -= 1
            self.client_status_counts[changes["status"]] += 1
        for key, value in changes.items():
            setattr(client, key, value)
        if "name" in changes:
            self.names.setdefault(fold(client.name), {})[client.id] = None
        if {"name", "hostname", "ip_address"} & changes.keys():
            client.refresh_hay()
        for index in moved:
            index.add(client)

    def _forget_name(self, client: Client) -> None:
        ids = self.names.get(fold(client.name))
        if ids is not None:
            ids.pop(client.id, None)
            if not ids:
                del self.names[fold(client.name)]

    def remove_client(self, client: Client) -> list[FileRecord]:
        """Delete a client and its files; returns the deleted files."""
        removed = list(self.files_by_client.get(client.id, {}).values())
        for record in removed:
            self.remove_file(record)
        for index in self.client_index.values():
            index.discard(client)
        self._forget_name(client)
        self.client_status_counts[client.status] -= 1
        self.history.forget_client(client.id)
        del self.clients[client.id]
        self.files_by_client.pop(client.id, None)
        return removed

    # -- files --

    def add_file(self, record: FileRecord) -> None:
        client = self.clients[record.client_id]
        self.files[record.id] = record
        self.files_by_client[record.client_id][record.id] = record
        self.taken_paths.add((record.client_id, path_key(record.path)))
        self.file_status_counts[record.status] += 1
        if record.status == "uploading":
            self.uploading[record.id] = None
        self.storage_used += record.size
        for index in self.file_index.values():
            index.add(record)
        self.update_client(client, files_count=client.files_count + 1, total_size=client.total_size + record.size)

    def update_file(self, record: FileRecord, **changes: Any) -> None:
        """Apply ``changes``; a change of status to error must say why (error_message), any other clears it."""
        if "status" in changes:
            if changes["status"] != "error":
                changes["error_message"] = None
            elif not changes.get("error_message"):
                raise ValueError(f"file {record.id} set to status error without an error_message")
        moved = [self.file_index[k] for k in changes if k in self.file_index]
        for index in moved:
            index.discard(record)
        if "status" in changes:
            self.file_status_counts[record.status] -= 1
            self.file_status_counts[changes["status"]] += 1
            self.uploading.pop(record.id, None)
            if changes["status"] == "uploading":
                self.uploading[record.id] = None
        if "path" in changes:
            self.taken_paths.discard((record.client_id, path_key(record.path)))
            self.taken_paths.add((record.client_id, path_key(changes["path"])))
        delta = changes["size"] - record.size if "size" in changes else 0
        for key, value in changes.items():
            setattr(record, key, value)
        if {"name", "path"} & changes.keys():
            record.refresh_hay()
        for index in moved:
            index.add(record)
        if delta:
            self.storage_used += delta
            client = self.clients[record.client_id]
            self.update_client(client, total_size=client.total_size + delta)

    def remove_file(self, record: FileRecord) -> None:
        for index in self.file_index.values():
            index.discard(record)
        del self.files[record.id]
        self.files_by_client[record.client_id].pop(record.id, None)
        self.taken_paths.discard((record.client_id, path_key(record.path)))
        self.file_status_counts[record.status] -= 1
        self.uploading.pop(record.id, None)
        self.storage_used -= record.size
        self.history.forget_file(record.id)
        client = self.clients[record.client_id]
        self.update_client(client, files_count=client.files_count - 1, total_size=client.total_size - record.size)

    # -- activity, server log, events --

    def record(
        self,
        type_: str,
        level: str,
        message: str,
        *,
        logger: str = "backup.server",
        event: str | None = None,
        client_id: str | None = None,
        file_id: str | None = None,
    ) -> Activity:
        """Append to the activity log, mirror it in the server log and emit it."""
        entry = Activity(str(self.next_activity_id), self.now(), type_, level, client_id, file_id, message)
        self.next_activity_id += 1
        self.activity[entry.id] = entry
        if len(self.activity) > ACTIVITY_LIMIT:
            del self.activity[next(iter(self.activity))]
        self.log(level, logger, event or type_.replace("_", "."), message, client_id)
        self.emit(ACTIVITY, entry.to_dict())
        return entry

    def restore_activity(self, entries: list[Activity], next_id: int | None) -> None:
        """Adopt a snapshot's activity log; one written before ids were numbers is numbered now, oldest first."""
        if next_id is None:
            for number, entry in enumerate(entries, 1):
                entry.id = str(number)
            next_id = len(entries) + 1
        self.activity = {entry.id: entry for entry in entries}
        self.next_activity_id = next_id

    def log(self, level: str, logger: str, event: str, message: str, client_id: str | None = None) -> None:
        self.logs.append(LogEntry(f"log-{self.next_log_id}", self.now(), level, logger, event, message, client_id))
        self.next_log_id += 1

    def emit(self, topic: str, data: dict[str, Any]) -> None:
        if len(self.events) == self.events.maxlen and not self._overflowing:
            self._overflowing = True  # once per episode, not once per event
            log.warning("mock.events_dropped", reason="nobody drains events", limit=self.events.maxlen)
        self.events.append((topic, data))

    def client_changed(self, client: Client, change: str) -> None:
        data = None if change == "deleted" else client.to_dict()
        self.emit(CLIENT_CHANGED, {"client_id": client.id, "change": change, "client": data})

    def file_changed(self, record: FileRecord, change: str) -> None:
        data = None if change == "deleted" else record.to_dict()
        self.emit(FILE_CHANGED, {"file_id": record.id, "client_id": record.client_id, "change": change, "file": data})

    def server_changed(self) -> None:
        self.emit(SERVER_CHANGED, {"status": self.server_status()})

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        events = list(self.events)
        self.events.clear()
        self._overflowing = False
        return events

    # -- derived views --

    def server_status(self) -> dict[str, Any]:
        running = self.server.running
        started = self.server.started_at if running else None
        uptime = max(0.0, (self.now() - started).total_seconds()) if started is not None else 0.0
        return {
            "running": running,
            "started_at": started,
            "uptime_seconds": uptime,
            "host": self.server.host,
            "port": self.server.port,
            "version": self.server.version,
            "clients_connected": self.client_status_counts["connected"],
            "clients_total": len(self.clients),
            "files_total": len(self.files),
            "storage_used": self.storage_used,
            "active_transfers": len(self.uploading),
        }


def generate_world(seed: int, clock: Clock, clients: int, files: int | None) -> MockWorld:
    """A fresh dataset: ``clients`` clients and ``files`` files (or ~20 per client)."""
    rng = random.Random(seed)
    now = clock.now()
    server = ServerState(running=True, started_at=now - timedelta(seconds=rng.randint(3600, 3 * 86400)))
    world = MockWorld(
        seed=seed,
        rng=rng,
        clock=clock,
        server=server,
        target_files=0,
        config={"clients": clients, "files": files},
    )
    gen = world.gen
    made = gen.make_clients(clients, now)
    if files is None:
        counts = [int(rng.triangular(8, 40, 12)) for _ in made]
    else:
        counts = [0] * len(made)
        if made:
            # Uneven on purpose: some clients back up far more than others.
            weights = [0.2 + rng.random() for _ in made]
            for i in rng.choices(range(len(made)), weights=weights, k=files):
                counts[i] += 1
    for client, count in zip(made, counts, strict=False):
        world.add_client(client)
        for record in gen.make_files(client, count, now, world.taken_paths):
            world.add_file(record)
    world.target_files = len(world.files)
    history_data.seed(world)
    _seed_history(world)
    world.drain()
    log.info("mock.generated", seed=seed, clients=len(world.clients), files=len(world.files), bytes=world.storage_used)
    return world


def _seed_history(world: MockWorld) -> None:
    """A recent activity history so a fresh console has something to show."""
    started = world.server.started_at
    assert started is not None
    with world.pinned(started):
        world.record("server_started", "INFO", world.server.started_message())
    recent = sorted(
        (f for f in world.files.values() if f.last_backup > started),
        key=lambda f: (f.last_backup, f.id),
    )[-40:]
    for record in recent:
        client = world.clients[record.client_id]
        with world.pinned(record.last_backup):
            world.record(
                "backup_completed",
                "INFO",
                f"{client.name}: {record.path} backed up ({record.size} bytes)",
                logger="backup.transfer",
                client_id=client.id,
                file_id=record.id,
            )
