"""Which backends a request may try, in order: the routing rule of the bridge, free of I/O.

The real backend comes first whenever it is alive. The mock follows it in the plan only
when the fallback policy allows it for this kind of request, because a write silently
landing in demo data while the operator thinks it reached the real server is the one
failure this design exists to prevent.
"""

from __future__ import annotations

from actors.bridge.registry import Registry
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode, Policy


def fallback_allowed(policy: str, is_write: bool) -> bool:
    return policy == Policy.ALL or (policy == Policy.READS and not is_write)


def plan(registry: Registry, policy: str, op: str, is_write: bool) -> list[bytes] | ProtocolError:
    """The identities to try for ``op``, or the error to answer with when none may serve it."""
    real = registry.serving(Mode.REAL, op)
    mock = registry.serving(Mode.MOCK, op)
    fallback = fallback_allowed(policy, is_write)
    if real is not None:
        return [real.identity, mock.identity] if (fallback and mock is not None) else [real.identity]
    if registry.expected(Mode.REAL, op) and not fallback:
        kind = "writes" if is_write else "reads"
        return ProtocolError(
            ErrorCode.BACKEND_UNAVAILABLE,
            f"the real backend is down and policy {policy!r} does not send {kind} to the mock; {op!r} was not executed",
        )
    if mock is not None:
        return [mock.identity]
    return ProtocolError(ErrorCode.BACKEND_UNAVAILABLE, f"no live backend serves {op!r}")
