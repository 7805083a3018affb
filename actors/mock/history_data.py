"""The mock's backup history as its snapshot document stores it, and as a fresh dataset starts it.

Rows are lists (compact, fast to pack). A state written before history was kept has no
``history`` key: it loads with none, and the versions its records describe.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from actors.mock.history import COUNT_FIELDS, Folder, MockHistory, Run, Version

if TYPE_CHECKING:
    from actors.mock.state import MockWorld

FORMAT = 1
_FAILED_SHARE = 0.1  # generated runs that could not back up a few files


def encode(history: MockHistory) -> dict[str, Any]:
    runs = []
    for run in history.runs.values():
        runs.append(
            [
                run.id,
                run.client_id,
                run.status,
                run.started_at,
                run.ended_at,
                run.root,
                [run.counts[k] for k in COUNT_FIELDS],
                [[path, *entry] for path, entry in run.entries.items()],
                run.changes,
                [[path, f.files, f.size, f.change] for path, f in run.folders.items()],
                list(run.stored),
                list(run.failed),
            ]
        )
    versions = [
        [
            file_id,
            [
                [v.number, v.size, v.sha256, v.content_version, v.modified_at, v.backed_up_at, v.snapshot_id]
                for v in kept
            ],
        ]
        for file_id, kept in history.versions.items()
    ]
    order = {client_id: list(ids) for client_id, ids in history.by_client.items()}
    return {"format": FORMAT, "next_id": history.next_id, "runs": runs, "order": order, "versions": versions}


def decode(doc: dict[str, Any] | None) -> MockHistory:
    """Rebuild the history; raises (KeyError, ValueError, ...) on anything inconsistent."""
    history = MockHistory()
    if doc is None:
        return history
    if doc.get("format") != FORMAT:
        raise ValueError(f"unsupported history format {doc.get('format')!r}")
    history.next_id = int(doc["next_id"])
    for row in doc["runs"]:
        run_id, client_id, status, started, ended, root, counts, entries, changes, folders, stored, failed = row
        run = Run(run_id, client_id, status, started, ended, root)
        run.counts = dict(zip(COUNT_FIELDS, counts, strict=True))
        run.entries = {path: (file_id, number, size) for path, file_id, number, size in entries}
        run.changes = dict(changes)
        run.folders = {path: Folder(files, size, change) for path, files, size, change in folders}
        run.stored, run.failed = dict.fromkeys(stored), dict.fromkeys(failed)
        history.runs[run_id] = run
        if status == "running":
            history.open[client_id] = run
    for client_id, ids in doc["order"].items():
        missing = [i for i in ids if i not in history.runs]
        if missing:
            raise ValueError(f"client {client_id} lists unknown runs {missing}")
        history.by_client[client_id] = list(ids)
    for file_id, kept in doc["versions"]:
        history.versions[file_id] = [Version(*v) for v in kept]
    return history


def seed(world: MockWorld) -> None:
    """A fresh dataset's history: for each client, a run a day before its newest backup and one at it."""
    rng = random.Random(f"history/{world.seed}")  # not the world's RNG: generating must not change its draws
    history = world.history
    for client in world.clients.values():
        records = [r for r in world.files_by_client[client.id].values() if r.backup_count > 0]
        if not records:
            continue
        newest = max(r.last_backup for r in records)
        for end in (newest - timedelta(days=1), newest):
            held = [r for r in records if r.last_backup <= end]
            if not held:
                continue
            run = history.begin(client.id, end - timedelta(minutes=rng.randint(2, 40)))
            for record in held:
                if record.id not in history.versions:  # first held: this run stored it
                    history.versions[record.id] = [
                        Version(
                            record.backup_count,
                            record.size,
                            record.sha256,
                            record.content_version,
                            record.modified_at,
                            record.last_backup,
                            run.id,
                        )
                    ]
                    run.stored[record.id] = None
            if rng.random() < _FAILED_SHARE:
                for _ in range(rng.randint(1, 3)):
                    history.failed(client.id, end, rng.randint(1, 50_000_000))
            history.close(world, client.id, end, held=held)
