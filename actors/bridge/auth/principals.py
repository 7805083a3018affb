"""Who a CURVE public key is: an API key's user, a GUI process, or an allow-listed backend.

The bridge decides this from the key ZAP authenticated (a message's ``User-Id``), never
from anything a client writes in a message. A key that is unknown, revoked, or whose
user is gone resolves to nobody. An API key acts with the lower of its own role and its
user's current role, so demoting a user demotes their keys at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from actors.bridge.auth.apikeys import ApiKeyStore, KeyKind
from actors.bridge.auth.backends import AllowedBackend, BackendAllowList
from actors.bridge.auth.users import UserStore
from protocol.roles import Role, lowest


class PrincipalKind(StrEnum):
    API_KEY = "api_key"
    GUI = "gui"
    BACKEND = "backend"


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    public_key: str
    user: str | None = None  # API keys only: GUI principals act for users through sessions
    role: Role | None = None
    key_id: str | None = None
    backend: AllowedBackend | None = None

    @property
    def via(self) -> str:
        """How the audit trail names the credential."""
        if self.kind is PrincipalKind.API_KEY:
            return f"api_key:{self.key_id}"
        if self.kind is PrincipalKind.BACKEND and self.backend is not None:
            return f"backend:{self.backend.name}"
        return self.kind.value


class Principals:
    def __init__(
        self, users: UserStore, keys: ApiKeyStore, backends: BackendAllowList, gui_keys: Iterable[str] = ()
    ) -> None:
        self.users = users
        self.keys = keys
        self.backends = backends
        self.gui_keys = frozenset(gui_keys)  # the local GUI's key (keys/gui.key); others are API keys of kind gui

    def resolve(self, public_key: str | None) -> Principal | None:
        if not public_key:
            return None
        backend = self.backends.get(public_key)
        if backend is not None:
            return Principal(PrincipalKind.BACKEND, public_key, backend=backend)
        if public_key in self.gui_keys:
            return Principal(PrincipalKind.GUI, public_key)
        key = self.keys.by_public(public_key)
        if key is None or not key.active:
            return None
        if key.kind is KeyKind.GUI:
            return Principal(PrincipalKind.GUI, public_key, key_id=key.key_id)
        user = self.users.get(key.user)
        if user is None:
            return None
        return Principal(PrincipalKind.API_KEY, public_key, user.name, lowest(key.role, user.role), key.key_id)

    def in_use(self, public_key: str) -> str | None:
        """What already holds ``public_key`` (one key, one principal), or None."""
        if self.backends.get(public_key) is not None:
            return "an allow-listed backend"
        if public_key in self.gui_keys:
            return "the local GUI"
        key = self.keys.by_public(public_key)
        if key is not None and key.active:
            return f"API key {key.key_id}"
        return None


@dataclass(frozen=True, slots=True)
class Acting:
    """Whom a request runs for: the principal that sent it and, for a GUI, the signed-in user."""

    principal: Principal
    user: str | None
    role: Role | None
    via: str
    token: str | None = None  # the session token a GUI request carried (logout ends it)

    @classmethod
    def as_itself(cls, principal: Principal) -> Acting:
        return cls(principal, principal.user, principal.role, principal.via)

    def who(self) -> dict[str, str | None]:
        return {"user": self.user, "role": self.role.value if self.role else None, "via": self.via}
