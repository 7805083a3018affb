"""The backup agent: backs up a folder to the backup server (once or on a schedule) and restores files.

    python -m actors.agent backup PATH --server EP [--name NAME] [--watch SECONDS] [--config-dir DIR]
                                       [--enroll-token TOKEN] [--server-key FILE | --data-dir DIR]
    python -m actors.agent restore FILE_ID DEST --server EP [--server-key FILE | --data-dir DIR]
    python -m actors.agent show-key [--config-dir DIR]

Exit codes: 0 done, 1 some files failed, 2 bad arguments or path, 3 server unreachable,
4 key refused, 5 not found, 6 disconnected by the operator, 7 server stopped,
8 connection lost for longer than --retry-for, 9 server storage full (the run stopped).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from actors.agent.backup import Options, Summary, run_backup
from actors.agent.progress import Progress, human
from actors.agent.restore import check_destination, restore
from actors.agent.restore_job import serve
from actors.agent.session import (
    EXIT_DISCONNECTED,
    EXIT_FAILED,
    EXIT_KEY_REFUSED,
    EXIT_LOST,
    EXIT_OK,
    EXIT_STOPPED,
    EXIT_STORAGE_FULL,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    AgentError,
    Connection,
    Identity,
    Session,
    SessionLost,
    enroll,
)
from protocol.agent_messages import DEFAULT_AGENTS_ENDPOINT
from runtime.curve_keys import enrollment_keypair, load_or_create, load_public
from runtime.logsetup import configure_logging
from runtime.tuning import tune_malloc

log = structlog.get_logger()

ENV_SERVER = "BACKUP_SERVER_ENDPOINT"
ENROLLED_FILE = "enrolled"  # server public keys this agent enrolled with, one per line
KIB = 1024  # --bandwidth-limit is in KiB/s
WATCH_RETRY_S = 5.0  # watch mode: after losing the server, try again this soon (sooner if runs are)


class Interrupted(Exception):
    """SIGTERM/SIGINT: leave the session politely and exit 0."""


def _interrupt(*_: object) -> None:
    raise Interrupted()


def default_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "backup-agent"


class Agent:
    """Keys, identity and the way to a session (enrolling first when it has to and can)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server = args.server
        self.config_dir: Path = args.config_dir
        self.server_key = self._server_key()
        self.public, self.secret = load_or_create(self.config_dir, "agent")
        self.identity = Identity(name=getattr(args, "name", None) or socket.gethostname())
        self.token: str | None = getattr(args, "enroll_token", None)
        token_file: Path | None = getattr(args, "enroll_token_file", None)
        if not self.token and token_file is not None:
            try:
                self.token = token_file.read_text().strip() or None
            except OSError as exc:
                raise AgentError(f"cannot read the enrollment token from {token_file}: {exc}", EXIT_USAGE) from None

    def _server_key(self) -> bytes:
        path = self.args.server_key or (
            self.args.data_dir / "server" / "keys" / "server.key" if self.args.data_dir else None
        )
        if path is None:
            raise AgentError("the agent needs the server's public key: --server-key FILE or --data-dir DIR", EXIT_USAGE)
        try:
            return load_public(path)
        except (OSError, ValueError) as exc:
            raise AgentError(f"cannot read the server's public key from {path}: {exc}", EXIT_USAGE) from None

    def _enrolled(self) -> bool:
        path = self.config_dir / ENROLLED_FILE
        return path.exists() and self.server_key.decode() in path.read_text().split()

    def _enroll(self) -> None:
        assert self.token
        enroll(
            self.server,
            self.server_key,
            enrollment_keypair(self.token),
            self.public,
            self.identity,
            self.args.connect_timeout,
        )
        with open(self.config_dir / ENROLLED_FILE, "a") as f:
            f.write(self.server_key.decode() + "\n")

    def connect(self) -> Session:
        conn = Connection(self.server, self.server_key, self.public, self.secret)
        session = Session(conn, self.identity)
        try:
            session.open(self.args.connect_timeout)
        except BaseException:
            conn.close()
            raise
        return session

    def session(self) -> Session:
        """A session, enrolling with the token first if we have one and are not enrolled (or were refused)."""
        enrolled_now = False
        if self.token and not self._enrolled():
            self._enroll()
            enrolled_now = True
        try:
            return self.connect()
        except AgentError as exc:
            if exc.exit_code != EXIT_KEY_REFUSED or not self.token or enrolled_now:
                raise
        log.info("agent.re_enrolling", reason="our key was refused (client deleted on the server?)")
        self._enroll()
        return self.connect()


def _summary_text(s: Summary) -> str:
    return (
        f"backup of {s.root}: {s.files} files, {s.sent} sent ({human(s.bytes_sent)}), {s.linked} linked, "
        f"{s.unchanged} unchanged, {s.skipped} skipped, {s.failed} failed in {s.seconds:.1f}s"
    )


def _backup_once(agent: Agent, options: Options, session: Session | None) -> tuple[Summary, Session]:
    progress = Progress("backup", enabled=agent.args.progress)
    summary, session = run_backup(agent.session, options, progress, session)
    progress.finish(_summary_text(summary))
    log.info("agent.backup_done", **summary.wire())
    return summary, session


def cmd_backup(args: argparse.Namespace) -> int:
    if not args.path.exists():
        raise AgentError(f"path not found: {args.path}", EXIT_USAGE)
    agent = Agent(args)
    options = Options(
        args.path,
        checksum=args.checksum,
        bandwidth=args.bandwidth_limit * KIB if args.bandwidth_limit else None,
        retry_for=float("inf") if args.watch else args.retry_for,
    )
    if not args.watch:
        session = agent.session()
        try:
            summary, session = _backup_once(agent, options, session)
        finally:
            session.bye()
            session.conn.close()
        return EXIT_FAILED if summary.failed else EXIT_OK
    holder = _Holder()
    try:
        return _watch(agent, options, args.watch, holder)
    finally:
        if holder.session is not None:
            holder.session.bye("agent stopped")
            holder.session.conn.close()


class _Holder:
    """The watch loop's current session, so an interrupt can still say goodbye on it."""

    session: Session | None = None


def _watch(agent: Agent, options: Options, every: float, holder: _Holder) -> int:
    """Back up every ``every`` seconds, staying connected (heartbeats) in between: the restore jobs the
    server offers are carried out then, one at a time."""
    retry_after = min(WATCH_RETRY_S, every)
    while True:
        try:
            if holder.session is None:
                holder.session = agent.session()
            started = time.monotonic()
            _, holder.session = _backup_once(agent, options, holder.session)
            serve(holder.session, max(0.0, every - (time.monotonic() - started)))
            continue
        except SessionLost as exc:
            log.warning("agent.session_lost", reason=str(exc), retry_in_s=retry_after)
            pause = retry_after
        except AgentError as exc:
            waitable = (
                EXIT_DISCONNECTED,
                EXIT_STOPPED,
                EXIT_STORAGE_FULL,
                EXIT_UNREACHABLE,
                EXIT_LOST,
                EXIT_KEY_REFUSED,
            )
            if exc.exit_code not in waitable:
                raise
            if exc.exit_code == EXIT_KEY_REFUSED and not agent.token:
                raise
            # Disconnected by the operator, server stopped or its storage full: come back at the next cycle.
            pause = every if exc.exit_code in (EXIT_DISCONNECTED, EXIT_STOPPED, EXIT_STORAGE_FULL) else retry_after
            log.warning("agent.waiting", reason=exc.message, retry_in_s=pause)
        if holder.session is not None:
            holder.session.conn.close()
            holder.session = None
        time.sleep(pause)


def cmd_restore(args: argparse.Namespace) -> int:
    dest = check_destination(args.dest)
    agent = Agent(args)
    session = agent.session()
    try:
        progress = Progress("restore", enabled=args.progress)
        result = restore(session, args.file_id, dest, progress)
        progress.finish(f"restored {result['source'] or args.file_id} to {result['path']} ({human(result['size'])})")
        session.bye("restore finished")
    finally:
        session.conn.close()
    return EXIT_OK


def cmd_show_key(args: argparse.Namespace) -> int:
    public, _ = load_or_create(args.config_dir, "agent")
    sys.stdout.write(public.decode() + "\n")
    return EXIT_OK


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m actors.agent", description="Backup agent.")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, server: bool = True) -> None:
        p.add_argument(
            "--config-dir", type=Path, default=default_config_dir(), help="the agent's keys (default %(default)s)"
        )
        p.add_argument("--log-json", action="store_true")
        p.add_argument("--log-level", default="INFO")
        if not server:
            return
        p.add_argument(
            "--server",
            default=os.environ.get(ENV_SERVER, DEFAULT_AGENTS_ENDPOINT),
            help="the server's agent endpoint (default %(default)s)",
        )
        p.add_argument("--server-key", type=Path, help="the server's public key file (server.key)")
        p.add_argument("--data-dir", type=Path, help="a server data directory to read server/keys/server.key from")
        p.add_argument("--enroll-token", help="enroll with this token if the server does not know our key yet")
        p.add_argument("--enroll-token-file", type=Path, help="read the enrollment token from this file")
        p.add_argument("--connect-timeout", type=float, default=5.0, help="seconds to wait for the server")
        p.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="live progress line on stderr (default: when stderr is a terminal)",
        )

    backup = sub.add_parser("backup", help="back up a folder or a file")
    backup.add_argument("path", type=Path)
    backup.add_argument("--name", help="client name shown on the server (default: the host name)")
    backup.add_argument("--watch", type=float, help="stay connected and back up again every SECONDS")
    backup.add_argument(
        "--checksum", action="store_true", help="hash every file (unchanged = same size, time and hash)"
    )
    backup.add_argument("--bandwidth-limit", type=int, help="upload at most this many KiB/s")
    backup.add_argument("--retry-for", type=float, default=60.0, help="seconds to keep trying after losing the server")
    common(backup)
    rest = sub.add_parser("restore", help="restore one backed-up file")
    rest.add_argument("file_id")
    rest.add_argument("dest", help="destination file, or an existing folder to restore into")
    common(rest)
    show = sub.add_parser("show-key", help="print this agent's public key (for the server's allow-list)")
    common(show, server=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    configure_logging("agent", json=args.log_json, level=args.log_level)
    tune_malloc()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    commands: dict[str, Any] = {"backup": cmd_backup, "restore": cmd_restore, "show-key": cmd_show_key}
    try:
        return commands[args.command](args)
    except AgentError as exc:
        log.error("agent.failed", reason=exc.message, exit_code=exc.exit_code)
        sys.stderr.write(f"backup agent: {exc.message}\n")
        return exc.exit_code
    except SessionLost as exc:
        sys.stderr.write(f"backup agent: lost the server: {exc}\n")
        return EXIT_LOST
    except Interrupted:
        log.info("agent.interrupted")
        return EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
