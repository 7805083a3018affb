"""bridgectl's administration commands: users, API keys, the backend allow-list, the enrollment token.

Each one is a call of a catalogue operation (admin role) with a readable answer. A secret
the bridge hands out once (a generated password, a TOTP secret, a key pair, the enrollment
token) goes to stdout alone, so ``$(bridgectl ...)`` captures it; what it is goes to stderr.
A key pair is never printed: it is written to a 0600 connection file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from client.bridgectl.output import EXIT_FAILED, EXIT_OK, UsageError, dump, failed, table, text
from client.connection import BridgeClient
from protocol.responses import Reply
from runtime.credentials import ConnectionFile, ConnectionKind, CredentialsError, KeyPair, load_public_key
from runtime.curve_keys import is_public_key

USER_COLUMNS = (
    ("USER", "name"),
    ("ROLE", "role"),
    ("TOTP", "totp"),
    ("KEYS", "keys"),
    ("SESSIONS", "sessions"),
    ("CREATED", "created_at"),
)
KEY_COLUMNS = (
    ("KEY", "key_id"),
    ("USER", "user"),
    ("ROLE", "role"),
    ("EFFECTIVE", "effective_role"),
    ("KIND", "kind"),
    ("LABEL", "label"),
    ("CREATED", "created_at"),
    ("REVOKED", "revoked_at"),
    ("PUBLIC KEY", "public_key"),
)
BACKEND_COLUMNS = (("NAME", "name"), ("MODE", "mode"), ("REGISTERED", "registered"), ("PUBLIC KEY", "public_key"))


def _note(message: str) -> None:
    sys.stderr.write(message + "\n")


def _secret(value: str) -> None:
    sys.stdout.write(value + "\n")
    sys.stdout.flush()


def _password_from_stdin(ns: argparse.Namespace) -> str | None:
    if not ns.password_stdin:
        return None
    line = sys.stdin.readline().rstrip("\n")
    if not line:
        raise UsageError("--password-stdin: the first line of standard input is empty")
    return line


def _count(value: Any) -> int:
    """A count the bridge gives as a number or as the list of what it counted."""
    if isinstance(value, list):
        return len(value)
    return value if isinstance(value, int) else 0


def _run(client: BridgeClient, op: str, args: dict[str, Any], ns: argparse.Namespace) -> Reply | None:
    """The reply when it succeeded (printed whole with --json); None after reporting a failure."""
    reply = client.call(op, args)
    if getattr(ns, "json", False):
        dump(reply, sys.stdout)
    if not reply["success"]:
        if not getattr(ns, "json", False):
            failed(reply)
        return None
    return reply


def _print_listing(reply: Reply, columns: tuple[tuple[str, str], ...]) -> None:
    """The reply's items as a table of (heading, field) columns."""
    data = reply["data"]
    items = data.get("items", []) if isinstance(data, dict) else data
    rows = [[heading for heading, _ in columns]]
    rows += [[text(item.get(field)) for _, field in columns] for item in items if isinstance(item, dict)]
    table(rows, sys.stdout)


def _out_path(ns: argparse.Namespace) -> Path:
    """--out, checked before anything is created on the bridge."""
    out = Path(ns.out).expanduser()
    if out.exists() and not ns.force:
        raise UsageError(f"{out} exists; choose another path or pass --force to replace it")
    if not out.parent.is_dir():
        raise UsageError(f"{out.parent} is not a folder")
    return out


def _connection_for(client: BridgeClient, pair: KeyPair, bridge_key: str, **who: Any) -> ConnectionFile:
    """A connection file for another principal of the bridge this client talks to."""
    mine = client.connection
    if mine is None:
        raise UsageError("this command needs a connection file (--connection FILE): it copies its endpoints")
    return ConnectionFile(
        frontend=client.endpoint,
        events=mine.events,
        backend=mine.backend,
        tap=mine.tap,
        bridge_public_key=bridge_key,
        public_key=pair.public,
        secret_key=pair.secret,
        **who,
    )


def _write(conn: ConnectionFile, out: Path, undo: str) -> int:
    try:
        conn.save(out)
    except OSError as exc:
        _note(f"bridgectl: cannot write {out}: {exc.strerror or exc}; {undo}")
        return EXIT_FAILED
    return EXIT_OK


# ----------------------------------------------------------------------------- users


def cmd_user_add(client: BridgeClient, ns: argparse.Namespace) -> int:
    password = _password_from_stdin(ns)
    reply = _run(client, "user_add", {"name": ns.name, "role": ns.role, "password": password}, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        data = reply["data"]
        if data.get("password"):
            _note(f"user {data['name']} created (role {data['role']}); their password, shown this once:")
            _secret(data["password"])
        else:
            _note(f"user {data['name']} created (role {data['role']}) with the password given")
    return EXIT_OK


def _listing(
    client: BridgeClient, ns: argparse.Namespace, op: str, args: dict[str, Any], columns: tuple[tuple[str, str], ...]
) -> int:
    """A list command: the reply as a table (or as JSON with --json, printed by _run)."""
    reply = _run(client, op, args, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        _print_listing(reply, columns)
    return EXIT_OK


def cmd_user_list(client: BridgeClient, ns: argparse.Namespace) -> int:
    return _listing(client, ns, "user_list", {}, USER_COLUMNS)


def cmd_user_remove(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = _run(client, "user_remove", {"name": ns.name}, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        data = reply["data"]
        _note(
            f"user {ns.name} removed; {_count(data.get('revoked_keys'))} API key(s) revoked, "
            f"{_count(data.get('ended_sessions'))} session(s) ended"
        )
    return EXIT_OK


def cmd_user_passwd(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = _run(client, "user_passwd", {"name": ns.name, "password": _password_from_stdin(ns)}, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        data = reply["data"]
        if data.get("password"):
            _note(f"new password of {ns.name}, shown this once (their sessions ended):")
            _secret(data["password"])
        else:
            _note(f"password of {ns.name} changed (their sessions ended)")
    return EXIT_OK


def cmd_user_role(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = _run(client, "user_role", {"name": ns.name, "role": ns.role}, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        _note(f"{ns.name} is now {reply['data']['role']}; their API keys never act above it")
    return EXIT_OK


def cmd_user_totp(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = _run(client, "user_totp", {"name": ns.name, "enable": ns.enable}, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        data = reply["data"]
        if ns.enable:
            _note(f"{ns.name} now signs in with a TOTP code; add this to their authenticator app (shown once):")
            _secret(data.get("otpauth_uri") or data["secret"])
        else:
            _note(f"{ns.name} signs in without a TOTP code")
    return EXIT_OK


# ----------------------------------------------------------------------------- API keys


def cmd_key_new(client: BridgeClient, ns: argparse.Namespace) -> int:
    out = _out_path(ns)
    args = {"user": ns.user, "role": ns.role, "label": ns.label, "kind": ns.kind}
    reply = client.call("key_new", args)
    if not reply["success"]:
        return failed(reply)
    data = reply["data"]
    kind = ConnectionKind.GUI if data.get("kind") == ConnectionKind.GUI.value else ConnectionKind.API_KEY
    conn = _connection_for(
        client,
        KeyPair(data["public_key"], data["secret_key"]),
        data.get("bridge_public_key") or _bridge_key(client),
        kind=kind,
        user=data["user"],
        role=data["role"],
        key_id=data["key_id"],
    )
    status = _write(conn, out, f"the key exists on the bridge: revoke it with `bridgectl key revoke {data['key_id']}`")
    if status == EXIT_OK:
        _note(f"key {data['key_id']} of {data['user']} (role {data['role']}) written to {out} (mode 0600)")
        _secret(str(out))
    return status


def _bridge_key(client: BridgeClient) -> str:
    assert client.connection is not None  # _connection_for refuses a client without one first
    return client.connection.bridge_public_key


def cmd_key_list(client: BridgeClient, ns: argparse.Namespace) -> int:
    return _listing(client, ns, "key_list", {"user": ns.user}, KEY_COLUMNS)


def cmd_key_revoke(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = _run(client, "key_revoke", {"key_id": ns.key_id}, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        _note(f"key {ns.key_id} revoked: its connections are refused from now on")
    return EXIT_OK


# ----------------------------------------------------------------------------- backends


def _public_key_of(arg: str) -> str:
    """A z85 public key given as is, or read from a key file or a connection file."""
    if is_public_key(arg):
        return arg
    try:
        return load_public_key(Path(arg).expanduser())
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None


def cmd_backend_allow(client: BridgeClient, ns: argparse.Namespace) -> int:
    if (ns.keyfile is None) == (ns.out is None):
        raise UsageError("backend allow takes KEYFILE (a key made elsewhere) or --out FILE (make a new one), not both")
    pair: KeyPair | None = None
    out: Path | None = None
    if ns.out is not None:
        out = _out_path(ns)
        pair = KeyPair.generate()
        public = pair.public
    else:
        public = _public_key_of(ns.keyfile)
    reply = _run(client, "backend_allow", {"public_key": public, "name": ns.name, "mode": ns.mode}, ns)
    if reply is None:
        return EXIT_FAILED
    if pair is not None and out is not None:
        conn = _connection_for(client, pair, _bridge_key(client), kind=ConnectionKind.BACKEND, name=ns.name)
        status = _write(conn, out, f"the key is allowed: revoke it with `bridgectl backend revoke {public}`")
        if status != EXIT_OK:
            return status
        _note(f"backend key allowed as {ns.name} (mode {ns.mode}); its connection file is {out} (mode 0600)")
        _note(
            f"on the backend's machine: python -m actors.{'server' if ns.mode == 'real' else 'mock'} --connection FILE"
        )
    elif not ns.json:
        _note(f"backend key {public} allowed as {ns.name} (mode {ns.mode})")
    return EXIT_OK


def cmd_backend_list(client: BridgeClient, ns: argparse.Namespace) -> int:
    return _listing(client, ns, "backend_list", {}, BACKEND_COLUMNS)


def cmd_backend_revoke(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = _run(client, "backend_revoke", {"public_key": _public_key_of(ns.keyfile)}, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        _note(f"backend {reply['data'].get('name')} removed from the allow-list; its registration ended")
    return EXIT_OK


# ----------------------------------------------------------------------------- enrollment token


def cmd_token_show(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = _run(client, "get_enrollment_token", {}, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        _note("the enrollment token of the real server (agents enroll with it: actors.agent --enroll-token-file):")
        _secret(reply["data"]["token"])
    return EXIT_OK


def cmd_token_rotate(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = _run(client, "rotate_enrollment_token", {}, ns)
    if reply is None:
        return EXIT_FAILED
    if not ns.json:
        _note("new enrollment token; the old one enrolls nobody any more (enrolled agents keep working):")
        _secret(reply["data"]["token"])
    return EXIT_OK
