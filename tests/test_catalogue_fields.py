"""The catalogue's declarations beyond arguments: ids, refreshes, streaming; and who reads them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from actors.bridge.auth.authority import Authority
from protocol import responses
from protocol.catalogue import OPERATIONS, Access, Arg, ArgType, Operation, get_operation
from protocol.codec import decode
from protocol.events import BRIDGE_WRITE
from protocol.views import ViewKey
from tests.test_bridge_core import MOCK, answer, demo, make_core, ready, request

__all__ = ["demo"]  # the fixture (a mock-only stack's trust: the mock executes writes), imported for this module

pytestmark = pytest.mark.timeout(30)


def test_every_write_names_what_it_makes_stale_and_no_read_does() -> None:
    for op in OPERATIONS:
        assert bool(op.refreshes) == op.is_write, op.name
        assert set(op.refreshes) <= set(ViewKey) and len(set(op.refreshes)) == len(op.refreshes), op.name


def test_a_declaration_mistake_fails_at_import() -> None:
    write = get_operation("delete_file")
    with pytest.raises(ValueError, match="must declare what it refreshes"):
        dataclasses.replace(write, refreshes=())
    with pytest.raises(ValueError, match="changes nothing"):
        dataclasses.replace(get_operation("get_files"), refreshes=(ViewKey.FILES,))
    with pytest.raises(ValueError, match="destination_path"):
        Operation("stream_it", "files", "", Access.READ, 5.0, "", (Arg("x", ArgType.STRING, ""),), streaming=True)


def test_ids_are_the_arguments_marked_as_ids() -> None:
    update_row = get_operation("update_row")
    assert update_row.id_args == ("table_name", "row_id")
    args = {"table_name": "clients", "row_id": 7, "updated_data": {"name": "x"}}
    assert update_row.ids_of(args) == {"table_name": "clients", "row_id": 7}
    assert update_row.ids_of("not a map") == {} and get_operation("start_server").id_args == ()


def _notice(authority: Authority, op: str, args: dict[str, Any]) -> dict[str, Any]:
    core, out, _ = make_core(authority)
    ready(core, MOCK, "mock", ops=[op])
    request(core, op, args, session="s1")
    answer(core, MOCK, "r1", responses.success({}, mode="mock"))
    assert out.topics()[-1] == BRIDGE_WRITE
    notice: dict[str, Any] = decode(out.published[-1][2])
    return notice


def test_the_bridge_write_notice_carries_the_catalogue_ids_only(demo: Authority) -> None:
    notice = _notice(demo, "update_row", {"table_name": "files", "row_id": "f1", "updated_data": {"status": "error"}})
    assert notice["ids"] == {"table_name": "files", "row_id": "f1"} and notice["op"] == "update_row"
    # A plugin operation is unknown to the catalogue: it declares no ids, whatever its arguments are named.
    assert _notice(demo, "plugin_purge", {"client_id": "c1"})["ids"] == {}
