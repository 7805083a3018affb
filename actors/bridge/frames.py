"""What a client's message must be before anything in it is read: a header frame and a body frame."""

from __future__ import annotations

from protocol.envelope import MAX_HEADER_SIZE, Header, decode_header
from protocol.errors import ErrorCode, ProtocolError


def client_message(frames: list[bytes]) -> tuple[Header, bytes, bytes]:
    """(header, header frame, body) of ``[identity, header, body]``; ProtocolError says what is wrong."""
    if len(frames) != 3:
        # Header-only messages included: what was meant by the missing body is a guess.
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"a request is a header frame and a body frame (which may be empty), got {len(frames) - 1} frames",
        )
    header_frame, body = frames[1], frames[2]
    if len(header_frame) > MAX_HEADER_SIZE:
        raise ProtocolError(
            ErrorCode.PAYLOAD_TOO_LARGE, f"header frame of {len(header_frame)} bytes exceeds {MAX_HEADER_SIZE}"
        )
    return decode_header(header_frame), header_frame, body
