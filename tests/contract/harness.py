"""Both backend cores with the same data, driven the way BackendWorker drives them (no sockets).

``make_backend("mock" | "real", tmp_path)`` gives a ``Backend``: the core, seeded with the
clients and files of ``SEED`` at the instant ``START`` of a simulated clock, and lookups
from a client's name or a file's path to the id this backend gave it. The mock's records
are added to its world directly; the real server's go through its store and blob store
(and an agent's hello, for the connected client), so every value a test can see is equal
in both, ids and content hashes aside.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from actors.backends.api import RequestContext, StreamReply
from actors.mock.content import content_sha256
from actors.mock.core import MockCore
from actors.mock.records import Client, FileRecord
from actors.server.core import BackupServer, ServerConfig
from actors.server.store import mtime_datetime
from protocol.agent_messages import encode_message, file_name_of
from protocol.catalogue import OPERATIONS, get_operation
from protocol.errors import ErrorCode, ProtocolError
from runtime.clock import SimulatedClock

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CTX = RequestContext("contract", None)
MODES = ("mock", "real")


@dataclass(frozen=True, slots=True)
class FileSeed:
    path: str
    size: int
    mtime: datetime


@dataclass(frozen=True, slots=True)
class ClientSeed:
    name: str
    hostname: str
    ip_address: str
    platform: str
    agent_version: str
    status: str
    joined: datetime  # created, last seen and (when connected) connected then
    error_message: str | None = None
    files: tuple[FileSeed, ...] = ()


def _day(n: int) -> datetime:
    return datetime(2025, 1, n, 8, 30, tzinfo=UTC)


def _minutes_before_start(n: int) -> datetime:
    return START - timedelta(minutes=n)


# Distinct names, sizes and times, so every sort has one right answer in either backend.
SEED: tuple[ClientSeed, ...] = (
    ClientSeed(
        "alpha",
        "alpha.lab.internal",
        "10.0.0.1",
        "Ubuntu 24.04",
        "1.4.0",
        "connected",
        _minutes_before_start(4),
        files=(
            FileSeed("/home/alpha/notes.txt", 11, _day(1)),
            FileSeed("/home/alpha/Report.pdf", 300, _day(2)),
            FileSeed("/home/alpha/photos/cat.jpg", 5000, _day(3)),
        ),
    ),
    ClientSeed(
        "Beta-Workstation",
        "BETA-WS",
        "10.0.0.2",
        "Windows 11",
        "1.3.2",
        "disconnected",
        _minutes_before_start(3),
        files=(
            FileSeed("C:\\Users\\beta\\Documents\\budget.xlsx", 2048, _day(4)),
            FileSeed("C:\\Users\\beta\\Notes.md", 42, _day(5)),
        ),
    ),
    ClientSeed(
        "gamma",
        "gamma.srv.internal",
        "192.168.1.30",
        "Debian 12",
        "1.4.0",
        "error",
        _minutes_before_start(2),
        error_message="disk full",
        files=(FileSeed("/srv/data/archive.tar", 300_000, _day(6)),),  # more than one stream chunk
    ),
    ClientSeed("Émile", "emile.local", "10.0.0.4", "macOS 15", "1.4.1", "disconnected", _minutes_before_start(1)),
)
FILES: dict[str, FileSeed] = {f.path: f for c in SEED for f in c.files}
CLIENTS: dict[str, ClientSeed] = {c.name: c for c in SEED}


def content_of(seed: FileSeed) -> bytes:
    """The bytes the real server stores for a seeded file (unique per path: no shared blobs)."""
    pattern = seed.path.encode() + b"\n"
    return (pattern * (seed.size // len(pattern) + 1))[: seed.size]


@dataclass
class Backend:
    mode: str
    core: MockCore | BackupServer
    clients: dict[str, str] = field(default_factory=dict)  # name -> id
    files: dict[str, str] = field(default_factory=dict)  # path -> id
    corrupt: Callable[[str], None] = field(default=lambda file_id: None)  # stored bytes no longer match the hash
    contents: dict[str, bytes] = field(default_factory=dict)  # path -> what a backup run last sent (runs.py)

    def run(self, op: str, args: dict[str, Any]) -> dict[str, Any] | StreamReply:
        """What BackendWorker._execute does before the core: the op must be offered, the args valid."""
        if op not in self.core.operations():
            raise ProtocolError(ErrorCode.UNKNOWN_OPERATION, f"backend does not implement {op!r}")
        return self.core.handle(op, get_operation(op).validate_args(args), CTX)

    def call(self, op: str, **args: Any) -> Any:
        reply = self.run(op, args)
        assert isinstance(reply, dict), reply
        assert reply["success"] is True and reply["mode"] == self.mode, reply
        return reply["data"]

    def stream(self, op: str, **args: Any) -> StreamReply:
        reply = self.run(op, args)
        assert isinstance(reply, StreamReply), reply
        return reply

    def error(self, op: str, **args: Any) -> str:
        """The error code of a request that must fail."""
        with pytest.raises(ProtocolError) as info:
            self.run(op, args)
        assert info.value.message
        return info.value.code.value

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        return self.core.drain_events()

    def activity_types(self) -> list[str]:
        return [data["type"] for topic, data in self.events() if topic == "activity"]

    def client(self, name: str) -> dict[str, Any]:
        return self.call("get_client_details", client_id=self.clients[name])["client"]

    def file(self, path: str) -> dict[str, Any]:
        found = self.call("get_files", limit=1000)["items"]
        return next(f for f in found if f["id"] == self.files[path])


def _mock(tmp_path: Path) -> Backend:
    core = MockCore.open(None, seed=5, clock=SimulatedClock(START), clients=0, files=0)
    world = core.world
    backend = Backend("mock", core)
    for n, seed in enumerate(SEED, 1):
        client = Client(
            id=uuid.UUID(int=n).hex,
            name=seed.name,
            hostname=seed.hostname,
            ip_address=seed.ip_address,
            platform=seed.platform,
            agent_version=seed.agent_version,
            status=seed.status,
            last_seen=seed.joined,
            connected_at=seed.joined if seed.status == "connected" else None,
            created_at=seed.joined,
            error_message=seed.error_message,
        )
        world.add_client(client)
        backend.clients[seed.name] = client.id
        for m, f in enumerate(seed.files, 1):
            file_id = uuid.UUID(int=n * 100 + m).hex
            world.add_file(
                FileRecord(
                    id=file_id,
                    client_id=client.id,
                    name=file_name_of(f.path),
                    path=f.path,
                    size=f.size,
                    sha256=content_sha256(world.seed, file_id, 0, f.size),
                    status="uploaded",
                    created_at=START,
                    modified_at=f.mtime,
                    backup_count=1,
                    last_backup=START,
                    last_verified=None,
                )
            )
            backend.files[f.path] = file_id

    def corrupt(file_id: str) -> None:
        record = world.files[file_id]
        world.update_file(record, content_version=record.content_version + 1)

    backend.corrupt = corrupt
    world.drain()
    return backend


def _real(tmp_path: Path) -> Backend:
    clock = SimulatedClock(SEED[0].joined)
    core = BackupServer(ServerConfig(tmp_path, log_file=False), clock)
    core.agents.clock = lambda: 1000.0  # sessions never time out during a test
    store, backend = core.store, Backend("real", core)
    for seed in SEED:
        clock.advance((seed.joined - clock.now()).total_seconds())
        key = f"contract-key-{seed.name}"
        info = {
            "name": seed.name,
            "hostname": seed.hostname,
            "ip_address": seed.ip_address,
            "platform": seed.platform,
            "agent_version": seed.agent_version,
        }
        client_id, _ = store.register_client(key, info)
        backend.clients[seed.name] = client_id
        if seed.status == "connected":  # a session is what makes a client connected
            hello = encode_message(
                "hello", name=seed.name, hostname=seed.hostname, platform=seed.platform, version=seed.agent_version
            )
            core.agents.on_message(f"route-{seed.name}".encode(), hello, key, seed.ip_address)
        elif seed.status == "error":
            store.set_client_status(client_id, "error", seed.error_message)
    clock.advance((START - clock.now()).total_seconds())  # the files are backed up at START
    for seed in SEED:
        for f in seed.files:
            writer = core.blobs.writer()
            writer.write(content_of(f))
            sha, _ = writer.commit()
            mtime_ns = (f.mtime - EPOCH) // timedelta(microseconds=1) * 1000
            (stored, _, _), *_ = store.add_versions(backend.clients[seed.name], [(f.path, f.size, mtime_ns, sha)])
            assert mtime_datetime(mtime_ns) == f.mtime
            backend.files[f.path] = stored["id"]

    def corrupt(file_id: str) -> None:
        sha = core.conn.execute("SELECT sha256 FROM files WHERE id = ?", (file_id,)).fetchone()[0]
        core.blobs.path_for(sha).write_bytes(b"rotten")

    backend.corrupt = corrupt
    core.agents.drain_outbox()
    core.drain_events()
    return backend


def make_backend(mode: str, tmp_path: Path) -> Backend:
    return _mock(tmp_path) if mode == "mock" else _real(tmp_path)


def close(backend: Backend) -> None:
    backend.core.close()


# -- which operations the suite covers --

COVERED: dict[str, set[str]] = {}


def uncovered(covered: dict[str, set[str]]) -> list[str]:
    """The operations of the catalogue no contract test covers."""
    return [op.name for op in OPERATIONS if not covered.get(op.name)]


def covers(*ops: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a contract test as covering operations of the catalogue (test_coverage checks all are)."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        for op in ops:
            get_operation(op)  # a typo fails at import
            COVERED.setdefault(op, set()).add(f"{test.__module__}.{test.__name__}")
        return test

    return mark
