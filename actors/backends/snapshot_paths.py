"""How both backends lay a snapshot's files out as a tree of folders, and read a folder path to browse.

A folder's path is the prefix the client's own paths share, so it reads the way the
client wrote it: ``/home/ada`` for ``/home/ada/notes.txt``, ``C:\\Users`` for
``C:\\Users\\notes.txt``. Above them all is the top, ``/``, which holds the top POSIX
folders and the drives (``C:\\``, named ``C:``). Paths that reach here passed the agent
protocol's path check (absolute, no empty, ``.`` or ``..`` component).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from actors.backends.validation import has_control_characters
from protocol.agent_messages import check_client_path
from protocol.catalogue_snapshots import ROOT
from protocol.errors import ErrorCode, ProtocolError

_DRIVE = re.compile(r"[A-Za-z]:[\\/]")
_DRIVE_ALONE = re.compile(r"[A-Za-z]:")


@dataclass(frozen=True, slots=True)
class Folder:
    path: str
    parent: str | None  # None: the top
    name: str


def _cuts(path: str) -> list[int]:
    """Where the folders of a file path end: the index of each separator that closes one."""
    if path.startswith("/"):
        return [i for i, ch in enumerate(path) if ch == "/" and i > 0]
    return [i for i, ch in enumerate(path) if ch in "\\/" and i > 2]


def folders_of(path: str) -> list[Folder]:
    """The folders holding a file, from the top down (the top included)."""
    chain = [Folder(ROOT, None, "")]
    if _DRIVE.match(path):
        chain.append(Folder(path[:3], ROOT, path[:2]))
    for cut in _cuts(path):
        parent = chain[-1].path
        start = len(parent) if parent.endswith(("/", "\\")) else len(parent) + 1
        chain.append(Folder(path[:cut], parent, path[start:cut]))
    return chain


def split(path: str) -> tuple[str, str]:
    """(folder path, file name) of a file path."""
    cuts = _cuts(path)
    if cuts:
        return path[: cuts[-1]], path[cuts[-1] + 1 :]
    if _DRIVE.match(path):
        return path[:3], path[3:]
    return ROOT, path[1:]


def bad_path(path: str, why: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, f"path {path[:200]!r} {why}", path=path[:200])


def folder_to_browse(path: str) -> str:
    """A requested folder path as the tree names it; BAD_REQUEST for one no folder could have."""
    if path in ("", ROOT):
        return ROOT
    if has_control_characters(path):
        raise bad_path(path, "must not contain control characters")
    if _DRIVE_ALONE.fullmatch(path) or _DRIVE.fullmatch(path):
        return path[:2] + (path[2:] or "\\")
    trimmed = path[:-1] if path.endswith(("/", "\\")) and not path.startswith("\\") else path
    problem = check_client_path(trimmed + "/x" if trimmed.startswith("/") else trimmed + "\\x")
    if problem:
        raise bad_path(path, problem)
    return trimmed


def child_path(folder: str, name: str) -> str:
    """The path of ``name`` in ``folder``, with the folder's own separator."""
    if folder.endswith(("/", "\\")):
        return folder + name
    return f"{folder}{folder[2] if _DRIVE.match(folder) else '/'}{name}"


def parent_of(path: str) -> str | None:
    """The folder holding a folder (None for the top)."""
    if path == ROOT:
        return None
    if _DRIVE.fullmatch(path):
        return ROOT
    return split(path)[0]
