"""Arguments are checked against the catalogue, by the worker and again by each core for direct callers."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.catalogue import BACKEND_OPERATIONS, OPERATIONS, REAL_ONLY_OPERATIONS
from protocol.errors import ProtocolError
from protocol.operation import Arg, ArgType, Operation
from tests.contract.harness import CTX, Backend, covers

pytestmark = pytest.mark.timeout(30)

WRONG_TYPE: dict[ArgType, tuple[Any, ...]] = {
    ArgType.STRING: (5, True, ["x"], {"x": 1}),
    ArgType.INTEGER: ("5", True, 1.5, None),
    ArgType.BOOLEAN: ("yes", 1),
    ArgType.MAP: ([1], "x", 5),
    ArgType.ID: (1.5, True, ["x"], {"x": 1}),
    ArgType.STRINGS: ("x", 5, {"x": 1}, [5], ["x", None], ["x" * 4097]),
}
BACKEND_OPS = [op for op in OPERATIONS if op.handled_by == "backend"]


def bad_values(arg: Arg) -> list[Any]:
    values = [v for v in WRONG_TYPE[arg.type] if not (v is None and arg.nullable)]
    if not arg.nullable:
        values.append(None)
    if arg.type is ArgType.STRINGS:  # its bounds count items
        if arg.minimum:
            values.append(["x"] * (arg.minimum - 1))
        if arg.maximum is not None:
            values.append(["x"] * (arg.maximum + 1))
    else:
        if arg.minimum is not None:
            values.append(arg.minimum - 1)
        if arg.maximum is not None:
            values.append(arg.maximum + 1)
    if arg.choices is not None:
        values.append("not-a-choice")
    if arg.type is ArgType.STRING:
        values.append("x" * 4097)  # longer than any string argument may be
    return values


def valid_value(arg: Arg) -> Any:
    if arg.choices:
        return arg.choices[0]
    return {
        ArgType.STRING: "x",
        ArgType.INTEGER: arg.minimum or 0,
        ArgType.BOOLEAN: True,
        ArgType.MAP: {},
        ArgType.ID: "x",
        ArgType.STRINGS: ["x"] * (arg.minimum or 0),
    }[arg.type]


def refusal(backend: Backend, op: str, args: Any, *, direct: bool) -> tuple[str, str]:
    """(code, message) of a refused request, through the worker's path or straight to the core."""
    with pytest.raises(ProtocolError) as info:
        if direct:  # a caller that skips the worker gets the same answer: the core validates too
            backend.core.handle(op, args, CTX)
        else:
            backend.run(op, args)
    return info.value.code.value, info.value.message


def direct_code(backend: Backend, op: str, args: Any) -> str:
    return refusal(backend, op, args, direct=True)[0]


def test_backends_offer_every_backend_operation(reader: Backend) -> None:
    expected = [op for op in BACKEND_OPERATIONS if reader.mode == "real" or op not in REAL_ONLY_OPERATIONS]
    assert sorted(reader.core.operations()) == sorted(expected)


def skip_unless_served(reader: Backend, op: Operation) -> None:
    if op.name not in reader.core.operations():
        assert op.name in REAL_ONLY_OPERATIONS  # test_enrollment checks the mock refuses them
        pytest.skip(f"{op.name} is the real server's only")


@pytest.mark.parametrize("op", BACKEND_OPS, ids=lambda op: op.name)
def test_unknown_and_missing_arguments(reader: Backend, op: Operation) -> None:
    skip_unless_served(reader, op)
    assert reader.error(op.name, surprise=1) == "BAD_REQUEST"
    assert direct_code(reader, op.name, {"surprise": 1}) == "BAD_REQUEST"
    assert direct_code(reader, op.name, ["not", "a", "map"]) == "BAD_REQUEST"
    for arg in op.args:
        if arg.required:
            others = {a.name: valid_value(a) for a in op.args if a.required and a is not arg}
            for direct in (False, True):
                code, message = refusal(reader, op.name, others, direct=direct)
                assert code == "BAD_REQUEST" and arg.name in message, (arg.name, message)


@pytest.mark.parametrize(
    "op, arg",
    [(op, arg) for op in BACKEND_OPS for arg in op.args],
    ids=lambda value: value.name,
)
def test_arguments_of_the_wrong_type_or_range(reader: Backend, op: Operation, arg: Arg) -> None:
    skip_unless_served(reader, op)
    valid = {a.name: valid_value(a) for a in op.args if a.required}
    for value in bad_values(arg):
        for direct in (False, True):
            code, message = refusal(reader, op.name, {**valid, arg.name: value}, direct=direct)
            assert code == "BAD_REQUEST" and repr(arg.name) in message, (arg.name, value, message)


BRIDGE_OPS = [op.name for op in OPERATIONS if op.handled_by != "backend"]


@covers(*BRIDGE_OPS)
@pytest.mark.parametrize("op", [*BRIDGE_OPS, "format_disk"])
def test_operations_no_backend_answers(reader: Backend, op: str) -> None:
    """The bridge's own operations (and unknown ones) are not a backend's: UNKNOWN_OPERATION."""
    assert op not in reader.core.operations()
    assert reader.error(op) == "UNKNOWN_OPERATION"
    assert direct_code(reader, op, {}) == "UNKNOWN_OPERATION"
