"""The role × operation matrix, generated from the catalogue: every operation, for every role,
through BridgeCore, from an API key and from a GUI session; allowed or FORBIDDEN (audited)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.bridge.core import BridgeCore
from protocol import responses
from protocol.catalogue import OPERATIONS, Arg, ArgType, HandledBy, Operation
from protocol.codec import decode
from protocol.envelope import request_frames
from protocol.roles import ORDER, Role, allows
from tests.bridge_auth import PASSWORDS, USERS, StackKeys, make_authority
from tests.test_bridge_core import CLIENT, MOCK, FakeOutbox, answer, make_core, ready

pytestmark = pytest.mark.timeout(30)

GUI_ROUTE = b"gui-tab-1"
BACKEND_OPS = [op.name for op in OPERATIONS if op.handled_by is HandledBy.BACKEND]


def sample(arg: Arg) -> Any:
    """A value of the argument's type that passes its declared checks."""
    if arg.choices:
        return arg.choices[0]
    return {
        ArgType.STRING: "x",
        ArgType.INTEGER: arg.minimum if arg.minimum is not None else 0,
        ArgType.BOOLEAN: False,
        ArgType.MAP: {},
        ArgType.ID: "x",
        ArgType.STRINGS: ["x"] * (arg.minimum or 0),
    }[arg.type]


def sample_args(op: Operation) -> dict[str, Any]:
    return {a.name: sample(a) for a in op.args if a.required}


def core_for(tmp_path: Path) -> tuple[BridgeCore, FakeOutbox, StackKeys]:
    authority, keys = make_authority(tmp_path, real_backend=False)  # the mock answers every operation
    core, out, _ = make_core(authority)
    ready(core, MOCK, "mock", BACKEND_OPS)
    return core, out, keys


def login(core: BridgeCore, gui_key: str, role: Role, out: FakeOutbox) -> str:
    args = {"username": USERS[role], "password": PASSWORDS[role]}
    core.on_frontend([GUI_ROUTE, *request_frames("login", "login", args)], gui_key, "127.0.0.1")
    reply = decode(out.clients[-1][1][1])
    assert reply["success"], reply
    token: str = reply["data"]["token"]
    return token


def refused_by_authorization(reply: dict[str, Any]) -> bool:
    """A role denial or a GUI with nobody signed in (a handler's own refusal, e.g. a wrong password, is not)."""
    return "needs role" in reply["message"] or "sign in first" in reply["message"]


def denials(core: BridgeCore, op: str) -> list[dict[str, Any]]:
    page = core.auth.audit.page(0, 100, op=op, outcome="FORBIDDEN")
    items: list[dict[str, Any]] = page["items"]
    return items


@pytest.mark.parametrize("via", ["api_key", "gui"])
@pytest.mark.parametrize("role", ORDER)
@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
def test_every_operation_for_every_role(tmp_path: Path, operation: Operation, role: Role, via: str) -> None:
    core, out, keys = core_for(tmp_path)
    if via == "api_key":
        route, key, auth = CLIENT, keys.api[role], None
    else:
        route, key = GUI_ROUTE, keys.gui
        auth = login(core, key, role, out)
    out.clients.clear()
    core.on_frontend([route, *request_frames("q", operation.name, sample_args(operation), auth=auth)], key, "10.0.0.7")
    reached_backend = [f for f in out.requests_to(MOCK) if decode(f[1])["op"] == operation.name]
    replies = [decode(frames[1]) for _, frames in out.clients]
    if allows(role, operation.role):
        assert not any(refused_by_authorization(r) for r in replies), replies
        if operation.handled_by is HandledBy.BACKEND:
            assert len(reached_backend) == 1
        else:
            assert len(replies) == 1
        assert denials(core, operation.name) == []
    else:
        assert operation.role is not None
        (reply,) = replies
        assert reply["error_code"] == "FORBIDDEN"
        assert reply["message"] == f"{operation.name} needs role {operation.role.value}; you are {role.value}"
        assert reached_backend == []
        (record,) = denials(core, operation.name)
        assert record["who"]["user"] == USERS[role] and record["who"]["role"] == role.value
        assert record["who"]["via"] == (f"api_key:{keys.key_ids[role]}" if via == "api_key" else f"gui:{USERS[role]}")
        assert record["peer"] == "10.0.0.7"


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.name)
def test_a_gui_with_nobody_signed_in_may_only_sign_in(tmp_path: Path, operation: Operation) -> None:
    core, out, keys = core_for(tmp_path)
    core.on_frontend([GUI_ROUTE, *request_frames("q", operation.name, sample_args(operation))], keys.gui, None)
    replies = [decode(frames[1]) for _, frames in out.clients]
    if operation.role is None:
        assert not any(refused_by_authorization(r) for r in replies), replies
    else:
        (reply,) = replies
        assert reply["error_code"] == "UNAUTHENTICATED" and "sign in first" in reply["message"]
        assert out.requests_to(MOCK) == []


def test_the_matrix_is_the_one_trust_specifies() -> None:
    roles = {op.name: op.role for op in OPERATIONS}
    operator = {"disconnect_client", "verify_file", "scrub_storage", "download_file", "start_server", "stop_server"}
    operator |= {"download_archive", "restore_to_agent"}  # getting files back, as download_file
    operator |= {"cancel_restore_job"}  # who may start a restore may stop one
    for op in OPERATIONS:
        if op.name in ("login", "logout", "whoami"):
            assert op.role is None
        elif op.name in operator:
            assert op.role is Role.OPERATOR, op.name
        elif op.handled_by is HandledBy.BACKEND and not op.is_write:
            assert op.role is Role.VIEWER or op.name.endswith("enrollment_token"), op.name
        elif op.handled_by is HandledBy.BACKEND:
            assert op.role is Role.ADMIN, op.name
    assert roles["events_since"] is Role.VIEWER and roles["bridge_status"] is Role.VIEWER
    assert all(roles[n] is Role.ADMIN for n in roles if n.startswith(("user_", "key_", "backend_")))
    assert roles["get_audit_log"] is Role.ADMIN


def test_an_allowed_write_is_audited_with_its_backend_outcome(tmp_path: Path) -> None:
    core, _, keys = core_for(tmp_path)
    core.on_frontend([CLIENT, *request_frames("w", "stop_server", {})], keys.api[Role.OPERATOR], "10.0.0.8")
    answer(core, MOCK, "w", responses.success({}, mode="mock"))
    (record,) = core.auth.audit.page(0, 10, op="stop_server")["items"]
    assert record["outcome"] == "ok" and record["who"]["user"] == USERS[Role.OPERATOR]
