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

from actors.bridge import routing
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
from actors.bridge.events import EventLog
from actors.bridge.registry import Backend, Registry
from actors.bridge.replies import Deadlines, ReplyCache
from protocol import responses
from protocol.catalogue import CATALOGUE, Operation
from protocol.codec import decode, encode
from protocol.envelope import (
    ACK,
    CANCEL,
    CHUNK,
    CONTROL,
    DISCONNECT,
    EVENT,
    HEARTBEAT,
    MAX_HEADER_SIZE,
    READY,
    REPLY,
    REQUEST,
    Header,
    decode_header,
    encode_header,
    reply_frames,
)
from protocol.errors import BACKEND_FAULTS, ErrorCode, ProtocolError
from protocol.events import BRIDGE_BACKEND, BRIDGE_MODE, BRIDGE_WRITE
from protocol.modes import BACKEND_MODES, Mode, Policy

log = structlog.get_logger()


class BridgeCore:
    def __init__(self, config: BridgeConfig, outbox: Outbox, clock: Callable[[], float] = time.monotonic) -> None:
        if config.policy not in tuple(Policy):
            raise ValueError(f"fallback policy must be one of {[p.value for p in Policy]}")
        self.config = config
        self.out = outbox
        self.clock = clock
        self.registry = Registry(config.heartbeat_interval, config.liveness)
        self.events = EventLog(uuid.uuid4().hex[:12], config.ring_size)
        self.pending: dict[tuple[bytes, str], Pending] = {}
        self._deadlines = Deadlines()
        self._cache = ReplyCache(config.reply_cache_ttl, config.reply_cache_size)
        self._mode: str = Mode.NONE
        self._started = clock()
        self._next_heartbeat = self._started
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
    def on_frontend(self, frames: list[bytes]) -> None:
        identity = frames[0]
        if len(frames) not in (2, 3):
            self._reject(
                identity,
                None,
                ProtocolError(ErrorCode.BAD_REQUEST, f"expected [header, body] frames, got {len(frames) - 1}"),
            )
            return
        header_frame = frames[1]
        body = frames[2] if len(frames) == 3 else b""
        try:
            if len(header_frame) > MAX_HEADER_SIZE:
                raise ProtocolError(
                    ErrorCode.PAYLOAD_TOO_LARGE, f"header frame of {len(header_frame)} bytes exceeds {MAX_HEADER_SIZE}"
                )
            header = decode_header(header_frame)
        except ProtocolError as exc:
            self._reject(identity, None, exc)
            return
        if self.taps:
            self._tap(CLIENT_IN, header_frame, body)
        kind = header.kind
        if kind == REQUEST:
            self._on_request(identity, header, header_frame, body)
        elif kind in (ACK, CANCEL):
            pending = self.pending.get((identity, header.reply_to or ""))
            if pending is not None:
                self.out.to_backend(pending.backend, [identity, header_frame, body])
        else:
            self._reject(
                identity,
                header.get("id"),
                ProtocolError(ErrorCode.BAD_REQUEST, f"clients may not send {kind!r} messages"),
            )

    def _reject(self, identity: bytes, request_id: str | None, exc: ProtocolError) -> None:
        log.warning("bridge.request_rejected", error_code=exc.code.value, reason=exc.message, request_id=request_id)
        self._reply(identity, request_id, responses.from_protocol_error(exc, mode=Mode.BRIDGE))

    def _reply(self, identity: bytes, request_id: str | None, response: dict[str, Any]) -> None:
        frames = reply_frames(request_id, response)
        self._to_client(identity, frames)
        if request_id is not None:
            self._remember(identity, request_id, frames)

    def _remember(self, identity: bytes, request_id: str, frames: list[bytes]) -> None:
        self._cache.remember((identity, request_id), frames, self.clock())

    def _on_request(self, identity: bytes, header: Header, header_frame: bytes, body: bytes) -> None:
        request_id: str = header.fields["id"]
        op: str = header.fields["op"]
        key = (identity, request_id)
        cached = self._cache.get(key)
        if cached is not None:
            log.info("bridge.duplicate_answered_from_cache", request_id=request_id, op=op)
            self._to_client(identity, cached)
            return
        if key in self.pending:
            log.info("bridge.duplicate_in_flight_ignored", request_id=request_id, op=op)
            return
        if len(body) > self.config.max_size:
            self._reject(
                identity,
                request_id,
                ProtocolError(
                    ErrorCode.PAYLOAD_TOO_LARGE,
                    f"body of {len(body)} bytes exceeds the limit of {self.config.max_size} bytes",
                ),
            )
            return
        operation = CATALOGUE.get(op)
        if operation is not None and operation.handled_by == "bridge":
            self._answer_locally(identity, request_id, operation, body)
            return
        if operation is None and not self.registry.knows_op(op):
            self._reject(
                identity, request_id, ProtocolError(ErrorCode.UNKNOWN_OPERATION, f"unknown operation {op!r}", op=op)
            )
            return
        if len(self.pending) >= self.config.max_inflight:
            self._reject(
                identity,
                request_id,
                ProtocolError(ErrorCode.OVERLOADED, f"{len(self.pending)} requests in flight; retry later"),
            )
            return
        # Operations only a plugin backend knows are treated as writes: never fall back silently.
        is_write = operation.is_write if operation is not None else True
        timeout_ms = header.fields.get("timeout_ms")
        timeout = timeout_ms / 1000.0 if timeout_ms else (operation.timeout_s if operation else PLUGIN_TIMEOUT_S)
        plan = routing.plan(self.registry, self.config.policy, op, is_write)
        if isinstance(plan, ProtocolError):
            self._reject(identity, request_id, plan)
            return
        now = self.clock()
        pending = Pending(
            identity,
            request_id,
            op,
            is_write,
            header.fields.get("session"),
            header_frame,
            body,
            plan,
            now + timeout,
            timeout,
            started=now,
        )
        self.pending[key] = pending
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
                if self.out.to_backend(backend.identity, [pending.identity, pending.header, pending.body]):
                    backend.inflight += 1
                    pending.attempt_deadline = attempt_deadline
                    self._deadlines.push(attempt_deadline, key, pending.attempt)
                    return
                self._backend_down(backend, "unreachable", skip=key)
            if not self._next_attempt(key, pending, "backend unreachable", now):
                return

    def _next_attempt(self, key: tuple[bytes, str], pending: Pending, reason: str, now: float) -> bool:
        """Move to the next backend in the plan; answer with an error when there is none."""
        if pending.attempt + 1 < len(pending.plan):
            pending.attempt += 1
            log.info("bridge.fallback", request_id=pending.request_id, op=pending.op, reason=reason)
            return True
        self.pending.pop(key, None)
        code = ErrorCode.TIMEOUT if reason == "timeout" else ErrorCode.BACKEND_UNAVAILABLE
        message = (
            f"no reply for {pending.op!r} within {pending.timeout:.1f}s"
            if reason == "timeout"
            else f"the backend serving {pending.op!r} went away ({reason})"
        )
        self._reject(pending.identity, pending.request_id, ProtocolError(code, message))
        return False

    def _answer_locally(self, identity: bytes, request_id: str, operation: Operation, body: bytes) -> None:
        try:
            args = operation.validate_args(decode(body, self.config.max_size) if body else {})
            if operation.name == "events_since":
                data = self.events.since(args["seq"])
                message = f"{len(data['events'])} event(s)"
            else:
                data = self.status()
                message = f"mode {data['mode']}"
            self._reply(identity, request_id, responses.success(data, message, mode=Mode.BRIDGE))
        except ProtocolError as exc:
            self._reject(identity, request_id, exc)

    # ------------------------------------------------------------------ backends
    def on_backend(self, frames: list[bytes]) -> None:
        if len(frames) != 4:
            log.warning("bridge.backend_message_malformed", frames=len(frames))
            return
        identity, route, header_frame, body = frames
        try:
            header = decode_header(header_frame)
        except ProtocolError as exc:
            log.warning("bridge.backend_message_rejected", error_code=exc.code.value, reason=exc.message)
            return
        now = self.clock()
        kind = header.kind
        if kind == READY:
            self._on_ready(identity, header, now)
            return
        backend = self.registry.seen(identity, now)
        if backend is None:
            if kind != DISCONNECT:
                # We restarted, or it was declared dead: ask it to introduce itself again.
                self.out.to_backend(identity, [b"", encode_header(CONTROL, op="reregister"), b""])
            return
        if kind in (REPLY, CHUNK):
            self._on_backend_reply(backend, route, header, header_frame, body, now)
        elif kind == EVENT:
            self._publish_frames(header.fields["topic"], {**header.fields, "mode": backend.mode}, body)
        elif kind == DISCONNECT:
            self._backend_down(backend, "disconnect", remove=True)
        elif kind != HEARTBEAT:
            log.warning("bridge.backend_kind_unexpected", kind=kind, backend=backend.name)

    def _on_ready(self, identity: bytes, header: Header, now: float) -> None:
        mode = header.fields["mode"]
        ops = [op for op in header.fields["ops"] if isinstance(op, str)]
        name = header.fields["name"]
        if mode not in BACKEND_MODES:
            log.warning("bridge.backend_mode_invalid", name=name, mode=mode)
            return
        pid = header.fields.get("pid")
        replaced = self.registry.register(identity, name, Mode(mode), ops, now, pid if isinstance(pid, int) else None)
        if replaced is not None:
            self._fail_pending_of(replaced, "replaced by a new instance")
        log.info("bridge.backend_up", backend=name, backend_mode=mode, ops=len(ops))
        self.publish_event(BRIDGE_BACKEND, {"name": name, "mode": mode, "state": "up", "reason": "ready"})
        self._update_mode()

    def _on_backend_reply(
        self, backend: Backend, route: bytes, header: Header, header_frame: bytes, body: bytes, now: float
    ) -> None:
        key = (route, header.reply_to or "")
        pending = self.pending.get(key)
        if pending is None or pending.backend != backend.identity:
            log.info("bridge.late_reply_dropped", backend=backend.name, request_id=header.reply_to, kind=header.kind)
            return
        if header.kind == CHUNK:
            # A stream is alive while chunks flow: each one renews the deadline, and once
            # bytes have reached the client it cannot switch to another backend.
            pending.deadline = pending.attempt_deadline = now + pending.timeout
            del pending.plan[pending.attempt + 1 :]
            self._deadlines.push(pending.deadline, key, pending.attempt)
            self._to_client(route, [header_frame, body])
            return
        backend.inflight -= 1
        ok = header.fields["ok"]
        error_code = header.fields.get("error_code")
        if not ok and error_code in BACKEND_FAULTS and pending.attempt + 1 < len(pending.plan):
            log.warning("bridge.backend_fault", backend=backend.name, op=pending.op, error_code=error_code)
            pending.attempt += 1
            self._dispatch(key, pending, now)
            return
        del self.pending[key]
        frames = [header_frame, body]
        self._to_client(route, frames)
        self._remember(route, pending.request_id, frames)
        if ok and pending.is_write:
            self._write_notice(pending, header.fields.get("mode") or backend.mode)

    def _write_notice(self, pending: Pending, mode: str) -> None:
        operation = CATALOGUE.get(pending.op)
        try:
            args = decode(pending.body) if pending.body else {}
        except ProtocolError:
            args = {}
        # The catalogue says which arguments are ids; a plugin operation declares none.
        ids = operation.ids_of(args) if operation is not None else {}
        self.publish_event(
            BRIDGE_WRITE,
            {
                "op": pending.op,
                "ids": ids,
                "session": pending.session,
                "request_id": pending.request_id,
                "mode": mode,
            },
        )

    def _backend_down(
        self, backend: Backend, reason: str, *, remove: bool = False, skip: tuple[bytes, str] | None = None
    ) -> None:
        if remove:
            self.registry.remove(backend.identity)
            was_alive = backend.alive
            backend.alive = False
        else:
            was_alive = self.registry.mark_down(backend.identity, reason) is not None
        if was_alive:
            log.warning("bridge.backend_down", backend=backend.name, backend_mode=backend.mode, reason=reason)
            self.publish_event(
                BRIDGE_BACKEND, {"name": backend.name, "mode": backend.mode, "state": "down", "reason": reason}
            )
            self._fail_pending_of(backend, reason, skip)
            self._update_mode()

    def _fail_pending_of(self, backend: Backend, reason: str, skip: tuple[bytes, str] | None = None) -> None:
        now = self.clock()
        for key, pending in list(self.pending.items()):
            if key != skip and pending.backend == backend.identity and self._next_attempt(key, pending, reason, now):
                self._dispatch(key, pending, now)

    def _update_mode(self) -> None:
        mode = self.registry.mode()
        if mode != self._mode:
            previous, self._mode = self._mode, mode
            log.info("bridge.mode_changed", mode=mode, previous=previous)
            self.publish_event(BRIDGE_MODE, {"mode": mode, "previous": previous})

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
            beat = encode_header(HEARTBEAT)
            for backend in self.registry.alive():
                self.out.to_backend(backend.identity, [b"", beat, b""])
            for backend in self.registry.expired(now):
                self._backend_down(backend, "missed heartbeats")
        for key, attempt in self._deadlines.due(now):
            pending = self.pending.get(key)
            if pending is None or pending.attempt != attempt or pending.attempt_deadline > now:
                continue  # answered, moved on, or renewed by a chunk since this entry was pushed
            owner = self.registry.backends.get(pending.backend)
            if owner is not None:
                owner.inflight -= 1
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

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "mode": self.registry.mode(),
            "policy": self.config.policy,
            "epoch": self.events.epoch,
            "latest_seq": self.events.seq,
            "oldest_seq": self.events.oldest_seq,
            "events_endpoint": self.config.events_endpoint,
            "frontend_endpoint": self.config.frontend_endpoint,
            "tap_endpoint": self.config.tap_endpoint,
            "uptime_s": round(now - self._started, 3),
            "inflight": len(self.pending),
            "heartbeat_interval_s": self.config.heartbeat_interval,
            "backends": self.registry.describe(now),
        }
