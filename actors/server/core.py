"""BackupServer: the real backup server's core, every backend operation of the catalogue, no sockets.

It keeps clients, files and versions in SQLite (``<data-dir>/server/backup.db``), their
content in content-addressed blobs (``<data-dir>/server/blobs``), its keys in
``<data-dir>/server/keys`` and its log in ``<data-dir>/server/logs``. Operations arrive
through ``handle`` (the BackendCore protocol the bridge shell drives); agent traffic
through ``agents`` (an AgentGateway the shell feeds from the agents' socket).

The seed's server interface is here too as plain methods returning plain data
(``get_all_clients_from_db``, ``get_files``, ``delete_client``, ``verify_file``, ...), so the
actor shell can serve any class that offers the same (``--server-class module:Class``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from actors.backends.api import RequestContext, StreamReply
from actors.backends.system_status import SystemStatusProbe
from actors.server import archive, content, counters, snapshot_queries
from actors.server import queries as q
from actors.server.agents import AgentGateway
from actors.server.blobs import BlobStore
from actors.server.db import open_database
from actors.server.dbview import CatalogTables
from actors.server.faults import describe, is_storage_full
from actors.server.logs import LogStore, install_capture
from actors.server.scrub import DEFAULT_INTERVAL_S as DEFAULT_SCRUB_INTERVAL_S
from actors.server.scrub import Scrubber
from actors.server.sessions import AgentSettings
from actors.server.store import Store
from actors.server.trust import AgentTrust
from protocol.agent_messages import CHUNK_SIZE, DEFAULT_AGENTS_ENDPOINT, HEARTBEAT_S, WINDOW
from protocol.catalogue import BACKEND_OPERATIONS, CATALOGUE
from protocol.catalogue_restore_jobs import QUEUED_EXPIRY_S
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode
from protocol.responses import success
from runtime.clock import Clock, SystemClock

log = structlog.get_logger()

VERSION = "backup-server 0.1.0"
DEFAULT_AGENTS = DEFAULT_AGENTS_ENDPOINT
Handler = Callable[[dict[str, Any]], "tuple[Any, str] | StreamReply"]


@dataclass(frozen=True, slots=True)
class ServerConfig:
    data_dir: Path  # the stack's data directory; the server keeps everything in data_dir/server
    agents_endpoint: str = DEFAULT_AGENTS
    enroll_token: str | None = None
    allow_list: Path | None = None  # extra allow-list file (the one in keys/ is always read)
    window: int = WINDOW
    chunk_size: int = CHUNK_SIZE
    heartbeat_s: float = HEARTBEAT_S
    tick_s: float = 0.5
    log_file: bool = True
    scrub_interval_s: float = DEFAULT_SCRUB_INTERVAL_S  # a storage scrub this often (0 = only on demand)
    restore_expiry_s: float = QUEUED_EXPIRY_S  # a restore job queued this long without its agent ends expired

    @property
    def root(self) -> Path:
        return self.data_dir / "server"


def _host_port(endpoint: str) -> tuple[str, int]:
    address = endpoint.split("://", 1)[-1]
    host, _, port = address.rpartition(":")
    return host or address, int(port) if port.isdigit() else 0


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"items": items, "total": len(items)}


class BackupServer:
    name = "server"
    mode = Mode.REAL
    blob_store_class: type[BlobStore] = BlobStore  # the seam for another blob store (and for fault injection)

    def __init__(self, config: ServerConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        root = config.root
        root.mkdir(parents=True, exist_ok=True)
        self.logs = LogStore(file=root / "logs" / "server.log" if config.log_file else None)
        install_capture(self.logs)
        self.trust = AgentTrust(root / "keys", config.enroll_token, config.allow_list, self.logs)
        self.keys, self.keyring = self.trust.keys, self.trust.keyring
        self.conn = open_database(root / "backup.db", self.clock.now())
        self.blobs = self.blob_store_class(root / "blobs")
        self.blobs.clean_temporaries()
        self.store = Store(self.conn, self.blobs, self.clock.now, self.get_server_status)
        self.keyring.set_clients({r[0] for r in self.conn.execute("SELECT public_key FROM clients")})
        stale = self.store.disconnect_all()  # sessions never survive a restart
        self.agents = AgentGateway(
            self.store,
            self.blobs,
            self.keyring,
            AgentSettings(
                window=config.window,
                chunk_size=config.chunk_size,
                heartbeat_s=config.heartbeat_s,
                server_version=VERSION,
            ),
        )
        self.agents.restores.jobs.expiry_s = config.restore_expiry_s
        self.running = self.store.setting("accepting", "1") == "1"
        self.agents.accepting = self.running
        self.started_at: datetime | None = self.clock.now() if self.running else None
        self.host, self.port = _host_port(config.agents_endpoint)
        self.dbview = CatalogTables(self.conn, self.store, self, "server/backup.db")
        self.scrubber = Scrubber(self.store, self.blobs, config.scrub_interval_s)
        self._system = SystemStatusProbe(root)
        self._closed = False
        self._handlers: dict[str, Handler] = self._make_handlers()
        if self.running:
            self.store.record(
                "server_started", "INFO", f"Backup server started; accepting agents on {config.agents_endpoint}"
            )
        else:
            self.store.record(
                "server_stopped", "WARNING", "Backup server started stopped (as it was left); start it to accept agents"
            )
        log.info("server.opened", root=str(root), reset_sessions=len(stale), running=self.running)

    def _make_handlers(self) -> dict[str, Handler]:
        return {
            "get_clients": lambda a: (q.get_clients(self.conn, a), "Clients"),
            "get_client_details": lambda a: (q.client_details(self.conn, a["client_id"]), "Client details"),
            "resolve_client": lambda a: (q.resolve_client(self.conn, a["client_id_or_name"]), "Client resolved"),
            "disconnect_client": lambda a: ({"client": self.disconnect_client(a["client_id"])}, "Client disconnected"),
            "delete_client": lambda a: (self.delete_client(a["client_id"]), "Client deleted"),
            "get_files": lambda a: (q.get_files(self.conn, a), "Files"),
            "get_client_files": lambda a: (_listing(self.get_client_files(a["client_id"])), "Client files"),
            "delete_file": lambda a: (self.delete_file(a["file_id"]), "File deleted"),
            "download_file": lambda a: self.download_file(
                a["file_id"], a["destination_path"], a["allow_damaged"], a["version"]
            ),
            "verify_file": self._verify_op,
            "scrub_storage": self._scrub_op,
            "get_database_info": lambda a: (self.dbview.database_info(), "Database info"),
            "get_table_data": lambda a: (self.dbview.table_data(a), "Table data"),
            "update_row": lambda a: (self.dbview.update_row(a), "Row updated"),
            "delete_row": lambda a: (self.dbview.delete_row(a), "Row deleted"),
            "get_server_status": lambda a: (self.get_server_status(), "Server status"),
            "get_system_status": lambda a: (self.get_system_status(), "System status"),
            "get_recent_activity": lambda a: (q.recent_activity(self.conn, a["limit"]), "Recent activity"),
            "start_server": lambda a: (self.start_server(), "Server started"),
            "stop_server": lambda a: (self.stop_server(), "Server stopped"),
            "get_logs": lambda a: (self.logs.query(a.get("level"), a.get("text"), a["offset"], a["limit"]), "Logs"),
            "get_enrollment_token": lambda a: (self.trust.enrollment(self.config.agents_endpoint), "Enrollment token"),
            "rotate_enrollment_token": lambda a: (self.rotate_enrollment_token(), "Enrollment token rotated"),
            "test_connection": lambda a: (
                {"pong": True, "backend": self.name, "server_time": self.clock.now()},
                "pong",
            ),
            **snapshot_queries.handlers(self.conn),
            **self.agents.restores.jobs.handlers(),
            "download_archive": lambda a: archive.download_archive(self.conn, self.blobs, a, self._reply),
        }

    # -- BackendCore --

    def operations(self) -> list[str]:
        return [op for op in BACKEND_OPERATIONS if op in self._handlers]

    def handle(self, op: str, args: dict[str, Any], ctx: RequestContext) -> dict[str, Any] | StreamReply:
        operation = CATALOGUE.get(op)
        if operation is None or op not in self._handlers:
            raise ProtocolError(ErrorCode.UNKNOWN_OPERATION, f"the backup server has no operation {op!r}", op=op)
        try:
            result = self._handlers[op](operation.validate_args(args))
        except (OSError, sqlite3.Error) as exc:
            if not is_storage_full(exc):
                raise
            self.store.storage_alarm.report(f"the console's {op}", exc)
            raise ProtocolError(ErrorCode.STORAGE_FULL, f"{op} failed: server storage full ({describe(exc)})") from exc
        if isinstance(result, StreamReply):
            return result
        data, message = result
        return self._reply(data, message)

    def _reply(self, data: Any, message: str) -> dict[str, Any]:
        return success(data, message, mode=self.mode, timestamp=self.clock.now())

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        return self.store.drain()

    def tick(self) -> None:
        self.agents.tick()
        self.agents.restores.jobs.flush()
        self.scrubber.tick()
        self.store.flush_server_changed()  # after the agents' tick, so its lost sessions count too
        self.trust.record_refusals(self.store)

    def tick_interval(self) -> float:
        return self.config.tick_s

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for session in list(self.agents.sessions.values()):
            self.agents._drop(session)
        self.store.disconnect_all()
        self.scrubber.close()
        with contextlib.suppress(sqlite3.Error):  # an optional tidy-up: a full disk must not stop the close
            self.conn.execute("PRAGMA optimize")
        self.conn.close()
        self.blobs.close()
        log.info("server.closed")
        self.logs.close()

    # -- the seed's interface: plain data --

    def get_all_clients_from_db(self) -> list[dict[str, Any]]:
        return q.all_clients(self.conn)

    def get_files(self, client_id: str | None = None) -> list[dict[str, Any]]:
        return q.files_of(self.conn, client_id)

    def get_client_files(self, client_id: str) -> list[dict[str, Any]]:
        return q.files_of(self.conn, client_id)

    def get_recent_activity(self, limit: int = 50) -> list[dict[str, Any]]:
        return q.recent_activity(self.conn, limit)["items"]

    def disconnect_client(self, client_id: str) -> dict[str, Any]:
        client = q.get_client(self.conn, client_id)
        if not self.agents.disconnect(client_id, "disconnected by an administrator"):
            raise ProtocolError(
                ErrorCode.CONFLICT,
                f"client {client['name']!r} is not connected (status: {client['status']})",
                client_id=client_id,
                status=client["status"],
            )
        self.store.flush_server_changed()  # the operator's console shows the new count with its reply
        return q.get_client(self.conn, client_id)

    def delete_client(self, client_id: str) -> dict[str, Any]:
        count, freed = self.delete_client_cascade(client_id, "")
        return {"client_id": client_id, "deleted_files": count, "freed_bytes": freed}

    def delete_client_cascade(self, client_id: str, via: str) -> tuple[int, int]:
        name = q.get_client(self.conn, client_id)["name"]
        self.agents.forget_client(client_id)
        count, freed, key = self.store.delete_client(client_id)
        # Revoked, not just forgotten: the agent cannot come back by enrolling the same key with the token.
        self.keyring.revoke(key, f"client {name} ({client_id}) deleted")
        self.store.record(
            "client_deleted",
            "WARNING",
            f"Deleted client {name} and its {count} files ({freed} bytes freed){via}",
            client_id=client_id,
            logger="backup.admin",
        )
        self.store.server_changed()
        return count, freed

    def delete_file(self, file_id: str) -> dict[str, Any]:
        file = q.get_file(self.conn, file_id)
        freed = self.delete_file_and_blob(file_id, "")
        return {"file_id": file_id, "client_id": file["client_id"], "freed_bytes": freed}

    def delete_file_and_blob(self, file_id: str, via: str) -> int:
        file, freed = self.store.delete_file(file_id)
        self.store.record(
            "file_deleted",
            "INFO",
            f"Deleted {file['path']} ({file['size']} bytes, {freed} bytes freed on disk){via}",
            client_id=file["client_id"],
            file_id=file_id,
            logger="backup.storage",
        )
        self.store.server_changed()
        return freed

    def disconnect_session(self, client_id: str, reason: str) -> bool:
        ended = self.agents.disconnect(client_id, reason)
        self.store.flush_server_changed()
        return ended

    def has_session(self, client_id: str) -> bool:
        return self.agents.has_session(client_id)

    def verify_file(self, file_id: str) -> dict[str, Any]:
        return content.verify(self.store, self.blobs, file_id)

    def _verify_op(self, args: dict[str, Any]) -> tuple[Any, str]:
        data = self.verify_file(args["file_id"])
        return data, "File verified" if data["ok"] else "File failed verification"

    def _scrub_op(self, args: dict[str, Any]) -> tuple[Any, str]:
        report = self.scrubber.run_now()
        if not report["complete"]:
            return report, "Storage scrub under way: call again for the rest"
        return report, f"Storage scrubbed: {report['damaged_total']} files with missing or damaged content"

    def download_file(
        self, file_id: str, destination_path: str, allow_damaged: bool = False, version: int | None = None
    ) -> StreamReply:
        return content.download(self.store, self.blobs, file_id, destination_path, self._reply, allow_damaged, version)

    @property
    def token(self) -> str:
        """The agents' enrollment token now (a secret)."""
        return self.trust.token

    def rotate_enrollment_token(self) -> dict[str, Any]:
        self.trust.rotate(self.store)
        return self.trust.enrollment(self.config.agents_endpoint)

    def get_server_status(self) -> dict[str, Any]:
        totals = counters.read(self.conn)
        started = self.started_at if self.running else None
        uptime = max(0.0, (self.clock.now() - started).total_seconds()) if started else 0.0
        return {
            "running": self.running,
            "started_at": started,
            "uptime_seconds": uptime,
            "host": self.host,
            "port": self.port,
            "version": VERSION,
            "clients_connected": totals["clients_connected"],
            "clients_total": totals["clients_total"],
            "files_total": totals["files_total"],
            "storage_used": totals["storage_used"],
            "active_transfers": self.agents.active_transfers(),
        }

    def get_system_status(self) -> dict[str, Any]:
        return self._system.collect(self.clock.now())

    def start_server(self) -> dict[str, Any]:
        return self._set_running(True)

    def stop_server(self) -> dict[str, Any]:
        return self._set_running(False)

    def _set_running(self, running: bool) -> dict[str, Any]:
        if self.running == running:
            state = "running" if running else "stopped"
            raise ProtocolError(ErrorCode.CONFLICT, f"the backup server is already {state}", running=running)
        self.running = running
        self.agents.accepting = running
        self.store.set_setting("accepting", "1" if running else "0")
        if running:
            self.started_at = self.clock.now()
            self.store.record("server_started", "INFO", "Backup server started; agents can connect")
        else:
            self.started_at = None
            self.agents.disconnect_all("the backup server was stopped by its operator")
            self.store.flush_server_changed()  # one for all the sessions it ended, as before the stop's own
            self.store.record("server_stopped", "WARNING", "Backup server stopped; agents can no longer connect")
        self.store.server_changed()
        return self.get_server_status()
