"""Restores the server streams to an agent: a file's stored content (its newest version or the one
asked for), ``window`` chunks at most in flight; and the restore jobs agents carry out (restore_jobs)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from actors.server import queries as q
from actors.server.blobs import BlobStore
from actors.server.restore_jobs import RestoreJobs
from actors.server.sessions import AgentOutbox, AgentSession, AgentSettings, Fetch
from actors.server.store import Store
from protocol.agent_messages import AgentProtocolError, Credit, Message
from protocol.errors import ErrorCode, ProtocolError


class Restores:
    """The gateway's settings are passed per call: an operator may change them while the server runs."""

    def __init__(self, store: Store, blobs: BlobStore, outbox: AgentOutbox, sessions: dict[str, AgentSession]) -> None:
        self.store = store
        self.blobs = blobs
        self.outbox = outbox
        self.jobs = RestoreJobs(store, outbox, sessions)
        # The job messages of a session, for the gateway's table of handlers.
        self.handlers: dict[str, Callable[[AgentSession, Message], None]] = {
            "job_next": self.jobs.on_next,
            "job_progress": self.jobs.on_progress,
            "job_checkpoint": self.jobs.on_checkpoint,
            "job_failed": self.jobs.on_failed,
            "job_stopped": self.jobs.on_stopped,
        }

    def start(self, session: AgentSession, msg: Message, settings: AgentSettings) -> None:
        restore_id = msg["r"]
        try:
            file = q.get_file(self.store.conn, msg["file_id"])
        except ProtocolError:
            raise AgentProtocolError(f"file {msg['file_id']!r} not found", ErrorCode.NOT_FOUND.value) from None
        if file["client_id"] != session.client_id:
            raise AgentProtocolError("an agent restores only its own client's files", ErrorCode.FORBIDDEN.value)
        if msg.get("version") is not None:
            file = self._version(file, msg["version"])
        if not self.blobs.exists(file["sha256"]):
            raise AgentProtocolError(f"the stored content of {file['path']} is missing", ErrorCode.NOT_FOUND.value)
        fetch = Fetch(restore_id, file["sha256"], file["size"], Credit(settings.window))
        session.fetches[restore_id] = fetch
        self.outbox.send(
            session.route,
            "fetch_meta",
            r=restore_id,
            file_id=file["id"],
            name=file["name"],
            size=file["size"],
            sha256=file["sha256"],
            path=file["path"],
        )
        self._pump(session, fetch, settings)

    def _version(self, file: dict[str, Any], version: int) -> dict[str, Any]:
        """The file as it was in one of its versions (the size and hash a restore job's item names)."""
        row = self.store.conn.execute(
            "SELECT size, sha256 FROM file_versions WHERE file_id = ? AND version = ?", (file["id"], version)
        ).fetchone()
        if row is None:
            raise AgentProtocolError(f"{file['path']} has no version {version} any more", ErrorCode.NOT_FOUND.value)
        return {**file, "size": row[0], "sha256": row[1]}

    def ack(self, session: AgentSession, msg: Message, settings: AgentSettings) -> None:
        fetch = session.fetches.get(msg["r"])
        if fetch is not None:
            fetch.credit.grant(1)
            self._pump(session, fetch, settings)

    def _pump(self, session: AgentSession, fetch: Fetch, settings: AgentSettings) -> None:
        try:
            while fetch.next_offset < fetch.total and fetch.credit.available > 0:
                data = self.blobs.read_at(fetch.sha256, fetch.next_offset, settings.chunk_size)
                if not data:
                    raise OSError("stored content is shorter than recorded")
                self.outbox.send(
                    session.route, "data", data, r=fetch.restore_id, i=fetch.next_index, o=fetch.next_offset
                )
                fetch.credit.spend()
                fetch.next_index += 1
                fetch.next_offset += len(data)
        except OSError as exc:
            session.fetches.pop(fetch.restore_id, None)
            self.outbox.error(
                session.route, ErrorCode.INTERNAL.value, f"reading the stored content failed: {exc}", fetch.restore_id
            )
            return
        if fetch.next_offset >= fetch.total:
            session.fetches.pop(fetch.restore_id, None)
            self.outbox.send(session.route, "fetch_end", r=fetch.restore_id)
