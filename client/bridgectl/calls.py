"""bridgectl's general commands: call any operation, follow events, status, record and replay."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from client.bridgectl.output import EXIT_FAILED, EXIT_OK, UsageError, dump, failed, table
from client.connection import BridgeClient
from client.download import download
from client.events import EventFollower, Resync
from client.recorder import record
from client.replay import load, replay, summary
from protocol.catalogue import CATALOGUE, ArgType
from protocol.codec import INT64_MAX, INT64_MIN, first_beyond_int64
from protocol.matching import Matcher
from protocol.recording import index_recording, read_recording


def parse_arg(op: str, item: str) -> tuple[str, Any]:
    """``key=value``, typed by the catalogue: strings stay verbatim, the rest is parsed."""
    if "=" not in item:
        raise UsageError(f"--arg expects key=value, got {item!r}")
    key, raw = item.split("=", 1)
    operation = CATALOGUE.get(op)
    arg = next((a for a in operation.args if a.name == key), None) if operation else None
    if arg is not None and arg.type is ArgType.STRING:
        return key, None if (raw == "null" and arg.nullable) else raw
    if arg is not None and arg.type is ArgType.STRINGS and not raw.startswith("["):
        return key, [raw]  # one item; repeat --arg for more (build_args joins them)
    try:
        if arg is not None and arg.type is ArgType.ID:
            value: Any = int(raw) if raw.lstrip("-").isdigit() else raw
        else:
            value = json.loads(raw)
    except json.JSONDecodeError:
        if arg is not None and arg.type in (ArgType.INTEGER, ArgType.BOOLEAN, ArgType.MAP):
            raise UsageError(f"--arg {key} must be a JSON {arg.type.value}, got {raw!r}") from None
        return key, raw
    except ValueError:  # more digits than Python converts
        raise UsageError(f"--arg {key}: {raw[:40]}... is not a usable number") from None
    _check_int64(f"--arg {key}", value)
    return key, value


def _check_int64(where: str, value: Any) -> None:
    # The bridge would refuse it as BAD_REQUEST; say so here, before anything is sent.
    if first_beyond_int64(value) is not None:
        raise UsageError(f"{where}: integers must fit in 64 bits ({INT64_MIN} to {INT64_MAX})")


def check_call(ns: argparse.Namespace) -> None:
    """A usage error in ``call``'s arguments is reported before connecting."""
    build_args(ns.op, ns.arg or [], ns.json)


def build_args(op: str, items: list[str], json_text: str | None) -> dict[str, Any]:
    args: dict[str, Any] = {}
    if json_text:
        try:
            loaded = json.loads(json_text)
        except ValueError as exc:  # JSONDecodeError, or more digits than Python converts
            raise UsageError(f"--json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError("--json must be a JSON object")
        _check_int64("--json", loaded)
        args.update(loaded)
    for item in items:
        key, value = parse_arg(op, item)
        if isinstance(value, list) and isinstance(args.get(key), list):
            args[key] = [*args[key], *value]
        else:
            args[key] = value
    return args


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


def real_server_line(status: dict[str, Any]) -> str:
    """Whether a real server is expected (from the bridge's persisted allow-list) and since when it is away."""
    if not status.get("real_expected"):
        return "not expected (a mock-only stack: every answer is demo data)"
    since = status.get("real_unavailable_since")
    if since is None:
        return "expected, serving"
    when = since.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(since, datetime) else str(since)
    return f"expected, UNAVAILABLE since {when} (policy {status['policy']})"


def cmd_status(client: BridgeClient, ns: argparse.Namespace) -> int:
    reply = client.call("bridge_status")
    if ns.json:
        dump(reply, sys.stdout)
        return EXIT_OK if reply.get("success") else EXIT_FAILED
    if not reply["success"]:
        return failed(reply)
    data = reply["data"]
    out = sys.stdout
    out.write(f"bridge   {data['frontend_endpoint']}  events {data['events_endpoint']}\n")
    out.write(
        f"mode     {data['mode']}   policy {data['policy']}   in flight {data['inflight']}   "
        f"events seq {data['latest_seq']} (epoch {data['epoch']})   up {data['uptime_s']:.0f}s\n"
    )
    out.write(f"real     {real_server_line(data)}\n\n")
    rows: list[tuple[str, ...]] = [("BACKEND", "MODE", "STATE", "LAST BEAT", "IN FLIGHT", "OPS")]
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
    table(rows, out)
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


def load_replay(ns: argparse.Namespace) -> None:
    """Read the recording before connecting: a damaged file is reported first, whatever the stack."""
    ns.index = load(Path(ns.file))


def cmd_replay(client: BridgeClient, ns: argparse.Namespace) -> int:
    index = ns.index
    matcher = Matcher().extended(keys=tuple(ns.ignore or ()), ops=tuple(ns.ignore_op or ()))

    def show(number: int, exchange: Any, lines: list[str]) -> None:
        if lines:
            sys.stdout.write(f"MISMATCH #{number} {exchange.op} (recorded at {exchange.t:.3f}s)\n")
            for line in lines:
                sys.stdout.write(f"    {line}\n")

    report = replay(index, client, matcher=matcher, pace=ns.pace, on_result=show)
    sys.stdout.write(
        f"{report.sent} requests replayed, {len(report.mismatches)} mismatch(es), "
        f"{report.skipped} skipped (never answered while recording)\n"
    )
    return EXIT_OK if report.ok else EXIT_FAILED
