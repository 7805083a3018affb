"""The mock's data model (clients, files, activity, log lines, server) and its row codecs.

Records are mutable dataclasses owned by ``MockWorld``: only the world changes them, so
it can keep aggregates and indexes right. ``to_dict`` gives the exact wire shape.
``MockDataGenerator`` draws realistic records from the world's seeded RNG.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from actors.mock.content import EMPTY_SHA256, content_sha256
from actors.mock.vocab import (
    AGENT_VERSIONS,
    CLIENT_ERRORS,
    CLIENT_KINDS,
    DEPARTMENTS,
    ENVIRONMENTS,
    LINUX,
    LINUX_SERVER_DIRS,
    LINUX_USER_DIRS,
    LOG_LINES,
    MAC_USER_DIRS,
    MACOS,
    MONTHS,
    NAMES_BY_CATEGORY,
    PROJECTS,
    SITES,
    SIZE_CATEGORIES,
    USERS,
    WINDOWS_DESKTOP,
    WINDOWS_SERVER,
    WINDOWS_SERVER_DIRS,
    WINDOWS_USER_DIRS,
)

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
    # Lower-cased name/hostname/ip, precomputed so a search over 10,000 clients is one `in` each.
    hay: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        self.refresh_hay()

    def refresh_hay(self) -> None:
        self.hay = f"{self.name}\n{self.hostname}\n{self.ip_address}".lower()

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
    # Which content the storage holds now; never on the wire. Bumping it without a new
    # sha256 is how the mock corrupts a file.
    content_version: int = 0
    hay: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        self.refresh_hay()

    def refresh_hay(self) -> None:
        self.hay = f"{self.name}\n{self.path}".lower()

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
)
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


_DRAWS: dict[str, Callable[[random.Random], Any]] = {
    "y": lambda rng: rng.randint(2019, 2025),
    "m": lambda rng: rng.choice(MONTHS),
    "mm": lambda rng: f"{rng.randint(1, 12):02d}",
    "dd": lambda rng: f"{rng.randint(1, 28):02d}",
    "n": lambda rng: rng.randint(1, 999),
    "q": lambda rng: rng.randint(1, 4),
    "proj": lambda rng: rng.choice(PROJECTS),
    "dept": lambda rng: rng.choice(DEPARTMENTS),
    "user": lambda rng: rng.choice(USERS),
    "site": lambda rng: rng.choice(SITES),
    "env": lambda rng: rng.choice(ENVIRONMENTS),
}


class _LazyFields(dict):  # type: ignore[type-arg]
    """Pattern fields drawn from the RNG only when a pattern names them (fewer draws)."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self._rng = rng

    def __missing__(self, key: str) -> Any:
        value = _DRAWS[key](self._rng)
        self[key] = value
        return value


_EXTENSION_CATEGORY: dict[str, str] = {
    pattern.rsplit(".", 1)[-1]: category for category, names in NAMES_BY_CATEGORY.items() for pattern in names
}
_CATEGORY_RANGE: dict[str, tuple[int, int]] = {c: (lo, hi) for c, _, lo, hi in SIZE_CATEGORIES}
MAX_FILE_SIZE = 6 * 1024 * 1024


def category_of(name: str) -> str:
    return _EXTENSION_CATEGORY.get(name.rsplit(".", 1)[-1].lower(), "text")


def platform_family(client: Client) -> str:
    if client.platform.startswith("Windows Server"):
        return "windows-server"
    if client.platform.startswith("Windows"):
        return "windows"
    if client.platform.startswith("macOS"):
        return "macos"
    return "linux-desktop" if client.name.startswith("dev-") else "linux"


def client_user(client: Client) -> str:
    """The person whose home directory the client's files live in (derived, not stored)."""
    for part in client.name.split("-"):
        if part in USERS:
            return part
    return USERS[int(client.id[:8], 16) % len(USERS)]


def _days(n: float) -> int:
    return int(n * 86400)


class MockDataGenerator:
    """Realistic records drawn from the world's one seeded RNG (and nothing else)."""

    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.seed = seed

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _between(self, start: datetime, end: datetime) -> datetime:
        span = int((end - start).total_seconds())
        return start + timedelta(seconds=self.rng.randint(0, span)) if span > 0 else start

    # -- clients --

    def make_clients(self, count: int, now: datetime) -> list[Client]:
        used_names: dict[str, int] = {}
        used_ips: set[str] = set()
        spread = max(12, count // 6)
        return [self._client(now, used_names, used_ips, spread) for _ in range(count)]

    def _client(self, now: datetime, used_names: dict[str, int], used_ips: set[str], spread: int) -> Client:
        rng = self.rng
        pattern, family, _ = rng.choices(CLIENT_KINDS, weights=[k[2] for k in CLIENT_KINDS])[0]
        fields = _LazyFields(rng)
        fields["n"] = rng.randint(1, spread)
        name = pattern.format_map(fields)
        if name in used_names:
            # Suffixes keep names unique at generation; later edits may still duplicate them.
            used_names[name] += 1
            candidate = f"{name}-{used_names[name]}"
            while candidate in used_names:
                used_names[name] += 1
                candidate = f"{name}-{used_names[name]}"
            name = candidate
        used_names[name] = 1
        if family == "laptop":
            family = "windows" if rng.random() < 0.6 else "macos"
        platform, hostname, subnet = {
            "windows": (rng.choice(WINDOWS_DESKTOP), name.upper(), (10, 10)),
            "macos": (rng.choice(MACOS), f"{name}.local", (192, 168)),
            "linux-desktop": (rng.choice(LINUX), f"{name}.lab.internal", (10, 20)),
            "linux": (rng.choice(LINUX), f"{name}.srv.internal", (10, 0)),
            "windows-server": (rng.choice(WINDOWS_SERVER), f"{name.upper()}.CORP.EXAMPLE.COM", (172, 16)),
        }[family]
        ip = self._ip(subnet, used_ips)
        created = now - timedelta(seconds=rng.randint(_days(30), _days(900)))
        roll = rng.random()
        error_message: str | None = None
        connected_at: datetime | None = None
        if roll < 0.55:
            status = "connected"
            connected_at = max(created, now - timedelta(seconds=rng.randint(120, _days(20))))
            last_seen = now - timedelta(seconds=rng.randint(0, 110))
        elif roll < 0.94:
            status = "disconnected"
            last_seen = max(created, now - timedelta(seconds=rng.randint(3600, _days(30))))
        else:
            status = "error"
            last_seen = max(created, now - timedelta(seconds=rng.randint(60, _days(3))))
            error_message = rng.choice(CLIENT_ERRORS)
        return Client(
            id=self.new_id(),
            name=name,
            hostname=hostname,
            ip_address=ip,
            platform=platform,
            agent_version=rng.choice(AGENT_VERSIONS),
            status=status,
            last_seen=last_seen,
            connected_at=connected_at,
            created_at=created,
            error_message=error_message,
        )

    def _ip(self, subnet: tuple[int, int], used: set[str]) -> str:
        a, b = subnet
        while True:
            second = b if a != 172 else b + self.rng.randint(0, 15)
            ip = f"{a}.{second}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"
            if ip not in used:
                used.add(ip)
                return ip

    def error_message(self) -> str:
        return self.rng.choice(CLIENT_ERRORS)

    # -- files --

    def size_for(self, category: str) -> int:
        low, high = _CATEGORY_RANGE[category]
        return int(math.exp(self.rng.uniform(math.log(low), math.log(high))))

    def next_size(self, record: FileRecord) -> int:
        """Size of the next version: a fresh draw for a new file, a drift otherwise."""
        if record.size == 0:
            return self.size_for(category_of(record.name))
        return max(1, min(MAX_FILE_SIZE, int(record.size * self.rng.uniform(0.85, 1.3))))

    def _name_and_path(self, client: Client, category: str, taken: set[tuple[str, str]]) -> tuple[str, str]:
        rng = self.rng
        fields = _LazyFields(rng)
        name = rng.choice(NAMES_BY_CATEGORY[category]).format_map(fields)
        family = platform_family(client)
        user = client_user(client)
        if family == "windows":
            directory, sep = f"C:\\Users\\{user}\\" + rng.choice(WINDOWS_USER_DIRS), "\\"
        elif family == "windows-server":
            directory, sep = rng.choice(WINDOWS_SERVER_DIRS).format_map(fields), "\\"
        elif family == "macos":
            directory, sep = f"/Users/{user}/" + rng.choice(MAC_USER_DIRS), "/"
        elif family == "linux-desktop":
            directory, sep = f"/home/{user}/" + rng.choice(LINUX_USER_DIRS).format_map(fields), "/"
        else:
            directory, sep = rng.choice(LINUX_SERVER_DIRS).format_map(fields), "/"
        stem, dot, ext = name.partition(".")
        candidate, k = name, 1
        while (client.id, f"{directory}{sep}{candidate}".lower()) in taken:
            k += 1
            candidate = f"{stem}-{k}{dot}{ext}"
        path = f"{directory}{sep}{candidate}"
        taken.add((client.id, path.lower()))
        return candidate, path

    def make_files(self, client: Client, count: int, now: datetime, taken: set[tuple[str, str]]) -> list[FileRecord]:
        return [self._initial_file(client, now, taken) for _ in range(count)]

    def _initial_file(self, client: Client, now: datetime, taken: set[tuple[str, str]]) -> FileRecord:
        rng = self.rng
        category = rng.choices(SIZE_CATEGORIES, weights=[c[1] for c in SIZE_CATEGORIES])[0][0]
        name, path = self._name_and_path(client, category, taken)
        size = self.size_for(category)
        file_id = self.new_id()
        created = self._between(client.created_at, now)
        modified = self._between(created, now)
        last_backup = self._between(modified, min(now, modified + timedelta(days=2)))
        last_verified: datetime | None = None
        version = 0
        roll = rng.random()
        if client.status == "connected" and roll < 0.01:
            status = "uploading"  # a new version is on its way; the stored one is still the old
        elif roll < 0.63:
            status = "verified"
            last_verified = self._between(last_backup, now)
            if rng.random() < 0.04:
                # An honest failure: the stored bytes no longer match the recorded hash.
                status, version = "error", 1
        else:
            status = "uploaded"
        return FileRecord(
            id=file_id,
            client_id=client.id,
            name=name,
            path=path,
            size=size,
            sha256=content_sha256(self.seed, file_id, 0, size),
            status=status,
            created_at=created,
            modified_at=modified,
            backup_count=1 + int(rng.expovariate(0.2)),
            last_backup=last_backup,
            last_verified=last_verified,
            content_version=version,
        )

    def new_upload(self, client: Client, now: datetime, taken: set[tuple[str, str]]) -> FileRecord:
        """A brand-new file whose first upload just started: empty until it finishes.

        ``last_backup`` is never null: for a file still in its first upload it is when that began.
        """
        category = self.rng.choices(SIZE_CATEGORIES, weights=[c[1] for c in SIZE_CATEGORIES])[0][0]
        name, path = self._name_and_path(client, category, taken)
        return FileRecord(
            id=self.new_id(),
            client_id=client.id,
            name=name,
            path=path,
            size=0,
            sha256=EMPTY_SHA256,
            status="uploading",
            created_at=now,
            modified_at=now,
            backup_count=0,
            last_backup=now,
            last_verified=None,
            content_version=0,
        )

    def log_line(self) -> tuple[str, str, str, str]:
        level, logger, event, pattern = self.rng.choice(LOG_LINES)
        return level, logger, event, pattern.format(n=self.rng.randint(2, 900))
