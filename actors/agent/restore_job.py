"""Restore jobs on the agent: the files of a snapshot the server offers, written under a destination here.

An agent that stays connected (``backup --watch``) carries out the jobs the server offers
(``restore_job``), one at a time, between its backup runs. It asks for the job's files a
batch at a time (``job_next``), fetches each one's version (``fetch`` with ``version``),
writes it to a temporary file in its folder, checks the bytes it received and, read back
after an fsync, the bytes it wrote against the version's SHA-256, and only then renames it
into place (``safe_fs``: nothing outside the destination, no link followed). What became
of each batch goes back as a ``job_checkpoint``, the job's resume point should the
connection drop (the server offers the job again at the next hello). A job the server says
to cancel (``job_cancel``, noted by the session whenever it reads) stops between two files:
the file being written is finished and placed, then ``job_stopped`` reports the counts.
A file is written with mode 0600 and, once verified and placed, given the permission bits its
version was backed up with (never setuid, setgid or sticky); a version without them stays 0600.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from actors.agent.safe_fs import Placement, Refused, Tree, open_destination, place, set_mode, supported
from actors.agent.session import Session, SessionLost, new_id
from protocol.agent_messages import Message
from protocol.catalogue_restore_jobs import CONTENT_MISSING, EXISTS, HASH_MISMATCH, UNSAFE_PATH, WRITE_FAILED
from runtime.fsutil import AtomicFileAt

log = structlog.get_logger()

STALL_S = 30.0  # nothing from the server for this long while it owes us something: the session is gone
PROGRESS_EVERY_S = 0.5
SERVE_SLICE_S = 1.0
COMMIT_TRIES = 10
SYNC_EVERY = 64 * 1024 * 1024  # bytes of a file written between two fsyncs


class JobGone(Exception):
    """The server no longer has this job for us (it ended, or its client was deleted)."""


class Cancelled(Exception):
    """The server said to stop this job (job_cancel): it stops before the next file."""


@dataclass
class Item:
    path: str
    member: str
    file_id: str
    version: int
    size: int
    sha256: str
    mtime_ns: int
    mode: int | None = None  # the version's permission bits; None: not known (an older server, agent or version)

    @classmethod
    def of(cls, raw: Any) -> Item:
        kinds = (str, str, str, int, int, str, int)
        if not isinstance(raw, list) or len(raw) not in (len(kinds), len(kinds) + 1):
            raise Refused(UNSAFE_PATH, f"a malformed item from the server: {str(raw)[:200]}")
        if any(type(v) is not k for v, k in zip(raw, kinds, strict=False)):
            raise Refused(UNSAFE_PATH, f"a malformed item from the server: {str(raw)[:200]}")
        if len(raw) > len(kinds) and raw[-1] is not None and (type(raw[-1]) is not int or raw[-1] < 0):
            raise Refused(UNSAFE_PATH, f"a malformed item from the server: {str(raw)[:200]}")
        return cls(*raw)


@dataclass
class JobRun:
    session: Session
    offer: Message
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[list[str]] = field(default_factory=list)  # since the last checkpoint
    partial: int = 0  # bytes of the file being written
    reported: float = 0.0

    @property
    def job(self) -> str:
        return str(self.offer["job"])

    def run(self) -> None:
        if self.job in self.session.cancelled:  # cancelled while it waited here: the server ended it already
            self.session.cancelled.discard(self.job)
            log.info("agent.restore_job_cancelled", job=self.job, files_done=0)
            return
        self.counts = {k: int(v) for k, v in self.offer["counts"].items()}
        destination, policy = self.offer["destination"], self.offer["overwrite"]
        log.info("agent.restore_job_started", job=self.job, destination=destination, overwrite=policy)
        try:
            problem = supported()
            if problem:
                raise Refused(WRITE_FAILED, problem)
            tree = Tree(open_destination(destination), destination)
        except Refused as exc:
            log.warning("agent.restore_job_refused", job=self.job, code=exc.code, reason=exc.reason)
            self.session.conn.send("job_failed", job=self.job, code=exc.code, message=exc.reason)
            return
        try:
            self._batches(tree, policy)
        except JobGone as exc:
            log.warning("agent.restore_job_dropped", job=self.job, reason=str(exc))
        except Cancelled:
            tree.sync()  # what job_stopped reports as restored is durable
            self.session.conn.send("job_stopped", job=self.job, counts=self.counts, problems=self.problems)
            log.info("agent.restore_job_cancelled", job=self.job, **self.counts)
        finally:
            self.session.cancelled.discard(self.job)
            tree.close()

    def _batches(self, tree: Tree, policy: str) -> None:
        cursor = self.offer["cursor"]
        while True:
            self._stop_if_cancelled()
            self.session.conn.send("job_next", job=self.job, cursor=cursor)
            batch = self._next(("job_items",), None)
            for raw in batch["items"]:
                self._stop_if_cancelled()
                self._one(tree, raw, policy)
            tree.sync()  # what the checkpoint reports as restored is durable
            cursor = batch["cursor"]
            self.session.conn.send(
                "job_checkpoint",
                job=self.job,
                cursor=cursor,
                counts=self.counts,
                problems=self.problems,
                end=batch["end"],
            )
            self.problems = []
            if batch["end"]:
                log.info("agent.restore_job_ended", job=self.job, **self.counts)
                return

    def _stop_if_cancelled(self) -> None:
        msg = self.session.recv(0)  # a job_cancel already here is noted by the session
        if msg is not None and msg.type == "error" and msg.get("ref") == self.job:
            raise JobGone(f"{msg['code']}: {msg['message']}")
        if self.job in self.session.cancelled:
            raise Cancelled

    def _one(self, tree: Tree, raw: Any, policy: str) -> None:
        path = raw[0] if isinstance(raw, list) and raw and isinstance(raw[0], str) else "?"
        size = raw[4] if isinstance(raw, list) and len(raw) > 4 and type(raw[4]) is int else 0
        try:
            item = Item.of(raw)
            folder, name = tree.folder_of(item.member)
            target = place(folder, name, policy, item.member)
            if target is None:
                self._done(size, "skipped", EXISTS, f"{item.member} is already there (policy skip)", path)
                return
            if not self._fetch(tree, item, folder, target, policy):
                self._done(size, "skipped", EXISTS, f"{item.member} appeared meanwhile (policy skip)", path)
                return
        except Refused as exc:
            self._done(size, "failed", exc.code, exc.reason, path)
            return
        self.counts["files_restored"] += 1
        self.counts["bytes_restored"] += item.size
        self._done(item.size, None, "", "", path)

    def _done(self, size: int, outcome: str | None, code: str, reason: str, path: str) -> None:
        self.counts["files_done"] += 1
        self.counts["bytes_done"] += size
        self.partial = 0
        if outcome is not None:
            self.counts["files_skipped" if outcome == "skipped" else "files_failed"] += 1
            self.problems.append([path, outcome, code, reason])
        self._progress()

    def _fetch(self, tree: Tree, item: Item, folder: int, target: Placement, policy: str) -> bool:
        """Fetch, write, verify and place one file; False when something appeared there first (policy skip)."""
        r = new_id()
        self.session.conn.send("fetch", r=r, file_id=item.file_id, version=item.version)
        self._next(("fetch_meta",), r)
        try:
            out = AtomicFileAt(folder, target.name)
        except OSError as exc:
            self._drain(r)
            raise Refused(WRITE_FAILED, f"cannot write in the folder of {item.member}: {exc.strerror}") from None
        try:
            received, digest = self._receive(r, out, item)
            if (received, digest) != (item.size, item.sha256):
                raise Refused(
                    HASH_MISMATCH,
                    f"received {received} bytes hashing to {digest[:16]}…, the version has {item.size} bytes and "
                    f"{item.sha256[:16]}…: nothing was kept",
                )
            written = out.sha256(between=lambda: self.session.recv(0))  # heartbeats go on meanwhile
            if written != (item.size, item.sha256):
                raise Refused(
                    HASH_MISMATCH,
                    f"read back after writing: {written[0]} bytes hashing to {written[1][:16]}…, "
                    f"expected {item.sha256[:16]}…: nothing was kept",
                )
            out.set_mtime(item.mtime_ns)
            inode = os.fstat(out.fd).st_ino
            placed = self._commit(out, folder, target, policy, item.member)
            if placed:
                tree.placed(folder)
                if item.mode is not None and not set_mode(folder, out.name, inode, item.mode):
                    log.warning("agent.restore_mode_not_set", job=self.job, member=item.member, reason="replaced")
            return placed
        except OSError as exc:
            raise Refused(WRITE_FAILED, f"writing {item.member} failed: {exc.strerror or exc}") from None
        finally:
            out.abort()  # a no-op once committed

    def _commit(self, out: AtomicFileAt, folder: int, target: Placement, policy: str, where: str) -> bool:
        name = where.rsplit("/", 1)[-1]  # the file's own name, which the policy is about
        for _ in range(COMMIT_TRIES):
            try:
                out.commit(replace=target.replace, name=target.name, sync_dir=False)
                return True
            except FileExistsError:  # something was made there since we looked: the policy again
                again = place(folder, name, policy, where)
                if again is None:
                    return False
                target = again
        raise Refused(WRITE_FAILED, f"{where}: the folder keeps changing under the restore")

    def _receive(self, r: str, out: AtomicFileAt, item: Item) -> tuple[int, str]:
        """Every chunk of fetch ``r``, written to ``out`` and acknowledged; (bytes, SHA-256) of what came."""
        h = hashlib.sha256()
        received = index = 0
        failure: OSError | None = None
        while True:
            msg = self._next(("data", "fetch_end"), r)
            if msg.type == "fetch_end":
                break
            if msg["i"] != index or msg["o"] != received:
                failure = failure or OSError(f"the stream of {item.member} came out of order at chunk {index}")
            elif failure is None:
                try:
                    out.write(msg.body)
                    if (received + len(msg.body)) // SYNC_EVERY > received // SYNC_EVERY:
                        out.sync()  # a little at a time: the last fsync of a large file stays short
                except OSError as exc:
                    failure = exc  # keep acknowledging to the end: the server's transfer must finish
            h.update(msg.body)
            received += len(msg.body)
            index += 1
            self.session.conn.send("fetch_ack", r=r, i=msg["i"])
            self.partial = received
            self._progress()
        if failure is not None:
            raise failure
        return received, h.hexdigest()

    def _drain(self, r: str) -> None:
        """Take the rest of fetch ``r`` (acknowledged, so the server's transfer ends) without writing it."""
        while (msg := self._next(("data", "fetch_end"), r)).type != "fetch_end":
            self.session.conn.send("fetch_ack", r=r, i=msg["i"])

    def _progress(self) -> None:
        now = time.monotonic()
        if now - self.reported >= PROGRESS_EVERY_S:
            self.reported = now
            done = self.counts["bytes_done"] + self.partial
            self.session.conn.send("job_progress", job=self.job, files_done=self.counts["files_done"], bytes_done=done)

    def _next(self, types: tuple[str, ...], r: str | None) -> Message:
        """The next message of this job (``r``: of this fetch); the server's refusals become exceptions."""
        while True:
            msg = self.session.recv(STALL_S)
            if msg is None:
                raise SessionLost(f"restore job {self.job} stalled: nothing from the server for {STALL_S:.0f}s")
            if msg.type == "error":
                ref = msg.get("ref")
                if r is not None and ref == r:
                    raise Refused(CONTENT_MISSING, f"the server could not send it: {msg['message']}")
                if ref == self.job:
                    raise JobGone(f"{msg['code']}: {msg['message']}")
                continue
            if msg.type in types and (msg.get("r") == r if r is not None else msg.get("job") == self.job):
                return msg


def serve(session: Session, seconds: float) -> None:
    """Stay connected for ``seconds`` (heartbeats, orders), carrying out the restore jobs offered meanwhile."""
    deadline = time.monotonic() + seconds
    while True:
        while session.jobs:
            JobRun(session, session.jobs.pop(0)).run()
        left = deadline - time.monotonic()
        if left <= 0:
            return
        session.recv(min(left, SERVE_SLICE_S))  # an offer that arrives is kept in session.jobs
