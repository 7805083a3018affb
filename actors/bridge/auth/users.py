"""Users: name, role, an argon2id password hash, an optional TOTP secret, their settings.

``users.json`` under ``<data-dir>/bridge/``. Passwords are hashed with argon2id
(argon2-cffi's defaults: RFC 9106's low-memory profile); a hash made with weaker
parameters is upgraded at the next successful sign-in.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from actors.bridge.auth.files import StateFileError, as_records, iso, load_json, save_json
from protocol.errors import ErrorCode, ProtocolError
from protocol.roles import Role

FILE = "users.json"
NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
MIN_PASSWORD = 8
MAX_SETTINGS = 64
MAX_SETTINGS_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    password_hash: str
    totp_secret: str | None = None
    created_at: str = ""
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role.value,
            "password_hash": self.password_hash,
            "totp_secret": self.totp_secret,
            "created_at": self.created_at,
            "settings": self.settings,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any], path: Path) -> User:
        name, role = raw.get("name"), raw.get("role")
        hashed = raw.get("password_hash", raw.get("hash"))
        if not isinstance(name, str) or not isinstance(hashed, str) or role not in tuple(Role):
            raise StateFileError(f"{path}: a user record lacks a name, a role or a password hash")
        totp = raw.get("totp_secret")
        settings = raw.get("settings")
        created = raw.get("created_at")
        return cls(
            name=name,
            role=Role(role),
            password_hash=hashed,
            totp_secret=totp if isinstance(totp, str) and totp else None,
            created_at=created if isinstance(created, str) else (iso(created) if isinstance(created, float) else ""),
            settings=settings if isinstance(settings, dict) else {},
        )


def check_name(name: str) -> str:
    if not NAME.fullmatch(name):
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"user name {name!r} must be 1-64 letters, digits, '.', '_', '-' or '@'"
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"a password needs at least {MIN_PASSWORD} characters")
    return password


class UserStore:
    def __init__(self, path: Path, hasher: PasswordHasher | None = None, clock: Callable[[], float] = time.time):
        self.path = path
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self._users: dict[str, User] = {}
        self._dummy_hash: str | None = None
        for raw in as_records(load_json(path), "users", path):
            user = User.from_json(raw, path)
            self._users[user.name] = user

    def _save(self) -> None:
        save_json(self.path, {"v": 1, "users": [u.to_json() for u in self._users.values()]})

    def _put(self, user: User) -> User:
        # Copy on write: the ZAP thread reads this dict while the bridge's thread changes it.
        users = dict(self._users)
        users[user.name] = user
        previous, self._users = self._users, users
        try:
            self._save()
        except BaseException:
            self._users = previous
            raise
        return user

    def __iter__(self) -> Iterator[User]:
        return iter(list(self._users.values()))

    def __len__(self) -> int:
        return len(self._users)

    def get(self, name: str) -> User | None:
        return self._users.get(name)

    def require(self, name: str) -> User:
        user = self._users.get(name)
        if user is None:
            raise ProtocolError(ErrorCode.NOT_FOUND, f"no user {name!r}", name=name)
        return user

    def admins(self) -> int:
        return sum(1 for u in self._users.values() if u.role is Role.ADMIN)

    def add(self, name: str, role: Role, password: str) -> User:
        check_name(name)
        if name in self._users:
            raise ProtocolError(ErrorCode.CONFLICT, f"user {name!r} already exists", name=name)
        hashed = self.hasher.hash(check_password(password))
        return self._put(User(name, role, hashed, created_at=iso(self.clock())))

    def remove(self, name: str) -> User:
        user = self.require(name)
        users = {k: v for k, v in self._users.items() if k != name}
        previous, self._users = self._users, users
        try:
            self._save()
        except BaseException:
            self._users = previous
            raise
        return user

    def set_password(self, name: str, password: str) -> User:
        user = self.require(name)
        return self._put(replace(user, password_hash=self.hasher.hash(check_password(password))))

    def set_role(self, name: str, role: Role) -> User:
        return self._put(replace(self.require(name), role=role))

    def set_totp(self, name: str, secret: str | None) -> User:
        return self._put(replace(self.require(name), totp_secret=secret))

    def update_settings(self, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` (a null value removes its key) into the user's settings."""
        user = self.require(name)
        settings = dict(user.settings)
        for key, value in changes.items():
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
        if len(settings) > MAX_SETTINGS:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"at most {MAX_SETTINGS} settings per user")
        try:
            size = len(json.dumps(settings))
        except (TypeError, ValueError):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, "settings must be JSON values (text, numbers, lists, maps)"
            ) from None
        if size > MAX_SETTINGS_BYTES:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"settings may take at most {MAX_SETTINGS_BYTES} bytes")
        self._put(replace(user, settings=settings))
        return settings

    def verify(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None; as slow for an unknown name as for a known one."""
        user = self._users.get(name)
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash("not a password of anyone")
            self._matches(self._dummy_hash, password)
            return None
        if not self._matches(user.password_hash, password):
            return None
        if self.hasher.check_needs_rehash(user.password_hash):
            user = self._put(replace(user, password_hash=self.hasher.hash(password)))
        return user

    def _matches(self, hashed: str, password: str) -> bool:
        try:
            return self.hasher.verify(hashed, password)
        except (VerificationError, InvalidHashError):
            return False
