"""A poll that runs only while its view is shown.

Views whose data has no event (the host's CPU, the audit trail) ask again on a timer. The task is
spawned in the session's TaskSet, so a closed tab stops it even while the view is still shown,
and it is cancelled and awaited when the view is hidden, so a hidden view never loads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from client.tasks import TaskSet


class PollWhileShown:
    def __init__(
        self,
        tasks: TaskSet,
        name: str,
        interval_s: float,
        shown: Callable[[], bool],
        tick: Callable[[], Awaitable[None]],
    ) -> None:
        self.tasks, self.name, self.interval_s = tasks, name, interval_s
        self.shown, self.tick = shown, tick
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = self.tasks.spawn(self._run(), self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while self.shown():
            await asyncio.sleep(self.interval_s)
            await self.tick()
