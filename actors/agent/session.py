"""The agent's connection to the backup server: CURVE socket, handshake outcome, session, heartbeats.

``Connection`` owns the DEALER socket and a monitor on it, which is how the agent tells
"server unreachable" (no TCP connection), "key refused" (ZAP said no: the handshake
fails with an authentication error) and "connection lost" (the TCP connection dropped)
apart, quickly and clearly. ``Session`` adds the hello/welcome exchange, heartbeats
both ways, credit bookkeeping and the server's orders (disconnect).
"""

from __future__ import annotations

import contextlib
import platform
import socket
import time
import uuid
from dataclasses import dataclass, field

import structlog
import zmq
from zmq.utils.monitor import recv_monitor_message

from protocol.agent_messages import (
    LIVENESS,
    NO_SESSION,
    SERVER_TO_AGENT,
    STOPPED,
    STORAGE_FULL,
    AgentProtocolError,
    Credit,
    Message,
    decode_message,
    encode_message,
)

log = structlog.get_logger()

AGENT_VERSION = "0.1.0"
HANDSHAKE_POLL_S = 0.2  # while connecting, re-check the deadline this often
ID_HEX_CHARS = 16  # 64 random bits: ids of uploads and restores never collide within a session

# Exit codes of the agent program (also in docs/agent-protocol.md).
EXIT_OK = 0
EXIT_FAILED = 1  # the run finished but some files could not be stored
EXIT_USAGE = 2  # bad arguments, missing path, unusable destination
EXIT_UNREACHABLE = 3
EXIT_KEY_REFUSED = 4
EXIT_NOT_FOUND = 5
EXIT_DISCONNECTED = 6  # the operator disconnected this agent
EXIT_STOPPED = 7  # the server does not accept agents now
EXIT_LOST = 8  # the connection was lost and did not come back in time
EXIT_STORAGE_FULL = 9  # the server's storage is full: the run stopped, nothing more can be stored


class AgentError(Exception):
    """A failure the agent reports in one line and an exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class SessionLost(Exception):
    """The session ended under us (connection dropped, server restarted): reconnect and redo."""


@dataclass(frozen=True, slots=True)
class Identity:
    name: str
    hostname: str = field(default_factory=socket.gethostname)
    platform: str = field(default_factory=lambda: f"{platform.system()} {platform.release()}".strip())
    version: str = AGENT_VERSION

    def fields(self) -> dict[str, str]:
        return {"name": self.name, "hostname": self.hostname, "platform": self.platform, "version": self.version}


class Connection:
    """A CURVE DEALER to the server plus a monitor that says what happened to it."""

    def __init__(
        self, endpoint: str, server_key: bytes, public: bytes, secret: bytes, ctx: zmq.Context | None = None
    ) -> None:
        self.endpoint = endpoint
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.curve_serverkey = server_key
        self.sock.curve_publickey = public
        self.sock.curve_secretkey = secret
        self.sock.setsockopt(zmq.LINGER, 0)
        # Queue only on a completed handshake: nothing is silently queued for a server that
        # is down, and what was queued for a connection that dropped is discarded with it.
        self.sock.setsockopt(zmq.IMMEDIATE, 1)
        self.monitor = self.sock.get_monitor_socket()
        self.sock.connect(endpoint)
        self.up = False
        self.tcp_seen = False
        self.refused = False
        self.handshake_failures = 0
        self.poller = zmq.Poller()
        self.poller.register(self.sock, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)

    def close(self) -> None:
        if self.sock.closed:
            return
        with contextlib.suppress(zmq.ZMQError):
            self.sock.disable_monitor()
        self.monitor.close(0)
        self.sock.close(0)

    def _on_monitor(self) -> None:
        while True:
            try:
                event = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            kind = event["event"]
            if kind == zmq.EVENT_CONNECTED:
                self.tcp_seen = True
            elif kind == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self.up = True
            elif kind == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                self.refused = True
                self.up = False
            elif kind in (zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL, zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL):
                self.handshake_failures += 1
            elif kind == zmq.EVENT_DISCONNECTED:
                if self.up:
                    log.warning("agent.connection_lost", server=self.endpoint)
                self.up = False

    def wait_up(self, timeout: float) -> None:
        """Until the handshake succeeded; raises AgentError saying why it did not."""
        deadline = time.monotonic() + timeout
        while not self.up:
            if self.refused:
                raise AgentError(
                    "the server refused our key (not enrolled?): enroll with --enroll-token TOKEN "
                    "or add our public key to the server's allow-list",
                    EXIT_KEY_REFUSED,
                )
            left = deadline - time.monotonic()
            if left <= 0:
                if self.tcp_seen:
                    raise AgentError(
                        f"connected to {self.endpoint} but the secure handshake never completed (wrong server key?)",
                        EXIT_UNREACHABLE,
                    )
                raise AgentError(f"cannot reach the backup server at {self.endpoint}", EXIT_UNREACHABLE)
            if self.monitor.poll(int(min(left, HANDSHAKE_POLL_S) * 1000) + 1):  # +1: never a busy poll(0)
                self._on_monitor()

    def send(self, type_: str, body: bytes | memoryview = b"", /, **fields: object) -> None:
        if self.sock.closed:
            raise SessionLost("the connection was closed")
        try:
            self.sock.send_multipart(encode_message(type_, body, **fields), zmq.NOBLOCK, copy=False)
        except zmq.Again:
            raise SessionLost("the connection to the server is down") from None

    def recv(self, timeout: float) -> Message | None:
        """The next server message within ``timeout`` seconds (monitor events handled on the way)."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.0, deadline - time.monotonic())
            ready = dict(self.poller.poll(int(left * 1000)))
            if self.monitor in ready:
                self._on_monitor()
            if self.sock in ready:
                try:
                    return decode_message(self.sock.recv_multipart(zmq.NOBLOCK), SERVER_TO_AGENT)
                except zmq.Again:
                    pass
                except AgentProtocolError as exc:
                    log.warning("agent.bad_server_message", reason=exc.message)
            if not self.up and self.refused:
                raise AgentError("the server refused our key (not enrolled?)", EXIT_KEY_REFUSED)
            if not self.up:
                raise SessionLost("the connection to the server dropped")
            if time.monotonic() >= deadline:
                return None


class Session:
    """hello/welcome, then heartbeats both ways; ``recv`` filters what the session itself handles."""

    def __init__(self, conn: Connection, identity: Identity) -> None:
        self.conn = conn
        self.identity = identity
        self.client_id = ""
        self.window = 1
        self.chunk_size = 1
        self.max_batch = 1
        self.heartbeat_s = 1.0
        self.credit = Credit(1)
        self.last_heard = time.monotonic()
        self.next_beat = 0.0
        self.jobs: list[Message] = []  # restore jobs offered, kept for when the agent is free (restore_job.serve)
        self.cancelled: set[str] = set()  # restore jobs the server said to stop (job_cancel): checked between files

    def open(self, timeout: float) -> None:
        """Say hello (after the handshake) and wait for the welcome."""
        self.conn.wait_up(timeout)
        self.conn.send("hello", **self.identity.fields())
        deadline = time.monotonic() + timeout
        while True:
            msg = self.conn.recv(max(0.0, deadline - time.monotonic()))
            if msg is None:
                raise AgentError(f"the server at {self.conn.endpoint} did not answer our hello", EXIT_UNREACHABLE)
            if msg.type == "welcome":
                break
            if msg.type == "error":
                raise error_of(msg)
        self.client_id = msg["client_id"]
        self.window, self.chunk_size, self.max_batch = msg["window"], msg["chunk_size"], msg["max_batch"]
        self.heartbeat_s = float(msg["heartbeat_s"])
        self.credit = Credit(self.window)
        self.last_heard = time.monotonic()
        self.next_beat = self.last_heard + self.heartbeat_s
        log.info("agent.session_opened", client_id=self.client_id, server=self.conn.endpoint, window=self.window)

    def service(self) -> None:
        """Heartbeat when due; notice a silent server."""
        now = time.monotonic()
        if now >= self.next_beat:
            self.next_beat = now + self.heartbeat_s
            self.conn.send("heartbeat")
        if now - self.last_heard > self.heartbeat_s * LIVENESS:
            raise SessionLost(f"no word from the server for {now - self.last_heard:.1f}s")

    def recv(self, timeout: float) -> Message | None:
        """The next message for the caller; None on timeout. Raises SessionLost / AgentError."""
        deadline = time.monotonic() + timeout
        while True:
            self.service()
            left = deadline - time.monotonic()
            msg = self.conn.recv(max(0.0, min(left, self.heartbeat_s / 2)))
            if msg is not None:
                self.last_heard = time.monotonic()
                if msg.type == "pong":
                    continue
                if msg.type == "restore_job":
                    if all(j["job"] != msg["job"] for j in self.jobs):
                        self.jobs.append(msg)
                    continue
                if msg.type == "job_cancel":
                    self.jobs = [j for j in self.jobs if j["job"] != msg["job"]]  # an offer not taken yet goes
                    self.cancelled.add(msg["job"])
                    continue
                if msg.type == "credit":
                    self.credit.grant(msg["n"])
                    return msg
                if msg.type == "disconnect":
                    raise AgentError(f"the server ended our session: {msg['reason']}", EXIT_DISCONNECTED)
                if msg.type == "error" and msg["code"] in (NO_SESSION, STOPPED):
                    if msg["code"] == STOPPED:
                        raise error_of(msg)
                    raise SessionLost("the server does not know this session (it restarted?)")
                return msg
            if time.monotonic() >= deadline:
                return None

    def bye(self, reason: str = "agent finished") -> None:
        with contextlib.suppress(SessionLost):
            self.conn.send("bye", reason=reason)


def error_of(msg: Message) -> AgentError:
    code, message = msg["code"], msg["message"]
    if code == STOPPED:
        return AgentError(f"the server is not accepting agents: {message}", EXIT_STOPPED)
    if code == "FORBIDDEN":
        return AgentError(f"the server refused us: {message}", EXIT_KEY_REFUSED)
    if code == "NOT_FOUND":
        return AgentError(message, EXIT_NOT_FOUND)
    if code == STORAGE_FULL:
        return storage_full(message)
    return AgentError(f"the server answered {code}: {message}", EXIT_FAILED)


def storage_full(message: str) -> AgentError:
    """The server cannot store anything now: the run stops (retrying would fail the same way)."""
    return AgentError(f"server storage full: the backup stopped ({message})", EXIT_STORAGE_FULL)


def enroll(
    endpoint: str,
    server_key: bytes,
    token_pair: tuple[bytes, bytes],
    own_public: bytes,
    identity: Identity,
    timeout: float,
) -> str:
    """Register ``own_public`` with the server over a connection keyed by the token; returns the client id."""
    conn = Connection(endpoint, server_key, *token_pair)
    try:
        try:
            conn.wait_up(timeout)
        except AgentError as exc:
            if exc.exit_code == EXIT_KEY_REFUSED:
                raise AgentError("the server refused the enrollment token", EXIT_KEY_REFUSED) from None
            raise
        conn.send("enroll", public_key=own_public.decode(), **identity.fields())
        msg = conn.recv(timeout)
        if msg is None:
            raise AgentError(f"the server at {endpoint} did not answer our enrollment", EXIT_UNREACHABLE)
        if msg.type == "error":
            raise error_of(msg)
        if msg.type != "enrolled":
            raise AgentError(f"unexpected answer to enroll: {msg.type}", EXIT_FAILED)
        log.info("agent.enrolled", client_id=msg["client_id"], server=endpoint)
        return msg["client_id"]
    finally:
        conn.close()


def new_id() -> str:
    return uuid.uuid4().hex[:ID_HEX_CHARS]
