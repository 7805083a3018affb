"""Realistic mock data: clients, files, their names and paths and sizes, drawn from the world's seeded RNG."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from actors.backends.dbview import path_key
from actors.backends.file_errors import verify_failed
from actors.mock.content import EMPTY_SHA256, content_sha256
from actors.mock.records import Client, FileRecord
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


class _LazyFields(dict[str, Any]):
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
        while (client.id, path_key(f"{directory}{sep}{candidate}")) in taken:
            k += 1
            candidate = f"{stem}-{k}{dot}{ext}"
        path = f"{directory}{sep}{candidate}"
        taken.add((client.id, path_key(path)))
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
        error_message: str | None = None
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
        sha256 = content_sha256(self.seed, file_id, 0, size)
        if status == "error":  # the verification that found it said what the stored bytes hash to
            error_message = verify_failed(sha256, content_sha256(self.seed, file_id, version, size))
        return FileRecord(
            id=file_id,
            client_id=client.id,
            name=name,
            path=path,
            size=size,
            sha256=sha256,
            status=status,
            created_at=created,
            modified_at=modified,
            backup_count=1 + int(rng.expovariate(0.2)),
            last_backup=last_backup,
            last_verified=last_verified,
            error_message=error_message,
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
