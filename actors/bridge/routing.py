"""Which backends a request may try, in order: the routing rule of the bridge, free of I/O.

The real backend comes first whenever it is alive. The mock follows it in the plan only
when the policy sends this kind of request to the mock during an outage
(``protocol.modes.during_outage``), because a write silently landing in demo data while
the operator thinks it reached the real server is the one failure this design exists to
prevent. Whether a real backend is expected at all is the caller's (actors/bridge/outage.py):
it comes from the persisted allow-list, never from memory of a registration.
"""

from __future__ import annotations

from actors.bridge.registry import Registry
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode


def plan(
    registry: Registry, op: str, *, fallback: bool, real_expected: bool, refusal: str
) -> list[bytes] | ProtocolError:
    """The identities to try for ``op``, or the error to answer with when none may serve it.

    ``fallback``: the mock may answer when the real backend cannot; ``refusal``: the message
    when a real backend is expected, is not alive, and the mock may not stand in."""
    real = registry.serving(Mode.REAL, op)
    mock = registry.serving(Mode.MOCK, op)
    if real is not None:
        return [real.identity, mock.identity] if (fallback and mock is not None) else [real.identity]
    if real_expected and not fallback:
        return ProtocolError(ErrorCode.BACKEND_UNAVAILABLE, refusal)
    if mock is not None:
        return [mock.identity]
    return ProtocolError(ErrorCode.BACKEND_UNAVAILABLE, f"no live backend serves {op!r}")
