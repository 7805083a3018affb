"""The snapshot operations over the mock's history: list, get, browse one folder, search, versions.

Same answers as the real server's ``snapshot_queries`` for the same history: folders
first then files, each by name in code-point order (SQLite's BINARY), searches by a
folded path substring ordered like ``path COLLATE NOCASE, id``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.backends.filters import fold, page, searchable
from actors.backends.snapshot_paths import folder_to_browse, parent_of, split
from actors.mock.actions import find_client, find_file
from actors.mock.history import Run, Version
from actors.mock.records import FileRecord
from actors.mock.state import MockWorld
from protocol.errors import ErrorCode, ProtocolError

# A folder's listing: (sub-folder paths, (file name, file path)), both by name; cached per run and history generation.
Listing = tuple[list[str], list[tuple[str, str]]]


def find_run(world: MockWorld, snapshot_id: str) -> Run:
    run = world.history.runs.get(snapshot_id)
    if run is None:
        raise ProtocolError(
            ErrorCode.NOT_FOUND, f"snapshot {snapshot_id[:100]!r} not found", snapshot_id=snapshot_id[:100]
        )
    return run


def list_snapshots(world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
    client = find_client(world, args["client_id"])
    runs = [world.history.runs[i] for i in reversed(world.history.by_client.get(client.id, []))]
    if args.get("status") is not None:
        runs = [r for r in runs if r.status == args["status"]]
    offset, limit = args["offset"], args["limit"]
    return page([r.to_dict() for r in runs[offset : offset + limit]], len(runs), offset, limit)


def version_dict(record: FileRecord, version: Version, path: str | None = None) -> dict[str, Any]:
    """A version of a file; ``path``: where a snapshot's tree holds it (default: the file's path now)."""
    return {
        "file_id": record.id,
        "client_id": record.client_id,
        "path": record.path if path is None else path,
        "name": record.name if path is None else split(path)[1],
        "version": version.number,
        "size": version.size,
        "sha256": version.sha256,
        "modified_at": version.modified_at,
        "backed_up_at": version.backed_up_at,
        "snapshot_id": version.snapshot_id,
    }


class Browser:
    """Folder listings of runs, built once per run (a closed run's tree never changes) and kept."""

    def __init__(self, world: MockWorld, keep: int = 64) -> None:
        self.world = world
        self.keep = keep
        self._cache: dict[tuple[str, int], dict[str, Listing]] = {}

    def _resolves(self, file_id: str, number: int) -> bool:
        record = self.world.files.get(file_id)
        return record is not None and self.world.history.version(record, number) is not None

    def listings(self, run: Run) -> dict[str, Listing]:
        key = (run.id, self.world.history.generation)
        found = self._cache.get(key)
        if found is not None and run.status != "running":
            return found
        subs: dict[str, set[str]] = {folder: set() for folder in run.folders}
        files: dict[str, list[tuple[str, str]]] = {}
        for path, (file_id, number, _size) in run.entries.items():
            if self._resolves(file_id, number):  # a deleted file's versions are gone, and its entries
                folder, name = split(path)
                files.setdefault(folder, []).append((name, path))
        for folder in run.folders:
            parent = parent_of(folder)
            if parent is not None:
                subs.setdefault(parent, set()).add(folder)
        out = {
            folder: (sorted(subs.get(folder, ()), key=lambda p: run_name(p)), sorted(files.get(folder, [])))
            for folder in set(subs) | set(files)
        }
        if len(self._cache) >= self.keep:
            del self._cache[next(iter(self._cache))]
        self._cache[key] = out
        return out

    def browse(self, args: dict[str, Any]) -> dict[str, Any]:
        run = find_run(self.world, args["snapshot_id"])
        path = folder_to_browse(args["path"])
        listing = self.listings(run).get(path)
        if listing is None and not (path == "/" and not run.folders):
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                f"snapshot {run.id} holds no folder {path[:200]!r}",
                snapshot_id=run.id,
                path=path[:200],
            )
        subs, names = listing or ([], [])
        offset, limit = args["offset"], args["limit"]
        items = []
        for sub in subs[offset : offset + limit]:
            f = run.folders[sub]
            items.append(_entry(run_name(sub), "dir", sub, f.size, f.files, f.change, None))
        start = max(0, offset - len(subs))
        for name, full in names[start : start + limit - len(items)]:
            file_id, number, _size = run.entries[full]
            record = self.world.files[file_id]
            version = self.world.history.version(record, number)
            assert version is not None  # listings hold resolvable entries only
            items.append(_entry(name, "file", full, version.size, None, run.changes.get(full, "unchanged"), version))
            items[-1]["file_id"] = file_id
        return {
            "snapshot_id": run.id,
            "path": path,
            "parent": parent_of(path),
            **page(items, len(subs) + len(names), offset, limit),
        }


def run_name(folder: str) -> str:
    """A folder's name as its parent lists it (a drive's is ``C:``)."""
    return folder[:2] if len(folder) == 3 and folder[1] == ":" else split(folder)[1]


def _entry(
    name: str, type_: str, path: str, size: int, files: int | None, change: str, version: Version | None
) -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "path": path,
        "size": size,
        "files": files,
        "change": change,
        "file_id": None,
        "version": version.number if version else None,
        "sha256": version.sha256 if version else None,
        "modified_at": version.modified_at if version else None,
    }


def find_files(world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
    client_id, snapshot_id = args.get("client_id"), args.get("snapshot_id")
    if client_id is not None:
        find_client(world, client_id)
    needle = fold(args["query"])
    offset, limit = args["offset"], args["limit"]
    if not searchable(needle):
        return page([], 0, offset, limit)
    found: list[tuple[str, FileRecord, Version]] = []  # (path, file, version)
    if snapshot_id is not None:
        run = find_run(world, snapshot_id)
        if client_id is not None and run.client_id != client_id:
            raise ProtocolError(
                ErrorCode.NOT_FOUND,
                f"client {client_id!r} has no snapshot {snapshot_id!r}",
                client_id=client_id,
                snapshot_id=snapshot_id,
            )
        for path, (file_id, number, _size) in run.entries.items():
            record = world.files.get(file_id)
            version = world.history.version(record, number) if record is not None else None
            if record is not None and version is not None and needle in fold(path):
                found.append((path, record, version))
    else:
        pool = world.files_by_client[client_id].values() if client_id is not None else world.files.values()
        for record in pool:
            versions = world.history.versions_of(record)
            if versions and needle in fold(record.path):
                found.append((record.path, record, versions[-1]))
    found.sort(key=lambda prv: (fold(prv[0]), prv[1].id))
    items = [version_dict(r, v, p if snapshot_id is not None else None) for p, r, v in found[offset : offset + limit]]
    return page(items, len(found), offset, limit)


def file_versions(world: MockWorld, args: dict[str, Any]) -> dict[str, Any]:
    file_id, client_id, path = args.get("file_id"), args.get("client_id"), args.get("path")
    if file_id is not None and client_id is None and path is None:
        record = find_file(world, file_id)
    elif file_id is None and client_id is not None and path is not None:
        client = find_client(world, client_id)
        match = next((r for r in world.files_by_client[client.id].values() if r.path == path), None)
        if match is None:
            raise ProtocolError(
                ErrorCode.NOT_FOUND, f"client {client_id!r} has no file {path[:200]!r}", client_id=client_id
            )
        record = match
    else:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "give either file_id, or client_id and path")
    items = [version_dict(record, v) for v in reversed(world.history.versions_of(record))]
    return {"file": record.to_dict(), "items": items, "total": len(items)}


def version_to_download(world: MockWorld, record: FileRecord, number: int) -> tuple[int, int, str]:
    """(content version, size, sha256) of one version of a file; NOT_FOUND when it is not retained."""
    version = world.history.version(record, number)
    if version is None:
        raise ProtocolError(
            ErrorCode.NOT_FOUND, f"file {record.id!r} has no version {number}", file_id=record.id, version=number
        )
    return world.history.content_version(record, version), version.size, version.sha256


def handlers(world: MockWorld) -> dict[str, Callable[[dict[str, Any]], tuple[Any, str]]]:
    browser = Browser(world)
    return {
        "list_snapshots": lambda a: (list_snapshots(world, a), "Snapshots"),
        "get_snapshot": lambda a: (find_run(world, a["snapshot_id"]).to_dict(), "Snapshot"),
        "browse_snapshot": lambda a: (browser.browse(a), "Snapshot folder"),
        "find_files": lambda a: (find_files(world, a), "Files found"),
        "get_file_versions": lambda a: (file_versions(world, a), "File versions"),
    }
