"""Secrets on disk (runtime/credentials.py) and the local stack's first credentials (runtime/bootstrap.py),
without processes: permissions, connection files and their refusals, the resolution order, idempotence,
and logs that name files but never a secret."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.auth
from structlog.testing import capture_logs

from actors.bridge.auth.state import BridgeStores
from runtime.bootstrap import Bootstrap, StackEndpoints, bootstrap
from runtime.credentials import (
    ENV_CONNECTION,
    ConnectionFile,
    ConnectionKind,
    CredentialsError,
    KeyPair,
    StackPaths,
    default_connection_path,
    load_connection,
    load_key_pair,
    load_or_create_key_pair,
    load_public_key,
    private_dir,
    resolve_connection,
    write_private,
)

ENDPOINTS = StackEndpoints("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", "tcp://127.0.0.1:5557", "tcp://*:5558")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def a_connection(**changes: Any) -> ConnectionFile:
    bridge, mine = KeyPair.generate(), KeyPair.generate()
    base = ConnectionFile(
        frontend="tcp://127.0.0.1:5555",
        events="tcp://127.0.0.1:5556",
        backend="tcp://127.0.0.1:5557",
        tap="tcp://127.0.0.1:5558",
        bridge_public_key=bridge.public,
        public_key=mine.public,
        secret_key=mine.secret,
        user="alice",
        role="viewer",
        key_id="k-1",
    )
    return replace(base, **changes)


def start(data_dir: Path, endpoints: StackEndpoints = ENDPOINTS) -> Bootstrap:
    return bootstrap(data_dir, endpoints, BridgeStores.open(StackPaths(data_dir).bridge))


# ----------------------------------------------------------------------------- files and key pairs


def test_private_files_and_folders(tmp_path: Path) -> None:
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    assert mode_of(private_dir(loose)) == 0o700
    secret = loose / "deep" / "secret"
    private_dir(secret.parent)
    write_private(secret, b"one")
    write_private(secret, b"two")  # replaced atomically, still private
    assert secret.read_bytes() == b"two" and mode_of(secret) == 0o600
    assert [p.name for p in secret.parent.iterdir()] == ["secret"]  # no temporary left behind


def test_key_pairs_are_zmq_certificates_readable_by_their_owner_only(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    pair, created = load_or_create_key_pair(keys, "mock")
    again, created_again = load_or_create_key_pair(keys, "mock")
    assert created and not created_again and again == pair
    assert mode_of(keys) == 0o700
    assert mode_of(keys / "mock.key") == 0o600 and mode_of(keys / "mock.key_secret") == 0o600
    public, secret = zmq.auth.load_certificate(str(keys / "mock.key_secret"))
    assert (public.decode(), secret and secret.decode()) == (pair.public, pair.secret)
    assert load_public_key(keys / "mock.key") == pair.public
    assert pair.secret not in repr(pair)
    (keys / "mock.key_secret").chmod(0o644)
    with pytest.raises(CredentialsError, match=r"chmod 600 .*mock.key_secret"):
        load_key_pair(keys, "mock")


# ----------------------------------------------------------------------------- connection files


def test_a_connection_file_round_trips_at_0600_and_sets_a_sockets_curve_keys(tmp_path: Path) -> None:
    conn = a_connection()
    saved = conn.save(tmp_path / "alice.json")
    assert mode_of(tmp_path / "alice.json") == 0o600
    loaded = ConnectionFile.load(tmp_path / "alice.json")
    assert loaded == conn == saved and loaded.path == tmp_path / "alice.json"
    assert json.loads((tmp_path / "alice.json").read_text())["v"] == 1
    assert conn.secret_key not in repr(conn) and conn.secret_key not in conn.describe()
    assert load_public_key(tmp_path / "alice.json") == conn.public_key


def test_apply_client_makes_a_socket_the_bridges_curve_client() -> None:
    bridge = KeyPair.generate()
    conn = a_connection(bridge_public_key=bridge.public)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    server = ctx.socket(zmq.ROUTER)
    server.curve_server = True
    server.curve_publickey, server.curve_secretkey = bridge.public.encode(), bridge.secret.encode()
    port = server.bind_to_random_port("tcp://127.0.0.1")
    client = ctx.socket(zmq.DEALER)
    try:
        conn.apply_client(client)
        client.connect(f"tcp://127.0.0.1:{port}")
        client.send(b"hello")
        assert server.poll(5000), "the CURVE handshake with the bridge's key did not succeed"
        assert server.recv_multipart()[1] == b"hello"
    finally:
        client.close(0)
        server.close(0)


def test_a_readable_connection_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "shared.json"
    a_connection().save(path)
    for loose in (0o644, 0o640, 0o604):
        path.chmod(loose)
        with pytest.raises(CredentialsError) as refused:
            ConnectionFile.load(path)
        assert f"chmod 600 {path}" in str(refused.value)


def _without_frontend(raw: dict[str, Any]) -> None:
    del raw["frontend"]


BROKEN: dict[str, tuple[Callable[[dict[str, Any]], object] | str | None, str]] = {
    "missing": (None, "does not exist"),
    "not JSON": ("{not json", "not valid JSON"),
    "a list": ("[1, 2]", "JSON object"),
    "a newer version": ('{"v": 2}', "version 2"),
    "no frontend": (_without_frontend, "'frontend' is missing"),
    "a bad key": (lambda raw: raw.update(public_key="not-a-key"), "'public_key' is not a z85 CURVE key"),
    "another pair's secret": (
        lambda raw: raw.update(secret_key=KeyPair.generate().secret),
        "secret_key does not belong to public_key",
    ),
    "an unknown kind": (lambda raw: raw.update(kind="root"), "kind must be one of"),
    "a numeric user": (lambda raw: raw.update(user=7), "'user' must be a string or null"),
}


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_connection_file_gets_a_clear_error(tmp_path: Path, case: str) -> None:
    content, says = BROKEN[case]
    path = tmp_path / "broken.json"
    if isinstance(content, str):
        write_private(path, content.encode())
    elif content is not None:
        raw = a_connection().to_json()
        content(raw)
        write_private(path, json.dumps(raw).encode())
    with pytest.raises(CredentialsError, match=says):
        ConnectionFile.load(path)


def test_which_connection_file_a_client_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv(ENV_CONNECTION, raising=False)
    default = tmp_path / "xdg" / "backup-console" / "credentials" / "admin.json"
    assert resolve_connection(None) == default == default_connection_path()
    monkeypatch.setenv(ENV_CONNECTION, str(tmp_path / "env.json"))
    assert resolve_connection(None) == tmp_path / "env.json"
    assert resolve_connection(None, tmp_path / "other") == tmp_path / "other" / "credentials" / "admin.json"
    assert resolve_connection(str(tmp_path / "flag.json"), tmp_path / "other") == tmp_path / "flag.json"
    with pytest.raises(CredentialsError, match=r"named by \$BRIDGE_CONNECTION.*run_all.py"):
        load_connection(None)
    with pytest.raises(CredentialsError, match="admin connection file of"):
        load_connection(None, tmp_path / "other")


# ----------------------------------------------------------------------------- bootstrap


def test_bootstrap_creates_private_credentials_the_bridge_accepts(tmp_path: Path) -> None:
    with capture_logs() as logs:
        creds = start(tmp_path)
    paths = creds.paths
    for folder in (paths.keys, paths.credentials, paths.bridge):
        assert mode_of(folder) == 0o700, folder
    for path in [*paths.keys.iterdir(), *paths.credentials.iterdir(), *paths.bridge.iterdir()]:
        assert mode_of(path) == 0o600, path
    assert {p.name for p in paths.keys.iterdir()} >= {
        f"{name}{suffix}" for name in ("bridge", "mock", "server-backend", "gui") for suffix in (".key", ".key_secret")
    }
    assert set(creds.connections) == {"admin", "mock", "server", "replay", "gui"}
    bridge_key = load_key_pair(paths.keys, "bridge").public
    admin = ConnectionFile.load(paths.admin_connection)
    assert (admin.kind, admin.user, admin.role, admin.bridge_public_key) == (
        ConnectionKind.API_KEY,
        "admin",
        "admin",
        bridge_key,
    )
    assert admin.tap == "tcp://127.0.0.1:5558"  # a wildcard bind, as a local client reaches it
    stores = BridgeStores.open(paths.bridge)
    password = paths.admin_password.read_text().strip()
    assert len(password) >= 20 and stores.users.verify("admin", password) is not None
    assert stores.users.verify("admin", password + "x") is None
    assert json.loads((paths.bridge / "users.json").read_text())["users"][0]["password_hash"].startswith("$argon2id$")
    assert admin.key_id is not None and stores.api_key_active(admin.key_id, admin.public_key)
    allowed = {(b.name, b.mode.value) for b in stores.backends}
    assert allowed == {("mock", "mock"), ("server", "real"), ("replay", "mock")}
    mock = ConnectionFile.load(paths.connection("mock"))
    assert mock.kind is ConnectionKind.BACKEND and mock.name == "mock"
    assert stores.backends.get(mock.public_key) is not None
    gui = ConnectionFile.load(paths.connection("gui"))
    assert gui.kind is ConnectionKind.GUI and gui.public_key == load_public_key(paths.keys / "gui.key")
    (line,) = [entry for entry in logs if entry["event"] == "stack.credentials"]
    assert line["admin_password_file"] == str(paths.admin_password)
    assert line["admin_connection"] == str(paths.admin_connection)
    said = json.dumps(logs, default=str)
    secrets = [password, admin.secret_key, mock.secret_key, gui.secret_key, load_key_pair(paths.keys, "bridge").secret]
    assert not [s for s in secrets if s in said]


def test_bootstrap_is_idempotent_and_follows_new_ports(tmp_path: Path) -> None:
    first = start(tmp_path)
    paths = first.paths
    password = paths.admin_password.read_text()
    admin = ConnectionFile.load(paths.admin_connection)
    keys = {p.name: p.read_bytes() for p in paths.keys.iterdir()}
    again = start(tmp_path)
    assert again.created == () and again.bridge_public_key == first.bridge_public_key
    assert paths.admin_password.read_text() == password and ConnectionFile.load(paths.admin_connection) == admin
    assert {p.name: p.read_bytes() for p in paths.keys.iterdir()} == keys
    assert len(list(BridgeStores.open(paths.bridge).keys)) == 1
    moved = StackEndpoints(
        "tcp://127.0.0.1:6555", "tcp://127.0.0.1:6556", "tcp://127.0.0.1:6557", "tcp://127.0.0.1:6558"
    )
    start(tmp_path, moved)
    refreshed = ConnectionFile.load(paths.admin_connection)
    assert (refreshed.frontend, refreshed.key_id, refreshed.secret_key) == (
        moved.frontend,
        admin.key_id,
        admin.secret_key,
    )
    assert ConnectionFile.load(paths.connection("mock")).backend == moved.backend


def test_bootstrap_replaces_a_lost_or_revoked_admin_key_but_never_a_removed_admin(tmp_path: Path) -> None:
    paths = start(tmp_path).paths
    first = ConnectionFile.load(paths.admin_connection)
    paths.admin_connection.unlink()
    assert "admin API key" in start(tmp_path).created
    second = ConnectionFile.load(paths.admin_connection)
    assert second.key_id != first.key_id
    assert second.key_id is not None
    stores = BridgeStores.open(paths.bridge)
    stores.keys.revoke(second.key_id)
    start(tmp_path)
    third = ConnectionFile.load(paths.admin_connection)
    assert third.key_id not in (first.key_id, second.key_id)
    stores = BridgeStores.open(paths.bridge)
    stores.users.add("root", stores.users.require("admin").role, "another long password")
    stores.users.remove("admin")
    paths.admin_connection.unlink()
    again = start(tmp_path)
    assert again.admin_connection is None and not paths.admin_connection.exists()
    assert BridgeStores.open(paths.bridge).users.get("admin") is None


def test_bootstrap_refuses_a_tampered_key_file_rather_than_guess(tmp_path: Path) -> None:
    paths = start(tmp_path).paths
    os.chmod(paths.keys / "mock.key_secret", 0o644)
    with pytest.raises(CredentialsError, match="chmod 600"):
        start(tmp_path)
