"""Taps on the bridge: a PUB socket for attached recorders, and a file recorder.

The socket tap is active only while someone subscribes (XPUB tells us), so recording
costs nothing when nobody listens. Both remove secrets (passwords, tokens, secret keys,
the ``auth`` header) from headers and bodies before anything leaves or is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import structlog
import zmq

from protocol.errors import ProtocolError
from protocol.recording import RecordingWriter, envelope_parts, make_header, read_recording, scrubbed_frames

log = structlog.get_logger()

TAP_HWM = 100_000


class SocketTap:
    """``prepare`` secures the socket before it binds (CURVE server, ZAP domain ``tap``: admins only)."""

    def __init__(self, ctx: zmq.Context, endpoint: str, prepare: Callable[[zmq.Socket], None]) -> None:
        self.sock = ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, TAP_HWM)
        prepare(self.sock)
        self.sock.bind(endpoint)
        self.endpoint = endpoint
        self.subscribers = 0

    @property
    def active(self) -> bool:
        return self.subscribers > 0

    def record(self, direction: str, header: bytes, body: bytes) -> None:
        clean = scrubbed_frames(header, body)
        if clean is None:
            return  # unreadable headers were answered with an error; nothing to replay
        try:
            self.sock.send_multipart([direction.encode(), *clean, repr(time.time()).encode()], zmq.NOBLOCK)
        except zmq.Again:
            log.warning("bridge.tap_dropped_hwm")

    def on_subscription(self, frames: list[bytes]) -> None:
        """XPUB delivers one message per (un)subscription; count them to know if anyone listens."""
        if frames and frames[0][:1] == b"\x01":
            self.subscribers += 1
            log.info("bridge.tap_attached", recorders=self.subscribers)
        elif frames and frames[0][:1] == b"\x00":
            self.subscribers = max(0, self.subscribers - 1)
            log.info("bridge.tap_detached", recorders=self.subscribers)

    def close(self) -> None:
        self.sock.close(0)


class FileRecorder:
    """Writes every message to a recording file (``run_all.py --record FILE``).

    A file that already holds a recording is continued (the bridge was restarted by
    run_all): entries keep counting from the recording's start."""

    active = True

    def __init__(self, path: Path, *, seed: int | None, config: dict[str, Any]) -> None:
        self.path = path
        existing = _existing_start(path)
        self._stream: IO[bytes] = open(path, "ab")  # noqa: SIM115 - open for the recorder's life, closed by close()
        if existing is None:
            self._started_at = time.time()
            self._writer = RecordingWriter(
                self._stream, make_header(seed=seed, started_at=self._started_at, config=config)
            )
            log.info("bridge.recording", path=str(path))
        else:
            self._started_at = existing
            self._writer = RecordingWriter(self._stream, None)
            log.info("bridge.recording_resumed", path=str(path))

    def record(self, direction: str, header: bytes, body: bytes) -> None:
        try:
            fields, payload = envelope_parts(header, body)
        except ProtocolError:
            return  # unreadable headers were answered with an error; nothing to replay
        self._writer.append(round(time.time() - self._started_at, 6), direction, fields, payload)

    def close(self) -> None:
        self._stream.close()


def _existing_start(path: Path) -> float | None:
    """The start time of a valid recording already at ``path``, or None for a missing or empty file."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as stream:
        header, _ = read_recording(stream)
    return float(header["started_at"])
