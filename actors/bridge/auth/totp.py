"""Time-based one-time passwords (RFC 6238 over RFC 4226): SHA-1, 6 digits, 30-second steps.

What authenticator apps expect by default. A code is accepted for the current step and
one step either side (clock drift); the caller refuses a step already used (replay).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from urllib.parse import quote, urlencode

STEP_S = 30
DIGITS = 6
WINDOW = 1  # steps accepted either side of the current one
SECRET_BYTES = 20  # 160 bits, as RFC 4226 recommends
ISSUER = "backup-console"


def new_secret() -> str:
    """A random secret, base32 without padding (what otpauth URIs carry)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded)


def code_at(secret: str, step: int) -> str:
    """The code of time step ``step`` (RFC 4226 HOTP with the step as counter)."""
    digest = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10**DIGITS).zfill(DIGITS)


def step_of(now: float) -> int:
    return int(now // STEP_S)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The step whose code ``code`` is, within the window around ``now``; None when it matches none."""
    candidate = code.strip().replace(" ", "")
    if len(candidate) != DIGITS or not candidate.isdigit():
        return None
    try:
        current = step_of(now)
        for step in range(current - WINDOW, current + WINDOW + 1):
            if hmac.compare_digest(code_at(secret, step), candidate):
                return step
    except (binascii.Error, ValueError):
        return None  # a damaged stored secret matches nothing
    return None


def otpauth_uri(secret: str, user: str) -> str:
    """The URI an authenticator app reads (usually from a QR code)."""
    label = quote(f"{ISSUER}:{user}", safe="")
    query = urlencode({"secret": secret, "issuer": ISSUER, "digits": DIGITS, "period": STEP_S})
    return f"otpauth://totp/{label}?{query}"
