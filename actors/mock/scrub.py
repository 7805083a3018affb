"""The mock's storage scrub: the same contract as the real server's, over the mock's generated content.

The mock stores no bytes: a file's content is derived from (seed, id, content version),
and a "corrupted" file is one whose content version moved while its recorded hash did
not. Re-hashing that content for real is therefore an honest scrub: what the real server
would find missing or damaged, the mock finds damaged. It checks every file in one call
(the generated content hashes at memory speed, and a request must replay identically
from the journal), so its report is always complete. Files still uploading have no whole
content yet and are left out, as their verification is refused.
"""

from __future__ import annotations

from typing import Any

from actors.backends.file_errors import scrub_failed, scrub_problem
from actors.mock.content import content_sha256
from actors.mock.state import MockWorld

LISTED_PROBLEMS = 1000  # as the real server: damaged_total counts them all
ACTIVITY_ROWS_PER_PASS = 20


def scrub_storage(world: MockWorld) -> dict[str, Any]:
    started = world.now()
    checked = [f for f in world.files.values() if f.status != "uploading"]
    checked.sort(key=lambda f: (f.sha256, f.id))
    problems: list[dict[str, Any]] = []
    damaged_total = newly_marked = bytes_checked = 0
    for record in checked:
        bytes_checked += record.size
        actual = content_sha256(world.seed, record.id, record.content_version, record.size)
        if actual == record.sha256:
            continue
        damaged_total += 1
        if len(problems) < LISTED_PROBLEMS:
            problems.append(
                {
                    "file_id": record.id,
                    "client_id": record.client_id,
                    "path": record.path,
                    "sha256": record.sha256,
                    "problem": "damaged",
                    "actual_sha256": actual,
                }
            )
        if record.status == "error":
            continue  # already known to be bad: no second event
        world.update_file(
            record,
            status="error",
            error_message=scrub_failed(record.sha256, "damaged", actual),
            last_verified=world.now(),
        )
        world.file_changed(record, "updated")
        newly_marked += 1
        if newly_marked <= ACTIVITY_ROWS_PER_PASS:
            world.record(
                "scrub_damaged",
                "ERROR",
                f"{record.path}: {scrub_problem(record.sha256, 'damaged', actual)}; "
                "marked error, the agent's next backup sends it again",
                logger="backup.verify",
                client_id=record.client_id,
                file_id=record.id,
            )
    unlisted = newly_marked - ACTIVITY_ROWS_PER_PASS
    more = f" ({unlisted} more newly marked, not listed one by one)" if unlisted > 0 else ""
    world.record(
        "scrub_completed",
        "ERROR" if damaged_total else "INFO",
        f"Storage scrub (operator): {len(checked)} blobs of {len(checked)} files checked ({bytes_checked} bytes); "
        f"{damaged_total} files with missing or damaged content{more}",
        logger="backup.verify",
    )
    return {
        "complete": True,
        "started_at": started,
        "finished_at": world.now(),
        "blobs_checked": len(checked),
        "files_checked": len(checked),
        "bytes_checked": bytes_checked,
        "damaged_total": damaged_total,
        "damaged": problems,
    }
