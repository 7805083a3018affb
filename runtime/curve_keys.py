"""CURVE key files shared by the agent and the server.

Key files use ZeroMQ's certificate format (``zmq.auth.create_certificates``): ``NAME.key``
holds the public key, ``NAME.key_secret`` both keys and is readable by its owner only.

The enrollment key pair is derived from the enrollment token: an agent that knows the
token can complete a CURVE handshake with that pair, which is how it proves it holds the
token without the token ever crossing the wire (ZAP hands the server only the client's
public key, so a token cannot ride along with an unknown key).
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import zmq
import zmq.auth
from zmq.utils import z85

from protocol.agent_messages import ENROLL_KEY_LABEL

Z85_KEY = re.compile(r"[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}")


def load_or_create(directory: Path, name: str) -> tuple[bytes, bytes]:
    """(public, secret) z85 keys from ``directory/NAME.key_secret``, created on first use."""
    secret_file = directory / f"{name}.key_secret"
    if not secret_file.exists():
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        _public_path, secret_path = zmq.auth.create_certificates(str(directory), name)
        os.chmod(secret_path, 0o600)
    public, secret = zmq.auth.load_certificate(str(secret_file))
    if secret is None:
        raise ValueError(f"{secret_file} holds no secret key")
    return public, secret


def load_public(path: Path) -> bytes:
    """The public key of a certificate file (``server.key``); raises OSError/ValueError."""
    public, _ = zmq.auth.load_certificate(str(path))
    if not public or len(public) != 40:
        raise ValueError(f"{path} holds no CURVE public key")
    return public


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
