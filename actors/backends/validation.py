"""What a valid value is, for both backends: text, addresses, statuses, file names and paths.

A check takes any value and returns None when it is acceptable, else what is wrong with
it ("must be ..."), so a caller can name the field and pick the error code. The mock and
the real server edit rows with these checks, and the real server's agent gateway reads
its text fields with them too: one definition of "a name", "a path", "an address".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from protocol.agent_messages import AgentProtocolError, check_client_path, check_file_name, has_traversal
from protocol.errors import ErrorCode, ProtocolError

MAX_TEXT = 255
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Check = Callable[[Any], "str | None"]


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def text(value: Any, *, required: bool = True) -> str | None:
    """A single line of at most MAX_TEXT characters; ``required``: not blank either.

    Control characters are refused everywhere (the console shows these values on one
    line, and a newline would also let a search needle span two fields).
    """
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if len(value) > MAX_TEXT:
        return f"must be at most {MAX_TEXT} characters"
    if has_control_characters(value):
        return "must not contain control characters"
    if required and not value.strip():
        return "must not be empty"
    return None


def optional_text(value: Any) -> str | None:
    return None if value is None else text(value)


def ip_address(value: Any) -> str | None:
    problem = text(value)
    if problem:
        return problem
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"must be an IPv4 or IPv6 address, got {value!r}"
    return None


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any) -> str | None:
        return None if isinstance(value, str) and value in choices else f"must be one of {list(choices)}, got {value!r}"

    return check


def file_name(value: Any) -> str | None:
    """One harmless path component (restores write it): no separators, '.', '..' or control characters."""
    return text(value) or check_file_name(value)


def client_path(value: Any) -> str | None:
    """An absolute path on a client without '..', '.' or empty components (see check_client_path)."""
    return check_client_path(value)


def destination_path(value: Any) -> str | None:
    """Where a requester writes a download: the backend never opens it, but refuses a traversal."""
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty path"
    if "\x00" in value or has_traversal(value):
        return "must be a plain path without '..' components or NUL characters"
    return None


def check_destination_path(value: str) -> None:
    """BAD_REQUEST unless ``value`` is an acceptable destination_path of download_file."""
    problem = destination_path(value)
    if problem:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"destination_path {problem}", destination_path=value[:200])


def agent_text(fields: dict[str, Any], name: str, required: bool = False) -> str:
    """A text field of an agent message, stripped; AgentProtocolError when it is not acceptable."""
    value = fields.get(name, "")
    problem = text(value, required=required)
    if problem:
        raise AgentProtocolError(f"{name} {problem}")
    return str(value).strip()
