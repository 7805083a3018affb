"""Who answers (a reply's and an event's ``mode``), and what the bridge does while the real
backend a stack is configured with is unavailable (the fallback ``Policy``)."""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """``REAL``/``MOCK``: the backend that answered or published. ``BRIDGE``: the bridge itself.
    ``LOCAL``: the client library, for a request it could not deliver or a reply it could not
    handle. ``NONE``: the bridge's serving mode while no backend answers."""

    REAL = "real"
    MOCK = "mock"
    BRIDGE = "bridge"
    LOCAL = "local"
    NONE = "none"


BACKEND_MODES: frozenset[Mode] = frozenset({Mode.REAL, Mode.MOCK})


class Policy(StrEnum):
    """What answers a request while the real backend is expected (an allow-listed key bound to
    mode real) but unavailable (not registered since the bridge started, or gone)."""

    STALE = "stale"
    READS = "reads"
    ALL = "all"
    NONE = "none"


class OutageAnswer(StrEnum):
    """How a request is answered while the real backend is expected but unavailable."""

    LAST_REAL = "last_real"  # the last known real reply to the same request, marked stale; else BACKEND_UNAVAILABLE
    MOCK = "mock"  # the mock answers, and its reply says mode mock
    UNAVAILABLE = "unavailable"  # BACKEND_UNAVAILABLE: not executed anywhere


POLICY_USE: dict[Policy, str] = {
    Policy.STALE: "a stack configured with a real server: the mock never speaks for it",
    Policy.READS: "development: the seed's fallback of reads to the demo data",
    Policy.ALL: "development only: even writes land in the demo data",
    Policy.NONE: "nothing is answered while the real server is away",
}


def during_outage(policy: Policy, *, is_write: bool, streaming: bool = False) -> OutageAnswer:
    """The routing rule the bridge applies (and docs/protocol.md's policy table shows).

    A stream is never answered from memory: its bytes are not kept."""
    if policy is Policy.ALL or (policy is Policy.READS and not is_write):
        return OutageAnswer.MOCK
    if policy is Policy.STALE and not is_write and not streaming:
        return OutageAnswer.LAST_REAL
    return OutageAnswer.UNAVAILABLE


def default_policy(real_expected: bool) -> Policy:
    """The policy of a bridge started without ``--policy``. Without an expected real backend
    the mock serves everything whatever the policy: ``reads`` is then only a name."""
    return Policy.STALE if real_expected else Policy.READS


# What bridge_status and every bridge.mode event say about the bridge's serving state (the consoles follow it).
BRIDGE_STATE_FIELDS: tuple[tuple[str, str], ...] = (
    (
        "mode",
        f"string: {Mode.REAL}, {Mode.MOCK} or {Mode.NONE}: who answers new requests "
        f"({Mode.NONE} also while the mock is up but may not stand in for an expected real backend)",
    ),
    ("policy", f"string: {', '.join(p.value for p in Policy)} (see Fallback policies)"),
    ("real_expected", "boolean: a backend key is allow-listed with mode real (a mock-only stack: false)"),
    (
        "real_unavailable_since",
        "datetime or null: set while a real backend is expected and none is alive (since the bridge started, "
        "or since the real backend was last seen going)",
    ),
)
