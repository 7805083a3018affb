"""Who is signed in to a tab, what a sign-in attempt came to, and what their role may use.

The bridge decides every request; the GUI only mirrors its rules so that a control the
signed-in role may not use, or a write the bridge refuses while the real server is down,
is disabled (with a tooltip naming the role it needs, or the outage) rather than failing
when clicked. ``gate`` reads the role an operation needs from the catalogue
(the one place that declares it), never from a literal in a view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gui.outage import BridgeState
from protocol.catalogue import get_operation
from protocol.errors import ErrorCode, ProtocolError
from protocol.responses import Reply
from protocol.roles import Role, allows, parse_role

SESSION_EXPIRED = "Your session expired; sign in again"
SIGNED_OUT = "You signed out"


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: str
    role: Role
    token: str
    expires_at: Any = None
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.user} ({self.role})"


@dataclass(frozen=True, slots=True)
class LoginRefused:
    message: str  # shown on the login page as the bridge gave it (throttling says how long to wait)
    wrong_credentials: bool = False  # the bridge refused the name, password or code (not: unreachable, throttled)
    needs_code: bool = False  # the user has TOTP and no (or a wrong) code was given


LoginOutcome = SignedIn | LoginRefused


def login_outcome(reply: Reply) -> LoginOutcome:
    """A login reply as what the login page shows: the signed-in user, or why not."""
    if reply["success"]:
        data = reply["data"]
        try:
            role = parse_role(data.get("role"))
        except ProtocolError as exc:
            return LoginRefused(f"The bridge answered with an unknown role: {exc.message}")
        return SignedIn(str(data["user"]), role, str(data["token"]), data.get("expires_at"), data.get("settings") or {})
    code = reply.get("error_code")
    details = reply.get("details") or {}
    message = reply.get("message") or "sign-in refused"
    if code == ErrorCode.UNAUTHENTICATED:
        return LoginRefused(f"Sign-in refused: {message}", True, bool(details.get("totp")))
    if code == ErrorCode.RATE_LIMITED:
        return LoginRefused(f"Too many attempts: {message}")
    return LoginRefused(f"Sign-in failed: {message} [{code}]")


@dataclass(frozen=True, slots=True)
class Gate:
    allowed: bool
    tooltip: str | None  # the control's tooltip: its label, or why it is disabled


def needs_text(need: Role) -> str:
    return f"Needs role {need}"


def gate(role: Role | None, op: str, label: str | None = None, bridge: BridgeState | None = None) -> Gate:
    """Whether ``role`` may run ``op`` now; the tooltip names the role needed when it may not, or
    (given the ``bridge`` state) the outage when it is a write the bridge would refuse for it."""
    need = get_operation(op).role
    if not allows(role, need):
        assert need is not None  # allows() is True for an operation that needs no role
        return Gate(False, f"{label} · {needs_text(need)}" if label else needs_text(need))
    refusal = bridge.write_refusal(op) if bridge is not None else None
    if refusal is not None:
        return Gate(False, f"{label} · {refusal}" if label else refusal)
    return Gate(True, label)
