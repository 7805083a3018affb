"""What a backend core offers to the socket shell that serves it to the bridge.

A core knows nothing about sockets: the shell validates arguments against the
catalogue, calls ``handle``, sends the reply (or streams a ``StreamReply``), and sends
whatever ``drain_events`` returns as events. The mock and the real server are both
cores behind the same shell.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from protocol.modes import Mode


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str
    session: str | None


@dataclass(slots=True)
class StreamReply:
    """A reply whose content is streamed in chunks before the final reply."""

    total: int
    read_at: Callable[[int, int], bytes]  # (offset, length) -> bytes
    # The standard reply sent after the last chunk; a ProtocolError it raises is sent as the
    # error reply instead (content found damaged once every byte was read).
    final: Callable[[], dict[str, Any]]


class BackendCore(Protocol):
    name: str
    mode: Mode  # REAL or MOCK

    def operations(self) -> list[str]:
        """Names of the operations this core implements."""
        ...

    def handle(self, op: str, args: dict[str, Any], ctx: RequestContext) -> dict[str, Any] | StreamReply:
        """Run one operation on validated arguments; return a standard reply or a stream.

        Domain failures are raised as ProtocolError (NOT_FOUND, CONFLICT, ...); any other
        exception becomes an INTERNAL reply and is logged by the shell.
        """
        ...

    def drain_events(self) -> list[tuple[str, dict[str, Any]]]:
        """Events produced since the last call, as (topic, data), oldest first."""
        ...

    def tick(self) -> None:
        """Periodic work (evolution, debounced persistence); called by the shell's timer."""
        ...

    def tick_interval(self) -> float:
        """Seconds between calls to tick()."""
        ...

    def close(self) -> None:
        """Flush everything acknowledged to disk; called once on a clean exit."""
        ...
