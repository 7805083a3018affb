"""Background tasks with an owner: nothing the client or the GUI starts runs unsupervised.

A ``TaskSet`` keeps a strong reference to each task it spawned (asyncio keeps only weak
ones, so an unreferenced task can vanish mid-flight), logs a task that fails instead of
letting the failure pass silently, and on ``close`` cancels and awaits what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

import structlog

log = structlog.get_logger()

T = TypeVar("T")


class TaskSet:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coroutine: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        if self._closed:
            coroutine.close()  # never started: no "coroutine was never awaited" warning
            raise RuntimeError(f"{self.owner} is closed; cannot start {name}")
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.owner}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("task.failed", task=task.get_name(), error=f"{type(exc).__name__}: {exc}", exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every task still running and wait until all have ended; no new ones start."""
        self._closed = True
        current = asyncio.current_task()
        tasks = [task for task in self._tasks if task is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            # Their failures were logged by _done; closing must not raise them again.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
