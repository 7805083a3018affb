"""A streamed reply as the bridge holds it, and the error a request gets when it runs out.

After its first chunk a stream is pinned to its backend (bytes have reached the client),
and it stays alive while it moves: every chunk the backend sends and every ack that
acknowledges a new chunk renews its deadline, to the request's timeout but never more than
``STREAM_IDLE_TIMEOUT_S``, the limit after which the backend drops a stream nobody acks.
When the deadline passes with chunks still unacknowledged, the requester is the one that
stopped: it gets STREAM_ABANDONED, as the backend would say; otherwise it is TIMEOUT.
"""

from __future__ import annotations

from actors.bridge.config import Pending
from protocol.envelope import CANCEL, encode_header
from protocol.errors import ErrorCode, ProtocolError
from protocol.streaming import STREAM_IDLE_TIMEOUT_S


def _renew(pending: Pending, now: float) -> None:
    pending.deadline = pending.attempt_deadline = now + min(pending.timeout, STREAM_IDLE_TIMEOUT_S)


def on_chunk(pending: Pending, index: int, now: float) -> None:
    pending.chunks = max(pending.chunks, index + 1)
    del pending.plan[pending.attempt + 1 :]
    _renew(pending, now)


def on_ack(pending: Pending, index: int, now: float) -> bool:
    """Account for the requester's ack; True when it renewed the deadline.

    Only an ack of a chunk not yet acknowledged counts: a repeated (or invented) one must
    not keep a stream alive whose backend has stopped sending."""
    acked = min(index + 1, pending.chunks)
    if acked <= pending.acked:
        return False
    pending.acked = acked
    _renew(pending, now)
    return True


def cancel_frames(pending: Pending) -> list[bytes]:
    """What tells the backend to let go of a stream the bridge has given up on."""
    return [pending.identity, encode_header(CANCEL, reply_to=pending.request_id), b""]


def failure(pending: Pending, reason: str) -> ProtocolError:
    """The error of a request with no backend left to try: ``reason`` is "timeout" or why its backend went."""
    if reason != "timeout":
        return ProtocolError(ErrorCode.BACKEND_UNAVAILABLE, f"the backend serving {pending.op!r} went away ({reason})")
    if pending.chunks > pending.acked:
        limit = min(pending.timeout, STREAM_IDLE_TIMEOUT_S)
        return ProtocolError(
            ErrorCode.STREAM_ABANDONED,
            f"{pending.op!r}: chunk {pending.acked} of the stream was not acknowledged within {limit:g}s; "
            "the stream was dropped",
        )
    return ProtocolError(ErrorCode.TIMEOUT, f"no reply for {pending.op!r} within {pending.timeout:.1f}s")
