"""Following the bridge's events from asyncio, with no gaps (the GUI's live updates).

Deliveries (events in ``seq`` order, or a Resync when state must be reloaded) go to
one async callback. After the connection comes back the follower asks the bridge
what it missed, so a restarted bridge (new epoch) is noticed even when quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
import zmq
import zmq.asyncio

from client.async_connection import AsyncBridgeClient, ConnectionState
from client.sequencer import Delivery, EventSequencer, event_from_frames
from protocol.codec import decode
from protocol.envelope import decode_header
from protocol.errors import ProtocolError
from runtime.endpoints import connectable

log = structlog.get_logger()

OnDelivery = Callable[[Delivery], Awaitable[None]]
RETRY_S = 1.0


class AsyncEventFollower:
    def __init__(self, client: AsyncBridgeClient, on_delivery: OnDelivery, *, topics: tuple[str, ...] = ("",)) -> None:
        self.client = client
        self.on_delivery = on_delivery
        self.topics = topics
        self.sequencer: EventSequencer | None = None
        self.sub: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._catch_up = asyncio.Event()
        client.add_state_listener(self._on_state)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.sub is not None:
            self.sub.close(0)
            self.sub = None

    async def _on_state(self, state: ConnectionState) -> None:
        if state is ConnectionState.CONNECTED and self.sequencer is not None:
            self._catch_up.set()

    async def _subscribe(self) -> None:
        """Learn the events endpoint and the current position; retry until the bridge answers."""
        while True:
            reply = await self.client.call("bridge_status")
            if reply.get("success"):
                status = reply["data"]
                break
            await asyncio.sleep(RETRY_S)
        sub = self.client.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 100_000)
        for topic in self.topics:
            sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        sub.connect(connectable(status["events_endpoint"], self.client.endpoint))
        self.sub = sub
        self.sequencer = EventSequencer(status["epoch"], status["latest_seq"])

    async def _backfill(self) -> None:
        assert self.sequencer is not None
        ask = True
        while ask:
            reply = await self.client.call("events_since", {"seq": self.sequencer.last_seq})
            if not reply.get("success"):
                self._catch_up.set()  # try again when the bridge is back
                return
            deliveries, ask = self.sequencer.backfill(reply["data"])
            for delivery in deliveries:
                await self.on_delivery(delivery)

    async def _run(self) -> None:
        await self._subscribe()
        assert self.sub is not None and self.sequencer is not None
        await self._backfill()
        while True:
            if self._catch_up.is_set():
                self._catch_up.clear()
                await self._backfill()
            try:
                frames = await asyncio.wait_for(self.sub.recv_multipart(), RETRY_S)
            except TimeoutError:
                continue
            if len(frames) != 3:
                continue
            try:
                header = decode_header(frames[1])
                event = event_from_frames(header.fields, decode(frames[2]) if frames[2] else None)
            except ProtocolError as exc:
                log.warning("client.bad_event", reason=exc.message)
                continue
            deliveries, gap = self.sequencer.live(event)
            for delivery in deliveries:
                await self.on_delivery(delivery)
            if gap:
                await self._backfill()
