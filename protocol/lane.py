"""The bulk lane: a streamed reply fetched straight from the backend that made it (pure protocol).

The request still goes through the bridge, which authorizes it by role, audits it, routes it
and picks the backend (real or mock) as for any request. A requester that can use the lane
says so (header ``lane: true``); when the backend chosen announced a bulk endpoint in its
READY (``bulk``), the bridge names the requester's authenticated CURVE key to it
(``lane_key``), and the backend answers with a ``ticket`` message instead of chunks: a random,
single-use ``token`` (a header field recordings and the tap leave out, as every token) bound to that key and to this one stream, alive for ``TICKET_TTL_S``. The
bridge completes the request with the ticket, adding the backend's endpoint and its public
key from the registration (never from anything a client or a ticket says). The requester
then connects to that endpoint as a CURVE client with its own key pair, redeems the ticket
and gets the chunks and the final reply from there, with the same credit-based flow control
as through the bridge (``protocol/streaming.py``), in larger chunks.

The backend's bulk socket lets a CURVE handshake through only for a key that a live ticket
names, serves a ticket only to the key it is bound to, once, and nothing without one. A
backend without a bulk endpoint (the mock, a replay) is never asked: the bridge streams its
chunks as before, and the requester cannot tell but by the speed.

A backend may also announce a same-host lane (``bulk_ipc``): a Unix socket in a 0700
directory of its data dir, without CURVE. The ticket names it too (``ipc_endpoint``); a
requester uses it only when the socket's directory is its own user's and nobody else can write
there (so whoever listens is that user or root), and the backend serves it only to a peer of
its own user or root (the kernel's peer credentials). Why that needs no encryption, and what
still guards it, is docs/architecture.md's decision "The same-host lane is not encrypted".
"""

from __future__ import annotations

import re

from protocol.envelope import CONTROL, encode_header

TICKET_TTL_S = 10.0  # from its issue to its redemption: the requester connects right away
LANE_CHUNK_SIZE = 1024 * 1024  # fewer, larger messages: the lane has no relay to keep responsive
LANE_WINDOW = 16  # 16 MiB in flight: rides out a moment without CPU at either end on a busy machine
ZAP_DOMAIN = "bulk"
REDEEM = "redeem"  # CONTROL op: [header{kind:"control", op:"redeem", token}, ""]
TICKET_BYTES = 32
TICKET_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
IPC_SCHEME = "ipc://"
RUN_DIR = "run"  # in the backend's data dir, 0700: the same-host lane's socket lives there
IPC_SOCKET = "lane.sock"
MAX_IPC_PATH = 107  # sun_path holds 108 bytes with its terminating NUL (Linux)
MAX_LANE_MESSAGE = 4096  # what a requester sends on the lane: a redeem, acks and a cancel


def redeem_frames(token: str) -> list[bytes]:
    return [encode_header(CONTROL, op=REDEEM, token=token), b""]
