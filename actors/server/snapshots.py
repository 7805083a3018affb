"""Backup runs as snapshots, the real server's side: opened by a run's first manifest, filled as
manifests are answered and uploads stored, closed by the agent's ``done``.

The agent protocol has no "run begins" message: a run's manifests are numbered from 1, so
batch 1 opens a snapshot (ending one still open as interrupted) and later batches add to
the client's open one, also across a reconnect (the agent redoes the batch it lost). A run
that never ends (agent gone for good, server restarted) is marked ``interrupted``.

Each file of the run's tree is one ``snapshot_files`` row, written with the batch that
decided it. Per-folder counts are kept in memory as rows are written, so closing a run of
a million files writes its folders' totals without reading its files again; only when a
batch was seen twice (a redone batch may rewrite rows) are they counted from the table.
This module and ``snapshot_queries`` are the snapshot catalog's seam (PostgreSQL later).
A run that ends, however it ends, is a ``snapshot.ended`` event with its summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from actors.backends.snapshot_paths import folders_of, split
from actors.server.db import iso, transaction
from actors.server.faults import is_storage_full
from actors.server.snapshot_queries import get_snapshot
from actors.server.store import Store
from protocol.agent_messages import MAX_PATH
from protocol.catalogue_snapshots import CHANGES, ROOT
from protocol.events import SNAPSHOT_ENDED

log = structlog.get_logger()

# The agent retries a lost connection for 60 s by default; a run whose agent stays away this long is over.
ORPHAN_AFTER_S = 180.0
_PATH_CHUNK = 400  # paths per IN (...) lookup


@dataclass
class Tally:
    """A folder of an open run: its row id and the files directly in it."""

    id: int
    parent: str | None
    files: int = 0
    size: int = 0
    touched: int = 0  # new or changed files


@dataclass
class OpenRun:
    snapshot_id: int
    client_id: str
    resumed: bool  # opened by a later batch (the server restarted mid-run): the start is missing
    dirs: dict[str, Tally] = field(default_factory=dict)
    counts: dict[str, list[int]] = field(default_factory=lambda: {c: [0, 0] for c in CHANGES})
    pending: dict[str, int] = field(default_factory=dict)  # path -> size: asked for, not stored yet
    failed_files: int = 0
    failed_bytes: int = 0
    batches: set[int] = field(default_factory=set)
    recount: bool = False  # a batch came twice: rows may have been rewritten, count them from the table
    gone_since: float | None = None


def _change(version: int) -> str:
    return "new" if version == 1 else "changed"


class Runs:
    """The open run of each client and the writes that record runs."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.conn = store.conn
        self.clock = clock
        self.open: dict[str, OpenRun] = {}

    # -- the agent's messages --

    def manifest(self, client_id: str, batch: int, entries: list[Any], result: dict[str, list[Any]]) -> None:
        """Record what the server decided for a manifest (entries were validated by decide_manifest)."""
        run = self._run_for(client_id, batch)
        for index, _reason in result["refused"]:
            run.failed_files += 1
            run.failed_bytes += entries[index][1]
        for index in (*result["send"], *result["need_hash"]):
            run.pending[entries[index][0]] = entries[index][1]
        found = [entries[i][0] for i in (*result["skip"], *result["linked"])]
        linked = {entries[i][0] for i in result["linked"]}
        rows = []
        for path, version_id, version, size in self._latest_versions(client_id, found):
            rows.append((path, version_id, size, _change(version) if path in linked else "unchanged"))
        self._add(run, rows)

    def stored(self, client_id: str, items: Iterable[tuple[str, str, int]]) -> None:
        """Uploads of the open run whose versions were just recorded: (path, file_id, version)."""
        run = self.open.get(client_id)
        if run is None:
            return  # no manifest opened a run (cannot happen with a well-behaved agent)
        rows = []
        for path, file_id, version in items:
            found = self.conn.execute(
                "SELECT id, size FROM file_versions WHERE file_id = ? AND version = ?", (file_id, version)
            ).fetchone()
            if found is not None:
                rows.append((path, found[0], found[1], _change(version)))
        try:
            self._add(run, rows)
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            # The versions are stored (the agent was told so); only the snapshot misses them: they count
            # as failed in it, honestly, when the run ends.
            self.store.storage_alarm.report(f"recording {len(rows)} files in a snapshot", exc)

    def finish(self, client_id: str, summary: dict[str, Any]) -> None:
        """The agent's ``done``: the run ended; what it could not back up is what it failed."""
        run = self.open.pop(client_id, None)
        if run is None:  # a run with no file at all sends no manifest
            seconds = summary.get("seconds")
            ago = float(seconds) if isinstance(seconds, (int, float)) and 0 <= seconds < 1e9 else 0.0
            run = self._begin(client_id, resumed=False, started_ago=ago)
        # The agent also counts files it could not even list or read; the server knows only what it was offered.
        agent_failed = sum(v for k in ("skipped", "failed") if type(v := summary.get(k)) is int and v > 0)
        run.failed_files += len(run.pending)
        run.failed_bytes += sum(run.pending.values())
        failed = max(run.failed_files, agent_failed)
        status = "partial" if failed or run.resumed else "complete"
        root = summary.get("root")
        self._close(run, status, failed, root[:MAX_PATH] if isinstance(root, str) else "")

    def session_started(self, client_id: str) -> None:
        run = self.open.get(client_id)
        if run is not None:
            run.gone_since = None

    def session_ended(self, client_id: str) -> None:
        run = self.open.get(client_id)
        if run is not None:
            run.gone_since = self.clock()  # it may come back and go on (the agent retries)

    def forget(self, client_id: str) -> None:
        """The client was deleted: its snapshots went with it (cascade)."""
        self.open.pop(client_id, None)

    def tick(self) -> None:
        now = self.clock()
        for run in [r for r in self.open.values() if r.gone_since is not None and now - r.gone_since > ORPHAN_AFTER_S]:
            log.info(
                "server.run_interrupted", client_id=run.client_id, snapshot_id=run.snapshot_id, reason="agent gone"
            )
            self._interrupt(run)

    def recover(self) -> int:
        """At start: runs left open by the last process never end now; close their trees as interrupted."""
        rows = self.conn.execute(
            "SELECT id, client_id, files_failed, bytes_failed FROM snapshots WHERE status = 'running'"
        ).fetchall()
        for snapshot_id, client_id, failed_files, failed_bytes in rows:
            run = OpenRun(snapshot_id, client_id, resumed=False, failed_files=failed_files, failed_bytes=failed_bytes)
            run.recount = True
            run.dirs = self._load_dirs(snapshot_id)
            self._close(run, "interrupted", None, None)
        return len(rows)

    # -- opening and filling --

    def _run_for(self, client_id: str, batch: int) -> OpenRun:
        run = self.open.get(client_id)
        if run is not None and batch == 1:
            # A new run began before the last one said it was done (the agent restarted, or it lost its
            # session in the first batch and starts over): that one is over.
            self._interrupt(run)
            run = None
        if run is None:
            run = self._begin(client_id, resumed=batch != 1)
        if batch in run.batches:
            run.recount = True
        run.batches.add(batch)
        run.gone_since = None
        return run

    def _begin(self, client_id: str, *, resumed: bool, started_ago: float = 0.0) -> OpenRun:
        at = self.store.now() - timedelta(seconds=started_ago)
        with transaction(self.conn):
            cur = self.conn.execute(
                "INSERT INTO snapshots (client_id, status, started_at) VALUES (?, 'running', ?)", (client_id, iso(at))
            )
            snapshot_id = int(cur.lastrowid or 0)
            root = self.conn.execute(
                "INSERT INTO snapshot_dirs (snapshot_id, parent_id, path, name) VALUES (?, NULL, ?, '')",
                (snapshot_id, ROOT),
            )
        run = OpenRun(snapshot_id, client_id, resumed)
        run.dirs[ROOT] = Tally(int(root.lastrowid or 0), None)
        self.open[client_id] = run
        log.debug("server.run_opened", client_id=client_id, snapshot_id=snapshot_id, resumed=resumed)
        return run

    def _latest_versions(self, client_id: str, paths: list[str]) -> list[tuple[str, int, int, int]]:
        """(path, version row id, version, size) of the newest version of each path."""
        out: list[tuple[str, int, int, int]] = []
        for start in range(0, len(paths), _PATH_CHUNK):
            chunk = paths[start : start + _PATH_CHUNK]
            out += self.conn.execute(
                "SELECT f.path, v.id, v.version, v.size FROM files f JOIN file_versions v ON v.id = "
                "(SELECT id FROM file_versions WHERE file_id = f.id ORDER BY version DESC LIMIT 1) "
                f"WHERE f.client_id = ? AND f.path IN ({', '.join('?' * len(chunk))})",
                (client_id, *chunk),
            ).fetchall()
        return out

    def _folder(self, run: OpenRun, path: str) -> Tally:
        folder = split(path)[0]
        tally = run.dirs.get(folder)
        if tally is not None:
            return tally
        for f in folders_of(path):
            if f.path not in run.dirs:
                parent = run.dirs[f.parent].id if f.parent is not None else None
                cur = self.conn.execute(
                    "INSERT INTO snapshot_dirs (snapshot_id, parent_id, path, name) VALUES (?, ?, ?, ?)",
                    (run.snapshot_id, parent, f.path, f.name),
                )
                run.dirs[f.path] = Tally(int(cur.lastrowid or 0), f.parent)
        return run.dirs[folder]

    def _add(self, run: OpenRun, rows: list[tuple[str, int, int, str]]) -> None:
        """Write entries (path, version row id, size, change) into the run's tree, one transaction."""
        if not rows:
            return
        try:
            with transaction(self.conn):
                entries = [(self._folder(run, p).id, split(p)[1], version_id, c) for p, version_id, _, c in rows]
                self.conn.executemany(
                    "INSERT OR REPLACE INTO snapshot_files (dir_id, name, version_id, change) VALUES (?, ?, ?, ?)",
                    entries,
                )
                self.conn.executemany(
                    "UPDATE file_versions SET snapshot_id = ? WHERE id = ?",
                    [(run.snapshot_id, e[2]) for e in entries if e[3] != "unchanged"],
                )
        except BaseException:
            # The folders made in the rolled-back transaction are gone, and the reloaded ones have lost
            # their counts: the run is counted from its rows when it ends.
            run.dirs = self._load_dirs(run.snapshot_id)
            run.recount = True
            raise
        for path, _version_id, size, change in rows:
            tally = run.dirs[split(path)[0]]
            tally.files += 1
            tally.size += size
            tally.touched += change != "unchanged"
            run.counts[change][0] += 1
            run.counts[change][1] += size
            run.pending.pop(path, None)
        self._write_counts(run)

    def _write_counts(self, run: OpenRun) -> None:
        c = run.counts
        self.conn.execute(
            "UPDATE snapshots SET files_new = ?, bytes_new = ?, files_changed = ?, bytes_changed = ?, "
            "files_unchanged = ?, bytes_unchanged = ?, files_failed = ?, bytes_failed = ? WHERE id = ?",
            (*c["new"], *c["changed"], *c["unchanged"], run.failed_files, run.failed_bytes, run.snapshot_id),
        )

    # -- closing --

    def _interrupt(self, run: OpenRun) -> None:
        self.open.pop(run.client_id, None)
        run.failed_files += len(run.pending)
        run.failed_bytes += sum(run.pending.values())
        self._close(run, "interrupted", run.failed_files, None)

    def _load_dirs(self, snapshot_id: int) -> dict[str, Tally]:
        rows = self.conn.execute(
            "SELECT d.id, d.path, p.path FROM snapshot_dirs d LEFT JOIN snapshot_dirs p ON p.id = d.parent_id "
            "WHERE d.snapshot_id = ?",
            (snapshot_id,),
        )
        return {path: Tally(dir_id, parent) for dir_id, path, parent in rows}

    def _recount(self, run: OpenRun) -> None:
        """Count the run's files from its rows (a redone batch may have rewritten some)."""
        by_id = {t.id: t for t in run.dirs.values()}
        for t in by_id.values():
            t.files = t.size = t.touched = 0
        run.counts = {c: [0, 0] for c in CHANGES}
        rows = self.conn.execute(
            "SELECT s.dir_id, s.change, COUNT(*), COALESCE(SUM(v.size), 0) FROM snapshot_dirs d "
            "JOIN snapshot_files s ON s.dir_id = d.id JOIN file_versions v ON v.id = s.version_id "
            "WHERE d.snapshot_id = ? GROUP BY s.dir_id, s.change",
            (run.snapshot_id,),
        )
        for dir_id, change, count, size in rows:
            tally = by_id[dir_id]
            tally.files += count
            tally.size += size
            tally.touched += count if change != "unchanged" else 0
            run.counts[change][0] += count
            run.counts[change][1] += size

    def _close(self, run: OpenRun, status: str, failed: int | None, root: str | None) -> None:
        if run.recount:
            self._recount(run)
        if failed is not None:
            run.failed_files = failed
        totals = self._folder_totals(run)
        previous = self.conn.execute(
            "SELECT id FROM snapshots WHERE client_id = ? AND id < ? AND status != 'running' ORDER BY id DESC LIMIT 1",
            (run.client_id, run.snapshot_id),
        ).fetchone()
        before: dict[str, tuple[int, int]] = {}
        if previous is not None:
            before = {
                path: (files, size)
                for path, files, size in self.conn.execute(
                    "SELECT path, files, size FROM snapshot_dirs WHERE snapshot_id = ?", (previous[0],)
                )
            }
        updates = []
        for path, (dir_id, files, size, touched) in totals.items():
            old = before.get(path)
            change = "new" if old is None else "changed" if touched or old != (files, size) else "unchanged"
            updates.append((files, size, change, dir_id))
        with transaction(self.conn):
            self.conn.executemany("UPDATE snapshot_dirs SET files = ?, size = ?, change = ? WHERE id = ?", updates)
            self._write_counts(run)
            self.conn.execute(
                "UPDATE snapshots SET status = ?, ended_at = ?, root = COALESCE(?, root) WHERE id = ?",
                (status, iso(self.store.now()), root, run.snapshot_id),
            )
        log.info(
            "server.run_closed",
            client_id=run.client_id,
            snapshot_id=run.snapshot_id,
            status=status,
            files=sum(c[0] for c in run.counts.values()),
            failed=run.failed_files,
        )
        snapshot = get_snapshot(self.conn, str(run.snapshot_id))
        self.store.emit(
            SNAPSHOT_ENDED,
            {"client_id": run.client_id, "snapshot_id": snapshot["id"], "status": status, "snapshot": snapshot},
        )

    @staticmethod
    def _folder_totals(run: OpenRun) -> dict[str, tuple[int, int, int, int]]:
        """Every folder's (row id, files, bytes, new-or-changed files) counting everything below it."""
        sums = {path: (t.files, t.size, t.touched) for path, t in run.dirs.items()}
        for path in sorted(run.dirs, key=len, reverse=True):  # a folder's path is longer than its parent's
            parent = run.dirs[path].parent
            if parent is not None and parent in sums:
                (files, size, touched), (pf, ps, pt) = sums[path], sums[parent]
                sums[parent] = (pf + files, ps + size, pt + touched)
        return {path: (t.id, *sums[path]) for path, t in run.dirs.items()}
