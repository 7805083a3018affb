"""Who may connect to the server's agent socket: its key pair, the enrollment token, the allowed keys.

``KeyRing`` is what the ZAP handler asks (``callback(domain, key)``, from the
authenticator's thread): a key is allowed when it belongs to a registered client, is in
the allow-list file, or is the enrollment key derived from the current token (such a
connection may only enroll), and is not revoked. Deleting a client revokes its key
(``revoked_agents``), so the agent cannot enroll it again with the standing token.
Refusals are queued for the core to put in the activity log, at most a few a minute.

The token is a secret: it is written to ``enroll_token`` (0600) and never logged; an
admin reads it with ``get_enrollment_token`` and replaces it with ``rotate_enrollment_token``.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from runtime.credentials import private_dir, read_private, write_private
from runtime.curve_keys import enrollment_keypair, is_public_key, load_or_create

log = structlog.get_logger()

TOKEN_FILE = "enroll_token"
ALLOW_LIST_FILE = "allowed_agents"
REVOKED_FILE = "revoked_agents"
MAX_REFUSALS = 100
REFUSAL_QUIET_S = 60.0  # a refused agent retries every few hundred ms: report each key once a minute
# Distinct refused keys reported one by one per quiet period; a flood of random keys beyond
# this is counted and reported as one line, so it can never push real entries out of the activity.
REFUSALS_PER_PERIOD = 10


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


def new_token() -> str:
    return "t" + secrets.token_urlsafe(24)  # never starts with '-', which a command line would take for an option


def store_token(directory: Path, token: str) -> Path:
    """Write the token where the server (and run_all's demo agent) read it: ``enroll_token``, 0600."""
    path = private_dir(directory) / TOKEN_FILE
    write_private(path, (token + "\n").encode("utf-8"))
    return path


def enrollment_token(directory: Path, given: str | None) -> str:
    """The token agents enroll with: ``given``, else the stored one, else a new one (stored, never logged)."""
    if given:
        return given
    path = directory / TOKEN_FILE
    if path.exists():
        return read_private(path, "enrollment token file").decode("utf-8").strip()
    store_token(directory, new_token())
    log.warning(
        "server.enrollment_token_created",
        stored_in=str(path),
        hint="an admin reads it with `bridgectl token show` and replaces it with `bridgectl token rotate`",
    )
    return read_private(path, "enrollment token file").decode("utf-8").strip()


class RevokedKeys:
    """Keys of deleted clients, one per line with a comment saying whose; kept in ``revoked_agents``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = path.read_text().splitlines() if path.exists() else []
        self.keys = {key for line in self.lines if (key := key_of_line(line)) is not None}

    def add(self, key: str, note: str) -> None:
        if key in self.keys:
            return
        self.keys.add(key)
        self.lines.append(f"{key}  # {note}, revoked {datetime.now(UTC).isoformat(timespec='seconds')}")
        write_private(self.path, ("\n".join(self.lines) + "\n").encode("utf-8"))


def key_of_line(line: str) -> str | None:
    """The key a line of a key list starts with, or None for a blank line or a comment.

    z85 keys may contain '#', so a comment is a line whose first word is not a key (and
    starts with '#'), or whatever follows the key after white space."""
    words = line.split(None, 1)
    if not words or (words[0].startswith("#") and not is_public_key(words[0])):
        return None
    return words[0]


def read_allow_list(path: Path) -> set[str]:
    """Public keys, one per line, each optionally followed by a comment; lines starting with '#'
    are comments; malformed lines are reported and skipped."""
    keys: set[str] = set()
    if not path.exists():
        return keys
    for number, line in enumerate(path.read_text().splitlines(), 1):
        key = key_of_line(line)
        if key is None:
            continue
        if is_public_key(key):
            keys.add(key)
        else:
            log.warning("server.allow_list_line_ignored", file=str(path), line=number, reason="not a z85 public key")
    return keys


class KeyRing:
    """Thread-safe set of allowed agent keys (the ZAP thread reads, the core writes)."""

    def __init__(
        self, token: str | None, allow_list: set[str] | None = None, revoked: RevokedKeys | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._clients: set[str] = set()
        self._listed: set[str] = set(allow_list or ())
        self._revoked = revoked
        self.enroll_public: str | None = None
        self.set_token(token)
        self.refusals: deque[str] = deque(maxlen=MAX_REFUSALS)
        self._last_refused: dict[str, float] = {}
        self._period_start = -REFUSAL_QUIET_S
        self._period_reported = 0
        self.unreported = 0  # refused keys counted, not listed (a flood of distinct keys)

    def set_token(self, token: str | None) -> None:
        """From now on only this token's enrollment key may connect to enroll (a rotation revokes the old)."""
        with self._lock:
            self.enroll_public = enrollment_keypair(token)[0].decode() if token else None

    def revoke(self, key: str, note: str) -> None:
        """Never let ``key`` in again, nor enroll it (a deleted client's key)."""
        with self._lock:
            self._clients.discard(key)
            if self._revoked is not None:
                self._revoked.add(key, note)

    def revoked(self, key: str) -> bool:
        with self._lock:
            return self._revoked is not None and key in self._revoked.keys

    def set_clients(self, keys: set[str]) -> None:
        with self._lock:
            self._clients = set(keys)

    def add_client(self, key: str) -> None:
        with self._lock:
            self._clients.add(key)

    def listed(self, key: str) -> bool:
        with self._lock:
            return key in self._listed

    def is_enrollment(self, key: str) -> bool:
        return self.enroll_public is not None and key == self.enroll_public

    def allowed(self, key: str) -> bool:
        with self._lock:
            if self._revoked is not None and key in self._revoked.keys:
                return False
            return key in self._clients or key in self._listed or self.is_enrollment(key)

    def callback(self, domain: str, key: bytes) -> bool:
        """The ZAP decision (pyzmq's configure_curve_callback interface; key is z85 bytes)."""
        text = key.decode("ascii", "replace")
        ok = self.allowed(text)
        if not ok:
            self._refused(text, domain)
        return ok

    def _refused(self, text: str, domain: str) -> None:
        now = time.monotonic()
        if now - self._last_refused.get(text, -REFUSAL_QUIET_S) < REFUSAL_QUIET_S:
            return  # this key was reported a moment ago
        if len(self._last_refused) > 10 * MAX_REFUSALS:
            self._last_refused.clear()
        self._last_refused[text] = now
        if now - self._period_start >= REFUSAL_QUIET_S:
            self._period_start, self._period_reported = now, 0
        if self._period_reported >= REFUSALS_PER_PERIOD:
            with self._lock:  # the core thread takes the count
                self.unreported += 1
            return
        self._period_reported += 1
        self.refusals.append(text)
        log.warning(
            "server.agent_key_refused",
            key=text[:8] + "…",
            domain=domain,
            hint="enroll the agent with the token, or add its key to the allow-list",
        )

    def take_refusals(self) -> tuple[list[str], int]:
        """(keys refused since the last call, one each; how many more were refused and only counted)."""
        out: list[str] = []
        while self.refusals:
            out.append(self.refusals.popleft())
        with self._lock:
            unreported, self.unreported = self.unreported, 0
        return out, unreported
