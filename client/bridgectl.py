"""bridgectl: call any operation, follow events, show the bridge's status.

    bridgectl [--endpoint EP] call OP [--arg key=value ...] [--json '{...}'] [--timeout S]
    bridgectl [--endpoint EP] events [--since SEQ] [--count N] [--topic PREFIX]
    bridgectl [--endpoint EP] status
    bridgectl [--endpoint EP] record FILE [--duration S] [--count N]
    bridgectl recording show FILE [--json]
    bridgectl replay FILE --against EP [--pace fast|original] [--ignore KEY ...] [--ignore-op OP ...]

Exit status: 0 success, 1 the reply says success: false, 2 the bridge cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from client.connection import BridgeClient, BridgeUnreachable
from client.download import download
from client.events import EventFollower, Resync
from client.recorder import record
from client.replay import load, replay, summary
from protocol.catalogue import CATALOGUE, ArgType
from protocol.codec import to_jsonable
from protocol.matching import Matcher
from protocol.recording import RecordingError, index_recording, read_recording
from runtime.endpoints import ENV_ENDPOINT

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_USAGE = 0, 1, 2, 64


class UsageError(Exception):
    pass


def parse_arg(op: str, item: str) -> tuple[str, Any]:
    """``key=value``, typed by the catalogue: strings stay verbatim, the rest is parsed."""
    if "=" not in item:
        raise UsageError(f"--arg expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    operation = CATALOGUE.get(op)
    arg = next((a for a in operation.args if a.name == key), None) if operation else None
    if arg is not None and arg.type is ArgType.STRING:
        return key, None if (raw == "null" and arg.nullable) else raw
    if arg is not None and arg.type is ArgType.ID:
        return key, int(raw) if raw.lstrip("-").isdigit() else raw
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        if arg is not None and arg.type in (ArgType.INTEGER, ArgType.BOOLEAN, ArgType.MAP):
            raise UsageError(f"--arg {key} must be a JSON {arg.type.value}, got {raw!r}") from None
        return key, raw


def build_args(op: str, items: list[str], json_text: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if json_text:
        try:
            loaded = json.loads(json_text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError("--json must be a JSON object")
        args.update(loaded)
    for item in items:
        key, value = parse_arg(op, item)
        args[key] = value
    return args


def dump(value: Any, out: TextIO, *, indent: int | None = 2) -> None:
    out.write(json.dumps(to_jsonable(value), indent=indent, ensure_ascii=False) + "\n")
    out.flush()


def cmd_call(client: BridgeClient, ns: argparse.Namespace) -> int:
    args = build_args(ns.op, ns.arg or [], ns.json)
    operation = CATALOGUE.get(ns.op)
    if operation is not None and operation.streaming:

        def progress(done: int, total: int | None) -> None:
            pct = f"{100 * done / total:5.1f}%" if total else "     "
            sys.stderr.write(f"\r{pct} {done}/{total or '?'} bytes")

        reply = download(client, ns.op, args, progress=progress, timeout=ns.timeout)
        sys.stderr.write("\n")
    else:
        reply = client.call(ns.op, args, timeout=ns.timeout)
    dump(reply, sys.stdout)
    return EXIT_OK if reply.get("success") else EXIT_FAILED


def cmd_events(client: BridgeClient, ns: argparse.Namespace) -> int:
    follower = EventFollower(client, since=ns.since, topics=tuple(ns.topic or [""]))
    printed = 0
    try:
        while ns.count is None or printed < ns.count:
            item = follower.next(1.0)
            if item is None:
                continue
            if isinstance(item, Resync):
                dump({"resync": item.reason, "latest_seq": item.latest_seq}, sys.stdout, indent=None)
                continue
            dump(item, sys.stdout, indent=None)
            printed += 1
    except KeyboardInterrupt:
        pass
    finally:
        follower.close()
    return EXIT_OK


def cmd_status(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = client.call("bridge_status")
    if ns.json:
        dump(reply, sys.stdout)
        return EXIT_OK if reply.get("success") else EXIT_FAILED
    data = reply["data"]
    out = sys.stdout
    out.write(f"bridge   {data['frontend_endpoint']}  events {data['events_endpoint']}\n")
    out.write(
        f"mode     {data['mode']}   policy {data['policy']}   in flight {data['inflight']}   "
        f"events seq {data['latest_seq']} (epoch {data['epoch']})   up {data['uptime_s']:.0f}s\n\n"
    )
    rows = [("BACKEND", "MODE", "STATE", "LAST BEAT", "IN FLIGHT", "OPS")]
    for b in data["backends"]:
        state = "alive" if b["alive"] else f"down ({b['down_reason']})"
        rows.append(
            (
                b["name"],
                b["mode"],
                state,
                f"{b['last_heartbeat_age_s']:.1f}s ago",
                str(b["inflight"]),
                str(len(b["ops"])),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)).rstrip() + "\n")
    if len(rows) == 1:
        out.write("(no backend registered)\n")
    return EXIT_OK


def cmd_record(client: BridgeClient, ns: argparse.Namespace) -> int:
    sys.stderr.write(f"recording from {client.endpoint} into {ns.file} (Ctrl-C to stop)\n")
    try:
        written = record(client, Path(ns.file), duration=ns.duration, count=ns.count)
    except KeyboardInterrupt:
        written = -1
    except RuntimeError as exc:
        sys.stderr.write(f"bridgectl: {exc}\n")
        return EXIT_FAILED
    if written >= 0:
        sys.stderr.write(f"{written} entries written\n")
    return EXIT_OK


def cmd_recording_show(ns: argparse.Namespace) -> int:
    with open(ns.file, "rb") as stream:
        header, entries = read_recording(stream)
        if ns.json:
            for entry in entries:
                dump({"t": entry.t, "direction": entry.direction, "envelope": entry.envelope}, sys.stdout, indent=None)
        else:
            dump(summary(index_recording(header, entries)), sys.stdout)
    return EXIT_OK


def cmd_replay(ns: argparse.Namespace) -> int:
    index = load(Path(ns.file))
    matcher = Matcher().extended(keys=tuple(ns.ignore or ()), ops=tuple(ns.ignore_op or ()))

    def show(number: int, exchange: Any, lines: list[str]) -> None:
        if lines:
            sys.stdout.write(f"MISMATCH #{number} {exchange.op} (recorded at {exchange.t:.3f}s)\n")
            for line in lines:
                sys.stdout.write(f"    {line}\n")

    with BridgeClient(ns.against, connect_timeout=ns.connect_timeout) as client:
        report = replay(index, client, matcher=matcher, pace=ns.pace, on_result=show)
    sys.stdout.write(
        f"{report.sent} requests replayed, {len(report.mismatches)} mismatch(es), "
        f"{report.skipped} skipped (never answered while recording)\n"
    )
    return EXIT_OK if report.ok else EXIT_FAILED


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bridgectl", description="Talk to a running bridge.")
    parser.add_argument("--endpoint", help=f"bridge frontend (default ${ENV_ENDPOINT} or tcp://127.0.0.1:5555)")
    parser.add_argument("--connect-timeout", type=float, default=3.0, help="seconds to wait for a connection")
    sub = parser.add_subparsers(dest="command", required=True)
    call = sub.add_parser("call", help="call one operation and print the reply as JSON")
    call.add_argument("op", help="operation name, e.g. get_clients")
    call.add_argument("--arg", action="append", metavar="KEY=VALUE", help="an argument (repeatable)")
    call.add_argument("--json", help="arguments as a JSON object")
    call.add_argument("--timeout", type=float, help="deadline in seconds (default: the operation's)")
    call.set_defaults(func=cmd_call)
    events = sub.add_parser("events", help="print events as JSON lines, with no gaps")
    events.add_argument("--since", type=int, help="start after this sequence number (default: from now)")
    events.add_argument("--count", type=int, help="stop after this many events")
    events.add_argument("--topic", action="append", help="topic prefix to follow (repeatable; default all)")
    events.set_defaults(func=cmd_events)
    status = sub.add_parser("status", help="backends, mode and policy")
    status.add_argument("--json", action="store_true", help="print the raw reply")
    status.set_defaults(func=cmd_status)
    rec = sub.add_parser("record", help="record every message through the bridge's tap into FILE")
    rec.add_argument("file")
    rec.add_argument("--duration", type=float, help="stop after this many seconds")
    rec.add_argument("--count", type=int, help="stop after this many entries")
    rec.set_defaults(func=cmd_record)
    recording = sub.add_parser("recording", help="inspect a recording")
    recording_sub = recording.add_subparsers(dest="recording_command", required=True)
    show = recording_sub.add_parser("show", help="counts per operation and topic, duration")
    show.add_argument("file")
    show.add_argument("--json", action="store_true", help="print every entry as a JSON line")
    show.set_defaults(offline=cmd_recording_show)
    rep = sub.add_parser("replay", help="re-send a recording's requests and compare the replies")
    rep.add_argument("file")
    rep.add_argument("--against", required=True, help="endpoint of the stack to replay against")
    rep.add_argument("--pace", choices=["fast", "original"], default="fast")
    rep.add_argument("--ignore", action="append", help="also ignore this key when comparing (repeatable)")
    rep.add_argument("--ignore-op", action="append", help="ignore the data of this operation's replies")
    rep.set_defaults(offline=cmd_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    ns = make_parser().parse_args(argv)
    try:
        if getattr(ns, "offline", None) is not None:
            return ns.offline(ns)
        with BridgeClient(ns.endpoint, connect_timeout=ns.connect_timeout) as client:
            return ns.func(client, ns)
    except UsageError as exc:
        sys.stderr.write(f"bridgectl: {exc}\n")
        return EXIT_USAGE
    except BridgeUnreachable as exc:
        sys.stderr.write(f"bridgectl: {exc}\n")
        return EXIT_UNREACHABLE
    except RecordingError as exc:
        sys.stderr.write(f"bridgectl: {ns.file}: {exc}\n")
        return EXIT_FAILED
    except OSError as exc:
        sys.stderr.write(f"bridgectl: {exc.filename or getattr(ns, 'file', '')}: {exc.strerror or exc}\n")
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
