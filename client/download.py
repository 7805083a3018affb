"""Streaming operations on the requester's side: stream, hash, write atomically, verify.

A streaming operation (``Operation.streaming``, e.g. download_file) sends its content as
chunks that the requester writes to the operation's ``destination_path`` argument on its
own machine. ``DownloadWriter`` holds the file side (temporary file beside the
destination, hash, progress, the final check and rename) so the sync and async clients
share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from client.connection import BridgeClient
from client.errors import local_error
from protocol import responses
from protocol.envelope import CANCEL, Header, encode_header
from protocol.errors import ErrorCode, ProtocolError
from protocol.modes import Mode
from protocol.responses import Reply
from protocol.streaming import UNHASHED_STREAMS, StreamReceiver
from runtime.fsutil import AtomicFile

Progress = Callable[[int, int | None], None]

WRITEBACK_BYTES = 32 << 20  # written since the last background sync: the disk gets to work on them


class Writeback:
    """An fdatasync of what was written so far, in a thread while more arrives, every ``WRITEBACK_BYTES``:
    the final fsync then waits for the last stretch only, not for the whole download at its end."""

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.unsynced = 0
        self._thread: threading.Thread | None = None

    def wrote(self, count: int) -> None:
        self.unsynced += count
        if self.unsynced < WRITEBACK_BYTES or (self._thread is not None and self._thread.is_alive()):
            return
        self.file.flush()
        self.unsynced = 0
        self._thread = threading.Thread(target=_datasync, args=(self.file.fileno(),), name="download-writeback")
        self._thread.start()

    def wait(self) -> None:
        """Before the file is synced for good or closed: its descriptor must outlive the thread."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None


def _datasync(fd: int) -> None:
    with contextlib.suppress(OSError):  # the commit's own fsync reports a failing disk
        os.fdatasync(fd)


class DownloadWriter:
    """Bytes go to a temporary file beside the destination and are renamed into place only
    when complete and their SHA-256 matches the backend's; otherwise nothing is left behind.

    ``hashed`` False: a stream whose reply carries no SHA-256 (``UNHASHED_STREAMS``), checked
    by its size, order and the backend's own verification instead."""

    def __init__(self, destination_path: str, progress: Progress | None = None, *, hashed: bool = True) -> None:
        self.destination = Path(destination_path).expanduser().absolute()
        self.progress = progress
        self.hashed = hashed
        self.receiver: StreamReceiver | None = None
        self._check_destination()
        self._out = AtomicFile(self.destination)
        self._writeback = Writeback(self._out.file)

    def _check_destination(self) -> None:
        if self.destination.is_dir():
            raise ProtocolError(
                ErrorCode.BAD_REQUEST, f"destination {self.destination} is a directory; give a file path"
            )
        parent = self.destination.parent
        if not parent.is_dir():
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"destination folder {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise ProtocolError(ErrorCode.FORBIDDEN, f"destination folder {parent} is not writable")

    def on_chunk(self, header: Header, data: bytes | memoryview) -> list[bytes]:
        """Write one chunk; returns the frames to send back (an ack, or a cancel when out of order)."""
        if self.receiver is None:
            self.receiver = StreamReceiver(header.reply_to or "", self.hashed)
        try:
            ack = self.receiver.on_chunk(
                header.fields["index"], header.fields["offset"], header.get("total") or 0, data
            )
        except ProtocolError:
            return [encode_header(CANCEL, reply_to=self.receiver.reply_to), b""]
        self._out.write(data)
        self._writeback.wrote(len(data))
        if self.progress is not None:
            self.progress(self.receiver.received, self.receiver.total)
        return ack

    def finish(self, reply: Reply) -> Reply:
        """Check the final reply against what arrived; rename into place or discard."""
        try:
            if not reply.get("success"):
                return reply
            expected, expected_size = reply["data"].get("sha256") if self.hashed else None, reply["data"]["size"]
            got = self.receiver.sha256 if self.receiver is not None else hashlib.sha256(b"").hexdigest()
            size = self.receiver.received if self.receiver is not None else 0
            if (self.hashed and got != expected) or size != expected_size:
                return local_error(
                    ErrorCode.INTERNAL,
                    f"downloaded content does not match: sha256 {got if self.hashed else '-'} ({size} bytes), "
                    f"expected {expected or '-'} ({expected_size} bytes); nothing was written",
                )
            self._writeback.wait()
            self._out.commit()
            reply["data"]["destination_path"] = str(self.destination)
            reply["message"] = f"downloaded {size} bytes to {self.destination}"
            if reply["data"].get("damaged"):  # asked for with allow_damaged: what is stored, not what was backed up
                recorded = reply["data"].get("expected_sha256", "")
                reply["message"] += f" (DAMAGED: sha256 {got[:12]}…, recorded {recorded[:12]}…)"
            return reply
        finally:
            self.abort()

    def abort(self) -> None:
        """Discard the temporary file (no-op once the download was renamed into place)."""
        self._writeback.wait()
        self._out.abort()


def open_writer(op: str, args: dict[str, Any], progress: Progress | None) -> DownloadWriter | Reply:
    """A writer for the request's ``destination_path``, or the error reply saying why it cannot be used."""
    try:
        return DownloadWriter(str(args.get("destination_path") or ""), progress, hashed=op not in UNHASHED_STREAMS)
    except ProtocolError as exc:
        return responses.as_reply(responses.from_protocol_error(exc, mode=Mode.LOCAL))


def request_args(args: dict[str, Any], writer: DownloadWriter) -> dict[str, Any]:
    """The request's arguments with the absolute destination, so the backend (and a recording) sees where it went."""
    return {**args, "destination_path": str(writer.destination)}


def download(
    client: BridgeClient,
    op: str,
    args: dict[str, Any],
    *,
    progress: Progress | None = None,
    timeout: float | None = None,
) -> Reply:
    """Run the streaming operation ``op`` into its ``destination_path``; returns the standard reply."""
    writer = open_writer(op, args, progress)
    if not isinstance(writer, DownloadWriter):
        return writer
    try:
        return writer.finish(client.stream(op, request_args(args, writer), writer.on_chunk, timeout=timeout))
    finally:
        writer.abort()
