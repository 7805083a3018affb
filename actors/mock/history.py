"""The mock's backup history: each client's runs as snapshots, and the stored versions of files.

A run opens when a client starts uploading and closes when its last upload ends, the
way an agent's run ends when its last file is stored; its tree is then the client's
files with a stored version, minus those whose upload failed in it. A file's versions are
kept only once it has more than the one its record describes: until then that one is
read from the record (so data made before history was kept, or added by tests, has its
version too). The newest version's bytes are the record's current content, so a file the
ticker corrupts is corrupt in every snapshot holding that version, as on a real disk.

Everything here is a pure function of the world's changes, the world's clock and ids
counted from 1, never of the world's RNG: the journal replays it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from actors.backends.snapshot_paths import folders_of
from protocol.events import SNAPSHOT_ENDED

if TYPE_CHECKING:
    from actors.mock.records import Client, FileRecord
    from actors.mock.state import MockWorld

SNAPSHOTS_PER_CLIENT = 30  # retention: older runs are pruned
VERSIONS_PER_FILE = 30
COUNT_FIELDS = (
    "files_new",
    "bytes_new",
    "files_changed",
    "bytes_changed",
    "files_unchanged",
    "bytes_unchanged",
    "files_failed",
    "bytes_failed",
)


@dataclass(slots=True)
class Version:
    number: int
    size: int
    sha256: str
    content_version: int  # of an older version; the newest one's is the record's, live
    modified_at: datetime
    backed_up_at: datetime
    snapshot_id: str | None


@dataclass(slots=True)
class Folder:
    files: int
    size: int
    change: str


@dataclass(slots=True)
class Run:
    id: str
    client_id: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    root: str = ""
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_FIELDS, 0))
    entries: dict[str, tuple[str, int, int]] = field(default_factory=dict)  # path -> (file id, version, size)
    changes: dict[str, str] = field(default_factory=dict)  # path -> new or changed; the others are unchanged
    folders: dict[str, Folder] = field(default_factory=dict)
    stored: dict[str, None] = field(default_factory=dict)  # while open: files given a version in it
    failed: dict[str, None] = field(default_factory=dict)  # while open: files whose upload failed in it

    def to_dict(self) -> dict[str, Any]:
        c = self.counts
        return {
            "id": self.id,
            "client_id": self.client_id,
            "status": self.status,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "root": self.root,
            "files_total": c["files_new"] + c["files_changed"] + c["files_unchanged"],
            "bytes_total": c["bytes_new"] + c["bytes_changed"] + c["bytes_unchanged"],
            **c,
        }


def _derived(record: FileRecord, snapshot_id: str | None) -> list[Version]:
    """The one version a record describes (none while its first upload runs)."""
    if record.backup_count == 0:
        return []
    return [
        Version(
            record.backup_count,
            record.size,
            record.sha256,
            record.content_version,
            record.modified_at,
            record.last_backup,
            snapshot_id,
        )
    ]


class MockHistory:
    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.by_client: dict[str, list[str]] = {}  # oldest first
        self.open: dict[str, Run] = {}
        self.versions: dict[str, list[Version]] = {}  # oldest first; files with one version are not here
        # The run that stored the one version of a file not in ``versions`` (a fresh dataset's files):
        # a run id per file instead of a Version each keeps a large dataset's state small.
        self.origin: dict[str, str] = {}
        self.next_id = 1
        self.generation = 0  # bumped when versions vanish: cached folder listings are stale

    # -- versions --

    def versions_of(self, record: FileRecord) -> list[Version]:
        return self.versions.get(record.id) or _derived(record, self.origin.get(record.id))

    def version(self, record: FileRecord, number: int) -> Version | None:
        return next((v for v in self.versions_of(record) if v.number == number), None)

    def content_version(self, record: FileRecord, version: Version) -> int:
        newest = self.versions_of(record)[-1]
        return record.content_version if version.number == newest.number else version.content_version

    def freeze(self, record: FileRecord) -> None:
        """Call before a new version replaces the record's: its current one becomes history."""
        kept = self.versions.get(record.id)
        if kept is None:
            self.versions[record.id] = _derived(record, self.origin.pop(record.id, None))
        elif kept:
            kept[-1].content_version = record.content_version  # the bytes it has now (corrupted or not)

    def stored(self, record: FileRecord, at: datetime) -> None:
        """The record now holds a new version, stored by the client's open run."""
        run = self.begin(record.client_id, at)
        kept = self.versions.setdefault(record.id, [])
        kept.append(
            Version(
                record.backup_count,
                record.size,
                record.sha256,
                record.content_version,
                record.modified_at,
                at,
                run.id,
            )
        )
        if len(kept) > VERSIONS_PER_FILE:
            del kept[0]
            self.generation += 1
        run.stored[record.id] = None
        run.failed.pop(record.id, None)

    # -- runs --

    def begin(self, client_id: str, at: datetime) -> Run:
        run = self.open.get(client_id)
        if run is None:
            run = Run(str(self.next_id), client_id, "running", at, None)
            self.next_id += 1
            self.open[client_id] = run
            self.runs[run.id] = run
            self.by_client.setdefault(client_id, []).append(run.id)
            self._prune(client_id)
        return run

    def failed(self, client_id: str, at: datetime, size: int, file_id: str | None = None) -> None:
        run = self.begin(client_id, at)
        run.counts["files_failed"] += 1
        run.counts["bytes_failed"] += size
        if file_id is not None:
            run.failed[file_id] = None

    def maybe_close(self, world: MockWorld, client: Client) -> None:
        """Close the client's run once none of its files is uploading any more."""
        if client.id in self.open and not any(f in world.uploading for f in world.files_by_client[client.id]):
            agent_gone = client.status != "connected" or not world.server.running
            self.close(world, client.id, world.now(), interrupted=agent_gone)

    def close(
        self,
        world: MockWorld,
        client_id: str,
        at: datetime,
        *,
        root: str | None = None,
        interrupted: bool = False,
        held: list[FileRecord] | None = None,
        announce: bool = True,
    ) -> Run:
        """End the client's run; its tree is ``held`` (default: every file of the client). ``announce``: a
        ``snapshot.ended`` event says so (not for the history a fresh dataset is generated with)."""
        run = self.begin(client_id, at)
        del self.open[client_id]
        c = run.counts
        records = list(world.files_by_client.get(client_id, {}).values()) if held is None else held
        for record in sorted(records, key=lambda r: r.path):
            versions = self.versions_of(record)
            if not versions or record.id in run.failed:
                continue
            newest = versions[-1]
            change = ("new" if len(versions) == 1 else "changed") if record.id in run.stored else "unchanged"
            run.entries[record.path] = (record.id, newest.number, newest.size)
            if change != "unchanged":
                run.changes[record.path] = change
            c[f"files_{change}"] += 1
            c[f"bytes_{change}"] += newest.size
        run.root = root if root is not None else _common_folder(list(run.entries))
        run.status = "interrupted" if interrupted else "partial" if c["files_failed"] else "complete"
        run.ended_at = at
        run.stored, run.failed = {}, {}
        run.folders = self.folders_for(run, self._previous(run))
        if announce:
            summary = run.to_dict()
            world.emit(
                SNAPSHOT_ENDED,
                {"client_id": client_id, "snapshot_id": run.id, "status": run.status, "snapshot": summary},
            )
        return run

    def _previous(self, run: Run) -> Run | None:
        ids = self.by_client.get(run.client_id, [])
        before = [r for r in ids[: ids.index(run.id)] if self.runs[r].status != "running"]
        return self.runs[before[-1]] if before else None

    @staticmethod
    def folders_for(run: Run, previous: Run | None) -> dict[str, Folder]:
        """Every folder of a closed run's tree: files and bytes below it, and what changed since ``previous``."""
        sums: dict[str, list[int]] = {}
        for path, (_file_id, _number, size) in run.entries.items():
            touched = int(path in run.changes)
            for folder in folders_of(path):
                s = sums.setdefault(folder.path, [0, 0, 0])
                s[0] += 1
                s[1] += size
                s[2] += touched
        sums.setdefault("/", [0, 0, 0])
        before = previous.folders if previous is not None else {}
        out = {}
        for path, (files, size, touched) in sums.items():
            old = before.get(path)
            if old is None:
                change = "new"
            else:
                change = "changed" if touched or (old.files, old.size) != (files, size) else "unchanged"
            out[path] = Folder(files, size, change)
        return out

    def _prune(self, client_id: str) -> None:
        ids = self.by_client[client_id]
        while len(ids) > SNAPSHOTS_PER_CLIENT:
            self.runs.pop(ids.pop(0), None)

    # -- the world lost something --

    def forget_file(self, file_id: str) -> None:
        self.versions.pop(file_id, None)
        self.origin.pop(file_id, None)
        for run in self.open.values():
            run.stored.pop(file_id, None)
            run.failed.pop(file_id, None)
        self.generation += 1

    def forget_client(self, client_id: str) -> None:
        self.open.pop(client_id, None)
        for run_id in self.by_client.pop(client_id, []):
            self.runs.pop(run_id, None)


def _common_folder(paths: list[str]) -> str:
    """The deepest folder holding every path ("" for none)."""
    if not paths:
        return ""
    common = folders_of(paths[0])
    for path in paths[1:]:
        chain = folders_of(path)
        n = 0
        while n < min(len(common), len(chain)) and common[n].path == chain[n].path:
            n += 1
        common = common[:n]
    return common[-1].path if common else ""
