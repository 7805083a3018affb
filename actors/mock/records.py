"""The mock's records (clients, files, activity, log lines, server) and their snapshot row codecs.

Records are mutable dataclasses owned by ``MockWorld``: only the world changes them, so
it can keep aggregates and indexes right. ``to_dict`` gives the exact wire shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actors.backends.file_errors import REASON_NOT_RECORDED
from actors.backends.filters import fold

SERVER_HOST = "0.0.0.0"
SERVER_PORT = 1256
SERVER_VERSION = "2.5.0"
ACTIVITY_LIMIT = 2000
LOG_LIMIT = 5000


@dataclass(slots=True)
class Client:
    id: str
    name: str
    hostname: str
    ip_address: str
    platform: str
    agent_version: str
    status: str
    last_seen: datetime
    connected_at: datetime | None
    created_at: datetime
    error_message: str | None = None
    files_count: int = 0
    total_size: int = 0
    # Case-folded name/hostname/ip, precomputed so a search over 10,000 clients is one `in` each.
    hay: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        self.refresh_hay()

    def refresh_hay(self) -> None:
        self.hay = fold(f"{self.name}\n{self.hostname}\n{self.ip_address}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "hostname": self.hostname,
            "ip_address": self.ip_address,
            "platform": self.platform,
            "agent_version": self.agent_version,
            "status": self.status,
            "last_seen": self.last_seen,
            "connected_at": self.connected_at,
            "created_at": self.created_at,
            "files_count": self.files_count,
            "total_size": self.total_size,
            "error_message": self.error_message,
        }


@dataclass(slots=True)
class FileRecord:
    id: str
    client_id: str
    name: str
    path: str
    size: int
    sha256: str
    status: str
    created_at: datetime
    modified_at: datetime
    backup_count: int
    last_backup: datetime
    last_verified: datetime | None
    error_message: str | None = None  # why it is in status error (MockWorld.update_file keeps it so)
    # Which content the storage holds now; never on the wire. Bumping it without a new
    # sha256 is how the mock corrupts a file.
    content_version: int = 0
    hay: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        self.refresh_hay()

    def refresh_hay(self) -> None:
        self.hay = fold(f"{self.name}\n{self.path}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_id": self.client_id,
            "name": self.name,
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "status": self.status,
            "created_at": self.created_at,
            "modified_at": self.modified_at,
            "backup_count": self.backup_count,
            "last_backup": self.last_backup,
            "last_verified": self.last_verified,
            "error_message": self.error_message,
        }


@dataclass(slots=True)
class Activity:
    id: str
    timestamp: datetime
    type: str
    level: str
    client_id: str | None
    file_id: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "type": self.type,
            "level": self.level,
            "client_id": self.client_id,
            "file_id": self.file_id,
            "message": self.message,
        }


@dataclass(slots=True)
class LogEntry:
    id: str
    timestamp: datetime
    level: str
    logger: str
    event: str
    message: str
    client_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "timestamp": self.timestamp,
            "level": self.level,
            "logger": self.logger,
            "event": self.event,
            "message": self.message,
            "client_id": self.client_id,
        }


@dataclass(slots=True)
class ServerState:
    running: bool
    started_at: datetime | None
    host: str = SERVER_HOST
    port: int = SERVER_PORT
    version: str = SERVER_VERSION

    def started_message(self) -> str:
        return f"Backup server {self.version} started on port {self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "started_at": self.started_at,
            "host": self.host,
            "port": self.port,
            "version": self.version,
        }


# Column order of each record in the snapshot (rows are lists: compact and fast to pack).
CLIENT_COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "hostname",
    "ip_address",
    "platform",
    "agent_version",
    "status",
    "last_seen",
    "connected_at",
    "created_at",
    "error_message",
    "files_count",
    "total_size",
)
FILE_COLUMNS: tuple[str, ...] = (
    "id",
    "client_id",
    "name",
    "path",
    "size",
    "sha256",
    "status",
    "created_at",
    "modified_at",
    "backup_count",
    "last_backup",
    "last_verified",
    "content_version",
    "error_message",
)
# A state saved before files had an error_message: its rows load with None there.
FILE_COLUMNS_WITHOUT_ERROR_MESSAGE: tuple[str, ...] = FILE_COLUMNS[:-1]
ACTIVITY_COLUMNS: tuple[str, ...] = ("id", "timestamp", "type", "level", "client_id", "file_id", "message")
LOG_COLUMNS: tuple[str, ...] = ("id", "timestamp", "level", "logger", "event", "message", "client_id")


def to_row(record: Any, columns: tuple[str, ...]) -> list[Any]:
    return [getattr(record, name) for name in columns]


def from_row(cls: type, row: Any, columns: tuple[str, ...]) -> Any:
    if not isinstance(row, list) or len(row) != len(columns):
        raise ValueError(f"{cls.__name__} row must be a list of {len(columns)} values")
    return cls(**dict(zip(columns, row, strict=False)))


def check_columns(found: Any, expected: tuple[str, ...], what: str) -> None:
    if list(found) != list(expected):
        raise ValueError(f"snapshot {what} columns {found!r} differ from {list(expected)!r}")


def file_columns_of(found: Any) -> tuple[str, ...]:
    """The file columns a snapshot was saved with: today's, or those of a state saved before error_message."""
    if list(found) == list(FILE_COLUMNS_WITHOUT_ERROR_MESSAGE):
        return FILE_COLUMNS_WITHOUT_ERROR_MESSAGE
    check_columns(found, FILE_COLUMNS, "files")
    return FILE_COLUMNS


def file_from_row(row: Any, columns: tuple[str, ...]) -> FileRecord:
    """A file of a snapshot saved with ``columns``; one in error from before reasons were kept gets a reason."""
    record: FileRecord = from_row(FileRecord, row, columns)
    if record.status == "error" and record.error_message is None:
        record.error_message = REASON_NOT_RECORDED
    return record
