"""Streamed replies with credit-based flow control (pure state machines).

A streaming operation (``download_file``) is answered by chunk messages followed by
one final reply. The sender may have at most ``window`` unacknowledged chunks in
flight; the requester acknowledges each chunk it has consumed. Memory stays bounded
at both ends whatever the size, and a requester that goes away stalls only its own
stream: after ``STREAM_IDLE_TIMEOUT_S`` without an ack the backend drops it, and the bridge,
which holds a started stream to the same limit, answers the requester STREAM_ABANDONED.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from protocol.envelope import ACK, CHUNK, encode_header
from protocol.errors import ErrorCode, ProtocolError

CHUNK_SIZE = 256 * 1024
WINDOW = 8
# The longest a started stream may wait for its requester's next ack. One constant for the
# backend (which drops the stream) and the bridge (which tells the requester), so the
# requester hears when the backend gives up, not a request deadline later.
STREAM_IDLE_TIMEOUT_S = 30.0
# Streams whose final reply carries no SHA-256 of the whole stream: the backend checks each member
# of an archive against the hash recorded at backup, CURVE authenticates every message and each
# chunk's index and offset prove order, so hashing every byte again at each end proves nothing more.
UNHASHED_STREAMS = frozenset({"download_archive"})


def chunk_frames(reply_to: str, index: int, offset: int, total: int, data: bytes) -> list[bytes]:
    return [encode_header(CHUNK, reply_to=reply_to, index=index, offset=offset, total=total), data]


def ack_frames(reply_to: str, index: int) -> list[bytes]:
    return [encode_header(ACK, reply_to=reply_to, index=index), b""]


@dataclass
class StreamSender:
    """Backend side of one stream: hands out chunks while credit lasts."""

    reply_to: str
    total: int
    read_at: Callable[[int, int], bytes]
    window: int = WINDOW
    chunk_size: int = CHUNK_SIZE
    next_index: int = 0
    acked: int = 0  # chunks acknowledged (indices < acked are consumed)

    @property
    def chunk_count(self) -> int:
        return max(1, -(-self.total // self.chunk_size)) if self.total else 0

    @property
    def all_sent(self) -> bool:
        return self.next_index >= self.chunk_count

    @property
    def done(self) -> bool:
        return self.acked >= self.chunk_count

    def on_ack(self, index: int) -> None:
        if 0 <= index < self.next_index:
            self.acked = max(self.acked, index + 1)

    def ready_chunks(self) -> Iterator[list[bytes]]:
        while not self.all_sent and self.next_index - self.acked < self.window:
            index = self.next_index
            offset = index * self.chunk_size
            data = self.read_at(offset, min(self.chunk_size, self.total - offset))
            self.next_index += 1
            yield chunk_frames(self.reply_to, index, offset, self.total, data)


@dataclass
class StreamReceiver:
    """Requester side of one stream: checks order, hashes (unless ``hashed`` is False), reports progress."""

    reply_to: str
    hashed: bool = True
    received: int = 0
    total: int | None = None
    next_index: int = 0
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)

    def on_chunk(self, index: int, offset: int, total: int, data: bytes | memoryview) -> list[bytes]:
        """Account for one chunk; returns the ack frames to send back."""
        if index != self.next_index or offset != self.received:
            raise ProtocolError(
                ErrorCode.INTERNAL,
                f"stream {self.reply_to}: chunk {index} at offset {offset} out of order "
                f"(expected chunk {self.next_index} at {self.received})",
            )
        self.total = total
        if self.hashed:
            self._hash.update(data)
        self.received += len(data)
        self.next_index += 1
        return ack_frames(self.reply_to, index)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()
