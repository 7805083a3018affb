"""download_file on the requester's side: stream, hash, write atomically, verify."""

from __future__ import annotations

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

Progress = Callable[[int, int | None], None]


def _check_destination(destination: Path) -> None:
    if destination.is_dir():
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"destination {destination} is a directory; give a file path")
    parent = destination.parent
    if not parent.is_dir():
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"destination folder {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ProtocolError(ErrorCode.FORBIDDEN, f"destination folder {parent} is not writable")


def download_file(client: BridgeClient, file_id: str, destination_path: str, *, progress: Progress | None = None,
                  timeout: float | None = None) -> dict[str, Any]:
    """Fetch a file through the bridge into ``destination_path``; returns the standard reply.

    Bytes go to a temporary file beside the destination and are renamed into place only
    when complete and their SHA-256 matches the backend's; otherwise nothing is left behind.
    """
    destination = Path(destination_path).expanduser().absolute()
    try:
        _check_destination(destination)
    except ProtocolError as exc:
        return responses.from_protocol_error(exc, mode="local")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    receiver: StreamReceiver | None = None
    try:
        with os.fdopen(fd, "wb") as out:

            def on_chunk(header: Header, data: bytes) -> list[bytes]:
                nonlocal receiver
                if receiver is None:
                    receiver = StreamReceiver(header.reply_to or "")
                try:
                    ack = receiver.on_chunk(header.fields["index"], header.fields["offset"], header.get("total") or 0, data)
                except ProtocolError:
                    return [encode_header(CANCEL, reply_to=receiver.reply_to), b""]
                out.write(data)
                if progress is not None:
                    progress(receiver.received, receiver.total)
                return ack

            reply = client.stream("download_file", {"file_id": file_id, "destination_path": str(destination)},
                                  on_chunk, timeout=timeout)
            if not reply.get("success"):
                return reply
            expected = reply["data"]["sha256"]
            got = receiver.sha256 if receiver is not None else hashlib.sha256(b"").hexdigest()
            size = receiver.received if receiver is not None else 0
            if got != expected or size != reply["data"]["size"]:
                return responses.error(
                    ErrorCode.INTERNAL,
                    f"downloaded content does not match: sha256 {got} ({size} bytes), expected {expected} "
                    f"({reply['data']['size']} bytes); nothing was written",
                    mode=reply.get("mode", "local"),
                )
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, destination)
        tmp_name = ""
        _fsync_dir(destination.parent)
        reply["data"]["destination_path"] = str(destination)
        reply["message"] = f"downloaded {size} bytes to {destination}"
        return reply
    finally:
        if tmp_name:
            try:
                os.unlink(tmp_name)
            except FileNotFoundError:
                pass


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
