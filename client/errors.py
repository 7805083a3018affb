"""One convention, for both clients, for a request that got no usable reply from the bridge.

Failures on this side of the wire get mode ``local`` (never a backend's mode) and one of:

- ``UNAUTHENTICATED``: the bridge refused this client's key during the CURVE handshake
  (unknown, revoked, or not allowed on that socket);
- ``BACKEND_UNAVAILABLE``: the bridge cannot be reached (not connected, client not started
  or closed, connection lost while waiting; the outcome of a write is then unknown);
- ``TIMEOUT``: connected, but no reply within the operation's deadline plus a grace period;
- ``INTERNAL``: the reply arrived but handling it here failed (a chunk writer hit a full
  disk, a progress callback raised, the reply was malformed, downloaded content did not
  match its hash); a stream is cancelled. A reply frame that cannot even be decoded keeps
  the specific code the decoder gives (``PAYLOAD_TOO_LARGE``, ``BAD_REQUEST``).

Where each one surfaces:

- the facade (``ServerBridge.op`` and ``op_async``) and ``AsyncBridgeClient.call/stream``
  never raise for these: they return the standard error reply built by ``local_error``;
- the blocking ``BridgeClient.call/stream`` raise ``BridgeUnreachable`` (carrying the code)
  for the first two, because their callers (bridgectl, run_all, tests) stop on them;
  ``unreachable_reply`` is the one place that turns that exception into the reply.
"""

from __future__ import annotations

from protocol import responses
from protocol.codec import DEFAULT_MAX_SIZE
from protocol.envelope import decode_body
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode
from protocol.responses import Reply
from runtime.handshake import HandshakeFailure


class BridgeUnreachable(Exception):
    """The bridge did not accept the request or did not answer it in time."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def cannot_connect(endpoint: str, detail: str) -> BridgeUnreachable:
    return BridgeUnreachable(ErrorCode.BACKEND_UNAVAILABLE, f"cannot connect to the bridge at {endpoint}: {detail}")


def connection_lost(endpoint: str) -> BridgeUnreachable:
    return BridgeUnreachable(
        ErrorCode.BACKEND_UNAVAILABLE, f"the connection to the bridge at {endpoint} was lost; the outcome is unknown"
    )


def not_connected(endpoint: str, detail: str, failure: HandshakeFailure | None) -> BridgeUnreachable:
    """The error for a request that found no connection, saying why when the handshake told."""
    if failure is None:
        return cannot_connect(endpoint, detail)
    if failure.refused:
        return BridgeUnreachable(
            ErrorCode.UNAUTHENTICATED, f"the bridge at {endpoint} refused the connection: {failure.detail}"
        )
    return cannot_connect(endpoint, failure.detail)


def no_reply(endpoint: str, op: str, seconds: float) -> BridgeUnreachable:
    return BridgeUnreachable(ErrorCode.TIMEOUT, f"no reply from the bridge at {endpoint} to {op} within {seconds:.1f}s")


def local_error(code: ErrorCode, message: str) -> Reply:
    return responses.as_reply(responses.error(code, message, mode=Mode.LOCAL))


def unreachable_reply(exc: BridgeUnreachable) -> Reply:
    return local_error(exc.code, str(exc))


def handling_failed(op: str, exc: BaseException) -> Reply:
    """The reply to a request whose answer could not be handled here (see the module docstring)."""
    if isinstance(exc, ProtocolError):
        return responses.as_reply(responses.from_protocol_error(exc, mode=Mode.LOCAL))
    return local_error(
        ErrorCode.INTERNAL, f"{op}: handling the reply on this machine failed: {type(exc).__name__}: {exc}"
    )


def checked_reply(op: str, raw: object) -> Reply:
    """A decoded reply as a Reply, or the INTERNAL reply saying it was not one."""
    try:
        return responses.as_reply(raw)
    except ProtocolError as exc:
        return local_error(ErrorCode.INTERNAL, f"{op}: the bridge's reply is malformed: {exc.message}")


def decoded_reply(op: str, body: bytes) -> Reply:
    """A reply frame's body as a Reply, or the local error saying why it is not one."""
    try:
        raw = decode_body(body, DEFAULT_MAX_SIZE)
    except ProtocolError as exc:
        return handling_failed(op, exc)
    return checked_reply(op, raw)
