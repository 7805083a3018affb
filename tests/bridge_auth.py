"""An Authority for tests of the bridge without processes: users of each role, their API keys,
a GUI key, and the backend keys ``real`` (mode real; a bridge then expects a real backend)
and ``mock`` (mode mock)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

from actors.bridge.auth.authority import AuthConfig, Authority
from protocol.roles import Role
from runtime.credentials import KeyPair, StackPaths, save_key_pair

# Hashing at argon2's defaults takes ~50 ms and 64 MiB: tests use the cheapest parameters.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORDS = {Role.ADMIN: "admin-password", Role.OPERATOR: "operator-password", Role.VIEWER: "viewer-password"}
USERS = {Role.ADMIN: "ada", Role.OPERATOR: "otto", Role.VIEWER: "vera"}


class WallClock:
    """A settable wall clock (sessions, audit timestamps)."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class StackKeys:
    api: dict[Role, str]  # role -> public key of that user's API key
    key_ids: dict[Role, str]
    gui: str
    real: str
    mock: str


def make_authority(
    data_dir: Path,
    *,
    wall: WallClock | None = None,
    monotonic: WallClock | None = None,
    config: AuthConfig | None = None,
    real_backend: bool = True,
) -> tuple[Authority, StackKeys]:
    """``real_backend`` False: no key is allow-listed as real, as in a mock-only stack."""
    gui = KeyPair.generate()
    save_key_pair(StackPaths(data_dir).keys, "gui", gui)
    wall = wall or WallClock()
    authority = Authority.open(
        data_dir, config or AuthConfig(), hasher=FAST_HASHER, clock=wall, monotonic=monotonic or WallClock(1000.0)
    )
    stores = authority.stores
    api: dict[Role, str] = {}
    key_ids: dict[Role, str] = {}
    for role, name in USERS.items():
        stores.add_user(name, role.value, PASSWORDS[role])
        pair = KeyPair.generate()
        key_ids[role] = stores.add_api_key(name, role.value, pair.public, f"{role.value} key")
        api[role] = pair.public
    real, mock = KeyPair.generate().public, KeyPair.generate().public
    if real_backend:
        stores.allow_backend(real, "real", "real")
    stores.allow_backend(mock, "mock", "mock")
    return authority, StackKeys(api, key_ids, gui.public, real, mock)
