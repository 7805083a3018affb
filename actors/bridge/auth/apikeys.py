"""API keys: CURVE public keys bound to a user, with a role no higher than the user's.

``api_keys.json`` under ``<data-dir>/bridge/``. The bridge keeps only public keys; the
secret half goes to whoever asked for the key (bridgectl writes it to a connection file).
A revoked key stays listed, with when it was revoked. ``kind`` ``gui`` marks a console
process's key: it acts only for users who sign in through it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from actors.bridge.auth.files import StateFileError, as_records, iso, load_json, save_json
from protocol.errors import ErrorCode, ProtocolError
from protocol.roles import Role
from runtime.curve_keys import is_public_key

FILE = "api_keys.json"
MAX_LABEL = 200


class KeyKind(StrEnum):
    API_KEY = "api_key"
    GUI = "gui"


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    user: str
    role: Role
    public_key: str
    created_at: str
    revoked_at: str | None = None
    label: str | None = None
    kind: KeyKind = KeyKind.API_KEY

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.key_id,
            "user": self.user,
            "role": self.role.value,
            "public_key": self.public_key,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "label": self.label,
            "kind": self.kind.value,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], path: Path) -> ApiKey:
        key_id, user, role, public = raw.get("id"), raw.get("user"), raw.get("role"), raw.get("public_key")
        if not (isinstance(key_id, str) and isinstance(user, str) and isinstance(public, str)) or role not in tuple(
            Role
        ):
            raise StateFileError(f"{path}: an API key record lacks an id, a user, a role or a public key")
        kind = raw.get("kind", KeyKind.API_KEY.value)
        revoked = raw.get("revoked_at")
        label = raw.get("label")
        return cls(
            key_id=key_id,
            user=user,
            role=Role(role),
            public_key=public,
            created_at=str(raw.get("created_at") or ""),
            revoked_at=str(revoked) if revoked else None,
            label=label if isinstance(label, str) else None,
            kind=KeyKind(kind) if kind in tuple(KeyKind) else KeyKind.API_KEY,
        )


def new_key_id() -> str:
    return "k-" + secrets.token_hex(6)


class ApiKeyStore:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._by_id: dict[str, ApiKey] = {}
        self._by_public: dict[str, ApiKey] = {}
        for raw in as_records(load_json(path), "keys", path):
            key = ApiKey.from_json(raw, path)
            self._by_id[key.key_id] = key
        self._index()

    def _index(self) -> None:
        # An active key wins the index over revoked records of the same public key.
        by_public: dict[str, ApiKey] = {}
        for key in self._by_id.values():
            if key.public_key not in by_public or key.active:
                by_public[key.public_key] = key
        self._by_public = by_public

    def _commit(self, by_id: dict[str, ApiKey]) -> None:
        # Copy on write: the ZAP thread looks keys up while the bridge's thread changes them.
        previous = self._by_id
        self._by_id = by_id
        try:
            save_json(self.path, {"v": 1, "keys": [k.to_json() for k in by_id.values()]})
        except BaseException:
            self._by_id = previous
            raise
        finally:
            self._index()

    def __iter__(self) -> Iterator[ApiKey]:
        return iter(list(self._by_id.values()))

    def get(self, key_id: str) -> ApiKey | None:
        return self._by_id.get(key_id)

    def by_public(self, public_key: str) -> ApiKey | None:
        """The key record of ``public_key`` (an active one if there is one; revoked ones too)."""
        return self._by_public.get(public_key)

    def active(self, key_id: str, public_key: str) -> bool:
        key = self._by_id.get(key_id)
        return key is not None and key.active and key.public_key == public_key

    def add(self, user: str, role: Role, public_key: str, label: str | None, kind: KeyKind = KeyKind.API_KEY) -> ApiKey:
        if not is_public_key(public_key):
            raise ProtocolError(ErrorCode.BAD_REQUEST, "public_key must be a z85 CURVE public key (40 characters)")
        if label is not None and len(label) > MAX_LABEL:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"a key label has at most {MAX_LABEL} characters")
        existing = self._by_public.get(public_key)
        if existing is not None and existing.active:
            raise ProtocolError(ErrorCode.CONFLICT, f"this public key is already key {existing.key_id}")
        key_id = new_key_id()
        while key_id in self._by_id:
            key_id = new_key_id()
        key = ApiKey(key_id, user, role, public_key, iso(self.clock()), None, label, kind)
        self._commit({**self._by_id, key_id: key})
        return key

    def revoke(self, key_id: str) -> ApiKey:
        key = self._by_id.get(key_id)
        if key is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no API key {key_id!r}", key_id=key_id)
        if not key.active:
            raise ProtocolError(ErrorCode.CONFLICT, f"API key {key_id} was revoked at {key.revoked_at}")
        revoked = replace(key, revoked_at=iso(self.clock()))
        self._commit({**self._by_id, key_id: revoked})
        return revoked

    def revoke_user(self, user: str) -> list[ApiKey]:
        """Revoke every active key of ``user``; returns them."""
        now = iso(self.clock())
        revoked = [replace(k, revoked_at=now) for k in self._by_id.values() if k.user == user and k.active]
        if revoked:
            self._commit({**self._by_id, **{k.key_id: k for k in revoked}})
        return revoked
