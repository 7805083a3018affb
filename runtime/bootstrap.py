"""The credentials a local stack starts with, created once and refreshed at every start (run_all).

``bootstrap`` makes the key pairs of the bridge and of the local actors, allow-lists the
local backends (the real server's key only for a stack that runs it: that binding is how
the bridge knows a real backend is expected, so a mock-only stack must not hold it), creates the first admin (a random password in ``credentials/admin-password``)
and writes the connection files. Every file goes through runtime/credentials.py, which
decides permissions; the bridge's stores are handed in (runtime may not import the bridge).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import structlog

from runtime.credentials import (
    ConnectionFile,
    ConnectionKind,
    CredentialsError,
    KeyPair,
    StackPaths,
    load_or_create_key_pair,
    private_dir,
    read_private,
    write_private,
)

log = structlog.get_logger()

ADMIN_USER = "admin"
ADMIN_ROLE = "admin"
ADMIN_KEY_LABEL = "admin.json (created by run_all)"
PASSWORD_BYTES = 18  # 24 URL-safe characters


@dataclass(frozen=True, slots=True)
class LocalActor:
    """A process of the local stack with a key pair of its own and a connection file."""

    key: str  # NAME of keys/NAME.key
    connection: str  # credentials/CONNECTION.json
    kind: ConnectionKind
    backend_name: str | None = None  # backends are allow-listed under this name ...
    backend_mode: str | None = None  # ... and this mode


LOCAL_ACTORS = (
    LocalActor("mock", "mock", ConnectionKind.BACKEND, "mock", "mock"),
    LocalActor("server-backend", "server", ConnectionKind.BACKEND, "server", "real"),
    # run_all's --replay stands where the mock stands, under its own name.
    LocalActor("replay", "replay", ConnectionKind.BACKEND, "replay", "mock"),
    LocalActor("gui", "gui", ConnectionKind.GUI),
)


class BridgeState(Protocol):
    """What bootstrap asks of the bridge's stores (users, API keys, backend allow-list).

    The bridge owns their format (actors/bridge); runtime may not import it, so the
    caller (run_all, tests) hands its stores in."""

    def user_exists(self, name: str) -> bool: ...

    def has_users(self) -> bool: ...

    def add_user(self, name: str, role: str, password: str) -> None: ...

    def add_api_key(self, user: str, role: str, public_key: str, label: str) -> str:
        """Store an API key; returns its id."""
        ...

    def api_key_active(self, key_id: str, public_key: str) -> bool: ...

    def allow_backend(self, public_key: str, name: str, mode: str) -> None:
        """Bind ``public_key`` to ``name`` and ``mode`` (a no-op when it already is)."""
        ...

    def disallow_backend(self, public_key: str) -> None:
        """Remove ``public_key`` from the backend allow-list (a no-op when it is not there)."""
        ...


@dataclass(frozen=True, slots=True)
class StackEndpoints:
    frontend: str
    events: str
    backend: str
    tap: str


@dataclass(frozen=True, slots=True)
class Bootstrap:
    paths: StackPaths
    bridge_public_key: str
    connections: dict[str, Path]  # "admin" (when the user admin exists), "mock", "server", "replay", "gui"
    created: tuple[str, ...]  # what this run created: key pairs, "user admin", "admin API key"

    @property
    def admin_connection(self) -> Path | None:
        return self.connections.get(ADMIN_USER)


def _reachable(endpoint: str) -> str:
    """A bound wildcard address as the local actors connect to it."""
    return endpoint.replace("://*:", "://127.0.0.1:").replace("://0.0.0.0:", "://127.0.0.1:")


def _save_if_changed(conn: ConnectionFile, path: Path) -> None:
    try:
        current = ConnectionFile.load(path)
    except CredentialsError:
        current = None
    if current != conn:
        conn.save(path)


def _admin_password(paths: StackPaths, created: list[str]) -> str:
    """The first admin's password: kept in its file so a crash before the user was stored reuses it."""
    if paths.admin_password.exists():
        return read_private(paths.admin_password, "password file").decode("utf-8").strip()
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    write_private(paths.admin_password, (password + "\n").encode("utf-8"))
    created.append("admin password")
    return password


def _admin_connection(
    paths: StackPaths, state: BridgeState, template: ConnectionFile, created: list[str]
) -> Path | None:
    """admin.json, its endpoints refreshed; a new API key when the file is gone or its key revoked."""
    if not state.user_exists(ADMIN_USER):
        return None  # removed on purpose by an operator: bootstrap never brings it back
    path = paths.admin_connection
    try:
        current: ConnectionFile | None = ConnectionFile.load(path)
    except CredentialsError:
        current = None
    if current is not None and current.key_id and state.api_key_active(current.key_id, current.public_key):
        pair = KeyPair(current.public_key, current.secret_key)
        key_id = current.key_id
    else:
        pair = KeyPair.generate()
        key_id = state.add_api_key(ADMIN_USER, ADMIN_ROLE, pair.public, ADMIN_KEY_LABEL)
        created.append("admin API key")
    admin = replace(
        template,
        public_key=pair.public,
        secret_key=pair.secret,
        kind=ConnectionKind.API_KEY,
        user=ADMIN_USER,
        role=ADMIN_ROLE,
        key_id=key_id,
    )
    _save_if_changed(admin, path)
    return path


def _bind_backend(
    state: BridgeState, actor: LocalActor, public_key: str, real_server: bool | None, first: bool
) -> None:
    if actor.backend_name is None or actor.backend_mode is None:
        return
    if actor.backend_mode == "real" and not (real_server or (real_server is None and first)):
        if real_server is False:
            state.disallow_backend(public_key)
        return
    state.allow_backend(public_key, actor.backend_name, actor.backend_mode)


def bootstrap(
    data_dir: Path, endpoints: StackEndpoints, state: BridgeState, *, real_server: bool | None = None
) -> Bootstrap:
    """Create what a local stack needs to start with every socket authenticated; safe to run at every start.

    Key pairs and the first admin are created once; connection files are rewritten when
    the endpoints changed. ``real_server``: True allow-lists the local real server's key
    (mode real: the bridge then expects a real backend), False removes that binding (a
    mock-only or replay stack), None leaves it as it is except on the stack's first
    bootstrap, which allows it (a bridge started on its own). Logs the paths of the
    admin's password and connection file, never a secret."""
    paths = StackPaths(data_dir)
    for folder in (paths.keys, paths.credentials, paths.bridge):
        private_dir(folder)
    created: list[str] = []
    bridge, new = load_or_create_key_pair(paths.keys, "bridge")
    if new:
        created.append("key bridge")
    template = ConnectionFile(
        frontend=_reachable(endpoints.frontend),
        events=_reachable(endpoints.events),
        backend=_reachable(endpoints.backend),
        tap=_reachable(endpoints.tap),
        bridge_public_key=bridge.public,
        public_key=bridge.public,  # replaced below: every principal has its own pair
        secret_key=bridge.secret,
    )
    connections: dict[str, Path] = {}
    first = not state.has_users()
    for actor in LOCAL_ACTORS:
        pair, new = load_or_create_key_pair(paths.keys, actor.key)
        if new:
            created.append(f"key {actor.key}")
        _bind_backend(state, actor, pair.public, real_server, first)
        path = paths.connection(actor.connection)
        conn = replace(
            template, public_key=pair.public, secret_key=pair.secret, kind=actor.kind, name=actor.backend_name
        )
        _save_if_changed(conn, path)
        connections[actor.connection] = path
    if not state.has_users():
        password = _admin_password(paths, created)
        state.add_user(ADMIN_USER, ADMIN_ROLE, password)
        created.append(f"user {ADMIN_USER}")
    admin = _admin_connection(paths, state, template, created)
    if admin is not None:
        connections[ADMIN_USER] = admin
        log.info(
            "stack.credentials",
            admin_password_file=str(paths.admin_password) if paths.admin_password.exists() else None,
            admin_connection=str(admin),
            created=created or None,
        )
    else:
        log.warning(
            "stack.credentials",
            admin_connection=None,
            reason=f"user {ADMIN_USER!r} was removed; use another admin's connection file",
            created=created or None,
        )
    return Bootstrap(paths, bridge.public, connections, tuple(created))
