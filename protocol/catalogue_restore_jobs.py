"""Restoring a snapshot's files onto the client's own machine: a job its agent carries out.

Part of the catalogue (``protocol.catalogue`` lists these after ``download_archive``).
``restore_to_agent`` answers at once with the job, queued; the client's agent takes it
when it is connected (at once, or when it next connects), fetches each file's stored
version, writes it under the destination and hashes what it wrote. Progress and the
result come as ``restore.job`` events and from ``get_restore_job``. The agent's side of
it (messages, path rules) is docs/agent-protocol.md.
"""

from __future__ import annotations

from protocol.operation import PAGE, Access, Arg, ArgType, Operation, limit_arg, offset_arg
from protocol.roles import Role
from protocol.shapes import Shape
from protocol.views import ViewKey as K

# What happens to a file that already exists where a restored one goes. The first is the
# default: nothing on the client's machine is ever replaced unless the operator says so.
OVERWRITE_POLICIES = ("skip", "overwrite", "rename")
JOB_STATUSES = ("queued", "running", "cancelling", "complete", "partial", "failed", "cancelled", "expired")
ENDED_STATUSES = frozenset({"complete", "partial", "failed", "cancelled", "expired"})
# A job nobody came for must not wait forever (an agent uninstalled, a laptop that never comes back):
# after this long queued it ends ``expired``. A day covers a machine off overnight or over a long
# meeting-filled day; the real server takes another value from its configuration.
QUEUED_EXPIRY_S = 24 * 3600.0
MAX_RESTORE_PATHS = 1000
PROBLEMS_LISTED = 1000  # a job lists at most this many skipped or failed files (the counts are complete)

# Why a file was skipped or failed (``problems[].code``).
EXISTS = "EXISTS"  # skipped: something is already there and the policy is skip
NOT_REGULAR = "NOT_REGULAR"  # failed: a folder, link or device is where the file goes (never replaced)
UNSAFE_PATH = "UNSAFE_PATH"  # failed: a name that could escape the destination, or a link on the way
HASH_MISMATCH = "HASH_MISMATCH"  # failed: what was written does not hash to the version's SHA-256
CONTENT_MISSING = "CONTENT_MISSING"  # failed: the server no longer has the version's content
WRITE_FAILED = "WRITE_FAILED"  # failed: the agent's disk refused (permissions, space)
PROBLEM_CODES = (EXISTS, NOT_REGULAR, UNSAFE_PATH, HASH_MISMATCH, CONTENT_MISSING, WRITE_FAILED)


def _job_id() -> Arg:
    return Arg("job_id", ArgType.STRING, "Restore job id (from restore_to_agent or list_restore_jobs).", is_id=True)


RESTORE_JOB_OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "restore_to_agent",
        "snapshots",
        "Restore folders and files of a snapshot onto the client's own machine, under `destination`: a job the "
        "client's agent carries out when it is connected (queued until then; a job still queued "
        f"{QUEUED_EXPIRY_S / 3600:.0f} h after it was queued ends `expired`, a time the real server's configuration "
        "may change). Files are named from the folder "
        "holding the whole selection, as download_archive names its members (`/home/ada/docs` into `/tmp/r` gives "
        "`/tmp/r/docs/…`; `/` gives `/tmp/r/home/…`, a drive `C:` gives `C/…`); an item inside another selected "
        "one is taken once. The agent writes nothing "
        "outside `destination`, follows no symbolic link there, writes each file to a temporary, fsyncs it, "
        "checks its SHA-256 against the version's and only then renames it into place.",
        Access.WRITE,
        10.0,
        "`RestoreJob` (status queued); BAD_REQUEST for a malformed path or destination, NOT_FOUND for an unknown "
        "snapshot or a path it does not hold, CONFLICT for a snapshot still running",
        (
            Arg("snapshot_id", ArgType.STRING, "Snapshot id (from list_snapshots).", is_id=True),
            Arg(
                "paths",
                ArgType.STRINGS,
                "Folders and files of the snapshot, each a `path` as browse_snapshot gives it (`/` for all of it).",
                minimum=1,
                maximum=MAX_RESTORE_PATHS,
            ),
            Arg(
                "destination",
                ArgType.STRING,
                "An absolute folder on the client's machine (`/home/ada/restored`, `C:\\Restored`), created when "
                "missing; no `..`, no control characters.",
            ),
            Arg(
                "overwrite",
                ArgType.STRING,
                "A file already there: `skip` it (listed as EXISTS), `overwrite` it (a regular file only: a folder "
                "or link in the way fails as NOT_REGULAR), or `rename` the restored one (`notes (restored).txt`, "
                "`notes (restored 2).txt`, …).",
                required=False,
                default=OVERWRITE_POLICIES[0],
                choices=OVERWRITE_POLICIES,
            ),
        ),
        refreshes=(K.ACTIVITY, K.AUDIT),
        role=Role.OPERATOR,
    ),
    Operation(
        "cancel_restore_job",
        "snapshots",
        "Cancel a restore job. A queued one ends at once as `cancelled`; a running one becomes `cancelling`: its "
        "agent is told, stops between two files (what it already wrote and verified stays where it is) and the job "
        "ends `cancelled` with the counts so far (also if the agent goes away meanwhile). Calling it again on a "
        "job being cancelled tells the agent again.",
        Access.WRITE,
        5.0,
        "`RestoreJob` (cancelled, or cancelling while its agent stops); NOT_FOUND for an unknown id, CONFLICT for a "
        "job that already ended (the message says how)",
        (_job_id(),),
        refreshes=(K.ACTIVITY, K.AUDIT),
        role=Role.OPERATOR,
    ),
    Operation(
        "get_restore_job",
        "snapshots",
        "One restore job: its progress while it runs, its result once it ended.",
        Access.READ,
        5.0,
        "`RestoreJob`; NOT_FOUND for an unknown id",
        (_job_id(),),
        role=Role.VIEWER,
    ),
    Operation(
        "list_restore_jobs",
        "snapshots",
        "Restore jobs, newest first: every client's or one client's.",
        Access.READ,
        5.0,
        f"{PAGE} of RestoreJob; NOT_FOUND for an unknown client",
        (
            Arg(
                "client_id",
                ArgType.STRING,
                "Only this client's jobs; null for all.",
                required=False,
                nullable=True,
                is_id=True,
            ),
            Arg(
                "status",
                ArgType.STRING,
                "Only jobs with this status.",
                required=False,
                nullable=True,
                choices=JOB_STATUSES,
            ),
            offset_arg(),
            limit_arg(50, 1000),
        ),
        role=Role.VIEWER,
    ),
)

RESTORE_JOB_SHAPES: tuple[Shape, ...] = (
    Shape(
        "RestoreJob",
        "A restore onto a client's machine (restore_to_agent). `files_done`/`bytes_done` move while it runs; "
        "restored + skipped + failed = done, and = total once it ended complete or partial.",
        (
            ("id", "string"),
            ("client_id", "string"),
            ("snapshot_id", "string"),
            ("paths", "[string]: what was selected"),
            ("destination", "string: the folder on the client's machine"),
            ("overwrite", "string: skip, overwrite or rename"),
            (
                "status",
                "string: queued (waiting for the agent: not connected, or busy), running, cancelling (its agent "
                "was told to stop), complete (every file restored or skipped), partial (some failed), failed (the "
                "job could not run: see `error`), cancelled (cancel_restore_job: the counts say what was done "
                "before) or expired (its agent never came for it: see `error`)",
            ),
            ("created_at", "datetime"),
            ("started_at", "datetime or null: when the agent first took it"),
            ("ended_at", "datetime or null"),
            ("files_total", "integer: files selected"),
            ("bytes_total", "integer"),
            ("files_done", "integer: files handled so far, whatever became of them"),
            ("bytes_done", "integer"),
            ("files_restored", "integer: written, hashed after writing and matching the version's SHA-256"),
            ("bytes_restored", "integer"),
            ("files_skipped", "integer: left as they were (policy skip)"),
            ("files_failed", "integer"),
            (
                "problems",
                f"[{{path, outcome (skipped or failed), code, reason}}]: the first {PROBLEMS_LISTED} skipped or "
                f"failed files; `code` is one of {', '.join(PROBLEM_CODES)}",
            ),
            ("error", "string or null: why a failed job could not run, or why an expired one ended"),
        ),
    ),
)
