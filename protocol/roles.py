"""The roles an operator can hold, their order, and the one rule that compares them.

``viewer`` reads; ``operator`` also disconnects clients, verifies and downloads files and
starts or stops the server; ``admin`` may do everything (deletes, database edits, users,
keys, backends, the audit trail). Each catalogue operation names the role it needs; the
bridge compares it with the role of the principal that sent the request.
"""

from __future__ import annotations

from enum import StrEnum

from protocol.errors import ErrorCode, ProtocolError


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


# The order, lowest first: a role includes the rights of every role before it.
ORDER: tuple[Role, ...] = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
_RANK: dict[Role, int] = {role: rank for rank, role in enumerate(ORDER)}


def rank(role: Role) -> int:
    return _RANK[role]


def allows(have: Role | None, need: Role | None) -> bool:
    """Whether a principal holding ``have`` may run an operation needing ``need``.

    ``need`` None: the operation asks for no role (any authenticated peer, e.g. ``login``).
    ``have`` None: the peer acts for nobody yet (a GUI process before a user signed in)."""
    if need is None:
        return True
    return have is not None and _RANK[have] >= _RANK[need]


def lowest(first: Role, second: Role) -> Role:
    """The lower of two roles: an API key never acts above its user's current role."""
    return first if _RANK[first] <= _RANK[second] else second


def parse_role(value: object) -> Role:
    """A role from text, or BAD_REQUEST naming the valid ones."""
    try:
        return Role(str(value))
    except ValueError:
        raise ProtocolError(
            ErrorCode.BAD_REQUEST, f"role must be one of {[r.value for r in ORDER]}, got {value!r}", field="role"
        ) from None
