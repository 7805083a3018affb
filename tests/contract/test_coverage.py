"""Every operation of the catalogue has a contract test, so no operation can drift between the backends unseen."""

from __future__ import annotations

import importlib
from pathlib import Path

from protocol.catalogue import OPERATIONS
from tests.contract import harness

HERE = Path(__file__).resolve().parent


def test_every_catalogue_operation_has_a_contract_test() -> None:
    # Import every module of the suite, so the answer does not depend on which ones pytest was asked to run.
    for module in sorted(HERE.glob("test_*.py")):
        importlib.import_module(f"tests.contract.{module.stem}")
    missing = harness.uncovered(harness.COVERED)
    assert not missing, f"operations without a contract test (mark one with @covers): {missing}"


def test_the_check_can_fail() -> None:
    names = [op.name for op in OPERATIONS]
    assert harness.uncovered({}) == names
    all_but_one = {name: {"some test"} for name in names[1:]}
    assert harness.uncovered(all_but_one) == names[:1]
    assert harness.uncovered({**all_but_one, names[0]: set()}) == names[:1]
