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

FORMAT = 2  # 1: each run's whole tree, [[path, file id, version, size], ...], still read
_CODE = {"new": "n", "changed": "c", "unchanged": "u"}
_CHANGE = {v: k for k, v in _CODE.items()}
_FAILED_SHARE = 0.1  # generated runs that could not back up a few files


def encode(history: MockHistory) -> dict[str, Any]:
    """The history as rows. A run's tree is written as what changed since the client's run before it
    (most files are the same from one run to the next), so the state stays near the size of the files."""
    runs = []
    for ids in history.by_client.values():
        before: dict[str, tuple[str, int, int]] = {}
        for run_id in ids:
            run = history.runs[run_id]
            added = {p: e for p, e in run.entries.items() if before.get(p) != e or p in run.changes}
            removed = [p for p in before if p not in run.entries] if run.status != "running" else []
            runs.append(
                [
                    run.id,
                    run.client_id,
                    run.status,
                    run.started_at,
                    run.ended_at,
                    run.root,
                    [run.counts[k] for k in COUNT_FIELDS],
                    removed,
                    list(added),
                    [list(e) for e in added.values()],
                    "".join(_CODE[run.changes.get(p, "unchanged")] for p in added),  # one letter per added entry
                    # The first run kept of a client keeps its folders: the run they were compared with is gone.
                    [[path, f.files, f.size, f.change] for path, f in run.folders.items()] if not before else None,
                    list(run.stored),
                    list(run.failed),
                ]
            )
            if run.status != "running":
                before = run.entries
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
    return {
        "format": FORMAT,
        "next_id": history.next_id,
        "runs": runs,
        "order": order,
        "versions": versions,
        "origin": history.origin,
    }


def decode(doc: dict[str, Any] | None) -> MockHistory:
    """Rebuild the history; raises (KeyError, ValueError, ...) on anything inconsistent."""
    history = MockHistory()
    if doc is None:
        return history
    fmt = doc.get("format")
    if fmt not in (1, FORMAT):
        raise ValueError(f"unsupported history format {fmt!r}")
    history.next_id = int(doc["next_id"])
    before: dict[str, Run] = {}  # client -> its closed run decoded last
    for row in doc["runs"]:
        if fmt == 1:  # whole trees: the same as a tree changed from nothing
            whole = row[7]
            folders = [[path, f[0], f[1], f[2]] for path, *f in row[9]]
            row = [*row[:7], None, [e[0] for e in whole], [e[1:] for e in whole], row[8], folders, *row[10:]]
        run_id, client_id, status, started, ended, root, counts, removed, paths, entries, changes, folders, *rest = row
        run = Run(run_id, client_id, status, started, ended, root)
        run.counts = dict(zip(COUNT_FIELDS, counts, strict=True))
        if fmt == 1:
            run.changes = dict(changes)
        else:
            run.changes = {p: _CHANGE[c] for p, c in zip(paths, changes, strict=True) if c != "u"}
        if status != "running":
            previous = before.get(client_id)
            tree = dict(previous.entries) if previous is not None and removed is not None else {}
            for path in removed or ():
                del tree[path]
            tree.update((path, (e[0], e[1], e[2])) for path, e in zip(paths, entries, strict=True))
            run.entries = tree
            if folders is None:  # they follow from the tree and the run before, by the rule that made them
                run.folders = MockHistory.folders_for(run, previous)
            else:
                run.folders = {path: Folder(files, size, change) for path, files, size, change in folders}
            before[client_id] = run
        stored, failed = rest
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
    history.origin = dict(doc.get("origin", {}))
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
                if record.id not in history.origin:  # first held: this run stored its version
                    history.origin[record.id] = run.id
                    run.stored[record.id] = None
            if rng.random() < _FAILED_SHARE:
                for _ in range(rng.randint(1, 3)):
                    history.failed(client.id, end, rng.randint(1, 50_000_000))
            history.close(world, client.id, end, held=held, announce=False)
