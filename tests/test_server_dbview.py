"""The real server's own side of the database view: the schema, sessions, file versions, blobs.

What both backends do alike (names, the editing policy, row ids, deletions) is tests/contract/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.backends.api import RequestContext
from actors.server.core import BackupServer, ServerConfig
from protocol.errors import ProtocolError
from tests.test_server_core import FakeAgent, FakeClock, enrolled_agent

pytestmark = pytest.mark.timeout(60)
CTX = RequestContext("req", None)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[BackupServer, FakeAgent, dict[str, Any]]]:
    core = BackupServer(ServerConfig(tmp_path, log_file=False))
    core.agents.clock = FakeClock()
    agent = enrolled_agent(core, tmp_path)
    agent.hello()
    agent.put("/home/u/a.txt", b"first")
    agent.put("/home/u/a.txt", b"second", upload="u2")
    agent.put("/home/u/b.txt", b"bee", upload="u3")
    files = {f["path"]: f for f in core.get_files()}
    yield core, agent, files
    core.close()


def data(core: BackupServer, op: str, **args: Any) -> Any:
    reply = core.handle(op, args, CTX)
    assert isinstance(reply, dict) and reply["success"], reply
    return reply["data"]


def code(core: BackupServer, op: str, **args: Any) -> str:
    with pytest.raises(ProtocolError) as info:
        core.handle(op, args, CTX)
    return info.value.code.value


def test_database_info_comes_from_the_schema(world: Any) -> None:
    core, _, _ = world
    info = data(core, "get_database_info")
    assert info["path"] == "server/backup.db" and info["engine"].startswith("sqlite")
    tables = {t["name"]: t for t in info["tables"]}
    assert set(tables) == {"activity", "clients", "file_versions", "files", "settings", "snapshots"}
    assert tables["files"]["rows"] == 2 and tables["file_versions"]["rows"] == 3
    assert all(t["size_bytes"] > 0 for t in tables.values())
    editable = {c["name"] for c in tables["clients"]["columns"] if c["editable"]}
    assert editable == {"name", "hostname", "ip_address", "platform", "agent_version", "status", "error_message"}
    assert {c["name"]: c["type"] for c in tables["clients"]["columns"]}["connected_at"] == "datetime|null"
    page = data(core, "get_table_data", table_name="files", offset=1, limit=1)
    assert (page["total"], len(page["rows"]), page["offset"]) == (2, 1, 1)
    assert set(page["rows"][0]) == {c["name"] for c in page["columns"]}


def test_update_row_keeps_things_consistent(world: Any) -> None:
    core, _agent, files = world
    client_id = core.get_all_clients_from_db()[0]["id"]
    row = data(core, "update_row", table_name="clients", row_id=client_id, updated_data={"name": "renamed"})["row"]
    assert row["name"] == "renamed" and core.get_all_clients_from_db()[0]["name"] == "renamed"
    moved = data(
        core,
        "update_row",
        table_name="files",
        row_id=files["/home/u/b.txt"]["id"],
        updated_data={"path": "/srv/new/place.txt"},
    )["row"]
    assert (moved["path"], moved["name"]) == ("/srv/new/place.txt", "place.txt")
    failed = data(
        core,
        "update_row",
        table_name="clients",
        row_id=client_id,
        updated_data={"status": "error", "error_message": "disk on fire"},
    )["row"]
    assert (failed["status"], failed["error_message"], failed["connected_at"]) == ("error", "disk on fire", None)
    assert not core.agents.has_session(client_id)  # marking it failed ended its session
    assert code(core, "update_row", table_name="clients", row_id="nobody", updated_data={"name": "x"}) == "NOT_FOUND"
    assert code(core, "update_row", table_name="activity", row_id="abc", updated_data={"message": "x"}) == "FORBIDDEN"


def test_delete_row_semantics(world: Any) -> None:
    core, _agent, files = world
    a = files["/home/u/a.txt"]
    versions = data(core, "get_table_data", table_name="file_versions")["rows"]
    old = next(v for v in versions if v["file_id"] == a["id"] and v["version"] == 1)
    newest = next(v for v in versions if v["file_id"] == a["id"] and v["version"] == 2)
    assert code(core, "delete_row", table_name="file_versions", row_id=newest["id"]) == "CONFLICT"
    data(core, "delete_row", table_name="file_versions", row_id=str(old["id"]))  # digits as a string work too
    assert not core.blobs.exists(old["sha256"])
    assert next(f for f in core.get_files() if f["id"] == a["id"])["backup_count"] == 1
    activity_id = data(core, "get_recent_activity", limit=1)["items"][0]["id"]
    assert data(core, "delete_row", table_name="activity", row_id=activity_id)["row_id"] == activity_id
    assert code(core, "delete_row", table_name="activity", row_id="12abc") == "BAD_REQUEST"  # cannot be an id
    assert code(core, "delete_row", table_name="activity", row_id="999999") == "NOT_FOUND"
    assert code(core, "delete_row", table_name="activity", row_id=True) == "BAD_REQUEST"  # the catalogue's type check
    assert code(core, "delete_row", table_name="settings", row_id="accepting") == "FORBIDDEN"
    client_id = core.get_all_clients_from_db()[0]["id"]
    result = data(core, "delete_row", table_name="clients", row_id=client_id)
    assert result == {"table": "clients", "row_id": client_id, "cascaded": {"files": 2}}
    assert core.get_files() == [] and data(core, "get_table_data", table_name="file_versions")["total"] == 0
    assert [p for p in (core.config.root / "blobs").rglob("*") if p.is_file()] == []
