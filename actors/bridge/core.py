"""The bridge's logic, free of sockets: routing, fallback, deadlines, dedup, events.

The socket shell feeds it frames and timer ticks; it answers through an ``Outbox``.
Every request gets exactly one reply: from a backend, from the reply cache (a
duplicate id), or from the bridge itself (an error, or its own operations).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from actors.bridge import lanes, streams
from actors.bridge.auth.authority import Authority
from actors.bridge.auth.principals import Acting, Principal
from actors.bridge.authorize import Gate
from actors.bridge.config import (
    CLIENT_IN,
    CLIENT_OUT,
    EVENT_OUT,
    PLUGIN_TIMEOUT_S,
    BridgeConfig,
    Outbox,
    Pending,
    Tap,
)
from actors.bridge.events import EventLog, write_notice
from actors.bridge.frames import client_message
from actors.bridge.inflight import PendingTable
from actors.bridge.membership import Membership
from actors.bridge.outage import Outage, Stale
from actors.bridge.own_ops import OwnOperations
from actors.bridge.registry import Backend
from actors.bridge.replies import Deadlines, ReplyCache, RequestKey
from actors.bridge.status import bridge_status
from protocol import responses
from protocol.catalogue import CATALOGUE, HandledBy, Operation
from protocol.codec import encode
from protocol.envelope import (
    ACK,
    CANCEL,
    CHUNK,
    CONTROL,
    DISCONNECT,
    EVENT,
    HEARTBEAT,
    READY,
    REPLY,
    REQUEST,
    TICKET,
    Header,
    decode_header,
    encode_header,
    readable_id,
    reply_frames,
)
from protocol.errors import ErrorCode, ProtocolError
from protocol.events import BRIDGE_WRITE
from protocol.modes import Mode

log = structlog.get_logger()


class BridgeCore:
    def __init__(
        self,
        config: BridgeConfig,
        outbox: Outbox,
        clock: Callable[[], float] = time.monotonic,
        *,
        authority: Authority,
    ) -> None:
        self.config = config
        self.out = outbox
        self.clock = clock
        self.auth = authority
        self.gate = Gate(authority)
        self.members = Membership(
            config, self.gate, outbox, self.publish_event, self._fail_pending_of, lambda: self.outage.update()
        )
        self.registry = self.members.registry
        self.outage = Outage(config, self.registry, authority.stores.backends, self.publish_event)
        self.events = EventLog(uuid.uuid4().hex[:12], config.ring_size)
        self.own = OwnOperations(
            self.gate,
            self.events,
            self.status,
            bridge_public_key=config.public_key,
            drop_backend_key=lambda key: self.members.drop_key(key, self.clock()),
            registered_keys=lambda: {b.key for b in self.registry.backends.values()},
        )
        self.pending = PendingTable()
        self._deadlines = Deadlines()
        self._cache = ReplyCache(
            config.reply_cache_ttl, config.reply_cache_size, config.reply_cache_bytes, config.reply_cache_peer_bytes
        )
        self.started = clock()
        self._next_heartbeat = self.started
        self.taps: list[Tap] = []

    def _tap(self, direction: str, header: bytes, body: bytes) -> None:
        for tap in self.taps:
            if tap.active:
                tap.record(direction, header, body)

    def _to_client(self, identity: bytes, frames: list[bytes]) -> None:
        if self.taps:
            self._tap(CLIENT_OUT, frames[0], frames[1])
        self.out.to_client(identity, frames)

    # ------------------------------------------------------------------ frontend
    def on_frontend(self, frames: list[bytes], key: str | None = None, peer: str | None = None) -> None:
        """A client's message; ``key`` is the CURVE key ZAP authenticated for it (its User-Id)."""
        identity = frames[0]
        try:
            header, header_frame, body = client_message(frames)
            if self.taps:
                self._tap(CLIENT_IN, header_frame, body)
            principal = self.gate.principal(key, peer)
            if header.kind not in (REQUEST, ACK, CANCEL):
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"clients may not send {header.kind!r} messages")
        except ProtocolError as exc:
            self._reject(identity, readable_id(frames[1]) if len(frames) > 1 else None, exc)
            return
        if header.kind == REQUEST:
            self._on_request(identity, header, header_frame, body, principal, peer)
            return
        pending = self.pending.get((identity, header.reply_to or ""))
        if pending is not None and pending.acting.principal.public_key == principal.public_key:
            self.out.to_backend(pending.backend, [identity, header_frame, body])
            if header.kind == ACK and streams.on_ack(pending, header.fields["index"], self.clock()):
                self._deadlines.push(pending.deadline, (identity, pending.request_id), pending.attempt)

    def _reject(self, identity: bytes, request_id: str | None, exc: ProtocolError, owner: str | None = None) -> None:
        log.warning("bridge.request_rejected", error_code=exc.code.value, reason=exc.message, request_id=request_id)
        self._reply(identity, request_id, responses.from_protocol_error(exc, mode=Mode.BRIDGE), owner)

    def _reply(self, identity: bytes, request_id: str | None, response: dict[str, Any], owner: str | None) -> None:
        frames = reply_frames(request_id, response)
        self._to_client(identity, frames)
        if request_id is not None:
            self._cache.remember((identity, request_id), frames, self.clock(), owner, response.get("error_code"))

    def _on_request(
        self, identity: bytes, header: Header, header_frame: bytes, body: bytes, principal: Principal, peer: str | None
    ) -> None:
        request_id: str = header.fields["id"]
        op: str = header.fields["op"]
        key, owner = (identity, request_id), principal.public_key
        cached = self._cache.get(key, owner)
        if cached is not None:
            log.info("bridge.duplicate_answered_from_cache", request_id=request_id, op=op)
            self._to_client(identity, cached)
            return
        if key in self.pending:
            log.info("bridge.duplicate_in_flight_ignored", request_id=request_id, op=op)
            return
        operation = CATALOGUE.get(op)
        try:
            if len(body) > self.config.max_size:
                raise ProtocolError(
                    ErrorCode.PAYLOAD_TOO_LARGE,
                    f"body of {len(body)} bytes exceeds the limit of {self.config.max_size} bytes",
                )
            if operation is None and not self.registry.knows_op(op):
                raise ProtocolError(ErrorCode.UNKNOWN_OPERATION, f"unknown operation {op!r}", op=op)
            acting = self.gate.acting(principal, header.fields.get("auth"), peer, lenient=op == "logout")
            self.gate.require(acting, op, operation, body, peer)
        except ProtocolError as exc:
            self._reject(identity, request_id, exc, owner)
            return
        if operation is not None and operation.handled_by is HandledBy.BRIDGE:
            self._answer_locally(identity, header, operation, body, acting, peer)
            return
        header_frame = lanes.forwarded_header(header, header_frame)  # never a session token, nor a lane key
        # Operations only a plugin backend knows are treated as writes: never fall back silently.
        is_write = operation.is_write if operation is not None else True
        plan = self.pending.refusal(
            identity, self.config.max_inflight_per_peer, self.config.max_inflight
        ) or self.outage.route(op, operation, is_write, acting, body)
        if isinstance(plan, Stale):
            self._to_client(identity, plan.frames(request_id))  # of the moment: never kept in the reply cache
            return
        if isinstance(plan, ProtocolError):
            if is_write:
                self.gate.audit_request(acting, peer, operation, op, body, plan.code.value, plan.message)
            self._reject(identity, request_id, plan, owner)
            return
        timeout_ms = header.fields.get("timeout_ms")
        timeout = timeout_ms / 1000.0 if timeout_ms else (operation.timeout_s if operation else PLUGIN_TIMEOUT_S)
        now = self.clock()
        session = header.fields.get("session")
        pending = Pending(
            identity, request_id, op, is_write, session, header_frame, body, plan, now + timeout, timeout, acting, peer
        )
        pending.started = now
        pending.lane = lanes.wants_lane(header, operation)
        self.pending.add(key, pending)
        self._dispatch(key, pending, now)

    def _dispatch(self, key: tuple[bytes, str], pending: Pending, now: float) -> None:
        """Send to the current attempt's backend, moving down the plan while sends fail."""
        while True:
            remaining_attempts = len(pending.plan) - pending.attempt
            # With a fallback still in the plan, this attempt gets half of what is left.
            budget = max(pending.deadline - now, 0.0)
            attempt_deadline = now + (budget / 2 if remaining_attempts > 1 else budget)
            backend = self.registry.backends.get(pending.backend)
            if backend is not None and backend.alive:
                # While a recording runs, downloads pass the bridge: it records every byte and final reply.
                header = lanes.backend_header(pending, backend, recording=any(t.active for t in self.taps))
                if self.out.to_backend(backend.identity, [pending.identity, header, pending.body]):
                    backend.inflight += 1
                    pending.attempt_deadline = attempt_deadline
                    self._deadlines.push(attempt_deadline, key, pending.attempt)
                    return
                self.members.down(backend, "unreachable", now, skip=key)
            if not self._next_attempt(key, pending, "backend unreachable", now):
                return

    def _next_attempt(self, key: tuple[bytes, str], pending: Pending, reason: str, now: float) -> bool:
        """Move to the next backend in the plan; answer with an error when there is none."""
        if pending.attempt + 1 < len(pending.plan):
            pending.attempt += 1
            log.info("bridge.fallback", request_id=pending.request_id, op=pending.op, reason=reason)
            return True
        stale = self.outage.failed(pending, reason)
        if stale is not None:
            self.pending.pop(key)  # a read: nothing to audit, and nothing to keep in the reply cache
            self._to_client(pending.identity, stale.frames(pending.request_id))
            return False
        error = streams.failure(pending, reason)
        log.warning(
            "bridge.request_failed", error_code=error.code.value, reason=error.message, request_id=pending.request_id
        )
        response = responses.from_protocol_error(error, mode=Mode.BRIDGE)
        self._complete(key, pending, reply_frames(pending.request_id, response), error.code.value, error.message)
        return False

    def _complete(
        self, key: tuple[bytes, str], pending: Pending, frames: list[bytes], outcome: str, message: str | None = None
    ) -> None:
        """A request's one final answer: audited first when it is a write (fsynced before it leaves)."""
        self.pending.pop(key)
        operation = CATALOGUE.get(pending.op)
        if pending.is_write:
            self.gate.audit_request(pending.acting, pending.peer, operation, pending.op, pending.body, outcome, message)
        self._to_client(pending.identity, frames)
        error_code = None if outcome == "ok" else outcome
        self._cache.remember(key, frames, self.clock(), pending.acting.principal.public_key, error_code)

    def _answer_locally(
        self, identity: bytes, header: Header, operation: Operation, body: bytes, acting: Acting, peer: str | None
    ) -> None:
        request_id: str = header.fields["id"]
        response = self.own.answer(operation, acting, body, peer, self.config.max_size)
        ok = response["success"]
        if operation.is_write:
            outcome, message = ("ok", None) if ok else (response["error_code"], response["message"])
            self.gate.audit_request(acting, peer, operation, operation.name, body, outcome, message)
        if not ok:
            log.warning("bridge.request_rejected", error_code=response["error_code"], reason=response["message"])
        self._reply(identity, request_id, response, acting.principal.public_key)
        if ok and operation.is_write:
            notice = write_notice(operation.name, body, header.fields.get("session"), request_id, Mode.BRIDGE)
            self.publish_event(BRIDGE_WRITE, notice)
            self.outage.update()  # the backend allow-list may have changed what is expected

    # ------------------------------------------------------------------ backends
    def on_backend(self, frames: list[bytes], key: str | None = None) -> None:
        """A backend's message; ``key`` is the CURVE key ZAP authenticated (only allow-listed ones get here)."""
        if len(frames) != 4:
            log.warning("bridge.backend_message_malformed", frames=len(frames))
            return
        identity, route, header_frame, body = frames
        allowed = self.auth.stores.backends.get(key) if key else None
        if allowed is None:
            self.auth.refusals.refused(key or "(no key)", "backend", "not an allow-listed backend key", op="backend")
            return
        try:
            header = decode_header(header_frame)
        except ProtocolError as exc:
            log.warning("bridge.backend_message_rejected", error_code=exc.code.value, reason=exc.message)
            return
        now = self.clock()
        kind = header.kind
        if kind == READY:
            self.members.on_ready(identity, header, now, allowed)
            return
        known = self.registry.backends.get(identity)
        if known is not None and known.key != allowed.public_key:
            self.auth.refusals.refused(allowed.public_key, "backend", f"spoke for {known.name}", op="backend")
            return
        backend = self.registry.seen(identity, now)
        if backend is None:
            if kind != DISCONNECT:
                # We restarted, or it was declared dead: ask it to introduce itself again.
                self.out.to_backend(identity, [b"", encode_header(CONTROL, op="reregister"), b""])
            return
        if kind in (REPLY, CHUNK, TICKET):
            self._on_backend_reply(backend, route, header, header_frame, body, now)
        elif kind == EVENT:
            if self.outage.admit_event(backend):
                self._publish_frames(header.fields["topic"], {**header.fields, "mode": backend.mode}, body)
        elif kind == DISCONNECT:
            self.members.down(backend, "disconnect", now, remove=True)
        elif kind != HEARTBEAT:
            log.warning("bridge.backend_kind_unexpected", kind=kind, backend=backend.name)

    def _on_backend_reply(
        self, backend: Backend, route: bytes, header: Header, header_frame: bytes, body: bytes, now: float
    ) -> None:
        key = (route, header.reply_to or "")
        pending = self.pending.get(key)
        if pending is None or pending.backend != backend.identity:
            log.info("bridge.late_reply_dropped", backend=backend.name, request_id=header.reply_to, kind=header.kind)
            return
        if header.kind == CHUNK:  # renews the deadline, and pins the stream to this backend
            streams.on_chunk(pending, header.fields["index"], now)
            self._deadlines.push(pending.deadline, key, pending.attempt)
            self._to_client(route, [header_frame, body])
            return
        backend.inflight -= 1
        if header.kind == TICKET:  # the requester fetches the stream from the backend's bulk lane
            self._complete(key, pending, *lanes.ticket_answer(header, pending, backend))
            return
        ok = header.fields["ok"]
        self.outage.remember(backend, pending, ok, header.fields.get("error_code"), body)
        # Any reply, an error included, is this live backend's answer: only silence, a
        # departure or an unreachable peer moves a request down the plan (never an INTERNAL
        # of the real server answered by the mock as if it were the truth).
        self._complete(key, pending, [header_frame, body], "ok" if ok else str(header.fields.get("error_code")))
        if ok and pending.is_write:
            mode = header.fields.get("mode") or backend.mode
            self.publish_event(
                BRIDGE_WRITE, write_notice(pending.op, pending.body, pending.session, pending.request_id, mode)
            )

    def _fail_pending_of(self, backend: Backend, reason: str, skip: RequestKey | None = None) -> None:
        now = self.clock()
        for key, pending in self.pending.items():
            if key != skip and pending.backend == backend.identity and self._next_attempt(key, pending, reason, now):
                self._dispatch(key, pending, now)

    # ------------------------------------------------------------------ events
    def publish_event(self, topic: str, data: dict[str, Any]) -> None:
        self._publish_frames(topic, {"mode": Mode.BRIDGE, "ts": time.time(), "id": uuid.uuid4().hex}, encode(data))

    def _publish_frames(self, topic: str, fields: dict[str, Any], body: bytes) -> None:
        frames = self.events.stamp(topic, fields, body)
        if self.taps:
            self._tap(EVENT_OUT, frames[1], frames[2])
        self.out.publish(frames)

    # ------------------------------------------------------------------ timers
    def on_timer(self) -> float:
        """Heartbeats, liveness, deadlines, cache expiry; returns when to be called next."""
        now = self.clock()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_interval
            self.members.heartbeat(now)
            self.auth.sessions.sweep()
        for key, attempt in self._deadlines.due(now):
            pending = self.pending.get(key)
            if pending is None or pending.attempt != attempt or pending.attempt_deadline > now:
                continue  # answered, moved on, or renewed by a chunk or an ack since this entry was pushed
            owner = self.registry.backends.get(pending.backend)
            if owner is not None:
                owner.inflight -= 1
            if pending.chunks:  # the backend may still hold the stream: let it go now
                self.out.to_backend(pending.backend, streams.cancel_frames(pending))
            log.warning(
                "bridge.request_timeout",
                request_id=pending.request_id,
                op=pending.op,
                backend=owner.name if owner else None,
            )
            if self._next_attempt(key, pending, "timeout", now):
                self._dispatch(key, pending, now)
        self._cache.expire(now)
        return self.next_wake()

    def next_wake(self) -> float:
        """When on_timer has work next (the next heartbeat or the earliest deadline)."""
        earliest = self._deadlines.earliest()
        if earliest is not None and earliest < self._next_heartbeat:
            return earliest
        return self._next_heartbeat

    def status(self) -> dict[str, Any]:
        return bridge_status(self, self.clock())
