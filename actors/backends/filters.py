"""How both backends list things: case folding, client and file filters, sort keys and pages.

The real server answers in SQL, the mock over its indexes; both read their arguments
here, so a filter, a sort or a page means the same in either. Case-insensitive means
what SQLite's ``lower()`` and ``NOCASE`` do: ASCII letters fold, nothing else does.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from actors.backends.validation import has_control_characters
from protocol.catalogue import FILE_FILTER_KEYS, FILE_SORTS, FILE_STATUSES
from protocol.errors import ErrorCode, ProtocolError

DEFAULT_CLIENT_SORT = "name"
DEFAULT_FILE_SORT = "name"
RECENT_FILES = 20  # the newest files get_client_details shows
MAX_SIZE = 2**63 - 1  # SQLite's largest integer: a bound beyond it cannot be compared
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def fold(value: str) -> str:
    """Case-fold like SQLite's lower() and NOCASE collation: ASCII letters only."""
    return value.lower() if value.isascii() else value.translate(_ASCII_LOWER)


def searchable(needle: str) -> bool:
    """Whether a search needle can match at all: no stored name, address or path holds a control character."""
    return not has_control_characters(needle)


def sort_order(sort: str) -> tuple[str, bool]:
    """(field, descending) of a sort key such as ``-size``; ties always break by id, same direction."""
    return sort.lstrip("-"), sort.startswith("-")


def page(items: list[Any], total: int, offset: int, limit: int) -> dict[str, Any]:
    return {"items": items, "total": total, "offset": offset, "limit": limit}


@dataclass(frozen=True, slots=True)
class ClientFilters:
    search: str = ""  # folded
    status: str | None = None
    sort: str = DEFAULT_CLIENT_SORT

    @property
    def active(self) -> bool:
        return bool(self.search or self.status is not None)


def client_filters(args: dict[str, Any]) -> ClientFilters:
    """The filters of get_clients from arguments the catalogue validated (search over name, hostname, IP)."""
    return ClientFilters(search=fold(args.get("search") or ""), status=args.get("status"), sort=args["sort"])


@dataclass(frozen=True, slots=True)
class FileFilters:
    status: str | None = None
    search: str = ""  # folded; matched in the name or the path
    min_size: int | None = None
    max_size: int | None = None
    sort: str = DEFAULT_FILE_SORT

    @property
    def active(self) -> bool:
        return bool(self.status or self.search or self.min_size is not None or self.max_size is not None)


def _bad_filter(message: str, key: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_REQUEST, message, filter=key)


def parse_file_filters(raw: dict[str, Any] | None) -> FileFilters:
    """Validate the ``filters`` map of get_files; a null value means "not set"."""
    if not raw:
        return FileFilters()
    unknown = sorted(str(k) for k in raw if k not in FILE_FILTER_KEYS)
    if unknown:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST,
            f"unknown filter key(s) {', '.join(unknown)}; allowed: {', '.join(FILE_FILTER_KEYS)}",
            filters=unknown,
        )
    for key in ("status", "search", "sort"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise _bad_filter(f"filter {key!r} must be a string, got {type(value).__name__}", key)
    sizes: dict[str, int | None] = {}
    for key in ("min_size", "max_size"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SIZE):
            raise _bad_filter(f"filter {key!r} must be an integer from 0 to 2**63-1, got {value!r}", key)
        sizes[key] = value
    status = raw.get("status")
    if status is not None and status not in FILE_STATUSES:
        raise _bad_filter(f"filter 'status' must be one of {list(FILE_STATUSES)}, got {status!r}", "status")
    sort = raw.get("sort") or DEFAULT_FILE_SORT
    if sort not in FILE_SORTS:
        raise _bad_filter(f"filter 'sort' must be one of {list(FILE_SORTS)}, got {sort!r}", "sort")
    low, high = sizes["min_size"], sizes["max_size"]
    if low is not None and high is not None and low > high:
        raise _bad_filter("filter 'min_size' is greater than 'max_size'", "min_size")
    return FileFilters(status=status, search=fold(raw.get("search") or ""), min_size=low, max_size=high, sort=sort)
