"""The agent side of the server core: sessions, liveness, enrollment, backups, restores (no sockets).

The shell hands every message from the agents' ROUTER to ``on_message`` together with
the peer's authenticated public key (ZAP's User-Id) and address, and sends what
``drain_outbox`` returns. A client *is* its public key: a message is attributed by the
key the CURVE handshake proved, never by anything the agent claims.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from actors.server import queries as q
from actors.server import reports
from actors.server.blobs import BlobStore
from actors.server.enrollment import agent_info, enroll
from actors.server.faults import describe, is_storage_full
from actors.server.keys import KeyRing
from actors.server.restores import Restores
from actors.server.sessions import AgentOutbox, AgentSession, AgentSettings
from actors.server.snapshots import Runs
from actors.server.store import Store
from actors.server.tally import Tally, TallyMap
from actors.server.uploads import Uploads, decide_manifest, on_chunk, record_completed
from protocol.agent_messages import (
    AGENT_TO_SERVER,
    CREDIT_EXCEEDED,
    MAX_BATCH,
    NO_SESSION,
    STOPPED,
    STORAGE_FULL,
    AgentProtocolError,
    Buffer,
    CreditLedger,
    Message,
    decode_message,
)
from protocol.errors import ErrorCode

log = structlog.get_logger()

# How long a queue left undrained (a burst of hellos, a flood) holds back liveness verdicts, in liveness periods.
BACKLOG_GRACE_PERIODS = 3
CLIENT_EVENT_EVERY_S = 1.0  # a client's counts change with every stored file: tell watchers at most once a second


class AgentGateway:
    def __init__(
        self,
        store: Store,
        blobs: BlobStore,
        keyring: KeyRing,
        settings: AgentSettings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.keyring = keyring
        self.settings = settings
        self.clock = clock
        self.accepting = True
        self.sessions: dict[bytes, AgentSession] = {}
        self.by_client: dict[str, AgentSession] = {}
        self.transfers = Tally()  # open uploads and restores of every session, kept as they open and close
        # Sessions that got a message in the current batch: the only ones end_of_batch has work for.
        self._touched: dict[bytes, AgentSession] = {}
        # Since when the agents' queue has been left with messages in it (None: drained). Heartbeats may
        # wait there behind a burst, so liveness is not judged while it lasts (up to BACKLOG_GRACE_PERIODS).
        self.backlog_since: float | None = None
        self.outbox = AgentOutbox()
        self.restores = Restores(store, blobs, self.outbox, self.by_client)
        self.runs = Runs(store, clock)  # each backup run is a snapshot
        self.runs.recover()

    # -- plumbing --

    def _send(self, route: bytes, type_: str, body: bytes = b"", /, **fields: Any) -> None:
        self.outbox.send(route, type_, body, **fields)

    def _error(self, route: bytes, code: str, message: str, ref: str | int | None = None) -> None:
        self.outbox.error(route, code, message, ref)

    def drain_outbox(self) -> list[tuple[bytes, list[Buffer]]]:
        return self.outbox.drain()

    def active_transfers(self) -> int:
        return self.transfers.count

    def has_session(self, client_id: str) -> bool:
        return client_id in self.by_client

    # -- input --

    def on_message(
        self,
        route: bytes,
        frames: Sequence[Buffer],
        key: str | None,
        peer: str | None,
        received_at: float | None = None,
    ) -> None:
        """One agent message; ``received_at`` is when the shell took its batch off the socket (default: now).

        Liveness counts from that instant, not from when the message is handled: a heartbeat that
        waited behind a burst of hellos arrived in time.
        """
        if not key:
            log.warning("server.agent_message_without_key", reason="no CURVE User-Id; is ZAP running?")
            return
        try:
            msg = decode_message(frames, AGENT_TO_SERVER)
        except AgentProtocolError as exc:
            self._error(route, exc.code, exc.message)
            return
        arrived = self.clock() if received_at is None else received_at
        try:
            if self.keyring.is_enrollment(key):
                self._enrollment_connection(route, msg, peer or "")
            elif msg.type == "hello":
                self._hello(route, msg, key, peer or "", arrived)
            else:
                self._in_session(route, msg, key, arrived)
        except AgentProtocolError as exc:
            ref = msg.get("batch", msg.get("r", msg.get("u", msg.get("job"))))
            self._error(route, exc.code, exc.message, ref)
        except Exception as exc:
            if not is_storage_full(exc):
                raise
            # A row or activity entry could not be written: the agent hears it and stops its run.
            self.store.storage_alarm.report(f"handling an agent's {msg.type}", exc)
            ref = msg.get("batch", msg.get("r", msg.get("u", msg.get("job"))))
            self._error(route, STORAGE_FULL, f"server storage full: {describe(exc)}", ref)

    def _enrollment_connection(self, route: bytes, msg: Message, peer: str) -> None:
        client_id = enroll(self.store, self.keyring, msg, peer)
        self._send(route, "enrolled", client_id=client_id)

    def _hello(self, route: bytes, msg: Message, key: str, peer: str, arrived: float) -> None:
        if not self.accepting:
            self._error(route, STOPPED, "the backup server is stopped: it does not accept agents now")
            return
        info = agent_info(msg, peer)
        known = q.client_by_key(self.store.conn, key)
        if known is None and not self.keyring.listed(key):
            # Allowed by ZAP a moment ago but deleted since: it must enroll again.
            self._error(route, ErrorCode.FORBIDDEN.value, "this agent's key is not registered (client deleted?)")
            return
        client_id, created = self.store.register_client(key, info)
        old = self.by_client.get(client_id)
        if old is not None:
            self._drop(old)  # the same agent reconnected before its old session timed out
        uploads = Uploads(client_id, TallyMap(self.transfers))
        ledger = CreditLedger(self.settings.window)
        session = AgentSession(
            route, client_id, key, info["name"], arrived, ledger, uploads, fetches=TallyMap(self.transfers)
        )
        self.sessions[route] = session
        self.by_client[client_id] = session
        self._touched[route] = session
        self.store.set_client_status(client_id, "connected")
        self.runs.session_started(client_id)
        self._send(
            route,
            "welcome",
            client_id=client_id,
            heartbeat_s=self.settings.heartbeat_s,
            window=self.settings.window,
            chunk_size=self.settings.chunk_size,
            max_batch=MAX_BATCH,
            server_version=self.settings.server_version,
        )
        self.restores.jobs.session_started(session)
        self.store.client_changed(client_id, "created" if created else "updated")
        where = f" from {peer}" if peer else ""
        self.store.record(
            "client_connected",
            "INFO",
            f"{info['name']} connected{where} ({info['platform'] or 'unknown'}, agent {info['agent_version'] or '?'})",
            client_id=client_id,
            logger="backup.agent",
        )
        self.store.server_changed_soon()

    def _in_session(self, route: bytes, msg: Message, key: str, arrived: float) -> None:
        session = self.sessions.get(route)
        if session is None or session.key != key:
            if msg.type not in ("bye", "fetch_ack"):
                ref = msg.get("batch", msg.get("r", msg.get("u", msg.get("job"))))
                self._error(route, NO_SESSION, "no session: say hello first", ref)
            return
        # max: a batch stamped earlier than a later one's hello must not move the session back in time.
        session.last_seen = max(session.last_seen, arrived)
        self._touched[route] = session
        if session.completed and msg.type != "chunk":
            self._record(session)  # whatever comes next (a manifest, done) sees those versions
        handlers: dict[str, Callable[[AgentSession, Message], None]] = {
            "heartbeat": self._on_heartbeat,
            "manifest": self._on_manifest,
            "chunk": self._on_chunk,
            "report": self._on_report,
            "done": self._on_done,
            "bye": self._on_bye,
            "fetch": self._on_fetch,
            "fetch_ack": self._on_fetch_ack,
            "abort": self._on_abort,
            **self.restores.handlers,
        }
        handler = handlers.get(msg.type)
        if handler is None:  # enroll on an already registered key
            raise AgentProtocolError(f"{msg.type} is not expected in a session")
        handler(session, msg)

    # -- session messages --

    def _on_heartbeat(self, session: AgentSession, msg: Message) -> None:
        self._send(session.route, "pong")

    def _on_manifest(self, session: AgentSession, msg: Message) -> None:
        result = decide_manifest(self.store, self.blobs, session.client_id, msg["entries"])
        if (result["send"] or result["linked"]) and not session.running_backup:
            # Only a run that changes something is worth an activity entry: a --watch agent
            # re-checks an unchanged folder every cycle.
            session.running_backup = True
            self.store.record(
                "backup_started",
                "INFO",
                f"{session.name}: backup started",
                client_id=session.client_id,
                logger="backup.transfer",
            )
        self.runs.manifest(session.client_id, msg["batch"], msg["entries"], result)
        self.outbox.send(session.route, "manifest_result", batch=msg["batch"], **result)
        if result["linked"]:
            session.changed = True
        reports.refused(self.store, session, [reason for _index, reason in result["refused"]])

    def _on_chunk(self, session: AgentSession, msg: Message) -> None:
        if not session.ledger.on_message():
            log.warning("server.agent_credit_exceeded", client_id=session.client_id)
            self._error(session.route, CREDIT_EXCEEDED, "more chunks in flight than the credit window allows")
            self.disconnect(session.client_id, "flow control violated")
            return
        try:
            outcome = on_chunk(self.store, self.blobs, session.uploads, msg)
        finally:
            session.ledger.consumed()  # the credit comes back whatever became of the chunk
        if outcome.completed is not None:
            session.completed.append(outcome.completed)
        elif outcome.failed is not None:
            code, message = outcome.failed
            self._send(session.route, "failed", u=msg["u"], code=code, message=message)

    def _on_abort(self, session: AgentSession, msg: Message) -> None:
        """The agent gave up on an upload (a read error mid-file): forget it, nothing is stored."""
        upload = session.uploads.open.pop(msg["u"], None)
        if upload is not None:
            upload.writer.abort()
            log.info("server.upload_aborted", client_id=session.client_id, path=upload.path, reason=msg.get("reason"))

    def _on_report(self, session: AgentSession, msg: Message) -> None:
        reports.skipped(self.store, session, msg["skipped"])

    def _on_done(self, session: AgentSession, msg: Message) -> None:
        self.runs.finish(session.client_id, msg["summary"])
        if reports.done(self.store, session, msg["summary"]):
            self.store.server_changed_soon()

    def _on_bye(self, session: AgentSession, msg: Message) -> None:
        self._end(
            session,
            "client_disconnected",
            "INFO",
            f"{session.name} disconnected ({msg.get('reason') or 'agent finished'})",
        )

    def _on_fetch(self, session: AgentSession, msg: Message) -> None:
        self.restores.start(session, msg, self.settings)

    def _on_fetch_ack(self, session: AgentSession, msg: Message) -> None:
        self.restores.ack(session, msg, self.settings)

    # -- batches, time, operator actions --

    def end_of_batch(self, drained: bool = True) -> None:
        """Return the credit of everything consumed in this batch: one message per session.

        Only the sessions that got a message in this batch are visited: at thousands of agents a
        batch of one heartbeat must not walk them all. Clients whose files changed get one
        ``client.changed`` per batch (their counts and sizes moved), not one per file; a change held
        back by that throttle goes out at the next tick. ``drained`` says whether the shell emptied
        the agents' queue (False: it stopped at its per-turn limit with messages still waiting).
        """
        now = self.clock()
        if drained:
            self.backlog_since = None
        elif self.backlog_since is None:
            self.backlog_since = now
        touched, self._touched = self._touched, {}
        for route, session in touched.items():
            if self.sessions.get(route) is not session:
                continue  # ended in this batch (bye, reconnect): _drop already kept its work
            if session.completed:
                self._record(session)
            n = session.ledger.take_pending()
            if n:
                self._send(session.route, "credit", n=n)
            if session.changed and now - session.changed_at >= CLIENT_EVENT_EVERY_S:
                self._client_changed(session, now)

    def _record(self, session: AgentSession) -> None:
        """Group commit: the version rows of every upload completed in this batch, one transaction."""
        done, session.completed = session.completed, []
        try:
            replies = record_completed(self.store, session.uploads, done)
        except Exception as exc:
            code = STORAGE_FULL if is_storage_full(exc) else ErrorCode.INTERNAL.value
            if code == STORAGE_FULL:
                self.store.storage_alarm.report(f"recording {len(done)} stored files", exc)
            else:
                log.exception("server.versions_not_recorded", client_id=session.client_id, uploads=len(done))
            for c in done:
                self._send(
                    session.route,
                    "failed",
                    u=c.upload_id,
                    code=code,
                    message=f"the server could not record {c.path}: {describe(exc)}",
                )
            return
        session.changed = True
        stored = [(c.path, r["file_id"], r["version"]) for c, r in zip(done, replies, strict=True)]
        self.runs.stored(session.client_id, stored)
        for reply in replies:
            self._send(session.route, "stored", **reply)

    def _client_changed(self, session: AgentSession, now: float) -> None:
        session.changed = False
        session.changed_at = now
        self.store.client_changed(session.client_id, "updated")

    def tick(self) -> None:
        limit = self.settings.heartbeat_s * self.settings.liveness
        now = self.clock()
        self.runs.tick()
        for session in self.sessions.values():
            if session.changed:  # the last changes of a run, held back by the throttle
                self._client_changed(session, now)
        if self.backlog_since is not None and now - self.backlog_since < limit * BACKLOG_GRACE_PERIODS:
            # Their heartbeats may be queued behind the backlog: waiting is not silence. Bounded, so a
            # flood that never drains postpones the verdict by a few liveness periods, not forever.
            log.debug("server.liveness_deferred", backlog_s=round(now - self.backlog_since, 3))
            return
        for session in [s for s in self.sessions.values() if now - s.last_seen > limit]:
            self._end(
                session,
                "client_disconnected",
                "WARNING",
                f"{session.name} lost: no heartbeat for {now - session.last_seen:.1f}s",
            )

    def disconnect(self, client_id: str, reason: str) -> bool:
        """Tell a connected agent to go and end its session; False when it has none."""
        session = self.by_client.get(client_id)
        if session is None:
            return False
        self._send(session.route, "disconnect", reason=reason)
        self._end(session, "client_disconnected", "INFO", f"{session.name} disconnected: {reason}")
        return True

    def disconnect_all(self, reason: str) -> None:
        for client_id in list(self.by_client):
            self.disconnect(client_id, reason)

    def forget_client(self, client_id: str) -> None:
        """The client was deleted: its agent goes, quietly (the deletion is the activity)."""
        session = self.by_client.get(client_id)
        if session is not None:
            self._send(session.route, "disconnect", reason="client deleted on the server")
            self._drop(session)
        self.runs.forget(client_id)

    def _end(self, session: AgentSession, type_: str, level: str, message: str) -> None:
        self._drop(session)
        self.store.set_client_status(session.client_id, "disconnected")
        self.store.client_changed(session.client_id, "updated")
        self.store.record(type_, level, message, client_id=session.client_id, logger="backup.agent")
        self.store.server_changed_soon()

    def _drop(self, session: AgentSession) -> None:
        if session.completed:  # durable blobs waiting for their rows: keep the work
            self._record(session)
        session.uploads.abort_all()
        session.fetches.clear()
        self.sessions.pop(session.route, None)
        if self.by_client.get(session.client_id) is session:
            del self.by_client[session.client_id]
            self.runs.session_ended(session.client_id)
            self.restores.jobs.session_ended(session.client_id)
