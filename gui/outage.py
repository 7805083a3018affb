"""What the bridge says about the real server, and what the console makes of it.

The bridge alone judges whether the real server is there: the console learns its state
from ``bridge_status`` (at sign-in, reconnect and resync) and from every ``bridge.mode``
event, and every tab of every browser follows that one state, never its own last reply,
so they all agree. From it come the outage banner, the data-source pill and the gate on
writes. ``Shown`` records where each value on screen came from (who answered, as of
when, stale or not), so the banner can say how old the data shown is and a view can
label the mock's data in a real stack.

Times read HH:MM in UTC, as every time the console shows (``gui.format.when``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import structlog

from protocol.catalogue import get_operation
from protocol.errors import ErrorCode
from protocol.modes import BACKEND_MODES, Mode, Policy
from protocol.operation import HandledBy
from protocol.responses import Reply

log = structlog.get_logger()

# The only policy under which the bridge hands writes to the mock when the real server is down.
WRITES_TO_MOCK = Policy.ALL
READS_TO_MOCK = frozenset({Policy.READS, Policy.ALL})


def hhmm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M")


@dataclass(frozen=True, slots=True)
class BridgeState:
    """The fields of ``bridge_status`` and of a ``bridge.mode`` event the console follows."""

    mode: str | None = None  # who answers now: real, mock or none (None: not known yet)
    policy: str | None = None
    real_expected: bool = False  # the bridge's persisted configuration names a real backend
    real_unavailable_since: datetime | None = None  # set while that real backend is expected and not alive

    def updated(self, data: Mapping[str, Any]) -> BridgeState:
        """This state with what ``data`` says; a field it does not carry (or carries mistyped) keeps its value."""
        changes: dict[str, Any] = {}
        for name, kinds in _FIELD_TYPES.items():
            if name not in data:
                continue
            if isinstance(data[name], kinds):
                changes[name] = data[name]
            else:
                log.warning("gui.bridge_state_field_ignored", field=name, type=type(data[name]).__name__)
        return replace(self, **changes)

    @property
    def outage(self) -> bool:
        return self.real_unavailable_since is not None

    @property
    def serving_mock(self) -> bool:
        """The real server is down and the bridge's policy lets the mock answer reads in its place."""
        return self.outage and self.mode == Mode.MOCK and self.policy in READS_TO_MOCK

    @property
    def writes_blocked(self) -> bool:
        return self.outage and self.policy != WRITES_TO_MOCK

    @property
    def unavailable_text(self) -> str:
        assert self.real_unavailable_since is not None, "only during an outage"
        return f"Real server unavailable since {hhmm(self.real_unavailable_since)}"

    def describes(self, event_mode: str) -> bool:
        """Do the events a backend of ``event_mode`` publishes describe the data shown? Only the one
        that answers now does, and never the mock in a stack that expects a real server unless it
        answers in its place (the bridge keeps those events off its topics too; this holds for an
        older bridge as well)."""
        if event_mode not in BACKEND_MODES:
            return True  # the bridge's own events
        if self.mode in BACKEND_MODES:
            return event_mode == self.mode
        return not (self.real_expected and event_mode == Mode.MOCK)

    def write_refusal(self, op: str) -> str | None:
        """Why ``op`` cannot run now, when it is a write the bridge would refuse for the outage
        (writes the bridge answers itself, such as a user's settings, still work)."""
        operation = get_operation(op)
        if not self.writes_blocked or not operation.is_write or operation.handled_by is HandledBy.BRIDGE:
            return None
        return self.unavailable_text


_FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "mode": str,
    "policy": str,
    "real_expected": bool,
    "real_unavailable_since": (datetime, type(None)),
}


@dataclass(frozen=True, slots=True)
class Shown:
    """Where the value a state key holds came from."""

    mode: str  # who answered
    as_of: datetime | None  # when it was the backend's truth (None: a stale reply that did not say)
    stale: bool  # from the bridge's memory of the real server, or kept after a reload failed


def shown_after(reply: Reply, previous: Shown | None) -> Shown | None:
    """What a key shows after ``reply`` to its reload: the reply's data, or on failure the value it kept."""
    if not reply["success"]:
        return None if previous is None else replace(previous, stale=True)
    fields: Mapping[str, Any] = reply
    if not fields.get("stale"):
        return Shown(reply["mode"], reply["timestamp"], False)
    as_of = fields.get("as_of")
    if not isinstance(as_of, datetime):
        log.warning("gui.stale_reply_without_as_of", mode=reply["mode"])
        as_of = None
    return Shown(reply["mode"], as_of, True)


def disagrees(state: BridgeState, reply: Reply) -> bool:
    """A reply that says the bridge state changed before its event came (or got lost): read it again."""
    fields: Mapping[str, Any] = reply
    if state.outage:
        return reply["success"] and reply["mode"] == Mode.REAL and not fields.get("stale")
    return bool(fields.get("stale")) or (
        state.real_expected and reply.get("error_code") == ErrorCode.BACKEND_UNAVAILABLE
    )


def oldest_stale(shown: Iterable[Shown]) -> datetime | None:
    """As of when the oldest stale data on screen is (None: none of it says)."""
    return min((s.as_of for s in shown if s.stale and s.as_of is not None), default=None)


def banner_text(state: BridgeState, as_of: datetime | None) -> str | None:
    """The outage banner's text, or None when there is no outage."""
    if not state.outage:
        return None
    if state.serving_mock:
        return f"{state.unavailable_text} — showing the mock's demo data, not the real server's"
    if as_of is None:
        return f"{state.unavailable_text} — no data of it to show"
    return f"{state.unavailable_text} — showing data as of {hhmm(as_of)}"


class Tone(StrEnum):
    LIVE = "live"
    DEMO = "demo"
    MOCK = "mock"
    STALE = "stale"
    NONE = "none"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Pill:
    text: str
    tone: Tone


def source_pill(state: BridgeState, as_of: datetime | None) -> Pill:
    """What the data-source pill says: whose data the console shows, and whether it is current."""
    if state.serving_mock:
        return Pill("MOCK DATA · real server down", Tone.MOCK)
    if state.outage:
        return Pill(f"STALE · as of {hhmm(as_of)}" if as_of is not None else "STALE · no data", Tone.STALE)
    if state.mode == Mode.REAL:
        return Pill("LIVE · real server", Tone.LIVE)
    if state.mode == Mode.MOCK:
        # A mock answering in a stack that expects a real server is not a demo.
        return Pill("MOCK DATA", Tone.MOCK) if state.real_expected else Pill("DEMO DATA", Tone.DEMO)
    if state.mode == Mode.NONE:
        return Pill("NO BACKEND", Tone.NONE)
    return Pill("source unknown", Tone.UNKNOWN)


MOCK_LABEL = "MOCK DATA — the mock's demo data, not the real server's (the real server is down)"


def mock_label(state: BridgeState, shown: Iterable[Shown | None]) -> str | None:
    """A view's label when it shows data the mock answered in a stack that expects a real server."""
    if state.real_expected and any(s is not None and s.mode == Mode.MOCK for s in shown):
        return MOCK_LABEL
    return None
