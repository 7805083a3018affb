"""What a restore job's paths may be, read the same way by both backends and by the agent (pure).

A job names a ``destination`` (an absolute folder on the client's machine) and, per file,
a *member*: the file's path below the destination, ``/``-separated whatever the client's
platform, each component one plain name. The backends check the destination before a job
is queued; the agent checks both again before it writes anything, because an agent must
never trust its server with its own disk.
"""

from __future__ import annotations

import re

from protocol.agent_messages import MAX_NAME, check_client_path, check_file_name

MEMBER_SEPARATOR = "/"
RESTORED_TAG = "restored"
_DRIVE_ROOT = re.compile(r"[A-Za-z]:[\\/]?")


def check_destination(destination: object) -> str | None:
    """None when ``destination`` may be restored into, else why not (absolute, no ``..``, no control characters)."""
    if not isinstance(destination, str) or not destination:
        return "must be a non-empty string"
    if destination == "/" or _DRIVE_ROOT.fullmatch(destination):
        return None  # the top of a disk: a whole-tree restore in place
    trimmed = destination[:-1] if destination.endswith(("/", "\\")) else destination
    return check_client_path(trimmed)


def member_parts(member: object) -> list[str] | str:
    """The components of a member path, or why it could climb out of the destination (a string)."""
    if not isinstance(member, str) or not member:
        return "must be a non-empty string"
    if member.startswith((MEMBER_SEPARATOR, "\\")) or re.match(r"[A-Za-z]:", member):
        return "must be relative (not absolute, no drive)"
    parts = member.split(MEMBER_SEPARATOR)
    for part in parts:
        problem = check_file_name(part)
        if problem:
            return f"component {part[:80]!r} {problem}"
    return parts


def renamed(name: str, n: int) -> str:
    """The name a restored file takes beside an existing one under policy rename: n = 1, 2, ...

    ``notes.txt`` gives ``notes (restored).txt``, then ``notes (restored 2).txt``; a name
    whose only dot leads (``.bashrc``) keeps it: ``.bashrc (restored)``.
    The stem is shortened when the result would be longer than a file name may be.
    """
    tag = f" ({RESTORED_TAG})" if n == 1 else f" ({RESTORED_TAG} {n})"
    dot = name.rfind(".")
    stem, suffix = (name, "") if dot <= 0 else (name[:dot], name[dot:])
    while stem and len(f"{stem}{tag}{suffix}".encode()) > MAX_NAME:
        stem = stem[:-1]
    return f"{stem}{tag}{suffix}"
