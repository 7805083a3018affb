"""Restore on the agent: fetch one file's content from the server into a local destination.

The bytes go to a temporary file beside the destination and are renamed into place only
when complete and their SHA-256 matches the server's, so an interrupted restore leaves
nothing behind. The destination must not contain '..' and the file name the server
sends (used when the destination is a folder) must be one plain path component.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import structlog

from actors.agent.progress import Progress
from actors.agent.session import EXIT_FAILED, EXIT_USAGE, AgentError, Session, SessionLost, error_of, new_id
from protocol.agent_messages import check_file_name, has_traversal
from runtime.fsutil import atomic_write

log = structlog.get_logger()

STALL_S = 30.0


def check_destination(dest: str) -> Path:
    """The destination as given, refused when it could climb out of where it points."""
    if not dest or "\x00" in dest or has_traversal(dest):
        raise AgentError(f"restore destination {dest!r} must be a plain path without '..' components", EXIT_USAGE)
    return Path(dest).expanduser().absolute()


def _target(dest: Path, name: str) -> Path:
    problem = check_file_name(name)
    if dest.is_dir():
        if problem:
            raise AgentError(
                f"the server sent an unsafe file name {name!r} ({problem}); give a full destination path", EXIT_FAILED
            )
        return dest / name
    if not dest.parent.is_dir():
        raise AgentError(f"destination folder {dest.parent} does not exist", EXIT_USAGE)
    return dest


def restore(session: Session, file_id: str, dest: Path, progress: Progress) -> dict[str, Any]:
    restore_id = new_id()
    session.conn.send("fetch", r=restore_id, file_id=file_id)
    meta = _next(session, restore_id)
    if meta.type != "fetch_meta":
        raise AgentError(f"unexpected answer to fetch: {meta.type}", EXIT_FAILED)
    target = _target(dest, meta["name"])
    size, expected = meta["size"], meta["sha256"]
    progress.total_bytes = size
    with atomic_write(target) as out:  # nothing at the target unless complete and matching
        h = hashlib.sha256()
        received = index = 0
        while True:
            msg = _next(session, restore_id)
            if msg.type == "fetch_end":
                break
            if msg.type != "data" or msg["i"] != index or msg["o"] != received:
                raise AgentError(f"restore stream out of order at chunk {index}", EXIT_FAILED)
            out.write(msg.body)
            h.update(msg.body)
            received += len(msg.body)
            index += 1
            session.conn.send("fetch_ack", r=restore_id, i=msg["i"])
            progress.update(sent_bytes=len(msg.body))
        if received != size or h.hexdigest() != expected:
            raise AgentError(
                f"restored content does not match: {received} bytes with sha256 {h.hexdigest()}, "
                f"expected {size} bytes with {expected}; nothing was written",
                EXIT_FAILED,
            )
    log.info("agent.restored", file_id=file_id, path=str(target), size=size, sha256=expected)
    return {"file_id": file_id, "path": str(target), "size": size, "sha256": expected, "source": meta.get("path")}


def _next(session: Session, restore_id: str) -> Any:
    """The next message of this restore; errors about it become AgentError."""
    while True:
        msg = session.recv(STALL_S)
        if msg is None:
            raise SessionLost(f"the restore stalled: nothing from the server for {STALL_S:.0f}s")
        if msg.type == "error" and msg.get("ref") in (restore_id, None):
            raise error_of(msg)
        if msg.get("r") == restore_id:
            return msg
