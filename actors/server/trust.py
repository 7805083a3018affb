"""The real server's trust in agents, as the core uses it: its key pair, the enrollment token and the
keyring the agents' socket asks, opened together; the token shown and rotated; refusals logged.

The pieces themselves are ``keys`` (KeyRing, ServerKeys, the token file); this is their wiring
into one server: where they live (``<data-dir>/server/keys``), the extra allow-list file, the
token kept out of the server's own log, and the activity entries a refused agent leaves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.server.keys import (
    ALLOW_LIST_FILE,
    REVOKED_FILE,
    KeyRing,
    RevokedKeys,
    ServerKeys,
    enrollment_token,
    new_token,
    read_allow_list,
    store_token,
)
from actors.server.logs import LogStore
from actors.server.store import Store


class AgentTrust:
    def __init__(self, directory: Path, given_token: str | None, allow_list: Path | None, logs: LogStore) -> None:
        self.directory = directory
        self.given_token = given_token  # --enroll-token: it sets the token again at every start
        self.logs = logs
        self.keys = ServerKeys.load(directory)
        self.token = enrollment_token(directory, given_token)
        logs.redact(self.token)
        allowed = read_allow_list(directory / ALLOW_LIST_FILE)
        if allow_list is not None:
            allowed |= read_allow_list(allow_list)
        self.keyring = KeyRing(self.token, allowed, RevokedKeys(directory / REVOKED_FILE))

    def enrollment(self, agents_endpoint: str) -> dict[str, Any]:
        """What enrolling an agent takes: the token (a secret), where agents connect, the server's key."""
        return {
            "token": self.token,
            "agents_endpoint": agents_endpoint,
            "server_public_key": self.keys.public.decode("ascii"),
        }

    def rotate(self, store: Store) -> None:
        """A new token, effective at once: the old one's enrollment key is refused from the next handshake."""
        token = new_token()
        store_token(self.directory, token)
        self.logs.redact(token)
        self.token = token
        self.keyring.set_token(token)
        note = " (--enroll-token on the command line will set the old one back at the next start)"
        store.record(
            "enrollment_token_rotated",
            "WARNING",
            "The agents' enrollment token was rotated: the old one enrolls nobody any more; "
            f"enrolled agents keep working{note if self.given_token else ''}",
            logger="backup.security",
        )

    def record_refusals(self, store: Store) -> None:
        """The agents the keyring refused since the last tick, in the activity log (a flood as one line)."""
        keys, unreported = self.keyring.take_refusals()
        for key in keys:
            store.record(
                "agent_refused",
                "WARNING",
                f"Refused an agent with an unknown key {key[:8]}… "
                "(not enrolled; enroll it with the token or add its key to the allow-list)",
                logger="backup.security",
            )
        if unreported:
            store.record(
                "agent_refused",
                "WARNING",
                f"Refused {unreported} more agents with unknown keys (too many in a minute to list one by one)",
                logger="backup.security",
            )
