"""download_archive for both backends: what a selection of a snapshot means, and the stream that archives it.

A backend offers its snapshot as a ``SnapshotTree`` (what a path is, a folder's listing,
a file's stored content); everything else is decided here once: which paths are
acceptable (BAD_REQUEST) and held (NOT_FOUND), how members are named and ordered, what
damaged or missing content does, and the final reply. The archive itself is made while
it streams (actors/backends/tar_stream.py).

Members are named from the folder that holds the whole selection, so ``/home/ada`` gives
``ada/…`` and ``/`` gives ``home/…`` (a drive ``C:`` gives ``C/…``): the names are made of
the tree's own folder and file names, which passed the agent protocol's path check
(no empty, ``.`` or ``..`` component), so none can lead outside the folder it is
unpacked into.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from actors.backends.api import StreamReply
from actors.backends.content_check import Reply
from actors.backends.snapshot_paths import child_path, folder_to_browse, folders_of, split
from actors.backends.tar_stream import MISSING, ArchivePlan, TarReader
from protocol.catalogue_restore import DAMAGED_LISTED, MAX_ARCHIVE_FILES, archive_name
from protocol.catalogue_snapshots import ROOT
from protocol.errors import ErrorCode, ProtocolError
from protocol.streaming import CHUNK_SIZE


@dataclass(slots=True)
class FileEntry:
    """A file of the snapshot as the archive takes it."""

    name: str
    size: int  # bytes to archive: what is stored when the backend knows it, else the recorded size
    mtime: int  # seconds since the epoch
    sha256: str  # as recorded when it was backed up
    ref: Any  # the backend's handle of its content
    problem: str | None = None  # MISSING or DAMAGED when the backend knows it before streaming
    actual_sha256: str = ""  # with DAMAGED: what the stored content hashes to


class SnapshotTree(Protocol):
    snapshot_id: str
    folder_mtime: int  # folders have no time of their own: the run's start

    def kind(self, path: str) -> str | None:
        """``dir`` or ``file`` when the snapshot holds ``path`` (a tree path), else None."""
        ...

    def listing(self, path: str) -> tuple[list[tuple[str, str]], list[FileEntry]]:
        """A folder's sub-folders as (name, path) and its files, each by name (code-point order)."""
        ...

    def file(self, path: str) -> FileEntry:
        """The file at ``path`` (kind says the snapshot holds it)."""
        ...

    def content(self, ref: Any, sha256: str, size: int) -> Iterator[bytes]:
        """A file's stored bytes in order; ending short means they are gone."""
        ...

    def describe(self, ref: Any) -> tuple[str, str]:
        """(file id, path on the client) of a file, for the report of damaged ones."""
        ...


@dataclass(frozen=True, slots=True)
class Item:
    path: str
    is_dir: bool
    parts: tuple[str, ...]  # the names from the top down to it, as members name them


def _bad(path: str, why: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"path {path[:200]!r} {why}", path=path[:200])


def _tree_path(path: str) -> str:
    if not path:
        raise _bad(path, "is empty: give `/` for the whole snapshot")
    return folder_to_browse(path)


def _member_part(folder_path: str, name: str) -> str:
    """A folder's name in member names: a drive is listed as ``C:``, and a member name has no colon (``C/…``)."""
    is_drive = len(folder_path) == 3 and folder_path[0].isalpha() and folder_path[1] == ":"
    return name[0] if is_drive else name


def _parts(path: str, is_dir: bool) -> tuple[str, ...]:
    if path == ROOT:
        return ()
    chain = folders_of(child_path(path, "x") if is_dir else path)[1:]
    names = [_member_part(f.path, f.name) for f in chain]
    if not is_dir:
        names.append(split(path)[1])
    return tuple(names)


def _inside(path: str, folder: Item) -> bool:
    return folder.path == ROOT or path.startswith(child_path(folder.path, ""))


def selection(tree: SnapshotTree, paths: list[str]) -> list[Item]:
    """The requested items in request order, each once and none inside another (BAD_REQUEST, NOT_FOUND)."""
    found: list[Item] = []
    for raw in paths:
        path = _tree_path(raw)
        kind = tree.kind(path)
        if kind is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                f"snapshot {tree.snapshot_id} holds no {path[:200]!r}",
                snapshot_id=tree.snapshot_id,
                path=path[:200],
            )
        found.append(Item(path, kind == "dir", _parts(path, kind == "dir")))
    folders = [i for i in found if i.is_dir]
    kept: list[Item] = []
    for item in found:
        covered = any(f is not item and f.path != item.path and _inside(item.path, f) for f in folders)
        if not covered and all(k.path != item.path for k in kept):
            kept.append(item)
    return kept


def _base(items: list[Item]) -> int:
    """How many leading names every member shares: those of the folder holding the whole selection."""
    parents = [i.parts[:-1] for i in items]
    depth = min(len(p) for p in parents)
    for n in range(depth):
        if len({p[n] for p in parents}) > 1:
            return n
    return depth


def _join(prefix: str, name: str) -> str:
    return f"{prefix}/{name}" if prefix else name


class _Planner:
    def __init__(self, tree: SnapshotTree, allow_damaged: bool) -> None:
        self.tree = tree
        self.allow_damaged = allow_damaged
        self.plan = ArchivePlan()
        self.problems: list[dict[str, Any]] = []  # known before streaming
        self.problems_total = 0
        self.known: set[int] = set()  # members archived as stored, known damaged: reported once

    def add(self, item: Item, base: int) -> None:
        prefix = "/".join(item.parts[base:])
        if not item.is_dir:
            self._file(prefix, self.tree.file(item.path))
            return
        todo = [(item.path, prefix)]  # depth first without recursion: trees can be deep
        while todo:
            path, name = todo.pop()
            if name:  # the top of the snapshot is no member of its own
                self.plan.add_folder(name, self.tree.folder_mtime)
            subs, files = self.tree.listing(path)
            for entry in files:
                self._file(_join(name, entry.name), entry)
            todo.extend((sub, _join(name, _member_part(sub, sub_name))) for sub_name, sub in reversed(subs))

    def _file(self, name: str, entry: FileEntry) -> None:
        if self.plan.files + self.problems_total >= MAX_ARCHIVE_FILES:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"the selection holds more than {MAX_ARCHIVE_FILES:,} files, more than one archive takes: "
                "archive its folders apart, or restore it to the client",
                limit=MAX_ARCHIVE_FILES,
            )
        if entry.problem is not None:
            self.problems_total += 1
            if len(self.problems) < DAMAGED_LISTED:
                self.problems.append(report(self.tree, entry.ref, entry.problem, entry.sha256, entry.actual_sha256))
            if entry.problem == MISSING:
                return  # nothing to archive
            self.known.add(len(self.plan))
        self.plan.add_file(name, entry.size, entry.mtime, entry.sha256, entry.ref)


def report(tree: SnapshotTree, ref: Any, problem: str, expected: str, actual: str) -> dict[str, Any]:
    file_id, path = tree.describe(ref)
    return {"path": path, "file_id": file_id, "problem": problem, "expected_sha256": expected, "actual_sha256": actual}


def damaged_error(tree: SnapshotTree, problems: list[dict[str, Any]], total: int) -> ProtocolError:
    first = problems[0]
    found = "is missing" if first["problem"] == MISSING else f"hashes to {first['actual_sha256'][:12]}…"
    others = f" and {total - 1} more file(s)" if total > 1 else ""
    return ProtocolError(
        ErrorCode.FILE_DAMAGED,
        f"the stored content of {first['path']} {found}, not its recorded sha256 {first['expected_sha256'][:12]}…"
        f"{others} in snapshot {tree.snapshot_id}; download_archive with allow_damaged: true archives what is stored",
        **first,
        damaged=problems,
        damaged_total=total,
    )


def archive_stream(
    tree: SnapshotTree, paths: list[str], allow_damaged: bool, destination_path: str, reply: Reply
) -> StreamReply:
    """The archive of ``paths`` of ``tree`` as a stream (see the module's docstring)."""
    items = selection(tree, paths)
    planner = _Planner(tree, allow_damaged)
    base = _base(items)
    for item in items:
        planner.add(item, base)
    if planner.problems and not allow_damaged:
        raise damaged_error(tree, planner.problems, planner.problems_total)
    plan = planner.plan
    reader = TarReader(plan, tree.content)
    name = archive_name(tree.snapshot_id, paths)

    def final() -> dict[str, Any]:
        problems, total = list(planner.problems), planner.problems_total
        for found in reader.found:
            if found.index in planner.known:
                continue
            total += 1
            if len(problems) < DAMAGED_LISTED:
                ref, expected = plan.refs[found.index], plan.sha256(found.index)
                problems.append(report(tree, ref, found.problem, expected, found.actual_sha256))
        if total and not allow_damaged:
            raise damaged_error(tree, problems, total)
        data = {
            "snapshot_id": tree.snapshot_id,
            "name": name,
            "files": plan.files,
            "folders": plan.folders,
            "bytes": plan.content_bytes,
            "size": reader.sent,
            "chunks": -(-reader.sent // CHUNK_SIZE),
            "damaged": problems,
            "damaged_total": total,
            "destination_path": destination_path,
        }
        message = f"Archived {plan.files} files ({plan.content_bytes} bytes) of snapshot {tree.snapshot_id}"
        if total:
            message += f", {total} of them DAMAGED or missing (archived as stored, missing ones left out)"
        return reply(data, message)

    return StreamReply(total=plan.total, read_at=reader, final=final)
