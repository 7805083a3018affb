"""Getting a snapshot's files back: ``download_archive`` streams folders and files of one snapshot as a tar.

Part of the catalogue (``protocol.catalogue`` lists it after the snapshot reads). The
archive is an uncompressed POSIX tar (pax headers where a name or size needs them),
produced while it streams: headers and stored content in order, nothing built ahead.
Uncompressed because its size is known before the first byte (the requester shows
progress, the browser gets a Content-Length) and because backed-up content is mostly
compressed already: gzip would cost a core for little (figures in bench/bench_archive.py).
"""

from __future__ import annotations

from protocol.operation import Access, Arg, ArgType, Operation
from protocol.roles import Role

MAX_ARCHIVE_PATHS = 1000
# The archive's plan is made before its first byte, in the backend's one loop: this many files take
# about a second there (bench/bench_archive.py --plan-files), well within the bridge's liveness limit.
MAX_ARCHIVE_FILES = 100_000
ARCHIVE_SUFFIX = ".tar"
MEDIA_TYPE = "application/x-tar"
DAMAGED_LISTED = 1000  # the final reply names at most this many damaged or missing files


def archive_name(snapshot_id: str, paths: list[str]) -> str:
    """The file name an archive of ``paths`` suggests: its one item's name, else the snapshot's."""
    if len(paths) == 1:
        path = paths[0].rstrip("/\\") if len(paths[0]) > 1 else ""
        drive = len(path) >= 2 and path[0].isalpha() and path[1] == ":"
        name = path[max(path.rfind("/"), path.rfind("\\") if drive else -1) + 1 :]
        if name:
            return (name[0] if drive and len(path) == 2 else name) + ARCHIVE_SUFFIX
    return f"snapshot-{snapshot_id}{ARCHIVE_SUFFIX}"


RESTORE_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "download_archive",
        "snapshots",
        "Stream folders and files of one snapshot as a tar archive, which the requester writes atomically to "
        "`destination_path` on its own machine.",
        Access.READ,
        60.0,
        "chunks (raw bytes: an uncompressed POSIX tar, pax format) then `{snapshot_id, name, files, folders, bytes, "
        "size, chunks, damaged: [{path, file_id, problem (missing, damaged), expected_sha256, "
        f"actual_sha256}}] (≤ {DAMAGED_LISTED}), damaged_total, destination_path}}`: `name` suggests a file name, "
        "`bytes` is the files' content, `size` the archive's. The archive as a whole has no hash: every member is "
        "checked against the SHA-256 recorded at backup while it streams, every message is authenticated "
        "(CURVE) and each chunk's index and offset prove their order. Members are named from the "
        "folder holding the selection (`/home/ada` gives `ada/…`; `/` gives `home/…` and a drive `C:` gives `C/…`): "
        "each folder, then its files by name, then its sub-folders, depth first; an item inside another selected "
        "one is taken once. BAD_REQUEST for a malformed path or a selection of more than "
        f"{MAX_ARCHIVE_FILES:,} files (archive its folders apart, or restore to the client), NOT_FOUND for an unknown snapshot or a path the "
        "snapshot does not hold. Content missing or not matching its recorded hash is FILE_DAMAGED (before the "
        "first chunk when known, else as the final reply) unless `allow_damaged`: damaged content is then archived "
        "as stored, missing content left out, and both listed in `damaged`",
        (
            Arg("snapshot_id", ArgType.STRING, "Snapshot id (from list_snapshots).", is_id=True),
            Arg(
                "paths",
                ArgType.STRINGS,
                "Folders and files of the snapshot, each a `path` as browse_snapshot gives it (`/` for all of it).",
                minimum=1,
                maximum=MAX_ARCHIVE_PATHS,
            ),
            Arg(
                "destination_path",
                ArgType.STRING,
                "Where the requester writes the archive (the backend does not use it).",
            ),
            Arg(
                "allow_damaged",
                ArgType.BOOLEAN,
                "Archive damaged content as stored and leave missing content out, instead of FILE_DAMAGED.",
                required=False,
                default=False,
            ),
        ),
        streaming=True,
        role=Role.OPERATOR,
    ),
)
