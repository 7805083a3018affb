"""What an agent reports about its run, as activity rows: refused entries, skipped files, the summary.

Agent-supplied text is quoted, cut and counted here, so a hostile or broken agent can
neither flood the activity history nor write an unreadable row into it.
"""

from __future__ import annotations

from typing import Any

import structlog

from actors.server.sessions import AgentSession
from actors.server.store import Store

log = structlog.get_logger()

# An agent reports refused and skipped files itself; each gets an activity row up to this
# many per batch, then one summary row: a folder of 100,000 unreadable files must not
# flush the activity history that operators page through.
ACTIVITY_ROWS_PER_REPORT = 20
# Agent-supplied text quoted in an activity message is cut: a row stays one readable line.
QUOTED_PATH_CHARS = 300
QUOTED_REASON_CHARS = 200


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def refused(store: Store, session: AgentSession, reasons: list[Any]) -> None:
    for reason in reasons[:ACTIVITY_ROWS_PER_REPORT]:
        store.record(
            "file_refused",
            "WARNING",
            f"{session.name}: refused a file entry: {str(reason)[:QUOTED_REASON_CHARS]}",
            client_id=session.client_id,
            logger="backup.transfer",
        )


def skipped(store: Store, session: AgentSession, entries: list[Any]) -> None:
    for entry in entries[:ACTIVITY_ROWS_PER_REPORT]:
        path, reason = ([*entry, "", ""])[:2] if isinstance(entry, list) else ("?", "?")
        store.record(
            "file_skipped",
            "WARNING",
            f"{session.name}: skipped {str(path)[:QUOTED_PATH_CHARS]}: {str(reason)[:QUOTED_REASON_CHARS]}",
            client_id=session.client_id,
            logger="backup.transfer",
        )
    if len(entries) > ACTIVITY_ROWS_PER_REPORT:
        store.record(
            "file_skipped",
            "WARNING",
            f"{session.name}: {len(entries) - ACTIVITY_ROWS_PER_REPORT} more files skipped",
            client_id=session.client_id,
            logger="backup.transfer",
        )


def done(store: Store, session: AgentSession, summary: dict[str, Any]) -> bool:
    """Record the end of a run that changed something or had problems; True when it was recorded."""
    s = {k: v for k, v in summary.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    problems = _count(s.get("skipped")) + _count(s.get("failed"))
    if not session.running_backup and not problems:
        log.debug("server.backup_unchanged", client_id=session.client_id, files=s.get("files"))
        return False
    session.running_backup = False
    text = (
        f"{session.name}: backup of {str(s.get('root', '?'))[:QUOTED_PATH_CHARS]} finished: {s.get('files', 0)} files, "
        f"{s.get('sent', 0)} sent ({s.get('bytes_sent', 0)} bytes), {s.get('linked', 0)} linked, "
        f"{s.get('unchanged', 0)} unchanged, {s.get('skipped', 0)} skipped, {s.get('failed', 0)} failed"
    )
    store.touch_client(session.client_id)
    store.client_changed(session.client_id, "updated")
    store.record(
        "backup_completed",
        "WARNING" if problems else "INFO",
        text,
        client_id=session.client_id,
        logger="backup.transfer",
    )
    return True
