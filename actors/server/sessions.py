"""What the server keeps per connected agent, and the queue of messages to the agents' ROUTER."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import structlog

from actors.server.tally import TallyMap
from actors.server.uploads import Completed, Uploads
from protocol.agent_messages import (
    CHUNK_SIZE,
    HEARTBEAT_S,
    LIVENESS,
    WINDOW,
    Buffer,
    Credit,
    CreditLedger,
    encode_message,
)

log = structlog.get_logger()

OUTBOX_LIMIT = 100_000  # far above what credits allow; a guard against a bug, not flow control


@dataclass
class Fetch:
    """A restore the server streams to an agent, ``window`` chunks at most in flight."""

    restore_id: str
    sha256: str
    total: int
    credit: Credit
    next_offset: int = 0
    next_index: int = 0


@dataclass
class AgentSession:
    """One authenticated agent connection: its route, client, credit and transfers."""

    route: bytes
    client_id: str
    key: str
    name: str
    last_seen: float
    ledger: CreditLedger
    uploads: Uploads
    fetches: TallyMap[str, Fetch] = field(default_factory=TallyMap)  # counted in the server's active transfers
    running_backup: bool = False  # a run that changed something is under way (activity recorded)
    changed: bool = False  # files stored or linked since the last client.changed event
    changed_at: float = 0.0  # when the last client.changed for this session's uploads went out
    completed: list[Completed] = field(default_factory=list)  # blobs durable, rows written at end of batch


@dataclass(frozen=True, slots=True)
class AgentSettings:
    window: int = WINDOW
    chunk_size: int = CHUNK_SIZE
    heartbeat_s: float = HEARTBEAT_S
    liveness: int = LIVENESS
    server_version: str = "1"


class AgentOutbox:
    """Messages for the agents' ROUTER, sent by the shell after each batch (the core has no sockets)."""

    def __init__(self) -> None:
        self._queue: deque[tuple[bytes, list[Buffer]]] = deque()

    def send(self, route: bytes, type_: str, body: bytes = b"", /, **fields: Any) -> None:
        if len(self._queue) < OUTBOX_LIMIT:
            self._queue.append((route, encode_message(type_, body, **fields)))
        else:
            log.error("server.agent_outbox_full", dropped=type_)

    def error(self, route: bytes, code: str, message: str, ref: str | int | None = None) -> None:
        self.send(route, "error", code=code, message=message, ref=ref)

    def drain(self) -> list[tuple[bytes, list[Buffer]]]:
        out = list(self._queue)
        self._queue.clear()
        return out
