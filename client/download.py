"""download_file on the requester's side: stream, hash, write atomically, verify.

``DownloadWriter`` holds the file side (temporary file beside the destination, hash,
progress, the final check and rename) so the sync and async clients share it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from client.connection import BridgeClient
from protocol import responses
from protocol.envelope import CANCEL, Header, encode_header
from protocol.errors import ErrorCode, ProtocolError
from protocol.streaming import StreamReceiver
from runtime.fsutil import fsync_dir

Progress = Callable[[int, int | None], None]


class DownloadWriter:
    """Bytes go to a temporary file beside the destination and are renamed into place only
    when complete and their SHA-256 matches the backend's; otherwise nothing is left behind."""

    def __init__(self, destination_path: str, progress: Progress | None = None) -> None:
        self.destination = Path(destination_path).expanduser().absolute()
        self.progress = progress
        self.receiver: StreamReceiver | None = None
        self._check_destination()
        fd, self._tmp = tempfile.mkstemp(
            prefix=f".{self.destination.name}.", suffix=".part", dir=self.destination.parent
        )
        self._out = os.fdopen(fd, "wb")

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

    def on_chunk(self, header: Header, data: bytes) -> list[bytes]:
        """Write one chunk; returns the frames to send back (an ack, or a cancel when out of order)."""
        if self.receiver is None:
            self.receiver = StreamReceiver(header.reply_to or "")
        try:
            ack = self.receiver.on_chunk(
                header.fields["index"], header.fields["offset"], header.get("total") or 0, data
            )
        except ProtocolError:
            return [encode_header(CANCEL, reply_to=self.receiver.reply_to), b""]
        self._out.write(data)
        if self.progress is not None:
            self.progress(self.receiver.received, self.receiver.total)
        return ack

    def finish(self, reply: dict[str, Any]) -> dict[str, Any]:
        """Check the final reply against what arrived; rename into place or discard."""
        try:
            if not reply.get("success"):
                return reply
            expected, expected_size = reply["data"]["sha256"], reply["data"]["size"]
            got = self.receiver.sha256 if self.receiver is not None else hashlib.sha256(b"").hexdigest()
            size = self.receiver.received if self.receiver is not None else 0
            if got != expected or size != expected_size:
                return responses.error(
                    ErrorCode.INTERNAL,
                    f"downloaded content does not match: sha256 {got} ({size} bytes), expected {expected} "
                    f"({expected_size} bytes); nothing was written",
                    mode=reply.get("mode", "local"),
                )
            self._out.flush()
            os.fsync(self._out.fileno())
            self._out.close()
            os.replace(self._tmp, self.destination)
            self._tmp = ""
            fsync_dir(self.destination.parent)
            reply["data"]["destination_path"] = str(self.destination)
            reply["message"] = f"downloaded {size} bytes to {self.destination}"
            return reply
        finally:
            self.abort()

    def abort(self) -> None:
        """Discard the temporary file (no-op once the download was renamed into place)."""
        if not self._out.closed:
            self._out.close()
        if self._tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._tmp)
            self._tmp = ""


def open_writer(destination_path: str, progress: Progress | None) -> DownloadWriter | dict[str, Any]:
    """A writer, or the standard error reply saying why the destination cannot be used."""
    try:
        return DownloadWriter(destination_path, progress)
    except ProtocolError as exc:
        return responses.from_protocol_error(exc, mode="local")


def download_file(
    client: BridgeClient,
    file_id: str,
    destination_path: str,
    *,
    progress: Progress | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Fetch a file through the bridge into ``destination_path``; returns the standard reply."""
    writer = open_writer(destination_path, progress)
    if isinstance(writer, dict):
        return writer
    try:
        reply = client.stream(
            "download_file",
            {"file_id": file_id, "destination_path": str(writer.destination)},
            writer.on_chunk,
            timeout=timeout,
        )
        return writer.finish(reply)
    finally:
        writer.abort()
