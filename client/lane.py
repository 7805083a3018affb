"""The requester's end of the bulk lane (protocol/lane.py): a ticketed stream fetched from its backend.

The bridge answered a streamed request with a ticket: the backend's bulk endpoint and public
key (from its registration) and a single-use token bound to this connection's key. Here a
fresh DEALER connects there as a CURVE client with the same key pair, redeems the token and
hands each chunk to the same ``on_chunk`` as a stream through the bridge would, sending its
acks back on the lane, until the final reply. Anything but a chunk or reply of this request
is ignored. Silence before anything came (the endpoint is not reachable from this machine, or
the backend refused the key) raises ``LaneUnreachable``: the caller asks again through the
bridge; silence later is a TIMEOUT reply, as a stream through the bridge would end.
"""

from __future__ import annotations

from collections.abc import Callable

import zmq

from client.errors import decoded_reply, handling_failed, local_error
from protocol.envelope import CANCEL, CHUNK, REPLY, Header, decode_header, encode_header
from protocol.errors import ErrorCode, ProtocolError
from protocol.lane import TICKET_TTL_S, redeem_frames
from protocol.responses import Reply
from runtime.credentials import ConnectionFile

# A chunk's bytes arrive as a view of the received message: no copy of a megabyte per chunk.
ChunkHandler = Callable[[Header, bytes | memoryview], list[bytes] | None]

FIRST_ANSWER_S = TICKET_TTL_S / 2  # the backend answers a redeem at once: chunks, or why not


class LaneUnreachable(Exception):
    """Nothing came from the bulk lane: nothing was handed to ``on_chunk`` either."""


def fetch(
    ctx: zmq.Context[zmq.Socket[bytes]],
    connection: ConnectionFile,
    op: str,
    ticket: Header,
    on_chunk: ChunkHandler,
    timeout: float,
    *,
    first_wait: float = FIRST_ANSWER_S,
) -> Reply:
    """The stream ``ticket`` names, chunk by chunk into ``on_chunk``; returns its final reply.

    ``timeout``: the most to wait for the next message once the stream has begun; ``first_wait``
    for the first (a refused handshake is silence): LaneUnreachable after it."""
    endpoint, request_id = str(ticket.get("endpoint")), ticket.reply_to
    sock = ctx.socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.curve_serverkey = str(ticket.get("server_key")).encode("ascii")
        sock.curve_publickey = connection.public_key.encode("ascii")
        sock.curve_secretkey = connection.secret_key.encode("ascii")
        sock.connect(endpoint)
        sock.send_multipart(redeem_frames(ticket.fields["token"]))
        started = False
        while True:
            wait = timeout if started else first_wait
            if not sock.poll(int(wait * 1000), zmq.POLLIN):
                if not started:
                    raise LaneUnreachable(f"no answer from the bulk lane at {endpoint} within {wait:g}s")
                return local_error(
                    ErrorCode.TIMEOUT,
                    f"{op}: the backend's bulk lane at {endpoint} fell silent for {wait:g}s mid-stream",
                )
            message = sock.recv_multipart(copy=False)
            body = message[1].buffer if len(message) > 1 else b""
            try:
                header = decode_header(message[0].bytes)
            except ProtocolError:
                continue
            started = True
            if header.kind == CHUNK and header.reply_to == request_id:
                try:
                    ack = on_chunk(header, body)
                except Exception as exc:
                    sock.send_multipart([encode_header(CANCEL, reply_to=request_id), b""])
                    return handling_failed(op, exc)
                if ack:
                    sock.send_multipart(ack)
            elif header.kind == REPLY and header.reply_to in (request_id, None):
                return decoded_reply(op, bytes(body))
    finally:
        sock.close(0)
