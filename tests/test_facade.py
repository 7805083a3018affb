"""client/facade.py is generated from the catalogue: current, explicit, and complete."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from client import facadegen
from client.facade import ServerBridge
from protocol.catalogue import OPERATIONS, Arg, ArgType

pytestmark = pytest.mark.timeout(30)


def test_generated_facade_is_current() -> None:
    assert facadegen.TARGET.read_text() == facadegen.render(), (
        "client/facade.py is stale: run python -m client.facadegen --write"
    )
    assert facadegen.main([]) == 0


def test_the_check_fails_on_a_stale_facade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "facade.py"
    stale.write_text(facadegen.render().replace("limit: int = 1000", "limit: int = 10", 1))
    monkeypatch.setattr(facadegen, "TARGET", stale)
    assert facadegen.main([]) == 1
    assert facadegen.main(["--write"]) == 0 and facadegen.main([]) == 0


def test_a_catalogue_change_changes_the_facade(monkeypatch: pytest.MonkeyPatch) -> None:
    before = facadegen.render()
    first = OPERATIONS[0]
    extra = Arg("colour", ArgType.STRING, "A new filter.", required=False, nullable=True)
    changed = (dataclasses.replace(first, args=(*first.args, extra)), *OPERATIONS[1:])
    monkeypatch.setattr(facadegen, "OPERATIONS", changed)
    after = facadegen.render()
    assert after != before and "colour: str | None = None" in after


def test_every_operation_has_typed_methods_with_the_catalogue_arguments() -> None:
    for op in OPERATIONS:
        for name in (op.name, f"{op.name}_async"):
            method = getattr(ServerBridge, name)
            assert inspect.iscoroutinefunction(method) == name.endswith("_async"), name
            params = inspect.signature(method).parameters
            declared = [a.name for a in op.args]
            assert list(params)[1 : 1 + len(declared)] == declared, name
            for arg in op.args:
                assert (params[arg.name].default is inspect.Parameter.empty) == arg.required, (name, arg.name)
            assert params["timeout"].kind is inspect.Parameter.KEYWORD_ONLY
            assert ("progress" in params) == op.streaming, name
            assert method.__doc__ == op.summary
        for alias in op.aliases:
            target = f"{op.name}_async" if alias.endswith("_async") else op.name
            assert getattr(ServerBridge, alias) is getattr(ServerBridge, target), alias


def test_a_required_argument_after_an_optional_one_becomes_keyword_only() -> None:
    op = dataclasses.replace(
        OPERATIONS[0],
        args=(Arg("a", ArgType.INTEGER, "", required=False, default=1), Arg("b", ArgType.STRING, "")),
    )
    assert facadegen._parameters(op) == ["self", "a: int = 1", "*", "b: str", "timeout: float | None = None"]
