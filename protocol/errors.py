"""The closed set of error codes and the exception that carries one."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    BAD_REQUEST = "BAD_REQUEST"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    UNKNOWN_OPERATION = "UNKNOWN_OPERATION"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    RATE_LIMITED = "RATE_LIMITED"
    TIMEOUT = "TIMEOUT"
    BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE"
    OVERLOADED = "OVERLOADED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    STORAGE_FULL = "STORAGE_FULL"
    CANCELLED = "CANCELLED"
    STREAM_ABANDONED = "STREAM_ABANDONED"
    FILE_DAMAGED = "FILE_DAMAGED"
    NOT_RECORDED = "NOT_RECORDED"
    INTERNAL = "INTERNAL"


ERROR_DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.BAD_REQUEST: "The message or its arguments are malformed: not msgpack, a missing or "
    "mistyped field, an argument of the wrong type, an unknown argument, an invalid identifier.",
    ErrorCode.UNSUPPORTED_VERSION: "The envelope's `v` is not a protocol version this peer speaks.",
    ErrorCode.UNKNOWN_OPERATION: "No operation of that name exists in the catalogue or in any registered backend.",
    ErrorCode.NOT_FOUND: "The addressed object (client, file, table, row) does not exist.",
    ErrorCode.CONFLICT: "The object is not in a state that allows the operation "
    "(already disconnected, server already running, ambiguous name).",
    ErrorCode.UNAUTHENTICATED: "No valid credentials for this request: sign in again "
    "(a failed sign-in, a missing, expired or foreign session token, a revoked key).",
    ErrorCode.FORBIDDEN: "The operation is refused on purpose (read-only column, protected object, "
    "a role below the one the operation needs: the message names both).",
    ErrorCode.RATE_LIMITED: "Too many failed sign-ins for this user or from this peer: wait "
    "`details.retry_after_s` seconds before trying again.",
    ErrorCode.TIMEOUT: "The backend did not answer before the request's deadline.",
    ErrorCode.BACKEND_UNAVAILABLE: "No live backend can serve the operation (or fallback is not allowed by policy).",
    ErrorCode.OVERLOADED: "A bounded queue is full (too many requests in flight); retry later.",
    ErrorCode.PAYLOAD_TOO_LARGE: "A frame exceeds the configured size limit (default 16 MiB).",
    ErrorCode.STORAGE_FULL: "The backend's storage is full (its database or its blob store hit "
    "ENOSPC/SQLITE_FULL): nothing of the write was kept; free space on the server and retry.",
    ErrorCode.NOT_RECORDED: "A replay backend has no recorded reply for this request (operation and arguments), "
    "or, in strict order, it is not the request recorded next.",
    ErrorCode.CANCELLED: "The requester cancelled the request (a stream it no longer wants).",
    ErrorCode.STREAM_ABANDONED: "A streamed reply was dropped because its requester stopped acknowledging "
    "chunks: none for the request's deadline, and never for more than 30 s (the limit the backend and the "
    "bridge share). Nothing was written; download again.",
    ErrorCode.FILE_DAMAGED: "The file's stored content is missing or no longer hashes to its recorded SHA-256: "
    '`details` has `expected_sha256`, `actual_sha256` ("" when missing) and `problem` (missing or '
    "damaged). `download_file` with `allow_damaged: true` fetches what is stored anyway. From `download_archive`, "
    "they are the first such file's, with its `path` and `file_id`, `damaged` (every one found, up to 1000) and "
    "`damaged_total`; `allow_damaged: true` archives what is stored and leaves missing content out.",
    ErrorCode.INTERNAL: "An unexpected fault inside a backend or the bridge; the peer keeps running.",
}

# Failures of the moment, not answers about the request: the same request may succeed
# when sent again, so the bridge never answers a resent id from its reply cache with one.
RETRYABLE: frozenset[str] = frozenset(
    {
        ErrorCode.TIMEOUT.value,
        ErrorCode.BACKEND_UNAVAILABLE.value,
        ErrorCode.OVERLOADED.value,
        ErrorCode.STREAM_ABANDONED.value,
    }
)


class ProtocolError(Exception):
    """A failure that maps to exactly one error code and a human message."""

    def __init__(self, code: ErrorCode, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"ProtocolError({self.code.value}, {self.message!r})"
