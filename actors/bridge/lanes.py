"""The bridge's part in the bulk lane (protocol/lane.py): it stays in control, out of the data path.

A request names its requester's key to its backend only when the requester asked for the
lane, the operation streams and that backend announced a bulk endpoint; a key a client put
in its own header never gets through. The ticket the backend answers with reaches the
requester with the endpoints (CURVE, and the same-host one when announced) and the public
key the backend registered with, so where to fetch and whom to trust come from the
registration, not from the backend's say-so on the ticket, and never from the client's
configuration.
"""

from __future__ import annotations

from typing import Any

import structlog

from actors.bridge.config import Pending
from actors.bridge.registry import Backend
from protocol import responses
from protocol.codec import decode, encode
from protocol.envelope import MAX_HEADER_SIZE, TICKET, Header, encode_header, reply_frames
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode
from protocol.operation import Operation

log = structlog.get_logger()

# Header fields only the bridge may set on their way to a backend: a session token (the
# bridge's business alone) and the lane's key (the requester's, as authenticated here).
_BRIDGE_ONLY = frozenset({"auth", "lane", "lane_key"})


def forwarded_header(header: Header, header_frame: bytes) -> bytes:
    """The request's header as a backend may see it."""
    if _BRIDGE_ONLY.isdisjoint(header.fields):
        return header_frame
    return encode({k: v for k, v in header.fields.items() if k not in _BRIDGE_ONLY})


def wants_lane(header: Header, operation: Operation | None) -> bool:
    return operation is not None and operation.streaming and header.fields.get("lane") is True


def backend_header(pending: Pending, backend: Backend, *, recording: bool) -> bytes:
    """The header sent to ``backend``: with the requester's key when both ends can use the lane and
    nothing records the bridge's traffic (a recording must hold a download, as every message)."""
    if not pending.lane or not backend.bulk or recording:
        return pending.header
    fields: dict[str, Any] = decode(pending.header, MAX_HEADER_SIZE)
    fields["lane_key"] = pending.acting.principal.public_key
    return encode(fields)


def ticket_answer(header: Header, pending: Pending, backend: Backend) -> tuple[list[bytes], str]:
    """(frames, outcome) for the requester: the ticket with where to fetch it and the key that proves
    the far end; an error when nobody asked this backend for one (the requester would not know it)."""
    if not (pending.lane and backend.bulk):
        log.warning("bridge.ticket_unasked", backend=backend.name, request_id=pending.request_id)
        error = ProtocolError(ErrorCode.INTERNAL, f"backend {backend.name!r} answered with a ticket nobody asked for")
        return reply_frames(pending.request_id, responses.from_protocol_error(error, mode=Mode.BRIDGE)), "INTERNAL"
    fields = {"reply_to": header.reply_to, "token": header.fields["token"], "total": header.get("total")}
    if backend.bulk_ipc:  # the requester takes it when it is on the backend's host, as the backend's user
        fields["ipc_endpoint"] = backend.bulk_ipc
    return [encode_header(TICKET, **fields, endpoint=backend.bulk, server_key=backend.key), b""], "ok"
