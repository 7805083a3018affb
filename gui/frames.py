"""One tab's frames: what changed is drawn once per frame, from the latest state, and only while the
tab keeps up.

A change in the store sends nothing by itself: the shown views that draw it render it into their
controls and mark themselves (``invalidate``). The next frame sends each marked view's changes
once (Flet's diff, the costly part, and one patch). Frames are at least ``FRAME_S`` apart: after
a quiet spell the first change goes out at once (in the event loop's next turn, so the changes
made in the same turn go with it), and changes that come while frames are busy wait for the next
one, so a burst becomes one patch of the latest state, and a state superseded before its frame
is never diffed nor sent.

Flet queues what a session sends without bound, and a patch once made can never be dropped
(the next one is a diff against it). So the bound is put before the diff: while the tab has not
taken what was sent (more than ``MAX_BACKLOG`` messages queued for its websocket) or is not
connected, frames wait and the views stay marked; the frame that finally goes out draws the
latest state, whatever happened meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import flet as ft
import structlog

log = structlog.get_logger()

FRAME_S = 0.05
MAX_BACKLOG = 4  # messages queued for the tab's websocket beyond which frames wait

Spawn = Callable[[Coroutine[Any, Any, None], str], "asyncio.Task[None]"]
Backlog = Callable[[], int | None]


class Drawable(Protocol):
    """A view: ``flush`` sends what its renders since the last frame changed."""

    visible: bool

    def flush(self) -> None: ...


def no_backlog() -> int | None:
    return 0


def send_backlog(page: ft.Page) -> int | None:
    """Messages Flet has queued for this tab's websocket and not sent yet; None while no browser is
    attached. flet-web keeps the queue private (``FletApp.__send_queue``, an ``asyncio.Queue``
    that ``send_message`` fills and the websocket's send loop drains); a connection without one
    (another transport) reports 0, i.e. no bound."""
    try:
        connection = page.session.connection
    except RuntimeError:  # the page's session is gone
        return None
    if connection is None:
        return None
    queue = getattr(connection, "_FletApp__send_queue", None)
    return queue.qsize() if isinstance(queue, asyncio.Queue) else 0


class Frames:
    def __init__(self, spawn: Spawn, backlog: Backlog = no_backlog) -> None:
        self._spawn = spawn
        self.backlog = backlog
        self._due: dict[int, Drawable] = {}  # by id(), in the order they were marked
        self._since = 0.0  # when the oldest mark still due was made
        self._task: asyncio.Task[None] | None = None
        self._last = -FRAME_S  # when the last frame was sent (monotonic)
        self.paused = False
        self.drawn = 0  # frames sent (tests and diagnostics)
        self.held = 0  # frame periods spent waiting for a slow or absent tab

    @property
    def idle(self) -> bool:
        """Nothing due and no frame on its way."""
        return not self._due and (self._task is None or self._task.done())

    def invalidate(self, view: Drawable) -> None:
        """Draw ``view`` in the next frame (once, however often it is marked meanwhile)."""
        if not self._due:
            self._since = time.monotonic()
        self._due[id(view)] = view
        self._start()

    def pause(self) -> None:
        """No browser attached: keep what is due until ``resume``."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._start()

    def _start(self) -> None:
        if self._due and not self.paused and (self._task is None or self._task.done()):
            try:
                self._task = self._spawn(self._next_frame(), "frame")
            except RuntimeError:  # the session has ended: nothing will be drawn again
                self._due.clear()

    async def _next_frame(self) -> None:
        await asyncio.sleep(max(0.0, self._last + FRAME_S - time.monotonic()))
        while not self._tab_keeps_up():
            if self.paused:
                return  # resume() starts the frame again
            self.held += 1
            await asyncio.sleep(FRAME_S)
        self.draw()

    def _tab_keeps_up(self) -> bool:
        queued = self.backlog()
        return queued is not None and queued <= MAX_BACKLOG

    def draw(self) -> None:
        """Send every view due now (the frame's work; tests call it to skip the wait)."""
        due, self._due = list(self._due.values()), {}
        started = time.monotonic()
        for view in due:
            if not view.visible:
                continue  # hidden meanwhile: it draws itself when shown again
            try:
                view.flush()
            except Exception:  # one view's bug must not keep the others off the screen
                log.exception("gui.flush_failed", view=type(view).__name__)
        self.drawn += 1
        self._last = time.monotonic()
        log.debug(
            "gui.frame",
            views=len(due),
            waited_ms=round((started - self._since) * 1e3, 1),
            draw_ms=round((time.monotonic() - started) * 1e3, 1),
        )
