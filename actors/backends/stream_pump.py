"""One turn of a streamed reply on the backend's side, the same through the bridge and on the bulk lane."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from actors.backends.api import StreamReply
from protocol import responses
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode
from protocol.streaming import StreamSender

log = structlog.get_logger()


def pump(
    sender: StreamSender, reply: StreamReply, send: Callable[[list[bytes]], None], mode: Mode
) -> dict[str, Any] | None:
    """Send the chunks credit allows; returns the reply that ends the stream (the final one once every
    chunk is acknowledged, or the error that stopped it), None while it goes on."""
    try:
        for frames in sender.ready_chunks():
            send(frames)
    except Exception as exc:
        log.exception("backend.stream_read_failed", request_id=sender.reply_to)
        return responses.error(ErrorCode.INTERNAL, f"reading the content failed: {exc}", mode=mode)
    if not sender.done:
        return None
    try:
        return reply.final()
    except ProtocolError as exc:  # what the stream carried turned out wrong (FILE_DAMAGED)
        log.warning("backend.stream_failed", request_id=sender.reply_to, error_code=exc.code.value)
        return responses.from_protocol_error(exc, mode=mode)
