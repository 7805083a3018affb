"""The bridge's three stores together, as ``runtime.bootstrap`` asks for them (its BridgeState).

run_all (and tests) create a stack's first credentials before the bridge starts:
``bootstrap(data_dir, endpoints, BridgeStores.open(StackPaths(data_dir).bridge))``. The
bridge opens the same files when it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

from actors.bridge.auth import apikeys, backends, users
from actors.bridge.auth.apikeys import ApiKeyStore
from actors.bridge.auth.backends import BackendAllowList
from actors.bridge.auth.users import UserStore
from protocol.errors import ErrorCode, ProtocolError
from protocol.roles import parse_role


@dataclass
class BridgeStores:
    users: UserStore
    keys: ApiKeyStore
    backends: BackendAllowList

    @classmethod
    def open(
        cls, bridge_dir: Path, hasher: PasswordHasher | None = None, clock: Callable[[], float] = time.time
    ) -> BridgeStores:
        return cls(
            UserStore(bridge_dir / users.FILE, hasher, clock),
            ApiKeyStore(bridge_dir / apikeys.FILE, clock),
            BackendAllowList(bridge_dir / backends.FILE),
        )

    # -- runtime.bootstrap.BridgeState --
    def user_exists(self, name: str) -> bool:
        return self.users.get(name) is not None

    def has_users(self) -> bool:
        return len(self.users) > 0

    def add_user(self, name: str, role: str, password: str) -> None:
        self.users.add(name, parse_role(role), password)

    def add_api_key(self, user: str, role: str, public_key: str, label: str) -> str:
        if self.backends.get(public_key) is not None:
            raise ProtocolError(ErrorCode.CONFLICT, "this public key is an allow-listed backend's")
        return self.keys.add(user, parse_role(role), public_key, label).key_id

    def api_key_active(self, key_id: str, public_key: str) -> bool:
        return self.keys.active(key_id, public_key)

    def allow_backend(self, public_key: str, name: str, mode: str) -> None:
        self.backends.allow(public_key, name, mode)

    def disallow_backend(self, public_key: str) -> None:
        if self.backends.get(public_key) is not None:
            self.backends.revoke(public_key)
