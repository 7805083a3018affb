"""Backup runs of the seeded client ``alpha``, the same in both backends: what the snapshot suite reads.

The real server gets a run the way an agent sends one, over alpha's session (manifest,
chunks, end of batch, done); the mock gets the same run through its history, the way
its ticker makes one (a new version per changed file, a failure per file not sent). So
the two backends hold equal runs, ids and content hashes aside.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from actors.mock.content import content_sha256
from actors.mock.core import MockCore
from actors.mock.records import FileRecord
from actors.server.core import BackupServer
from protocol.agent_messages import encode_message, file_name_of
from protocol.codec import decode
from tests.contract.harness import EPOCH, FILES, Backend, content_of

ROUTE, KEY = b"route-alpha", "contract-key-alpha"  # the harness's session of alpha
ROOT = "/home/alpha"


@dataclass(frozen=True, slots=True)
class RunFile:
    path: str
    content: bytes | None  # None: the agent lists it but cannot read it to send it
    mtime: datetime
    listed_size: int = 0  # the size an unreadable file was listed with


def seeded(path: str) -> RunFile:
    return RunFile(path, content_of(FILES[path]), FILES[path].mtime)


def backup_run(backend: Backend, files: list[RunFile], seconds: float = 5.0) -> list[tuple[str, dict[str, Any]]]:
    """One run of alpha that lists ``files`` and lasts ``seconds``; the events it made."""
    if isinstance(backend.core, BackupServer):
        _real_run(backend, backend.core, files, seconds)
    else:
        assert isinstance(backend.core, MockCore)
        _mock_run(backend, backend.core, files, seconds)
    return backend.events()


def _ns(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def _real_run(backend: Backend, core: BackupServer, files: list[RunFile], seconds: float) -> None:
    def send(type_: str, body: bytes = b"", **fields: object) -> None:
        core.agents.on_message(ROUTE, encode_message(type_, body, **fields), KEY, "10.0.0.1")

    entries = [
        [f.path, f.listed_size, _ns(f.mtime), None]
        if f.content is None
        else [f.path, len(f.content), _ns(f.mtime), hashlib.sha256(f.content).hexdigest()]
        for f in files
    ]
    send("manifest", batch=1, entries=entries)
    result = next(m for m in _replies(core) if m["t"] == "manifest_result")
    for n, index in enumerate(result["send"]):
        f = files[index]
        if f.content is None:
            continue  # unreadable: nothing is sent, the run reports it skipped
        first = {"path": f.path, "size": len(f.content), "mtime_ns": _ns(f.mtime)}
        send("chunk", f.content, u=f"u{n}", i=0, o=0, last=True, sha256=hashlib.sha256(f.content).hexdigest(), **first)
    core.agents.end_of_batch()
    _replies(core)
    core.clock.advance(seconds)
    skipped = sum(f.content is None for f in files)
    send("done", summary={"root": ROOT, "files": len(files), "skipped": skipped, "failed": 0, "seconds": seconds})
    _replies(core)
    for f in files:
        if f.content is not None:
            backend.files[f.path] = core.conn.execute("SELECT id FROM files WHERE path = ?", (f.path,)).fetchone()[0]


def _replies(core: BackupServer) -> list[dict[str, Any]]:
    return [decode(bytes(frames[0])) for _route, frames in core.agents.drain_outbox()]


def _mock_run(backend: Backend, core: MockCore, files: list[RunFile], seconds: float) -> None:
    world = core.world
    history = world.history
    client_id = backend.clients["alpha"]
    now = world.now()
    history.begin(client_id, now)
    known = {r.path: r for r in world.files_by_client[client_id].values()}
    for f in files:
        if f.content is None:
            history.failed(client_id, now, f.listed_size)
            continue
        size = len(f.content)
        record = known.get(f.path)
        if record is None:
            record = FileRecord(
                id=hashlib.sha256(f.path.encode()).hexdigest()[:32],
                client_id=client_id,
                name=file_name_of(f.path),
                path=f.path,
                size=size,
                sha256="",
                status="uploaded",
                created_at=now,
                modified_at=f.mtime,
                backup_count=1,
                last_backup=now,
                last_verified=None,
            )
            record.sha256 = content_sha256(world.seed, record.id, 0, size)
            world.add_file(record)
            backend.files[f.path] = record.id
        elif backend.contents.get(f.path, content_of(FILES[f.path]) if f.path in FILES else None) != f.content:
            history.freeze(record)
            version = record.content_version + 1
            world.update_file(
                record,
                size=size,
                content_version=version,
                sha256=content_sha256(world.seed, record.id, version, size),
                modified_at=f.mtime,
                last_backup=now,
                backup_count=record.backup_count + 1,
            )
        else:
            continue  # unchanged
        history.stored(record, now)
        backend.contents[f.path] = f.content
    world.clock.advance(seconds)
    history.close(world, client_id, world.now(), root=ROOT)
