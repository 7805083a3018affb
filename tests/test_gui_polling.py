"""PollWhileShown: ticks only while its view is shown, stops when hidden or when the session closes."""

from __future__ import annotations

import asyncio

import pytest

from client.tasks import TaskSet
from gui.views.polling import PollWhileShown
from tests.conftest import run_async


def test_ticks_while_shown_and_not_after_stop() -> None:
    run_async(_test_ticks_while_shown_and_not_after_stop)


async def _test_ticks_while_shown_and_not_after_stop() -> None:
    tasks = TaskSet("test")
    ticks: list[int] = []
    ticked = asyncio.Event()

    async def tick() -> None:
        ticks.append(1)
        if len(ticks) >= 3:
            ticked.set()

    poller = PollWhileShown(tasks, "poll", 0.001, lambda: True, tick)
    poller.start()
    poller.start()  # a second show does not start a second loop
    await asyncio.wait_for(ticked.wait(), 5)
    await poller.stop()
    seen = len(ticks)
    await asyncio.sleep(0.02)
    assert len(ticks) == seen
    await tasks.close()


def test_a_hidden_view_ends_its_loop() -> None:
    run_async(_test_a_hidden_view_ends_its_loop)


async def _test_a_hidden_view_ends_its_loop() -> None:
    tasks = TaskSet("test")
    shown = True
    ticks: list[int] = []

    async def tick() -> None:
        nonlocal shown
        ticks.append(1)
        shown = False

    poller = PollWhileShown(tasks, "poll", 0.001, lambda: shown, tick)
    poller.start()
    assert poller._task is not None
    await asyncio.wait_for(poller._task, 5)
    assert ticks == [1]
    await tasks.close()


def test_a_closed_session_stops_polling() -> None:
    run_async(_test_a_closed_session_stops_polling)


async def _test_a_closed_session_stops_polling() -> None:
    tasks = TaskSet("test")
    poller = PollWhileShown(tasks, "poll", 0.001, lambda: True, lambda: asyncio.sleep(0))
    poller.start()
    await tasks.close()
    with pytest.raises(RuntimeError):
        poller.start()
