"""MockCore: the mock backend, every backend operation of the catalogue, no sockets.

The socket shell validates arguments, calls ``handle``, sends ``drain_events()``,
calls ``tick()`` every ``tick_interval()`` seconds and ``close()`` on a clean exit.
State lives in a ``MockWorld``; with a data directory, ``MockStore`` journals every
acknowledged write (fsynced before ``handle`` returns) and snapshots on ticks.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from actors.backends.api import RequestContext, StreamReply
from actors.backends.content_check import DAMAGED, StoredFile, checked_stream, damaged
from actors.backends.system_status import SystemStatusProbe
from actors.backends.validation import check_destination_path
from actors.mock import archive as mock_archive
from actors.mock import database as mock_database
from actors.mock import queries as mock_queries
from actors.mock import restore_jobs as mock_restore_jobs
from actors.mock import snapshots as mock_snapshots
from actors.mock.actions import delete_client, delete_file, disconnect, find_client, find_file, set_running, verify_file
from actors.mock.content import content_sha256, read_content
from actors.mock.evolution import Evolution
from actors.mock.scrub import scrub_storage
from actors.mock.state import MockWorld, generate_world
from actors.mock.store import MockStore, decode_world, encode_world
from protocol.catalogue import BACKEND_OPERATIONS, CATALOGUE
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode
from protocol.responses import success
from runtime.clock import Clock, SystemClock

log = structlog.get_logger()

TICK_OP = "_tick"  # journal-only pseudo operation: one evolution step
Handler = Callable[[dict[str, Any]], "tuple[Any, str] | StreamReply"]


class MockCore:
    name = "mock"
    mode = Mode.MOCK

    def __init__(self, world: MockWorld, store: MockStore | None, *, tick_seconds: float, journal_seq: int = 0) -> None:
        if tick_seconds <= 0:
            raise ValueError("tick_seconds must be positive")
        self.world = world
        self.store = store
        self.journal_seq = journal_seq
        self._tick_seconds = tick_seconds
        self._evolution = Evolution(world)
        self._system = SystemStatusProbe(store.data_dir if store else Path.cwd())
        self._dirty = False
        self._replaying = False
        self._closed = False
        self._handlers: dict[str, Handler] = {
            "get_clients": lambda a: (mock_queries.get_clients(world, a), "Clients"),
            "get_client_details": lambda a: (mock_queries.get_client_details(world, a), "Client details"),
            "resolve_client": lambda a: (mock_queries.resolve_client(world, a), "Client resolved"),
            "disconnect_client": self._disconnect_client,
            "delete_client": self._delete_client,
            "get_files": lambda a: (mock_queries.get_files(world, a), "Files"),
            "get_client_files": lambda a: (mock_queries.get_client_files(world, a), "Client files"),
            "delete_file": self._delete_file,
            "download_file": self._download_file,
            "verify_file": self._verify_file,
            "scrub_storage": self._scrub_storage,
            "get_database_info": self._database_info,
            "get_table_data": lambda a: (mock_database.table_data(world, a), "Table data"),
            "update_row": lambda a: (mock_database.update_row(world, a), "Row updated"),
            "delete_row": lambda a: (mock_database.delete_row(world, a), "Row deleted"),
            "get_server_status": lambda a: (world.server_status(), "Server status"),
            "get_system_status": lambda a: (self._system.collect(world.now()), "System status"),
            "get_recent_activity": lambda a: (mock_queries.get_recent_activity(world, a), "Recent activity"),
            "start_server": self._start_server,
            "stop_server": self._stop_server,
            "get_logs": lambda a: (mock_queries.get_logs(world, a), "Logs"),
            "test_connection": lambda a: ({"pong": True, "backend": self.name, "server_time": world.now()}, "pong"),
            **mock_snapshots.handlers(world),
            **mock_restore_jobs.handlers(world),
            "download_archive": mock_archive.handler(world, self._reply),
        }

    @classmethod
    def open(
        cls,
        data_dir: Path | None,
        *,
        seed: int = 42,
        clock: Clock | None = None,
        clients: int = 45,
        files: int | None = None,
        tick_seconds: float = 3.0,
        min_snapshot_interval: float = 2.0,
    ) -> MockCore:
        """Load the stored world (replaying its journal) or generate a fresh one.

        ``data_dir=None`` keeps everything in memory. A stored world always wins over
        ``seed``/``clients``/``files``: they only shape a freshly generated dataset.
        """
        clock = clock or SystemClock()
        store = MockStore(Path(data_dir), min_interval=min_snapshot_interval) if data_dir is not None else None
        loaded = store.load(lambda doc: (decode_world(doc, clock), int(doc["journal_seq"]))) if store else None
        if loaded is not None:
            world, seq = loaded.value
            requested = {"seed": seed, "clients": clients, "files": files}
            stored = {"seed": world.seed, **world.config}
            if requested != stored:
                log.info("mock.stored_config_wins", requested=requested, stored=stored)
            core = cls(world, store, tick_seconds=tick_seconds, journal_seq=seq)
            core._replay(loaded.records)
            if loaded.from_previous:
                core._snapshot()  # a sound newest generation again, before the next write relies on it
        else:
            core = cls(generate_world(seed, clock, clients, files), store, tick_seconds=tick_seconds)
            if store is not None:
                core._snapshot()  # a base for the journal before the first acknowledged write
        core.world.drain()  # history rebuilt on open was already announced when it happened
        log.info(
            "mock.opened",
            data_dir=str(data_dir) if data_dir else None,
            clients=len(core.world.clients),
            files=len(core.world.files),
            journal_seq=core.journal_seq,
        )
        return core

    # -- BackendCore --

    def operations(self) -> list[str]:
        return [op for op in BACKEND_OPERATIONS if op in self._handlers]

    def handle(self, op: str, args: dict[str, Any], ctx: RequestContext) -> dict[str, Any] | StreamReply:
        operation = CATALOGUE.get(op)
        if operation is None or op not in self._handlers:
            raise ProtocolError(ErrorCode.UNKNOWN_OPERATION, f"the mock backend has no operation {op!r}", op=op)
        # The shell validated already; doing it again is cheap and fills defaults for direct callers.
        args = operation.validate_args(args)
        at = self.world.now()
        reply = self._dispatch(op, args)
        if operation.is_write:
            self._dirty = True
            self._journal(op, args, at, sync=True)
        return reply

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        return self.world.drain()

    def tick(self) -> None:
        self._evolve(self._tick_seconds)
        self._dirty = True
        self._journal(TICK_OP, {"seconds": self._tick_seconds}, self.world.now(), sync=False)
        if self.store is not None and self.store.snapshot_due():
            self._snapshot()

    def tick_interval(self) -> float:
        return self._tick_seconds

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.store is not None:
            if self._dirty:
                self._snapshot()
            self.store.close()
        log.info("mock.closed", journal_seq=self.journal_seq)

    # -- plumbing --

    def _dispatch(self, op: str, args: dict[str, Any]) -> dict[str, Any] | StreamReply:
        result = self._handlers[op](args)
        if isinstance(result, StreamReply):
            return result
        data, message = result
        return self._reply(data, message)

    def _reply(self, data: Any, message: str) -> dict[str, Any]:
        return success(data, message, mode=self.mode, timestamp=self.world.now())

    def _evolve(self, seconds: float) -> None:
        self.world.clock.advance(seconds)
        self._evolution.step()
        self.world.restore_jobs.advance(self.world, seconds)  # after the step: a client it disconnected waits

    def _journal(self, op: str, args: dict[str, Any], at: datetime, *, sync: bool) -> None:
        if self.store is None or self._replaying:
            return
        self.journal_seq += 1
        try:
            self.store.append({"seq": self.journal_seq, "op": op, "args": args, "at": at}, sync=sync)
        except OSError as exc:
            log.error("mock.journal_failed", op=op, seq=self.journal_seq, error=str(exc))
            code = ErrorCode.STORAGE_FULL if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ErrorCode.INTERNAL
            raise ProtocolError(code, f"{op} was applied in memory but could not be made durable: {exc}") from exc

    def _snapshot(self) -> None:
        assert self.store is not None
        self.store.write_snapshot(encode_world(self.world, self.journal_seq))
        self._dirty = False

    def _replay(self, records: list[dict[str, Any]]) -> None:
        applied = skipped = 0
        last_at: datetime | None = None
        self._replaying = True
        try:
            for record in records:
                seq = record["seq"]
                if seq <= self.journal_seq:
                    continue  # already in the snapshot (a crash came between snapshot and truncation)
                op, args, at = record["op"], record.get("args") or {}, record.get("at")
                try:
                    with self.world.pinned(at):
                        if op == TICK_OP:
                            self._evolve(float(args["seconds"]))
                        else:
                            self._dispatch(op, CATALOGUE[op].validate_args(args))
                    applied += 1
                except ProtocolError as exc:
                    skipped += 1
                    log.warning("mock.journal_record_skipped", seq=seq, op=op, code=exc.code.value, error=exc.message)
                except Exception as exc:  # a bug must not make the stored data unreachable
                    skipped += 1
                    log.error("mock.journal_record_failed", seq=seq, op=op, error=repr(exc))
                self.journal_seq = seq
                last_at = at if isinstance(at, datetime) else last_at
        finally:
            self._replaying = False
        if applied or skipped:
            self._dirty = True
            log.info("mock.journal_replayed", applied=applied, skipped=skipped, journal_seq=self.journal_seq)
        if last_at is not None and last_at > self.world.clock.now():
            self.world.clock.advance((last_at - self.world.clock.now()).total_seconds())

    # -- write operations --

    def _disconnect_client(self, args: dict[str, Any]) -> tuple[Any, str]:
        client = find_client(self.world, args["client_id"])
        if client.status != "connected":
            raise ProtocolError(
                ErrorCode.CONFLICT,
                f"client {client.name!r} is not connected (status: {client.status})",
                client_id=client.id,
                status=client.status,
            )
        disconnect(self.world, client, "disconnected by an administrator")
        return {"client": client.to_dict()}, f"Client {client.name} disconnected"

    def _delete_client(self, args: dict[str, Any]) -> tuple[Any, str]:
        client = find_client(self.world, args["client_id"])
        count, freed = delete_client(self.world, client)
        data = {"client_id": client.id, "deleted_files": count, "freed_bytes": freed}
        return data, f"Client {client.name} deleted with {count} files"

    def _delete_file(self, args: dict[str, Any]) -> tuple[Any, str]:
        record = find_file(self.world, args["file_id"])
        freed = delete_file(self.world, record)
        data = {"file_id": record.id, "client_id": record.client_id, "freed_bytes": freed}
        return data, f"File {record.name} deleted"

    def _verify_file(self, args: dict[str, Any]) -> tuple[Any, str]:
        record = find_file(self.world, args["file_id"])
        data = verify_file(self.world, record)
        return data, f"File {record.name} verified" if data["ok"] else f"File {record.name} failed verification"

    def _scrub_storage(self, args: dict[str, Any]) -> tuple[Any, str]:
        report = scrub_storage(self.world)
        return report, f"Storage scrubbed: {report['damaged_total']} files with missing or damaged content"

    def _start_server(self, args: dict[str, Any]) -> tuple[Any, str]:
        return set_running(self.world, True), "Server started"

    def _stop_server(self, args: dict[str, Any]) -> tuple[Any, str]:
        return set_running(self.world, False), "Server stopped"

    # -- reads that need the core --

    def _download_file(self, args: dict[str, Any]) -> StreamReply:
        check_destination_path(args["destination_path"])
        record = find_file(self.world, args["file_id"])
        # Freeze what is streamed: a tick may start a new version while the stream runs.
        seed, file_id, version, size = self.world.seed, record.id, record.content_version, record.size
        expected = record.sha256
        if args.get("version") is not None:  # an older one (snapshots); NOT_FOUND when it is not retained
            version, size, expected = mock_snapshots.version_to_download(self.world, record, args["version"])
        stored = StoredFile(file_id, record.name, record.path, expected, args["destination_path"])
        # The mock's content is generated, so whether it still matches is known before streaming.
        actual = content_sha256(seed, file_id, version, size)
        if actual != expected and not args["allow_damaged"]:
            raise damaged(stored, actual, DAMAGED)

        def read_at(offset: int, length: int) -> bytes:
            return read_content(seed, file_id, version, size, offset, length)

        return checked_stream(stored, size, read_at, args["allow_damaged"], self._reply)

    def _database_info(self, args: dict[str, Any]) -> tuple[Any, str]:
        # Relative to the mock's data directory: replies must not depend on where it lives.
        path = self.store.snapshot_path.name if self.store else ":memory:"
        return mock_database.database_info(self.world, path), "Database info"
