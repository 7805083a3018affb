"""One backup run of a folder: scan, ask the server what it needs (manifest), send it in chunks.

Files go in batches. For each batch the agent sends a manifest (path, size, mtime and,
with ``--checksum`` or when the server asks, the SHA-256); the server answers which
files to skip, which it linked from content it already has, which it needs hashed first,
and which to send. Sending is pipelined across files and bounded by the session's
credit window, so memory stays at a few chunks whatever the file sizes; the SHA-256 is
computed while reading. When the session is lost mid-batch (server restart), the run
reconnects and redoes that batch: what was committed comes back as "skip".
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from actors.agent.progress import Progress
from actors.agent.session import (
    EXIT_FAILED,
    EXIT_LOST,
    EXIT_UNREACHABLE,
    AgentError,
    Session,
    SessionLost,
    new_id,
    storage_full,
)
from protocol.agent_messages import HASH_MISMATCH, MODE_BITS, SIZE_MISMATCH, STORAGE_FULL, Message

log = structlog.get_logger()

MANIFEST_BYTES = 256 * 1024  # keep a manifest message well below the server's frame limit
# The second manifest of a batch (the entries whose hash the server asked for) needs an id
# of its own so its answer is not mistaken for the first one's: batches are numbered from 1
# and no run has anywhere near this many.
SECOND_MANIFEST_ID_OFFSET = 1_000_000_000
MANIFEST_REPLY_S = 60.0  # the server answers a manifest from its database in milliseconds
# Wake at least this often while waiting, so heartbeats go out and a silent server is noticed.
WAIT_SLICE_S = 1.0
MAX_REPORTED_SKIPS = 1000  # the skip report is one message: keep it well below the frame limit
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # absent on Windows: there the identity check below tells a swap
NON_BLOCKING = getattr(os, "O_NONBLOCK", 0)


@dataclass(slots=True)
class Entry:
    path: str
    size: int
    mtime_ns: int
    sha256: str | None = None
    # The file the scan saw (lstat): the one opened later must be this very file.
    dev: int = 0
    ino: int = 0
    mode: int = 0o600  # its permission bits, kept with the version so a restore gives them back

    def wire(self) -> list[Any]:
        return [self.path, self.size, self.mtime_ns, self.sha256, self.mode]


@dataclass
class Summary:
    root: str
    files: int = 0
    sent: int = 0
    linked: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    refused: int = 0
    bytes_sent: int = 0
    seconds: float = 0.0
    skipped_files: list[list[str]] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "skipped_files"}

    def skip(self, path: str, reason: str) -> None:
        self.skipped += 1
        self.skipped_files.append([path, reason])
        log.warning("agent.file_skipped", path=path, reason=reason)


@dataclass(slots=True)
class Options:
    root: Path
    checksum: bool = False  # always send hashes: unchanged means same size, time and content
    bandwidth: int | None = None  # bytes per second, None for no limit
    retry_for: float = 60.0  # how long a lost connection may stay lost before the run gives up


def scan(root: Path, summary: Summary) -> Iterator[Entry]:
    """Regular files under ``root`` (or ``root`` itself), symlinks not followed, in a stable order."""
    top = os.path.abspath(root)
    if os.path.isfile(top):
        # The one file asked for by name: a link given as the root stands for its target.
        top = os.path.realpath(top)
        st = os.stat(top)
        yield Entry(top, st.st_size, st.st_mtime_ns, dev=st.st_dev, ino=st.st_ino, mode=st.st_mode & MODE_BITS)
        return
    for directory, dirs, files in os.walk(top, onerror=lambda e: summary.skip(str(e.filename), e.strerror or str(e))):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(directory, name)
            try:
                st = os.lstat(path)
            except OSError as exc:
                summary.skip(path, exc.strerror or str(exc))
                continue
            if stat.S_ISREG(st.st_mode):
                yield Entry(path, st.st_size, st.st_mtime_ns, dev=st.st_dev, ino=st.st_ino, mode=st.st_mode & MODE_BITS)


def batches(entries: Iterator[Entry], max_count: int) -> Iterator[list[Entry]]:
    batch: list[Entry] = []
    size = 0
    for entry in entries:
        batch.append(entry)
        size += len(entry.path.encode(errors="surrogateescape")) + 100
        if len(batch) >= max_count or size >= MANIFEST_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def file_sha256(path: str) -> str:
    with open(path, "rb", buffering=0) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Replaced(OSError):
    """What is at a scanned path now is not the regular file the scan saw there."""

    def __init__(self, path: str, what: str) -> None:
        super().__init__(errno.ESTALE, f"replaced by {what} since the scan (not followed)", path)


def _open_no_follow(path: str, flags: int) -> int:
    # O_NOFOLLOW: a symlink swapped in after the scan is refused, never followed to what it names.
    # O_NONBLOCK: a FIFO swapped in would otherwise block the open until a writer came; it has no
    # effect on a regular file's reads.
    return os.open(path, flags | NO_FOLLOW | NON_BLOCKING)


def open_scanned(entry: Entry) -> io.FileIO:
    """Open the file the scan saw at ``entry.path``, or raise OSError saying what is there instead."""
    try:
        f = open(entry.path, "rb", buffering=0, opener=_open_no_follow)  # noqa: SIM115 - returned to the caller
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK) and os.path.islink(entry.path):
            raise Replaced(entry.path, "a symbolic link") from None
        raise
    try:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise Replaced(entry.path, "something that is not a regular file")
        if (st.st_dev, st.st_ino) != (entry.dev, entry.ino):
            raise Replaced(entry.path, "another file")
    except BaseException:
        f.close()
        raise
    return f


def scanned_sha256(entry: Entry) -> str:
    with open_scanned(entry) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Limiter:
    """A simple pace keeper for --bandwidth-limit: when may the next ``n`` bytes go."""

    def __init__(self, rate: int | None) -> None:
        self.rate = rate
        self.start = time.monotonic()
        self.sent = 0

    def delay(self, n: int) -> float:
        if not self.rate:
            return 0.0
        due = self.start + (self.sent + n) / self.rate
        return max(0.0, due - time.monotonic())

    def spent(self, n: int) -> None:
        self.sent += n


class BatchRun:
    """One batch over one session: manifest, hashes on request, pipelined uploads."""

    def __init__(
        self, session: Session, summary: Summary, options: Options, progress: Progress, limiter: Limiter
    ) -> None:
        self.session = session
        self.summary = summary
        self.options = options
        self.progress = progress
        self.limiter = limiter
        self.pending: dict[str, Entry] = {}
        self.results: dict[int, Message] = {}

    def run(self, batch: list[Entry], batch_id: int) -> None:
        if self.options.checksum:
            batch = self._hashed(batch)
        result = self._manifest(batch, batch_id)
        send = [batch[i] for i in result["send"]]
        if result["need_hash"]:
            asked = self._hashed([batch[i] for i in result["need_hash"]])
            second = self._manifest(asked, batch_id + SECOND_MANIFEST_ID_OFFSET) if asked else None
            if second is not None:
                send += [asked[i] for i in second["send"]]
                self._count(asked, second)
        self._count(batch, result)
        for entry in send:
            self._upload(entry)
        while self.pending:
            self._handle(self.session.recv(WAIT_SLICE_S))

    def _count(self, batch: list[Entry], result: Message) -> None:
        s = self.summary
        s.unchanged += len(result["skip"])
        s.linked += len(result["linked"])
        s.refused += len(result["refused"])
        for index, reason in result["refused"]:
            s.skip(batch[index].path, f"refused by the server: {reason}")
        self.progress.update(checked=len(result["skip"]) + len(result["linked"]) + len(result["refused"]))

    def _hashed(self, entries: list[Entry]) -> list[Entry]:
        out = []
        for entry in entries:
            try:
                entry.sha256 = scanned_sha256(entry)
            except OSError as exc:
                self.summary.skip(entry.path, exc.strerror or str(exc))
                continue
            self.session.service()  # hashing a big file must not starve the heartbeats
            out.append(entry)
        return out

    def _manifest(self, entries: list[Entry], batch_id: int) -> Message:
        self.session.conn.send("manifest", batch=batch_id, entries=[e.wire() for e in entries])
        deadline = time.monotonic() + MANIFEST_REPLY_S
        while batch_id not in self.results:
            if time.monotonic() > deadline:
                raise SessionLost(f"no answer to a manifest within {MANIFEST_REPLY_S:.0f}s")
            self._handle(self.session.recv(WAIT_SLICE_S))
        return self.results.pop(batch_id)

    def _handle(self, msg: Message | None) -> None:
        if msg is None:
            return
        if msg.type == "manifest_result":
            self.results[msg["batch"]] = msg
        elif msg.type == "stored":
            entry = self.pending.pop(msg["u"], None)
            if entry is not None:
                self.summary.sent += 1
                self.progress.update(checked=1, stored=1)
        elif msg.type == "failed":
            entry = self.pending.pop(msg["u"], None)
            if msg["code"] == STORAGE_FULL:
                raise self._stop_on_full_storage(msg["message"])
            if entry is None:
                return
            if msg["code"] in (SIZE_MISMATCH, HASH_MISMATCH):
                self.summary.skip(entry.path, f"changed while being read ({msg['message']})")
            else:
                self.summary.failed += 1
                log.error("agent.upload_failed", path=entry.path, code=msg["code"], reason=msg["message"])
            self.progress.update(checked=1)
        elif msg.type == "error":
            log.warning("agent.server_error", code=msg["code"], reason=msg["message"], ref=msg.get("ref"))
            if msg["code"] == "CREDIT_EXCEEDED":
                raise AgentError(f"the server ended the upload: {msg['message']}", EXIT_FAILED)
            if msg["code"] == STORAGE_FULL:
                raise self._stop_on_full_storage(msg["message"])

    def _stop_on_full_storage(self, message: str) -> AgentError:
        """Nothing more can be stored: the uploads in flight are given up (the server drops their
        temporary files at once) and the run ends with the storage-full exit status."""
        for upload_id in list(self.pending):
            with contextlib.suppress(SessionLost):
                self.session.conn.send("abort", u=upload_id, reason="server storage full")
        self.pending.clear()
        log.error("agent.server_storage_full", reason=message)
        return storage_full(message)

    def _await_credit(self, n_bytes: int) -> None:
        while self.session.credit.available <= 0:
            self._handle(self.session.recv(WAIT_SLICE_S))
        pause = self.limiter.delay(n_bytes)
        while pause > 0:
            self._handle(self.session.recv(pause))
            pause = self.limiter.delay(n_bytes)

    def _upload(self, entry: Entry) -> None:
        try:
            f = open_scanned(entry)
        except OSError as exc:
            self.summary.skip(entry.path, exc.strerror or str(exc))
            self.progress.update(checked=1)
            return
        upload_id = new_id()
        size = self.session.chunk_size
        h = hashlib.sha256()
        index = offset = 0
        with f:
            try:
                current = f.read(size)
                while True:
                    following = f.read(size) if len(current) == size else b""
                    last = not following
                    h.update(current)
                    fields: dict[str, Any] = {}
                    if index == 0:
                        fields = {
                            "path": entry.path,
                            "size": entry.size,
                            "mtime_ns": entry.mtime_ns,
                            "mode": entry.mode,
                        }
                        self.pending[upload_id] = entry
                    if last:
                        fields["sha256"] = h.hexdigest()
                    self._await_credit(len(current))
                    self.session.conn.send("chunk", current, u=upload_id, i=index, o=offset, last=last, **fields)
                    self.session.credit.spend()
                    self.limiter.spent(len(current))
                    self.summary.bytes_sent += len(current)
                    self.progress.update(sent_bytes=len(current))
                    index += 1
                    offset += len(current)
                    if last:
                        return
                    current = following
            except OSError as exc:
                if index:
                    self.session.conn.send("abort", u=upload_id, reason=str(exc))
                self.pending.pop(upload_id, None)
                self.summary.skip(entry.path, exc.strerror or str(exc))
                self.progress.update(checked=1)


def run_backup(
    connect: Callable[[], Session], options: Options, progress: Progress, session: Session | None = None
) -> tuple[Summary, Session]:
    """Back up ``options.root``; reconnects (via ``connect``) when the session is lost.

    Returns the summary and the session still open (watch mode keeps using it).
    """
    summary = Summary(root=os.path.abspath(options.root))
    started = time.monotonic()
    limiter = Limiter(options.bandwidth)
    session = session or connect()
    for number, batch in enumerate(batches(scan(options.root, summary), session.max_batch), 1):
        summary.files += len(batch)
        progress.update(found=len(batch))
        lost_since: float | None = None
        while True:
            try:
                BatchRun(session, summary, options, progress, limiter).run(batch, number)
                break
            except SessionLost as exc:
                lost_since = lost_since or time.monotonic()
                log.warning("agent.session_lost", reason=str(exc), batch=number, retrying_for=options.retry_for)
                session = _reconnect(connect, session, lost_since, options.retry_for)
    summary.seconds = round(time.monotonic() - started, 3)
    if summary.skipped_files:
        session.conn.send("report", skipped=summary.skipped_files[:MAX_REPORTED_SKIPS])
    session.conn.send("done", summary=summary.wire())
    return summary, session


def _reconnect(connect: Callable[[], Session], old: Session, since: float, budget: float) -> Session:
    old.conn.close()
    while True:
        left = since + budget - time.monotonic()
        if left <= 0:
            raise AgentError(
                f"lost the connection to the server and it did not come back within {budget:.0f}s", EXIT_LOST
            )
        try:
            return connect()
        except SessionLost as exc:
            log.info("agent.reconnect_waiting", reason=str(exc), left_s=round(left, 1))
        except AgentError as exc:
            if exc.exit_code != EXIT_UNREACHABLE:  # only "unreachable" is worth waiting out
                raise
            log.info("agent.reconnect_waiting", reason=exc.message, left_s=round(left, 1))
