"""Everything the bridge knows about trust, in one object: stores, principals, sessions,
login throttle, the audit trail and the rate-limited refusal records."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

from actors.bridge.auth import audit as audit_module
from actors.bridge.auth.audit import AuditLog
from actors.bridge.auth.principals import Principals
from actors.bridge.auth.ratelimit import QuietFilter
from actors.bridge.auth.sessions import SessionTable
from actors.bridge.auth.state import BridgeStores
from actors.bridge.auth.throttle import LoginThrottle
from actors.bridge.auth.zap import Refusals, ZapGate
from runtime.credentials import CredentialsError, StackPaths, key_files, load_public_key

GUI_KEY_NAME = "gui"  # <data-dir>/keys/gui.key: the local GUI process (runtime.bootstrap creates it)


@dataclass(frozen=True)
class AuthConfig:
    session_idle_s: float = 30 * 60
    session_absolute_s: float = 12 * 3600
    max_sessions: int = 10_000
    login_free_failures: int = 3
    login_base_delay_s: float = 1.0
    login_max_delay_s: float = 300.0
    refusal_quiet_s: float = 60.0
    max_refusal_keys: int = 4096


def local_gui_keys(data_dir: Path) -> list[str]:
    public_file, _ = key_files(StackPaths(data_dir).keys, GUI_KEY_NAME)
    if not public_file.exists():
        return []
    try:
        return [load_public_key(public_file)]
    except CredentialsError:
        return []


class Authority:
    def __init__(
        self,
        stores: BridgeStores,
        audit: AuditLog,
        gui_keys: list[str],
        config: AuthConfig = AuthConfig(),
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.stores = stores
        self.audit = audit
        self.clock = clock
        self.principals = Principals(stores.users, stores.keys, stores.backends, gui_keys)
        self.sessions = SessionTable(config.session_idle_s, config.session_absolute_s, config.max_sessions, clock)
        self.throttle = LoginThrottle(
            config.login_free_failures, config.login_base_delay_s, config.login_max_delay_s, clock=monotonic
        )
        self.refusals = Refusals(audit, QuietFilter(config.refusal_quiet_s, config.max_refusal_keys, monotonic))
        # Role denials by one principal of one operation: recorded once a quiet period, the rest counted.
        self.denials = QuietFilter(config.refusal_quiet_s, config.max_refusal_keys, monotonic)
        self.totp_steps: dict[str, int] = {}  # the last TOTP step each user signed in with (no replay)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        config: AuthConfig = AuthConfig(),
        *,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> Authority:
        paths = StackPaths(data_dir)
        stores = BridgeStores.open(paths.bridge, hasher, clock)
        audit = AuditLog(paths.bridge / audit_module.FILE, clock)
        return cls(stores, audit, local_gui_keys(data_dir), config, clock=clock, monotonic=monotonic)

    def zap_gate(self) -> ZapGate:
        return ZapGate(self.principals, self.refusals)

    def close(self) -> None:
        self.audit.close()
