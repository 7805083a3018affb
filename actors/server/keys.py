"""Who may connect to the server's agent socket: its key pair, the enrollment token, the allowed keys.

``KeyRing`` is what the ZAP handler asks (``callback(domain, key)``, from the
authenticator's thread): a key is allowed when it belongs to a registered client, is in
the allow-list file, or is the enrollment key derived from the current token (such a
connection may only enroll). Refusals are queued for the core to put in the activity log.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import structlog

from runtime.curve_keys import enrollment_keypair, is_public_key, load_or_create

log = structlog.get_logger()

TOKEN_FILE = "enroll_token"
ALLOW_LIST_FILE = "allowed_agents"
MAX_REFUSALS = 100
REFUSAL_QUIET_S = 60.0  # a refused agent retries every few hundred ms: report each key once a minute


@dataclass(frozen=True, slots=True)
class ServerKeys:
    public: bytes
    secret: bytes
    directory: Path

    @property
    def public_file(self) -> Path:
        return self.directory / "server.key"

    @classmethod
    def load(cls, directory: Path) -> ServerKeys:
        public, secret = load_or_create(directory, "server")
        return cls(public, secret, directory)


def enrollment_token(directory: Path, given: str | None) -> str:
    """The token agents enroll with: ``given``, else the stored one, else a new one (logged once)."""
    if given:
        return given
    path = directory / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    token = "t" + secrets.token_urlsafe(24)  # never starts with '-', which a command line would take for an option
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    # The operator needs it once to enroll agents; it stays readable in the file above.
    log.warning("server.enrollment_token", token=token, stored_in=str(path))
    return token


def read_allow_list(path: Path) -> set[str]:
    """Public keys, one per line; '#' starts a comment; malformed lines are reported and skipped."""
    keys: set[str] = set()
    if not path.exists():
        return keys
    for number, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if is_public_key(text):
            keys.add(text)
        else:
            log.warning("server.allow_list_line_ignored", file=str(path), line=number, reason="not a z85 public key")
    return keys


class KeyRing:
    """Thread-safe set of allowed agent keys (the ZAP thread reads, the core writes)."""

    def __init__(self, token: str | None, allow_list: set[str] | None = None) -> None:
        self._lock = threading.Lock()
        self._clients: set[str] = set()
        self._listed: set[str] = set(allow_list or ())
        self.enroll_public = enrollment_keypair(token)[0].decode() if token else None
        self.refusals: deque[str] = deque(maxlen=MAX_REFUSALS)
        self._last_refused: dict[str, float] = {}

    def set_clients(self, keys: set[str]) -> None:
        with self._lock:
            self._clients = set(keys)

    def add_client(self, key: str) -> None:
        with self._lock:
            self._clients.add(key)

    def remove_client(self, key: str) -> None:
        with self._lock:
            self._clients.discard(key)

    def listed(self, key: str) -> bool:
        with self._lock:
            return key in self._listed

    def is_enrollment(self, key: str) -> bool:
        return self.enroll_public is not None and key == self.enroll_public

    def allowed(self, key: str) -> bool:
        with self._lock:
            return key in self._clients or key in self._listed or self.is_enrollment(key)

    def callback(self, domain: str, key: bytes) -> bool:
        """The ZAP decision (pyzmq's configure_curve_callback interface; key is z85 bytes)."""
        text = key.decode("ascii", "replace")
        ok = self.allowed(text)
        if not ok:
            now = time.monotonic()
            if now - self._last_refused.get(text, -REFUSAL_QUIET_S) >= REFUSAL_QUIET_S:
                if len(self._last_refused) > 10 * MAX_REFUSALS:
                    self._last_refused.clear()
                self._last_refused[text] = now
                self.refusals.append(text)
                log.warning(
                    "server.agent_key_refused",
                    key=text[:8] + "…",
                    domain=domain,
                    hint="enroll the agent with the token, or add its key to the allow-list",
                )
        return ok

    def take_refusals(self) -> list[str]:
        out: list[str] = []
        while self.refusals:
            out.append(self.refusals.popleft())
        return out
