"""Following the bridge's events from asyncio, with no gaps (the GUI's live updates).

Deliveries (events in ``seq`` order, or a Resync when state must be reloaded) go to
one async callback; a callback that raises is logged and following goes on. After the
connection comes back the follower asks the bridge what it missed, so a restarted
bridge (new epoch) is noticed even when quiet. Its one task is owned and ends with ``close``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
import zmq
import zmq.asyncio

from client.async_connection import AsyncBridgeClient, ConnectionState
from client.sequencer import Delivery, EventSequencer, event_from_frames
from client.tasks import TaskSet
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
        self._tasks = TaskSet(f"event-follower-{client.session[:8]}")
        self._catch_up = asyncio.Event()
        client.add_state_listener(self._on_state)

    async def start(self) -> None:
        self._tasks.spawn(self._run(), "follow")

    async def close(self) -> None:
        await self._tasks.close()
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
        if self.client.connection is not None:
            self.client.connection.apply_client(sub)
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
            await self._deliver(deliveries)

    async def _deliver(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            try:
                await self.on_delivery(delivery)
            except Exception:
                # One event the receiver could not apply must not end following.
                log.exception("client.delivery_failed")

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
            await self._deliver(deliveries)
            if gap:
                await self._backfill()
