"""Enrollment: an agent proves it holds the token (by the enrollment key pair) and registers its own key.

A client *is* its public key, so enrollment guards that key: it must be the agent's own,
never revoked, and never one another client already holds.
"""

from __future__ import annotations

import structlog

from actors.backends.validation import agent_text as _text
from actors.server import queries as q
from actors.server.keys import KeyRing
from actors.server.store import Store
from protocol.agent_messages import AgentProtocolError, Message
from protocol.errors import ErrorCode
from runtime.curve_keys import is_public_key

log = structlog.get_logger()


def enroll(store: Store, keyring: KeyRing, msg: Message, peer: str) -> str:
    """The client id for an enrollment with the token, or AgentProtocolError saying why not."""
    if msg.type != "enroll":
        raise AgentProtocolError(
            "this connection uses the enrollment key: it may only enroll", ErrorCode.FORBIDDEN.value
        )
    public = _text(msg.fields, "public_key", True)
    if not is_public_key(public) or keyring.is_enrollment(public):
        raise AgentProtocolError("public_key must be the agent's own z85 CURVE public key")
    if keyring.revoked(public):
        _refused(public, "its key belonged to a deleted client")
        raise AgentProtocolError(
            "this key belonged to a deleted client and is revoked: make a new key pair to enroll again",
            ErrorCode.FORBIDDEN.value,
        )
    info = agent_info(msg, peer)
    known = q.client_by_key(store.conn, public)
    if known is not None:
        # The token proves nothing about who holds this key's secret half: enrolling a key that a
        # client already holds may not touch that client. Only the same agent repeating its
        # enrollment (its reply was lost) is answered, and nothing changes.
        if (known["name"], known["hostname"], known["platform"]) != (
            info["name"],
            info["hostname"],
            info["platform"],
        ):
            _refused(public, f"its key is client {known['name']}'s")
            # Only a token holder gets this far, so a record per attempt cannot be a stranger's flood.
            store.record(
                "enrollment_refused",
                "WARNING",
                f"Refused an enrollment as {info['name']!r} of the key client {known['name']} holds",
                client_id=known["id"],
                logger="backup.security",
            )
            raise AgentProtocolError(
                "this public key is already enrolled by another client: an agent enrolls its own key",
                ErrorCode.CONFLICT.value,
            )
        return str(known["id"])
    client_id, _ = store.register_client(public, info)
    keyring.add_client(public)
    store.client_changed(client_id, "created")
    store.record(
        "agent_enrolled",
        "INFO",
        f"Agent {msg['name']} enrolled with the enrollment token",
        client_id=client_id,
        logger="backup.agent",
    )
    return client_id


def _refused(public: str, why: str) -> None:
    log.warning("server.enrollment_refused", key=public[:8] + "…", reason=why)


def agent_info(msg: Message, peer: str) -> dict[str, str]:
    return {
        "name": _text(msg.fields, "name", True),
        "hostname": _text(msg.fields, "hostname"),
        "platform": _text(msg.fields, "platform"),
        "agent_version": _text(msg.fields, "version"),
        "ip_address": peer,
    }
