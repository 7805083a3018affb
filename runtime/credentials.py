"""Secrets on disk, in one place: folders 0700, files 0600, written atomically.

A stack's data directory holds its CURVE key pairs (``keys/``), the connection files
and the first admin's password (``credentials/``) and the bridge's own state
(``bridge/``; see docs and TRUST). A *connection file* is how a client finds the
bridge and proves who it is (like Jupyter's): the endpoints, the bridge's public key
and the client's key pair, in a JSON file only its owner may read.

Every other module reads and writes these through here, so permissions are decided
once: nothing else calls ``os.chmod`` for a secret.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TextIO

import zmq

from runtime.curve_keys import is_public_key
from runtime.fsutil import AtomicFile
from runtime.paths import default_data_dir

ENV_CONNECTION = "BRIDGE_CONNECTION"
CONNECTION_VERSION = 1
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

KEYS_DIR = "keys"
CREDENTIALS_DIR = "credentials"
BRIDGE_DIR = "bridge"


class CredentialsError(ValueError):
    """A credential file is missing, unreadable, malformed or too open; the message says what to do.

    A ValueError, so callers that handled zmq's certificate errors (OSError, ValueError) still do."""


# ----------------------------------------------------------------------------- private files


def private_dir(path: Path) -> Path:
    """``path`` as a folder only its owner may enter (created with its parents when missing)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != PRIVATE_DIR:
        os.chmod(path, PRIVATE_DIR)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically; the file is 0600 from its first byte."""
    pending = AtomicFile(path)
    try:
        # mkstemp already creates 0600; saying so keeps that true whatever tempfile does.
        os.fchmod(pending.file.fileno(), PRIVATE_FILE)
        pending.write(data)
    except BaseException:
        pending.abort()
        raise
    pending.commit()


def open_private(path: Path, encoding: str | None = "utf-8", errors: str | None = None) -> TextIO:
    """``path`` opened for appending text, 0600 (an older, looser file is tightened), in a 0700 folder;
    for logs that may name what only administrators should read."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
    try:
        if stat.S_IMODE(os.fstat(fd).st_mode) != PRIVATE_FILE:
            os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, "a", encoding=encoding, errors=errors)
    except BaseException:
        os.close(fd)
        raise


def check_private(path: Path) -> None:
    """Refuse a secret that other users could read (as ssh does), naming the fix."""
    if os.name == "nt":  # POSIX modes mean nothing there; the folder's ACL decides
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise CredentialsError(
            f"{path} is readable by other users (mode {mode:04o}): it holds a secret key; run: chmod 600 {path}"
        )


def read_private(path: Path, what: str) -> bytes:
    try:
        check_private(path)
        return path.read_bytes()
    except FileNotFoundError:
        raise CredentialsError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise CredentialsError(f"{what} {path} is a folder, not a file") from None
    except OSError as exc:
        raise CredentialsError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


# ----------------------------------------------------------------------------- key pairs


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A CURVE key pair as z85 text (40 characters each)."""

    public: str
    secret: str = field(repr=False)

    @classmethod
    def generate(cls) -> KeyPair:
        public, secret = zmq.curve_keypair()
        return cls(public.decode("ascii"), secret.decode("ascii"))


def key_files(directory: Path, name: str) -> tuple[Path, Path]:
    """(public, secret) certificate files of ``name`` in zmq's format: NAME.key, NAME.key_secret."""
    return directory / f"{name}.key", directory / f"{name}.key_secret"


def _certificate(pair: KeyPair, secret: bool) -> bytes:
    kind = "**Secret** Certificate\n#   DO NOT PROVIDE THIS FILE TO OTHER USERS" if secret else "Public Certificate"
    lines = [
        f"#   ****  Generated on {datetime.now():%Y-%m-%d %H:%M:%S} by backup-console  ****",
        f"#   ZeroMQ CURVE {kind}",
        "",
        "metadata",
        "curve",
        f'    public-key = "{pair.public}"',
    ]
    if secret:
        lines.append(f'    secret-key = "{pair.secret}"')
    return ("\n".join(lines) + "\n").encode("ascii")


def save_key_pair(directory: Path, name: str, pair: KeyPair) -> tuple[Path, Path]:
    """Write both certificate files (0600, in a 0700 folder); returns their paths."""
    private_dir(directory)
    public_file, secret_file = key_files(directory, name)
    write_private(secret_file, _certificate(pair, secret=True))
    write_private(public_file, _certificate(pair, secret=False))
    return public_file, secret_file


def _certificate_keys(path: Path, data: bytes) -> tuple[str | None, str | None]:
    keys: dict[str, str] = {}
    for raw in data.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        for name in ("public-key", "secret-key"):
            if line.startswith(name) and "=" in line:
                keys[name] = line.split("=", 1)[1].strip(" \t'\"")
    return keys.get("public-key"), keys.get("secret-key")


def load_key_pair(directory: Path, name: str) -> KeyPair:
    """The key pair in ``directory/NAME.key_secret``; CredentialsError when missing, open or malformed."""
    _, secret_file = key_files(directory, name)
    public, secret = _certificate_keys(secret_file, read_private(secret_file, "key file"))
    if public is None or secret is None or not is_public_key(public) or not is_public_key(secret):
        raise CredentialsError(f"key file {secret_file} holds no CURVE key pair (public-key and secret-key lines)")
    if zmq.curve_public(secret.encode("ascii")).decode("ascii") != public:
        raise CredentialsError(f"key file {secret_file}: its secret key does not belong to its public key")
    return KeyPair(public, secret)


def load_or_create_key_pair(directory: Path, name: str) -> tuple[KeyPair, bool]:
    """(the key pair of ``name``, whether it was created now)."""
    if key_files(directory, name)[1].exists():
        return load_key_pair(directory, name), False
    pair = KeyPair.generate()
    save_key_pair(directory, name, pair)
    return pair, True


def load_public_key(path: Path) -> str:
    """The public key of a certificate file (``NAME.key`` or ``NAME.key_secret``) or of a connection file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CredentialsError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise CredentialsError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    if data.lstrip().startswith(b"{"):
        try:
            public = json.loads(data).get("public_key")
        except (ValueError, AttributeError):
            public = None
    else:
        public, _ = _certificate_keys(path, data)
    if not isinstance(public, str) or not is_public_key(public):
        raise CredentialsError(f"{path} holds no CURVE public key (a zmq certificate or a connection file)")
    return public


# ----------------------------------------------------------------------------- connection files


class ConnectionKind(StrEnum):
    API_KEY = "api_key"  # a user's API key: bridgectl, scripts, tests
    BACKEND = "backend"  # an allow-listed backend (mock, real server, replay)
    GUI = "gui"  # the web GUI process, which acts for users who sign in through it


_ENDPOINT_FIELDS = ("frontend", "events", "backend", "tap")
_KEY_FIELDS = ("bridge_public_key", "public_key", "secret_key")
_OPTIONAL_TEXT = ("user", "role", "key_id", "name")


@dataclass(frozen=True, slots=True)
class ConnectionFile:
    """Endpoints, the bridge's public key and one principal's key pair (JSON, 0600)."""

    frontend: str
    events: str
    backend: str
    tap: str
    bridge_public_key: str
    public_key: str
    secret_key: str = field(repr=False)
    kind: ConnectionKind = ConnectionKind.API_KEY
    user: str | None = None
    role: str | None = None
    key_id: str | None = None
    name: str | None = None  # a backend's: the name its key is allow-listed under, which it registers as
    path: Path | None = field(default=None, compare=False)  # where it was loaded from or saved to

    @classmethod
    def load(cls, path: Path) -> ConnectionFile:
        """Read and check ``path``; CredentialsError says what is wrong and how to fix it."""
        data = read_private(path, "connection file")
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise CredentialsError(f"connection file {path} is not valid JSON: {exc}") from None
        return cls.from_json(raw, path)

    @classmethod
    def from_json(cls, raw: Any, path: Path | None = None) -> ConnectionFile:
        where = f"connection file {path}" if path else "connection"
        if not isinstance(raw, dict):
            raise CredentialsError(f"{where} must hold a JSON object")
        if raw.get("v") != CONNECTION_VERSION:
            raise CredentialsError(
                f"{where}: version {raw.get('v')!r} is not supported (expected {CONNECTION_VERSION})"
            )
        for name in (*_ENDPOINT_FIELDS, *_KEY_FIELDS, "kind"):
            if not isinstance(raw.get(name), str) or not raw[name]:
                raise CredentialsError(f"{where}: field {name!r} is missing or not a string")
        for name in _KEY_FIELDS:
            if not is_public_key(raw[name]):
                raise CredentialsError(f"{where}: field {name!r} is not a z85 CURVE key (40 characters)")
        for name in _OPTIONAL_TEXT:
            if raw.get(name) is not None and not isinstance(raw[name], str):
                raise CredentialsError(f"{where}: field {name!r} must be a string or null")
        try:
            kind = ConnectionKind(raw["kind"])
        except ValueError:
            raise CredentialsError(f"{where}: kind must be one of {[k.value for k in ConnectionKind]}") from None
        if zmq.curve_public(raw["secret_key"].encode("ascii")).decode("ascii") != raw["public_key"]:
            raise CredentialsError(f"{where}: secret_key does not belong to public_key")
        return cls(
            frontend=raw["frontend"],
            events=raw["events"],
            backend=raw["backend"],
            tap=raw["tap"],
            bridge_public_key=raw["bridge_public_key"],
            public_key=raw["public_key"],
            secret_key=raw["secret_key"],
            kind=kind,
            user=raw.get("user"),
            role=raw.get("role"),
            key_id=raw.get("key_id"),
            name=raw.get("name"),
            path=path,
        )

    def to_json(self) -> dict[str, Any]:
        raw = asdict(self)
        raw.pop("path")
        return {"v": CONNECTION_VERSION, **raw, "kind": self.kind.value}

    def encoded(self) -> bytes:
        return (json.dumps(self.to_json(), indent=2) + "\n").encode("utf-8")

    def save(self, path: Path) -> ConnectionFile:
        """Write atomically, 0600; returns the file as saved (its ``path`` set)."""
        write_private(path, self.encoded())
        return ConnectionFile.from_json(self.to_json(), path)

    def apply_client(self, sock: zmq.Socket[Any]) -> None:
        """Make ``sock`` a CURVE client of the bridge with this key pair (before it connects)."""
        sock.curve_serverkey = self.bridge_public_key.encode("ascii")
        sock.curve_publickey = self.public_key.encode("ascii")
        sock.curve_secretkey = self.secret_key.encode("ascii")

    def describe(self) -> str:
        """Who this file authenticates as, for messages (never a key)."""
        if self.kind is ConnectionKind.API_KEY:
            return f"API key {self.key_id or '?'} of user {self.user or '?'} (role {self.role or '?'})"
        return f"{self.kind.value} key {self.public_key[:8]}…"


def credentials_dir(data_dir: Path) -> Path:
    return data_dir / CREDENTIALS_DIR


def default_connection_path(data_dir: Path | None = None) -> Path:
    """The admin's connection file of a stack: ``<data-dir>/credentials/admin.json``."""
    return credentials_dir(data_dir or default_data_dir()) / "admin.json"


def resolve_connection(arg: str | Path | None, data_dir: Path | None = None) -> Path:
    """Which connection file a client uses: ``--connection FILE``; else the admin file of an explicitly
    chosen ``--data-dir``; else ``$BRIDGE_CONNECTION``; else the default data dir's admin file.

    An explicit ``--data-dir`` beats the environment because it names the stack on purpose."""
    if arg:
        return Path(arg).expanduser()
    if data_dir is not None:
        return default_connection_path(data_dir)
    env = os.environ.get(ENV_CONNECTION)
    if env:
        return Path(env).expanduser()
    return default_connection_path(None)


def load_connection(arg: str | Path | None, data_dir: Path | None = None) -> ConnectionFile:
    """The connection file ``resolve_connection`` picks, loaded; the error names where it looked."""
    path = resolve_connection(arg, data_dir)
    if not arg and not path.exists():
        if data_dir is not None:
            source = f"the admin connection file of {data_dir}"
        else:
            source = f"named by ${ENV_CONNECTION}" if os.environ.get(ENV_CONNECTION) else "the default"
        raise CredentialsError(
            f"no connection file at {path} ({source}); start the stack with run_all.py, which creates it, "
            f"or pass --connection FILE (or set ${ENV_CONNECTION}; --data-dir DIR picks another stack)"
        )
    return ConnectionFile.load(path)


def connection_from_env() -> ConnectionFile | None:
    """The connection file named by ``$BRIDGE_CONNECTION``, or None when it is not set."""
    env = os.environ.get(ENV_CONNECTION)
    return ConnectionFile.load(Path(env).expanduser()) if env else None


@dataclass(frozen=True, slots=True)
class StackPaths:
    """Where the credentials of the stack in ``data_dir`` live."""

    data_dir: Path

    @property
    def keys(self) -> Path:
        return self.data_dir / KEYS_DIR

    @property
    def credentials(self) -> Path:
        return credentials_dir(self.data_dir)

    @property
    def bridge(self) -> Path:
        return self.data_dir / BRIDGE_DIR

    @property
    def admin_password(self) -> Path:
        return self.credentials / "admin-password"

    @property
    def admin_connection(self) -> Path:
        return default_connection_path(self.data_dir)

    def connection(self, name: str) -> Path:
        return self.credentials / f"{name}.json"
