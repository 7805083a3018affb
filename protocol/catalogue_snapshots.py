"""The snapshot operations: each backup run of a client as a point in time to list, browse and search.

Part of the catalogue (``protocol.catalogue`` lists them after the file operations); kept
apart so the catalogue stays readable. Every one is a read any viewer may make; getting
the bytes of a version back is ``download_file`` with its ``version`` argument.
"""

from __future__ import annotations

from protocol.operation import PAGE, Access, Arg, ArgType, Operation, limit_arg, offset_arg
from protocol.roles import Role

SNAPSHOT_STATUSES = ("running", "complete", "partial", "interrupted")
CHANGES = ("new", "changed", "unchanged")
ENTRY_TYPES = ("dir", "file")
ROOT = "/"


def _snapshot_id(doc: str = "Snapshot id (from list_snapshots).") -> Arg:
    return Arg("snapshot_id", ArgType.STRING, doc, is_id=True)


def _read(name: str, summary: str, returns: str, args: tuple[Arg, ...]) -> Operation:
    return Operation(name, "snapshots", summary, Access.READ, 10.0, returns, args, role=Role.VIEWER)


SNAPSHOT_OPERATIONS: tuple[Operation, ...] = (
    _read(
        "list_snapshots",
        "A client's backup runs, newest first.",
        f"{PAGE} of Snapshot; NOT_FOUND for an unknown client",
        (
            Arg("client_id", ArgType.STRING, "Client id.", is_id=True),
            offset_arg(),
            limit_arg(50, 1000),
            Arg(
                "status",
                ArgType.STRING,
                "Only runs with this status.",
                required=False,
                nullable=True,
                choices=SNAPSHOT_STATUSES,
            ),
        ),
    ),
    _read(
        "get_snapshot",
        "One backup run.",
        "`Snapshot`; NOT_FOUND for an unknown id",
        (_snapshot_id(),),
    ),
    _read(
        "browse_snapshot",
        "One folder of a snapshot's tree, one level: its folders first, then its files, each by name, with "
        "what changed since the client's previous run.",
        "`{snapshot_id, path, parent (null at the root), items: [SnapshotEntry], total, offset, limit}`; "
        "NOT_FOUND for an unknown snapshot or a folder the snapshot does not hold, BAD_REQUEST for a malformed path",
        (
            _snapshot_id(),
            Arg(
                "path",
                ArgType.STRING,
                "The folder: `/` is the top (it holds `/home`, or a drive such as `C:`), then a folder's `path` "
                "as browse_snapshot returned it (`/home/ada`, `C:\\Users`); one trailing separator is ignored.",
                required=False,
                default=ROOT,
            ),
            offset_arg(),
            limit_arg(1000, 10000),
        ),
    ),
    _read(
        "find_files",
        "Search backed-up files by a case-insensitive substring of their path (ASCII letters fold): every "
        "client's, one client's, or in one snapshot.",
        f"{PAGE} of FileVersion ordered by path: with `snapshot_id`, the version that snapshot holds, at the path "
        "its tree holds it; otherwise each file's newest version. NOT_FOUND for an unknown client or snapshot, or "
        "a snapshot of another client than `client_id`",
        (
            Arg("query", ArgType.STRING, "Substring of the path (the name is its end); empty matches all."),
            Arg(
                "client_id",
                ArgType.STRING,
                "Only this client's files; null for all.",
                required=False,
                nullable=True,
                is_id=True,
            ),
            Arg(
                "snapshot_id",
                ArgType.STRING,
                "Only the files this snapshot holds; null for every retained file.",
                required=False,
                nullable=True,
                is_id=True,
            ),
            offset_arg(),
            limit_arg(100, 1000),
        ),
    ),
    _read(
        "get_file_versions",
        "Every retained version of one file, newest first: by `file_id`, or by `client_id` and `path`.",
        "`{file: File, items: [FileVersion], total}`; BAD_REQUEST unless exactly one of the two ways is "
        "given, NOT_FOUND for an unknown file, client or path",
        (
            Arg("file_id", ArgType.STRING, "File id.", required=False, nullable=True, is_id=True),
            Arg("client_id", ArgType.STRING, "Client id (with `path`).", required=False, nullable=True, is_id=True),
            Arg(
                "path",
                ArgType.STRING,
                "The file's path on the client (with `client_id`).",
                required=False,
                nullable=True,
            ),
        ),
    ),
)
