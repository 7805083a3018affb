"""User sessions: what ``login`` through a GUI process creates and the ``auth`` header names.

A session is bound to the GUI key that signed in: the same token from any other key is
refused, so a token that leaks (a log, a screenshot) is useless without that GUI's
secret key. Sessions end after ``idle_s`` without use or ``absolute_s`` after sign-in,
whichever comes first, or at ``logout``. Only a hash of each token is kept, and their
number is bounded (the least recently used ends first).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from protocol.errors import ErrorCode, ProtocolError

TOKEN_BYTES = 32


@dataclass(slots=True)
class Session:
    user: str
    gui_key: str
    created: float
    last_used: float

    def expires_at(self, idle_s: float, absolute_s: float) -> float:
        return min(self.last_used + idle_s, self.created + absolute_s)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class SessionTable:
    def __init__(
        self,
        idle_s: float = 30 * 60,
        absolute_s: float = 12 * 3600,
        max_sessions: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.idle_s = idle_s
        self.absolute_s = absolute_s
        self.max_sessions = max_sessions
        self.clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, user: str, gui_key: str) -> tuple[str, Session]:
        now = self.clock()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        session = Session(user, gui_key, now, now)
        self._sessions[_digest(token)] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return token, session

    def expires_at(self, session: Session) -> float:
        return session.expires_at(self.idle_s, self.absolute_s)

    def resolve(self, token: str, gui_key: str) -> Session:
        """The live session of ``token`` used from ``gui_key``; UNAUTHENTICATED otherwise (and it counts as use)."""
        digest = _digest(token)
        session = self._sessions.get(digest)
        if session is None:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "unknown or ended session: sign in again")
        if session.gui_key != gui_key:
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "this session belongs to another console: sign in again")
        now = self.clock()
        if now >= self.expires_at(session):
            del self._sessions[digest]
            raise ProtocolError(ErrorCode.UNAUTHENTICATED, "the session expired: sign in again")
        session.last_used = now
        self._sessions.move_to_end(digest)
        return session

    def end(self, token: str, gui_key: str) -> bool:
        digest = _digest(token)
        session = self._sessions.get(digest)
        if session is None or session.gui_key != gui_key:
            return False
        del self._sessions[digest]
        return True

    def end_user(self, user: str, keep_token: str | None = None) -> int:
        """End every session of ``user`` (but the one of ``keep_token``: whoever made the change stays in)."""
        keep = _digest(keep_token) if keep_token is not None else None
        return self._end([d for d, s in self._sessions.items() if s.user == user and d != keep])

    def end_gui(self, gui_key: str) -> int:
        """End every session a GUI key opened (its key was revoked)."""
        return self._end([d for d, s in self._sessions.items() if s.gui_key == gui_key])

    def _end(self, digests: list[str]) -> int:
        for digest in digests:
            del self._sessions[digest]
        return len(digests)

    def count_user(self, user: str) -> int:
        now = self.clock()
        return sum(1 for s in self._sessions.values() if s.user == user and now < self.expires_at(s))

    def sweep(self) -> int:
        """Forget expired sessions (called from the bridge's timer)."""
        now = self.clock()
        return self._end([d for d, s in self._sessions.items() if now >= self.expires_at(s)])
