"""Generate the catalogue-driven sections of docs/protocol.md.

    python -m protocol.docgen            # check: exit 1 if the page is out of date
    python -m protocol.docgen --write    # rewrite the generated sections in place

The page's prose is hand-written; the blocks between ``<!-- BEGIN GENERATED: x -->`` and
``<!-- END GENERATED: x -->`` come from the catalogue, error codes, topics, shapes, tables and the
routing rule of the fallback policies.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from protocol.catalogue import OPERATIONS, Arg, ArgType, Operation
from protocol.catalogue_restore_jobs import RESTORE_JOB_SHAPES
from protocol.catalogue_trust import TRUST_SHAPES
from protocol.errors import ERROR_DESCRIPTIONS, ErrorCode
from protocol.events import TOPICS
from protocol.modes import POLICY_USE, OutageAnswer, Policy, default_policy, during_outage
from protocol.shapes import SHAPES
from protocol.tables import BACKEND_TABLES, TABLES

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"
BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (\w+) -->\n)(.*?)(<!-- END GENERATED: \2 -->)", re.S)


def _arg_row(arg: Arg) -> str:
    kind = (
        arg.type.value
        + (" or null" if arg.nullable else "")
        + (", id" if arg.is_id else "")
        + (", secret" if arg.secret else "")
    )
    if arg.required:
        default = "required"
    else:
        default = f"`{arg.default!r}`".replace("None", "null")
    limits = []
    items = " items" if arg.type is ArgType.STRINGS else ""  # a list's bounds count its items
    if arg.minimum is not None:
        limits.append(f"≥ {arg.minimum}{items}")
    if arg.maximum is not None:
        limits.append(f"≤ {arg.maximum}{items}")
    if arg.choices:
        limits.append("one of " + ", ".join(f"`{c}`" for c in arg.choices))
    doc = arg.doc + (f" ({'; '.join(limits)})" if limits else "")
    return f"| `{arg.name}` | {kind} | {default} | {doc} |"


def _role(op: Operation) -> str:
    return f"role {op.role.value}" if op.role is not None else "no role: any authenticated peer"


def operations() -> str:
    out: list[str] = []
    group = None
    for op in OPERATIONS:
        if op.group != group:
            group = op.group
            out.append(f"### {group.capitalize()}\n")
        flags = [op.access.value, _role(op), f"timeout {op.timeout_s:g} s"]
        if op.streaming:
            flags.append("streamed")
        if op.handled_by == "bridge":
            flags.append("answered by the bridge")
        out.append(f"#### `{op.name}`\n")
        out.append(f"{op.summary} *({', '.join(flags)})*\n")
        if op.aliases:
            out.append("Client facade names: " + ", ".join(f"`{a}`" for a in op.aliases) + ".\n")
        if op.is_write:
            ids = ", ".join(f"`{a}`" for a in op.id_args) or "no ids"
            keys = ", ".join(f"`{k}`" for k in op.refreshes)
            out.append(f"After it succeeds: `bridge.write` names {ids}; a console reloads {keys}.\n")
        if op.args:
            out.append("| argument | type | default | meaning |\n|---|---|---|---|")
            out.extend(_arg_row(a) for a in op.args)
            out.append("")
        else:
            out.append("No arguments.\n")
        out.append(f"Reply `data`: {op.returns}.\n")
        if op.secret_results:
            secret = ", ".join(f"`{name}`" for name in op.secret_results)
            out.append(f"Secret in the reply: {secret} (never recorded, logged or audited).\n")
    return "\n".join(out)


def roles() -> str:
    rows = ["| operation | access | role needed |", "|---|---|---|"]
    rows += [f"| `{op.name}` | {op.access.value} | {_role(op).removeprefix('role ')} |" for op in OPERATIONS]
    return "\n".join(rows) + "\n"


def errors() -> str:
    rows = ["| error_code | meaning |", "|---|---|"]
    rows += [f"| `{code.value}` | {ERROR_DESCRIPTIONS[code]} |" for code in ErrorCode]
    return "\n".join(rows) + "\n"


def _field_section(title: str, summary: str, fields: tuple[tuple[str, str], ...]) -> list[str]:
    return [
        f"#### {title}\n",
        summary + "\n",
        "| field | type |\n|---|---|",
        *(f"| `{name}` | {kind} |" for name, kind in fields),
        "",
    ]


def topics() -> str:
    return "\n".join(
        line for t in TOPICS for line in _field_section(f"`{t.name}` (from the {t.source})", t.summary, t.fields)
    )


def shapes() -> str:
    every = (*SHAPES, *RESTORE_JOB_SHAPES, *TRUST_SHAPES)
    return "\n".join(line for s in every for line in _field_section(s.name, s.summary, s.fields))


def tables() -> str:
    modes = list(BACKEND_TABLES)
    rows = [f"| table | {' | '.join(modes)} | holds | columns (key first) |", "|---|" + "---|" * (len(modes) + 2)]
    for t in TABLES:
        exposed = " | ".join("yes" if t.name in BACKEND_TABLES[m] else "no" for m in modes)
        rows.append(f"| `{t.name}` | {exposed} | {t.summary} | {', '.join(f'`{c.name}`' for c in t.columns)} |")
    return "\n".join(rows) + "\n"


_OUTAGE_ANSWERS = {
    OutageAnswer.LAST_REAL: "the last known real reply to the same request (`mode: real`, `stale: true`, `as_of`); "
    "`BACKEND_UNAVAILABLE` when none is known",
    OutageAnswer.MOCK: "the mock (`mode: mock`)",
    OutageAnswer.UNAVAILABLE: "`BACKEND_UNAVAILABLE`: not executed",
}


def policies() -> str:
    """From ``protocol.modes.during_outage``, the rule the bridge routes by."""
    rows = [
        "| policy | a read | a write | a download (streamed) | for |",
        "|---|---|---|---|---|",
    ]
    for policy in Policy:
        name = f"`{policy.value}`" + (" (default)" if policy is default_policy(True) else "")
        cells = [
            _OUTAGE_ANSWERS[during_outage(policy, is_write=False)],
            _OUTAGE_ANSWERS[during_outage(policy, is_write=True)],
            _OUTAGE_ANSWERS[during_outage(policy, is_write=False, streaming=True)],
        ]
        rows.append(f"| {name} | {' | '.join(cells)} | {POLICY_USE[policy]} |")
    demo = default_policy(False).value
    return (
        "\n".join(rows)
        + f"\n\nWith no key allow-listed as real (a mock-only or replay stack) nothing real is expected: the mock\n"
        f"answers everything under every policy, and a bridge started without `--policy` reports `{demo}`.\n"
    )


GENERATORS = {
    "operations": operations,
    "roles": roles,
    "errors": errors,
    "topics": topics,
    "shapes": shapes,
    "tables": tables,
    "policies": policies,
}


def render(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in GENERATORS:
            raise KeyError(f"unknown generated block {name!r}")
        return match.group(1) + GENERATORS[name]() + match.group(4)

    return BLOCK.sub(replace, text)


def main(argv: list[str]) -> int:
    text = DOC.read_text()
    fresh = render(text)
    if "--write" in argv:
        DOC.write_text(fresh)
        return 0
    if fresh != text:
        sys.stderr.write(f"{DOC} is out of date with the catalogue; run: python -m protocol.docgen --write\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
