"""The operation catalogue: the single source of truth for every operation.

The bridge (routing, deadlines, fallback), both backends (argument validation), the
client facades, bridgectl, docs/protocol.md and the tests are driven from here.
Adding an operation means adding one declaration here plus its handlers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from protocol.errors import ErrorCode, ProtocolError


class Access(StrEnum):
    READ = "read"
    WRITE = "write"


class ArgType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    MAP = "map"
    ID = "string|integer"


_PY_TYPES: dict[ArgType, tuple[type, ...]] = {
    ArgType.STRING: (str,),
    ArgType.INTEGER: (int,),
    ArgType.BOOLEAN: (bool,),
    ArgType.MAP: (dict,),
    ArgType.ID: (str, int),
}

MAX_STRING = 4096


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    type: ArgType
    doc: str
    required: bool = True
    default: Any = None
    nullable: bool = False
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] | None = None

    def validate(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"argument {self.name!r} must not be null", argument=self.name)
        types = _PY_TYPES[self.type]
        if (isinstance(value, bool) and self.type is not ArgType.BOOLEAN) or not isinstance(value, types):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"argument {self.name!r} must be {self.type.value}, got {type(value).__name__}",
                argument=self.name,
            )
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"argument {self.name!r} is longer than {MAX_STRING} characters")
        if isinstance(value, int) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"argument {self.name!r} must be >= {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"argument {self.name!r} must be <= {self.maximum}")
        if self.choices is not None and value not in self.choices:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"argument {self.name!r} must be one of {list(self.choices)}", argument=self.name
            )
        return value


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    group: str
    summary: str
    access: Access
    timeout_s: float
    returns: str
    args: tuple[Arg, ...] = ()
    streaming: bool = False
    handled_by: str = "backend"  # "backend" or "bridge"
    aliases: tuple[str, ...] = field(default=())  # extra seed method names of the facade (op and op_async always exist)

    @property
    def is_write(self) -> bool:
        return self.access is Access.WRITE

    def validate_args(self, args: Any) -> dict[str, Any]:
        """Return the arguments with defaults filled in, or raise BAD_REQUEST."""
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"arguments of {self.name!r} must be a map, got {type(args).__name__}"
            )
        known = {a.name for a in self.args}
        unknown = sorted(str(k) for k in args if k not in known)
        if unknown:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"unknown argument(s) for {self.name!r}: {', '.join(unknown)}", arguments=unknown
            )
        result: dict[str, Any] = {}
        for arg in self.args:
            if arg.name in args:
                result[arg.name] = arg.validate(args[arg.name])
            elif arg.required:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"missing required argument {arg.name!r} for {self.name!r}")
            else:
                result[arg.name] = arg.default
        return result


def _client_id(doc: str = "Client id.") -> Arg:
    return Arg("client_id", ArgType.STRING, doc)


def _file_id() -> Arg:
    return Arg("file_id", ArgType.STRING, "File id.")


def _offset() -> Arg:
    return Arg("offset", ArgType.INTEGER, "Index of the first item to return.", required=False, default=0, minimum=0)


def _limit(default: int, maximum: int) -> Arg:
    return Arg(
        "limit", ArgType.INTEGER, "Most items to return.", required=False, default=default, minimum=1, maximum=maximum
    )


def _table() -> Arg:
    return Arg("table_name", ArgType.STRING, "Table name; must match `^[a-z_][a-z0-9_]*$` and be a known table.")


CLIENT_STATUSES = ("connected", "disconnected", "error")
FILE_STATUSES = ("uploading", "uploaded", "verified", "error")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
CLIENT_SORTS = ("name", "-name", "last_seen", "-last_seen", "status", "-status", "total_size", "-total_size")
FILE_FILTER_KEYS = ("status", "search", "min_size", "max_size", "sort")
FILE_SORTS = ("name", "-name", "size", "-size", "modified_at", "-modified_at", "path", "-path")

PAGE = "`{items: [...], total, offset, limit}`"

OPERATIONS: tuple[Operation, ...] = (
    # -- clients --
    Operation(
        "get_clients",
        "clients",
        "List backup clients, filtered, sorted and paged.",
        Access.READ,
        5.0,
        f"{PAGE} of Client",
        (
            _offset(),
            _limit(1000, 10000),
            Arg(
                "search",
                ArgType.STRING,
                "Case-insensitive substring of name, hostname or IP.",
                required=False,
                nullable=True,
            ),
            Arg(
                "status",
                ArgType.STRING,
                "Only clients with this status.",
                required=False,
                nullable=True,
                choices=CLIENT_STATUSES,
            ),
            Arg(
                "sort",
                ArgType.STRING,
                "Sort key; a leading '-' sorts descending.",
                required=False,
                default="name",
                choices=CLIENT_SORTS,
            ),
        ),
        aliases=("get_all_clients_from_db",),
    ),
    Operation(
        "get_client_details",
        "clients",
        "One client with a summary of its files.",
        Access.READ,
        5.0,
        "`{client: Client, files_summary: {count, total_size, by_status: {status: n}}, recent_files: [File] (≤ 20)}`",
        (_client_id(),),
    ),
    Operation(
        "resolve_client",
        "clients",
        "Find a client by id or by exact (case-insensitive) name.",
        Access.READ,
        5.0,
        "`Client`; CONFLICT when a name matches several clients",
        (Arg("client_id_or_name", ArgType.STRING, "A client id or a client name."),),
    ),
    Operation(
        "disconnect_client",
        "clients",
        "Tell a connected client to disconnect.",
        Access.WRITE,
        10.0,
        "`{client: Client}`; CONFLICT when it is not connected",
        (_client_id(),),
    ),
    Operation(
        "delete_client",
        "clients",
        "Delete a client and, in cascade, all its files.",
        Access.WRITE,
        15.0,
        "`{client_id, deleted_files, freed_bytes}`",
        (_client_id(),),
    ),
    # -- files --
    Operation(
        "get_files",
        "files",
        "List files of all clients or of one, filtered, sorted and paged.",
        Access.READ,
        5.0,
        f"{PAGE} of File",
        (
            Arg("client_id", ArgType.STRING, "Only this client's files; null for all.", required=False, nullable=True),
            _offset(),
            _limit(100, 1000),
            Arg(
                "filters",
                ArgType.MAP,
                "Optional keys: `status` (one of "
                + ", ".join(FILE_STATUSES)
                + "), `search` (substring of name or path), "
                "`min_size`, `max_size` (bytes), `sort` (one of " + ", ".join(FILE_SORTS) + ").",
                required=False,
                default=None,
                nullable=True,
            ),
        ),
    ),
    Operation(
        "get_client_files",
        "files",
        "All files of one client.",
        Access.READ,
        5.0,
        "`{items: [File], total}`",
        (_client_id(),),
    ),
    Operation(
        "delete_file",
        "files",
        "Delete one file (and its stored content).",
        Access.WRITE,
        10.0,
        "`{file_id, client_id, freed_bytes}`",
        (_file_id(),),
    ),
    Operation(
        "download_file",
        "files",
        "Stream a file's content to the requester, which writes it atomically to `destination_path` on its own machine.",
        Access.READ,
        60.0,
        "chunks (raw bytes) then `{file_id, name, size, sha256, chunks, destination_path}`",
        (
            _file_id(),
            Arg(
                "destination_path", ArgType.STRING, "Where the requester writes the file (the backend does not use it)."
            ),
        ),
        streaming=True,
    ),
    Operation(
        "verify_file",
        "files",
        "Re-hash a file's stored content and record the result.",
        Access.WRITE,
        30.0,
        "`{file_id, ok, expected_sha256, actual_sha256, status, verified_at}`",
        (_file_id(),),
    ),
    # -- database --
    Operation(
        "get_database_info",
        "database",
        "Tables with row counts, sizes and columns.",
        Access.READ,
        5.0,
        "`{engine, path, size_bytes, tables: [{name, rows, size_bytes, columns: [{name, type, editable}]}]}`",
    ),
    Operation(
        "get_table_data",
        "database",
        "One page of a table's rows.",
        Access.READ,
        5.0,
        "`{table, columns: [{name, type, editable}], rows: [map], total, offset, limit}`",
        (_table(), _offset(), _limit(100, 1000)),
    ),
    Operation(
        "update_row",
        "database",
        "Edit a row; read-only columns (ids, hashes, sizes) are FORBIDDEN.",
        Access.WRITE,
        10.0,
        "`{table, row}`",
        (
            _table(),
            Arg("row_id", ArgType.ID, "The row's primary key."),
            Arg("updated_data", ArgType.MAP, "Column name → new value; unknown columns are BAD_REQUEST."),
        ),
    ),
    Operation(
        "delete_row",
        "database",
        "Delete a row (deleting a client row cascades to its files).",
        Access.WRITE,
        10.0,
        "`{table, row_id, cascaded: {table: n}}`",
        (_table(), Arg("row_id", ArgType.ID, "The row's primary key.")),
    ),
    # -- status --
    Operation(
        "get_server_status",
        "status",
        "The backup server's state and totals.",
        Access.READ,
        5.0,
        "`ServerStatus`",
    ),
    Operation(
        "get_system_status",
        "status",
        "CPU, memory and disk of the host the backend runs on.",
        Access.READ,
        5.0,
        "`SystemStatus`",
    ),
    Operation(
        "get_recent_activity",
        "status",
        "The newest activity entries, newest first.",
        Access.READ,
        5.0,
        "`{items: [Activity], total}`",
        (_limit(50, 1000),),
    ),
    Operation(
        "start_server",
        "status",
        "Start accepting backup agents.",
        Access.WRITE,
        10.0,
        "`ServerStatus`; CONFLICT when already running",
    ),
    Operation(
        "stop_server",
        "status",
        "Stop accepting backup agents (the backend keeps answering).",
        Access.WRITE,
        10.0,
        "`ServerStatus`; CONFLICT when already stopped",
    ),
    # -- logs --
    Operation(
        "get_logs",
        "logs",
        "Server log entries, newest first, filtered and paged.",
        Access.READ,
        5.0,
        f"{PAGE} of LogEntry",
        (
            Arg("level", ArgType.STRING, "Minimum level.", required=False, nullable=True, choices=LOG_LEVELS),
            Arg(
                "text",
                ArgType.STRING,
                "Case-insensitive substring of the event or message.",
                required=False,
                nullable=True,
            ),
            _offset(),
            _limit(100, 1000),
        ),
    ),
    Operation(
        "test_connection",
        "logs",
        "Round trip to a backend.",
        Access.READ,
        5.0,
        "`{pong: true, backend, server_time}`",
    ),
    # -- the bridge's own --
    Operation(
        "events_since",
        "bridge",
        "Events with a sequence number greater than `seq` (at most 1000 per call).",
        Access.READ,
        5.0,
        "`{events: [Event], latest_seq, oldest_seq, gap_too_old, more}`",
        (Arg("seq", ArgType.INTEGER, "Last sequence number the caller has seen (0 for none).", minimum=0),),
        handled_by="bridge",
    ),
    Operation(
        "bridge_status",
        "bridge",
        "Backends, their liveness and operations, current mode and fallback policy.",
        Access.READ,
        5.0,
        "`BridgeStatus`",
        handled_by="bridge",
    ),
)

CATALOGUE: dict[str, Operation] = {op.name: op for op in OPERATIONS}
BACKEND_OPERATIONS: tuple[str, ...] = tuple(op.name for op in OPERATIONS if op.handled_by == "backend")


def get_operation(name: str) -> Operation:
    try:
        return CATALOGUE[name]
    except KeyError:
        raise ProtocolError(ErrorCode.UNKNOWN_OPERATION, f"unknown operation {name!r}", op=name) from None
