"""The backend allow-list: which CURVE keys may register as a backend, under which name and mode.

``backends.json`` under ``<data-dir>/bridge/``: ``{"v": 1, "backends": {public_key: {name,
mode}}}``. A key registers only under its bound name and mode, so a mock's key can never
speak as the real server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.bridge.auth.files import StateFileError, load_json, save_json
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import BACKEND_MODES, Mode
from runtime.curve_keys import is_public_key

FILE = "backends.json"
NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True, slots=True)
class AllowedBackend:
    public_key: str
    name: str
    mode: Mode


def _parse(raw: Any, path: Path) -> dict[str, AllowedBackend]:
    if raw is None:
        return {}
    table = raw.get("backends", raw) if isinstance(raw, dict) and "v" in raw else raw
    if not isinstance(table, dict):
        raise StateFileError(f"{path}: expected a map of public key -> {{name, mode}}")
    out: dict[str, AllowedBackend] = {}
    for public, entry in table.items():
        name = entry.get("name") if isinstance(entry, dict) else None
        mode = entry.get("mode") if isinstance(entry, dict) else None
        if not isinstance(name, str) or mode not in BACKEND_MODES or not is_public_key(str(public)):
            raise StateFileError(f"{path}: backend {str(public)[:8]}… needs a name and a mode (real or mock)")
        out[public] = AllowedBackend(public, name, Mode(mode))
    return out


class BackendAllowList:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries = _parse(load_json(path), path)

    def _commit(self, entries: dict[str, AllowedBackend]) -> None:
        payload = {"v": 1, "backends": {k: {"name": e.name, "mode": e.mode.value} for k, e in entries.items()}}
        save_json(self.path, payload)
        self._entries = entries  # replaced whole: the ZAP thread reads it

    def __iter__(self) -> Iterator[AllowedBackend]:
        return iter(list(self._entries.values()))

    def get(self, public_key: str) -> AllowedBackend | None:
        return self._entries.get(public_key)

    def allow(self, public_key: str, name: str, mode: str) -> tuple[AllowedBackend, AllowedBackend | None]:
        """Bind ``public_key`` to ``name`` and ``mode``; returns the entry and the binding it replaced."""
        if not is_public_key(public_key):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "public_key must be a z85 CURVE public key (40 characters)")
        if not NAME.fullmatch(name):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"backend name {name!r} must be 1-64 letters, digits, . _ -")
        if mode not in BACKEND_MODES:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"backend mode must be real or mock, got {mode!r}")
        entry = AllowedBackend(public_key, name, Mode(mode))
        previous = self._entries.get(public_key)
        if previous != entry:
            self._commit({**self._entries, public_key: entry})
        return entry, previous if previous != entry else None

    def revoke(self, public_key: str) -> AllowedBackend:
        entry = self._entries.get(public_key)
        if entry is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"backend key {public_key[:8]}… is not allow-listed")
        self._commit({k: e for k, e in self._entries.items() if k != public_key})
        return entry
