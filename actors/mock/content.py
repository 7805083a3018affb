"""Deterministic file content for the mock: bytes at any offset, and their real SHA-256.

A file's content is a 1 KiB block derived from (seed, file id, content version),
repeated up to the file's size. Any range is cheap to produce, nothing is stored, and
the hash we publish is the honest SHA-256 of exactly the bytes a download streams, so
a "corrupted" file (version bumped, stored hash kept) fails verification for real.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

BLOCK_SIZE = 1024
# A multiple of BLOCK_SIZE, so every full hashing buffer starts on a block boundary.
_HASH_BUFFER = 64 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@lru_cache(maxsize=512)
def content_block(seed: int, file_id: str, version: int) -> bytes:
    return hashlib.shake_256(f"{seed}:{file_id}:{version}".encode()).digest(BLOCK_SIZE)


def read_content(seed: int, file_id: str, version: int, size: int, offset: int, length: int) -> bytes:
    """``length`` bytes of the file starting at ``offset`` (clipped to the file's size)."""
    if offset < 0 or length < 0:
        raise ValueError("offset and length must be non-negative")
    end = min(size, offset + length)
    if offset >= end:
        return b""
    block = content_block(seed, file_id, version)
    start = offset % BLOCK_SIZE
    count = end - offset
    reps = (start + count) // BLOCK_SIZE + 1
    return (block * reps)[start : start + count]


def content_sha256(seed: int, file_id: str, version: int, size: int) -> str:
    block = content_block(seed, file_id, version)
    digest = hashlib.sha256()
    if size <= _HASH_BUFFER:
        digest.update((block * (size // BLOCK_SIZE + 1))[:size])
        return digest.hexdigest()
    buffer = block * (_HASH_BUFFER // BLOCK_SIZE)
    full, rest = divmod(size, _HASH_BUFFER)
    for _ in range(full):
        digest.update(buffer)
    digest.update(buffer[:rest])
    return digest.hexdigest()
