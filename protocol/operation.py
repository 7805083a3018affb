"""How an operation is declared: its arguments, their types and limits, and what it touches.

``protocol.catalogue`` lists the operations with these types; everything else (bridge,
backends, client facade, GUI, docs) reads the declarations rather than repeating them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from protocol.codec import INT64_MAX, INT64_MIN
from protocol.errors import ErrorCode, ProtocolError
from protocol.roles import Role
from protocol.views import ViewKey


class Access(StrEnum):
    READ = "read"
    WRITE = "write"


class ArgType(StrEnum):
    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    MAP = "map"
    ID = "string|integer"
    STRINGS = "list of strings"  # minimum/maximum bound how many


class HandledBy(StrEnum):
    BACKEND = "backend"
    BRIDGE = "bridge"


_PY_TYPES: dict[ArgType, tuple[type, ...]] = {
    ArgType.STRING: (str,),
    ArgType.INTEGER: (int,),
    ArgType.BOOLEAN: (bool,),
    ArgType.MAP: (dict,),
    ArgType.ID: (str, int),
    ArgType.STRINGS: (list,),
}

MAX_STRING = 4096
MAX_ITEMS = 10000  # a list argument with no declared maximum
PAGE = "`{items: [...], total, offset, limit}`"


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
    is_id: bool = False  # names the object the operation addresses (the bridge.write notice carries it)
    secret: bool = False  # a password or code: never in a notice, a log line, the audit trail or a recording

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
        if isinstance(value, list):
            self._validate_items(value)
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            # Undeclared bounds are still 64 bits: what a backend's database can hold.
            minimum = INT64_MIN if self.minimum is None else self.minimum
            maximum = INT64_MAX if self.maximum is None else self.maximum
            if value < minimum:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"argument {self.name!r} must be >= {minimum}")
            if value > maximum:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"argument {self.name!r} must be <= {maximum}")
        if self.choices is not None and value not in self.choices:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"argument {self.name!r} must be one of {list(self.choices)}", argument=self.name
            )
        return value

    def _validate_items(self, items: list[Any]) -> None:
        fewest = self.minimum or 0
        most = MAX_ITEMS if self.maximum is None else self.maximum
        if not fewest <= len(items) <= most:
            raise ProtocolError(
                ErrorCode.BAD_REQUEST,
                f"argument {self.name!r} must hold {fewest} to {most} items, got {len(items)}",
                argument=self.name,
            )
        for item in items:
            if not isinstance(item, str):
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST,
                    f"argument {self.name!r} must hold strings, got {type(item).__name__}",
                    argument=self.name,
                )
            if len(item) > MAX_STRING:
                raise ProtocolError(
                    ErrorCode.BAD_REQUEST, f"an item of argument {self.name!r} is longer than {MAX_STRING} characters"
                )


@dataclass(frozen=True, slots=True)
class Operation:
    name: str
    group: str
    summary: str
    access: Access
    timeout_s: float
    returns: str
    args: tuple[Arg, ...] = ()
    streaming: bool = False  # the reply's content comes as chunks written to the `destination_path` argument
    handled_by: HandledBy = HandledBy.BACKEND
    aliases: tuple[str, ...] = ()  # extra seed method names of the facade (op and op_async always exist)
    refreshes: tuple[ViewKey, ...] = ()  # what a console reloads after this write succeeded
    # The role a principal needs; None: any authenticated peer, even a GUI no user signed in to
    # (login, logout, whoami). The default is the most restrictive, so a forgotten one fails closed.
    role: Role | None = Role.ADMIN
    secret_results: tuple[str, ...] = ()  # fields of the reply's data that carry a secret (scrubbed like args)

    def __post_init__(self) -> None:
        # Declaration mistakes fail at import, not when a console first misses a refresh.
        if any(a.secret and a.is_id for a in self.args):
            raise ValueError(f"operation {self.name!r}: a secret argument cannot be an id (notices carry ids)")
        if self.role is None and self.handled_by is not HandledBy.BRIDGE:
            raise ValueError(f"operation {self.name!r}: only the bridge's own operations may need no role")
        if self.is_write and not self.refreshes:
            raise ValueError(f"write operation {self.name!r} must declare what it refreshes")
        if self.refreshes and not self.is_write:
            raise ValueError(f"read operation {self.name!r} changes nothing to refresh")
        if self.streaming and "destination_path" not in {a.name for a in self.args}:
            raise ValueError(f"streaming operation {self.name!r} needs a destination_path argument")

    @property
    def is_write(self) -> bool:
        return self.access is Access.WRITE

    @property
    def secret_args(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if a.secret)

    @property
    def id_args(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.args if a.is_id)

    def ids_of(self, args: Any) -> dict[str, Any]:
        """The id arguments present in a request's (possibly malformed) argument map."""
        if not isinstance(args, dict):
            return {}
        return {name: args[name] for name in self.id_args if name in args}

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


def offset_arg() -> Arg:
    return Arg("offset", ArgType.INTEGER, "Index of the first item to return.", required=False, default=0, minimum=0)


def limit_arg(default: int, maximum: int) -> Arg:
    return Arg(
        "limit", ArgType.INTEGER, "Most items to return.", required=False, default=default, minimum=1, maximum=maximum
    )
