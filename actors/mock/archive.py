"""The mock's snapshots as download_archive reads them: runs of its history, generated content.

The mock's content is generated from (seed, file id, content version), so nothing can
be missing and what each member holds is fixed when the archive is planned, whatever
the ticker does meanwhile. A corrupted file (its content version moved on, its recorded
hash kept) is found while it streams, by the hash every member is checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from actors.backends.api import StreamReply
from actors.backends.archive import FileEntry, archive_stream
from actors.backends.content_check import Reply
from actors.backends.snapshot_paths import split
from actors.backends.validation import check_destination_path
from actors.mock.content import read_content
from actors.mock.history import Run
from actors.mock.snapshots import Browser, Listing, find_run, run_name
from actors.mock.state import MockWorld
from protocol.catalogue_snapshots import ROOT
from protocol.streaming import CHUNK_SIZE


class MockTree:
    """One run of the mock's history (``SnapshotTree`` of actors/backends/archive.py)."""

    def __init__(self, world: MockWorld, run: Run, listings: dict[str, Listing]) -> None:
        self.world = world
        self.run = run
        self.listings = listings
        self.snapshot_id = run.id
        self.folder_mtime = int(run.started_at.timestamp())

    def kind(self, path: str) -> str | None:
        if path in self.listings or path in self.run.folders or path == ROOT:
            return "dir"
        return "file" if path in self.run.entries and self._resolved(path) is not None else None

    def _resolved(self, path: str) -> FileEntry | None:
        file_id, number, _size = self.run.entries[path]
        record = self.world.files.get(file_id)
        version = self.world.history.version(record, number) if record is not None else None
        if record is None or version is None:
            return None  # deleted since: its versions went with it
        content_version = self.world.history.content_version(record, version)
        return FileEntry(
            split(path)[1],
            version.size,
            int(version.modified_at.timestamp()),
            version.sha256,
            (file_id, content_version),
        )

    def listing(self, path: str) -> tuple[list[tuple[str, str]], list[FileEntry]]:
        subs, names = self.listings.get(path, ([], []))
        files = [entry for _name, full in names if (entry := self._resolved(full)) is not None]
        return [(run_name(sub), sub) for sub in subs], files

    def file(self, path: str) -> FileEntry:
        entry = self._resolved(path)
        assert entry is not None  # kind() said the snapshot holds it
        return entry

    def content(self, ref: Any, sha256: str, size: int) -> Iterator[bytes]:
        file_id, content_version = ref
        for offset in range(0, size, CHUNK_SIZE):
            yield read_content(self.world.seed, file_id, content_version, size, offset, CHUNK_SIZE)

    def describe(self, ref: Any) -> tuple[str, str]:
        record = self.world.files.get(ref[0])
        return ref[0], record.path if record is not None else ""


def handler(world: MockWorld, reply: Reply) -> Callable[[dict[str, Any]], StreamReply]:
    """The core's download_archive: folder listings built once per run and kept, as browsing keeps them."""
    browser = Browser(world, keep=8)

    def download_archive(args: dict[str, Any]) -> StreamReply:
        check_destination_path(args["destination_path"])
        run = find_run(world, args["snapshot_id"])
        tree = MockTree(world, run, browser.listings(run))
        return archive_stream(tree, args["paths"], args["allow_damaged"], args["destination_path"], reply)

    return download_archive
