"""CURVE keys: what a valid key looks like, and the key pair derived from an enrollment token.

Key files (ZeroMQ's certificate format: ``NAME.key`` holds the public key, ``NAME.key_secret``
both keys, readable by their owner only) are read and written by runtime/credentials.py,
the one module that decides the permissions of secrets; ``load_or_create`` and
``load_public`` here are the agent's and the server's names for it.

The enrollment key pair is derived from the enrollment token: an agent that knows the
token can complete a CURVE handshake with that pair, which is how it proves it holds the
token without the token ever crossing the wire (ZAP hands the server only the client's
public key, so a token cannot ride along with an unknown key).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import zmq
from zmq.utils import z85

from protocol.agent_messages import ENROLL_KEY_LABEL

Z85_KEY = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


def load_or_create(directory: Path, name: str) -> tuple[bytes, bytes]:
    """(public, secret) z85 keys from ``directory/NAME.key_secret``, created on first use."""
    # Imported here: runtime.credentials uses this module's key checks.
    from runtime.credentials import load_or_create_key_pair

    pair, _ = load_or_create_key_pair(directory, name)
    return pair.public.encode("ascii"), pair.secret.encode("ascii")


def load_public(path: Path) -> bytes:
    """The public key of a certificate file (``server.key``); raises CredentialsError (a ValueError)."""
    from runtime.credentials import load_public_key

    return load_public_key(path).encode("ascii")


def enrollment_keypair(token: str) -> tuple[bytes, bytes]:
    """The (public, secret) pair both sides derive from an enrollment token."""
    secret = z85.encode(hashlib.sha256(ENROLL_KEY_LABEL + token.encode()).digest())
    return zmq.curve_public(secret), secret


def is_public_key(text: str) -> bool:
    """A z85 CURVE public key: 40 characters that decode to 32 bytes."""
    if not Z85_KEY.fullmatch(text):
        return False
    try:
        return len(z85.decode(text.encode("ascii"))) == 32
    except (ValueError, UnicodeEncodeError, KeyError, IndexError):
        return False
