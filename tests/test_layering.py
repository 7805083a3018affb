"""Which package may import which: the rules of docs/architecture.md, checked on the source.

Imports are read with ``ast`` (nothing is imported), so a rule breaks the build the moment
someone writes the import, even inside a function.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ("actors", "client", "gui", "protocol", "runtime", "run_all")


@dataclass(frozen=True)
class Rule:
    package: str  # a dotted package, e.g. "actors.server"
    forbidden: tuple[str, ...]  # dotted prefixes it must not import
    why: str


RULES = (
    Rule("protocol", ("actors", "client", "gui", "runtime", "run_all", "zmq"), "the wire protocol is pure"),
    Rule("runtime", ("actors", "client", "gui", "run_all"), "runtime serves every process"),
    Rule("client", ("actors", "gui", "run_all"), "clients speak only the protocol"),
    Rule("gui", ("actors", "run_all"), "the GUI is a client of the bridge"),
    Rule(
        "actors.backends",
        ("actors.mock", "actors.server", "actors.bridge", "actors.agent", "actors.replay"),
        "the shared backend package is below every backend",
    ),
    Rule(
        "actors.server",
        ("actors.mock", "actors.bridge", "actors.agent", "actors.replay"),
        "the real server never leans on the mock",
    ),
    Rule("actors.mock", ("actors.server", "actors.bridge", "actors.agent", "actors.replay"), "the mock stands alone"),
    Rule(
        "actors.bridge",
        ("actors.mock", "actors.server", "actors.agent", "actors.replay", "actors.backends"),
        "the bridge knows backends only through the protocol",
    ),
    Rule(
        "actors.agent",
        ("actors.mock", "actors.server", "actors.bridge", "actors.replay", "actors.backends"),
        "an agent runs on another machine",
    ),
    Rule(
        "actors.replay",
        ("actors.mock", "actors.server", "actors.bridge", "actors.agent"),
        "the replay backend answers from a recording only",
    ),
)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    here = module_name(path) if path.is_relative_to(ROOT) else path.stem
    package = here.rsplit(".", 1)[0] if path.name != "__init__.py" else here
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def sources(package: str) -> list[Path]:
    base = ROOT / package.replace(".", "/")
    return sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]


def violations(rule: Rule, files: list[Path]) -> list[str]:
    bad = []
    for path in files:
        for name in sorted(imports_of(path)):
            hit = next((f for f in rule.forbidden if name == f or name.startswith(f + ".")), None)
            if hit:
                shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                bad.append(f"{shown} imports {name} ({rule.why})")
    return bad


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.package)
def test_layering(rule: Rule) -> None:
    files = sources(rule.package)
    assert files, f"no sources for {rule.package}"
    assert violations(rule, files) == []


def test_the_checker_catches_a_forbidden_import(tmp_path: Path) -> None:
    """The rule is only worth something if it can fail: a server module importing the mock, twice."""
    probe = tmp_path / "probe.py"
    probe.write_text("from actors.mock.core import MockCore\n\n\ndef f() -> None:\n    import actors.mock.store\n")
    rule = next(r for r in RULES if r.package == "actors.server")
    found = " ".join(violations(rule, [probe]))
    assert "imports actors.mock.core" in found and "imports actors.mock.store" in found


def test_actors_has_no_loose_modules() -> None:
    """One subpackage per actor: nothing but __init__.py directly under actors/."""
    assert sorted(p.name for p in (ROOT / "actors").glob("*.py")) == ["__init__.py"]


def test_every_actor_runs_as_a_module() -> None:
    for actor in ("bridge", "mock", "server", "agent", "replay"):
        assert (ROOT / "actors" / actor / "__main__.py").is_file(), actor
