"""bridgectl: talk to a running bridge, and administer who may.

    bridgectl [--connection FILE | --data-dir DIR] [--endpoint EP] COMMAND ...

    call OP [--arg key=value ...] [--json '{...}'] [--timeout S]
    events [--since SEQ] [--count N] [--topic PREFIX]
    status
    record FILE [--duration S] [--count N]
    recording show FILE [--json]
    replay FILE [--against EP] [--pace fast|original] [--ignore KEY ...] [--ignore-op OP ...]
    user add NAME --role ROLE [--password-stdin] | list | remove NAME | passwd NAME [--password-stdin]
         | role NAME ROLE | totp NAME --enable|--disable
    key new --user NAME [--role ROLE] [--label L] [--kind api_key|gui] --out FILE | list [--user NAME] | revoke ID
    backend allow (KEYFILE | --out FILE) --name NAME --mode real|mock | list | revoke KEYFILE
    token show | rotate

Credentials: ``--connection FILE``; else the admin connection file of ``--data-dir``; else
``$BRIDGE_CONNECTION``; else ``<default data dir>/credentials/admin.json``, which run_all
writes, so on the stack's machine no flag is needed.

Exit status: 0 success; 1 the bridge refused or failed the request (or refused the key);
2 the bridge cannot be reached, or the command line or the connection file is wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from client.bridgectl import admin, calls
from client.bridgectl.output import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, UsageError
from client.connection import BridgeClient, BridgeUnreachable
from protocol.errors import ErrorCode
from protocol.recording import RecordingError
from protocol.roles import ORDER
from runtime.credentials import ENV_CONNECTION, CredentialsError, load_connection

ROLES = [role.value for role in ORDER]
Command = Callable[[BridgeClient, argparse.Namespace], int]


def _command(parser: argparse.ArgumentParser, func: Command, *, json_flag: bool = False) -> None:
    parser.set_defaults(func=func)
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print the raw reply")


def _general(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    call = sub.add_parser("call", help="call one operation and print the reply as JSON")
    call.add_argument("op", help="operation name, e.g. get_clients")
    call.add_argument("--arg", action="append", metavar="KEY=VALUE", help="an argument (repeatable)")
    call.add_argument("--json", help="arguments as a JSON object")
    call.add_argument("--timeout", type=float, help="deadline in seconds (default: the operation's)")
    call.set_defaults(func=calls.cmd_call, before_connecting=calls.check_call)
    events = sub.add_parser("events", help="print events as JSON lines, with no gaps")
    events.add_argument("--since", type=int, help="start after this sequence number (default: from now)")
    events.add_argument("--count", type=int, help="stop after this many events")
    events.add_argument("--topic", action="append", help="topic prefix to follow (repeatable; default all)")
    events.set_defaults(func=calls.cmd_events)
    status = sub.add_parser("status", help="backends, mode and policy")
    _command(status, calls.cmd_status, json_flag=True)
    rec = sub.add_parser("record", help="record every message through the bridge's tap into FILE (admin)")
    rec.add_argument("file")
    rec.add_argument("--duration", type=float, help="stop after this many seconds")
    rec.add_argument("--count", type=int, help="stop after this many entries")
    rec.set_defaults(func=calls.cmd_record)
    recording = sub.add_parser("recording", help="inspect a recording")
    recording_sub = recording.add_subparsers(dest="recording_command", required=True)
    show = recording_sub.add_parser("show", help="counts per operation and topic, duration")
    show.add_argument("file")
    show.add_argument("--json", action="store_true", help="print every entry as a JSON line")
    show.set_defaults(offline=calls.cmd_recording_show)
    rep = sub.add_parser("replay", help="re-send a recording's requests and compare the replies")
    rep.add_argument("file")
    rep.add_argument("--against", help="frontend of the stack to replay against (default: the connection's)")
    rep.add_argument("--pace", choices=["fast", "original"], default="fast")
    rep.add_argument("--ignore", action="append", help="also ignore this key when comparing (repeatable)")
    rep.add_argument("--ignore-op", action="append", help="ignore the data of this operation's replies")
    rep.set_defaults(func=calls.cmd_replay, before_connecting=calls.load_replay)


def _password_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input (default: the bridge generates one)",
    )


def _users(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("user", help="users who sign in to the GUI (admin)").add_subparsers(
        dest="user_command", required=True
    )
    add = users.add_parser("add", help="create a user; prints the generated password once")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    _password_flag(add)
    _command(add, admin.cmd_user_add, json_flag=True)
    _command(users.add_parser("list", help="every user"), admin.cmd_user_list, json_flag=True)
    remove = users.add_parser("remove", help="remove a user, revoke their keys, end their sessions")
    remove.add_argument("name")
    _command(remove, admin.cmd_user_remove, json_flag=True)
    passwd = users.add_parser("passwd", help="set a new password (generated unless --password-stdin)")
    passwd.add_argument("name")
    _password_flag(passwd)
    _command(passwd, admin.cmd_user_passwd, json_flag=True)
    role = users.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    _command(role, admin.cmd_user_role, json_flag=True)
    totp = users.add_parser("totp", help="require a TOTP code at sign-in, or stop requiring it")
    totp.add_argument("name")
    switch = totp.add_mutually_exclusive_group(required=True)
    switch.add_argument("--enable", dest="enable", action="store_true")
    switch.add_argument("--disable", dest="enable", action="store_false")
    _command(totp, admin.cmd_user_totp, json_flag=True)


def _out_flags(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--out", required=required, help="the connection file to write (mode 0600)")
    parser.add_argument("--force", action="store_true", help="replace --out when it exists")


def _keys(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("key", help="API keys: connection files bound to a user (admin)").add_subparsers(
        dest="key_command", required=True
    )
    new = keys.add_parser("new", help="create a key pair for a user and write its connection file")
    new.add_argument("--user", required=True)
    new.add_argument("--role", choices=ROLES, help="at most the user's role (default: the user's)")
    new.add_argument("--label", help="a note: where the key is used")
    new.add_argument("--kind", choices=["api_key", "gui"], default="api_key", help="gui: a console process's key")
    _out_flags(new, required=True)
    new.set_defaults(func=admin.cmd_key_new)
    listing = keys.add_parser("list", help="API keys, revoked ones too")
    listing.add_argument("--user", help="only this user's keys")
    _command(listing, admin.cmd_key_list, json_flag=True)
    revoke = keys.add_parser("revoke", help="revoke a key: its connections are refused")
    revoke.add_argument("key_id", metavar="ID")
    _command(revoke, admin.cmd_key_revoke, json_flag=True)


def _backends(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backends = sub.add_parser("backend", help="the backend allow-list (admin)").add_subparsers(
        dest="backend_command", required=True
    )
    allow = backends.add_parser("allow", help="let a backend key register under one name and mode")
    allow.add_argument("keyfile", nargs="?", metavar="KEYFILE", help="its public key: a .key file or a z85 key")
    allow.add_argument("--name", required=True)
    allow.add_argument("--mode", required=True, choices=["real", "mock"])
    _out_flags(allow, required=False)
    _command(allow, admin.cmd_backend_allow, json_flag=True)
    _command(backends.add_parser("list", help="allowed backend keys"), admin.cmd_backend_list, json_flag=True)
    revoke = backends.add_parser("revoke", help="remove a backend key from the allow-list")
    revoke.add_argument("keyfile", metavar="KEYFILE", help="a .key file, a connection file or a z85 key")
    _command(revoke, admin.cmd_backend_revoke, json_flag=True)


def _token(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="the real server's agent enrollment token (admin)").add_subparsers(
        dest="token_command", required=True
    )
    _command(token.add_parser("show", help="print the token"), admin.cmd_token_show, json_flag=True)
    _command(
        token.add_parser("rotate", help="replace the token; the old one stops enrolling at once"),
        admin.cmd_token_rotate,
        json_flag=True,
    )


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridgectl", description="Talk to a running bridge.")
    parser.add_argument(
        "--connection",
        type=Path,
        help=f"connection file (default: --data-dir's admin.json, ${ENV_CONNECTION}, or the default data dir's)",
    )
    parser.add_argument("--data-dir", type=Path, help="use the admin connection file of the stack kept in DIR")
    parser.add_argument("--endpoint", help="bridge frontend (default: the connection file's)")
    parser.add_argument("--connect-timeout", type=float, default=3.0, help="seconds to wait for a connection")
    sub = parser.add_subparsers(dest="command", required=True)
    _general(sub)
    _users(sub)
    _keys(sub)
    _backends(sub)
    _token(sub)
    return parser


def _error(message: str, status: int) -> int:
    sys.stderr.write(f"bridgectl: {message}\n")
    return status


def main(argv: list[str] | None = None) -> int:
    ns = make_parser().parse_args(argv)
    try:
        if getattr(ns, "offline", None) is not None:
            return int(ns.offline(ns))
        if getattr(ns, "before_connecting", None) is not None:
            ns.before_connecting(ns)
        connection = load_connection(ns.connection, ns.data_dir)
        endpoint = getattr(ns, "against", None) or ns.endpoint
        with BridgeClient(endpoint, connection=connection, connect_timeout=ns.connect_timeout) as client:
            return int(ns.func(client, ns))
    except (UsageError, CredentialsError) as exc:
        return _error(str(exc), EXIT_USAGE)
    except BridgeUnreachable as exc:
        return _error(str(exc), EXIT_FAILED if exc.code is ErrorCode.UNAUTHENTICATED else EXIT_UNREACHABLE)
    except RecordingError as exc:
        return _error(f"{ns.file}: {exc}", EXIT_FAILED)
    except BrokenPipeError:
        # The reader went away (`bridgectl ... | head`): stop quietly, and keep the interpreter's
        # last flush of stdout from failing the same way.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        return _error(f"{exc.filename or getattr(ns, 'file', '')}: {exc.strerror or exc}", EXIT_FAILED)
