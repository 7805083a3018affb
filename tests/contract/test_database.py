"""The database view: the declared tables, hostile names and values, the editing policy, row ids, deletions."""

from __future__ import annotations

from typing import Any

import pytest

from actors.backends.dbview import DEFAULT_ERROR_MESSAGE, DELETABLE, EDITABLE
from protocol.tables import BACKEND_TABLES, TABLE_BY_NAME, TABLES
from tests.contract.harness import CLIENTS, FILES, START, Backend, covers

pytestmark = pytest.mark.timeout(30)

HOSTILE_NAMES = ["x; drop table clients", "Clients", "1abc", "files--", "a b", "é", "x" * 65, "", 'files"', "clients\n"]


def rows(backend: Backend, table: str) -> list[dict[str, Any]]:
    return backend.call("get_table_data", table_name=table, limit=1000)["rows"]


def newest_activity_id(backend: Backend) -> str:
    return backend.call("get_recent_activity", limit=1)["items"][0]["id"]


@covers("get_database_info")
def test_the_tables_are_the_declared_ones(reader: Backend) -> None:
    info = reader.call("get_database_info")
    assert set(info) == {"engine", "path", "size_bytes", "tables"} and info["size_bytes"] > 0
    assert [t["name"] for t in info["tables"]] == list(BACKEND_TABLES[reader.mode])
    for table in info["tables"]:
        declared = TABLE_BY_NAME[table["name"]]
        assert [(c["name"], c["type"]) for c in table["columns"]] == [(c.name, c.type) for c in declared.columns]
        assert {c["name"] for c in table["columns"] if c["editable"]} == set(EDITABLE.get(table["name"], {}))
        assert table["rows"] >= 0 and table["size_bytes"] >= 0
    counts = {t["name"]: t["rows"] for t in info["tables"]}
    assert (counts["clients"], counts["files"]) == (4, 6)
    assert counts["activity"] == reader.call("get_recent_activity")["total"]


@covers("get_table_data")
@pytest.mark.parametrize("table", [t.name for t in TABLES])
def test_table_data_pages_rows_in_key_order(reader: Backend, table: str) -> None:
    if table not in BACKEND_TABLES[reader.mode]:
        assert reader.error("get_table_data", table_name=table) == "NOT_FOUND"
        return
    whole = reader.call("get_table_data", table_name=table, limit=1000)
    info = next(t for t in reader.call("get_database_info")["tables"] if t["name"] == table)
    assert whole["columns"] == info["columns"] and whole["total"] == info["rows"] == len(whole["rows"])
    declared = TABLE_BY_NAME[table]
    assert all(tuple(r) == declared.column_names for r in whole["rows"])
    keys = [r[declared.key.name] for r in whole["rows"]]
    assert keys == sorted(keys)
    page = reader.call("get_table_data", table_name=table, offset=1, limit=2)
    assert page["rows"] == whole["rows"][1:3] and (page["offset"], page["limit"], page["total"]) == (
        1,
        2,
        whole["total"],
    )


@covers("get_table_data")
def test_rows_hold_the_records(reader: Backend) -> None:
    clients = {r["name"]: r for r in rows(reader, "clients")}
    alpha = clients["alpha"]
    assert alpha["id"] == reader.clients["alpha"] and isinstance(alpha["public_key"], str) and alpha["public_key"]
    assert (alpha["status"], alpha["connected_at"], alpha["error_message"]) == (
        "connected",
        CLIENTS["alpha"].joined,
        None,
    )
    assert (clients["gamma"]["status"], clients["gamma"]["error_message"]) == ("error", "disk full")
    files = {r["path"]: r for r in rows(reader, "files")}
    report = files["/home/alpha/Report.pdf"]
    seed = FILES["/home/alpha/Report.pdf"]
    assert (report["name"], report["size"], report["modified_at"], report["backup_count"]) == (
        "Report.pdf",
        300,
        seed.mtime,
        1,
    )
    assert report["mtime_ns"] == int(seed.mtime.timestamp()) * 10**9
    activity = rows(reader, "activity")
    assert all(isinstance(r["id"], int) for r in activity)
    assert str(activity[-1]["id"]) == newest_activity_id(reader)  # the wire's Activity.id is its text


@covers("get_table_data", "update_row", "delete_row")
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_table_names_are_bad_requests(reader: Backend, name: str) -> None:
    assert reader.error("get_table_data", table_name=name) == "BAD_REQUEST"
    assert reader.error("update_row", table_name=name, row_id="x", updated_data={"name": "y"}) == "BAD_REQUEST"
    assert reader.error("delete_row", table_name=name, row_id="x") == "BAD_REQUEST"


@covers("get_table_data", "update_row", "delete_row")
@pytest.mark.parametrize("name", ["sqlite_master", "sqlite_sequence", "schema_version", "no_such_table", "x" * 64])
def test_unknown_tables_are_not_found(reader: Backend, name: str) -> None:
    assert reader.error("get_table_data", table_name=name) == "NOT_FOUND"
    assert reader.error("update_row", table_name=name, row_id="x", updated_data={}) == "NOT_FOUND"  # table first
    assert reader.error("delete_row", table_name=name, row_id="x") == "NOT_FOUND"


@covers("update_row")
@pytest.mark.parametrize(
    "table, changes, expected",
    [
        ("clients", {"id": "x"}, "FORBIDDEN"),
        ("clients", {"public_key": "x"}, "FORBIDDEN"),
        ("clients", {"created_at": "2020-01-01"}, "FORBIDDEN"),
        ("clients", {"last_seen": "2020-01-01", "connected_at": None}, "FORBIDDEN"),
        ("clients", {"files_count": 0}, "BAD_REQUEST"),  # computed: not a column of the table
        ("clients", {"nope": 1}, "BAD_REQUEST"),
        ("clients", {"name = 'x' --": 1}, "BAD_REQUEST"),
        ("clients", {"id": "x", "nope": 1}, "BAD_REQUEST"),  # an unknown column is reported before a read-only one
        ("clients", {}, "BAD_REQUEST"),
        ("clients", {"name": 5}, "BAD_REQUEST"),
        ("clients", {"name": ""}, "BAD_REQUEST"),
        ("clients", {"name": "   "}, "BAD_REQUEST"),
        ("clients", {"name": "x" * 256}, "BAD_REQUEST"),
        ("clients", {"name": "evil\x00name"}, "BAD_REQUEST"),
        ("clients", {"hostname": "two\nlines"}, "BAD_REQUEST"),
        ("clients", {"platform": None}, "BAD_REQUEST"),
        ("clients", {"ip_address": "999.1.1.1"}, "BAD_REQUEST"),
        ("clients", {"ip_address": "../../etc/passwd"}, "BAD_REQUEST"),
        ("clients", {"status": "sleeping"}, "BAD_REQUEST"),
        ("clients", {"status": "connected"}, "CONFLICT"),  # only an agent's session makes a client connected
        ("clients", {"error_message": "boom"}, "BAD_REQUEST"),  # the client is not in status error
        ("clients", {"status": "disconnected", "error_message": "boom"}, "BAD_REQUEST"),
        ("files", {"sha256": "0" * 64}, "FORBIDDEN"),
        ("files", {"size": 1}, "FORBIDDEN"),
        ("files", {"client_id": "x"}, "FORBIDDEN"),
        ("files", {"backup_count": 9}, "FORBIDDEN"),
        ("files", {"mtime_ns": 1}, "FORBIDDEN"),
        ("files", {"last_verified": None}, "FORBIDDEN"),
        ("files", {"status": "gone"}, "BAD_REQUEST"),
        ("files", {"status": "uploading"}, "BAD_REQUEST"),  # only a transfer starts an upload
        ("files", {"path": "../../etc/passwd"}, "BAD_REQUEST"),
        ("files", {"path": "/home/../etc/passwd"}, "BAD_REQUEST"),
        ("files", {"path": "C:\\Users\\..\\x"}, "BAD_REQUEST"),
        ("files", {"path": "relative.txt"}, "BAD_REQUEST"),
        ("files", {"path": "/home/alpha/"}, "BAD_REQUEST"),
        ("files", {"path": "/home//alpha/x"}, "BAD_REQUEST"),
        ("files", {"path": "/home/alpha/a\x00b"}, "BAD_REQUEST"),
        ("files", {"path": ""}, "BAD_REQUEST"),
        ("files", {"name": ".."}, "BAD_REQUEST"),
        ("files", {"name": "."}, "BAD_REQUEST"),
        ("files", {"name": "../x"}, "BAD_REQUEST"),
        ("files", {"name": "a/b"}, "BAD_REQUEST"),
        ("files", {"name": "a\\b"}, "BAD_REQUEST"),
        ("files", {"name": "a\x00b"}, "BAD_REQUEST"),
        ("files", {"name": ""}, "BAD_REQUEST"),
        ("files", {"name": "a.txt", "path": "/srv/b.txt"}, "BAD_REQUEST"),  # the name is the path's last component
        ("files", {"path": "/home/alpha/notes.txt"}, "CONFLICT"),
        ("files", {"path": "/HOME/ALPHA/NOTES.TXT"}, "CONFLICT"),  # paths of a client conflict whatever their case
        ("files", {"name": "Notes.TXT"}, "CONFLICT"),
        ("activity", {"message": "x"}, "FORBIDDEN"),
        ("activity", {"nope": 1}, "BAD_REQUEST"),
    ],
)
def test_update_row_policy(reader: Backend, table: str, changes: dict[str, Any], expected: str) -> None:
    row_id = {
        "clients": reader.clients["Beta-Workstation"],
        "files": reader.files["/home/alpha/Report.pdf"],
        "activity": newest_activity_id(reader),
    }[table]
    before = rows(reader, table)
    reader.events()
    assert reader.error("update_row", table_name=table, row_id=row_id, updated_data=changes) == expected
    assert rows(reader, table) == before and reader.events() == []  # a refused edit changes nothing


@covers("update_row")
def test_update_row_edits_clients(backend: Backend) -> None:
    beta_id = backend.clients["Beta-Workstation"]
    edited = backend.call("update_row", table_name="clients", row_id=beta_id, updated_data={"name": "x; drop table"})
    assert edited["table"] == "clients" and tuple(edited["row"]) == TABLE_BY_NAME["clients"].column_names
    assert edited["row"]["name"] == "x; drop table"  # stored as given: values never reach SQL as text
    assert [c["name"] for c in backend.call("get_clients", search="DROP TABLE")["items"]] == ["x; drop table"]
    assert backend.activity_types() == ["client_updated"]
    failed = backend.call("update_row", table_name="clients", row_id=beta_id, updated_data={"status": "error"})["row"]
    assert (failed["status"], failed["error_message"]) == ("error", DEFAULT_ERROR_MESSAGE)
    row = backend.call("update_row", table_name="clients", row_id=beta_id, updated_data={"error_message": "cold"})
    assert row["row"]["error_message"] == "cold"
    back = backend.call("update_row", table_name="clients", row_id=beta_id, updated_data={"status": "disconnected"})
    assert (back["row"]["status"], back["row"]["error_message"], back["row"]["connected_at"]) == (
        "disconnected",
        None,
        None,
    )
    alpha_id = backend.clients["alpha"]
    joined = CLIENTS["alpha"].joined
    same = backend.call("update_row", table_name="clients", row_id=alpha_id, updated_data={"status": "connected"})
    assert (same["row"]["status"], same["row"]["connected_at"]) == ("connected", joined)  # the session goes on
    backend.events()
    marked = backend.call(
        "update_row", table_name="clients", row_id=alpha_id, updated_data={"status": "error", "error_message": "fire"}
    )["row"]
    assert (marked["status"], marked["error_message"], marked["connected_at"], marked["last_seen"]) == (
        "error",
        "fire",
        None,
        START,
    )
    assert backend.activity_types() == ["client_disconnected", "client_updated"]  # its session ended first
    assert backend.call("get_server_status")["clients_connected"] == 0
    assert backend.error("disconnect_client", client_id=alpha_id) == "CONFLICT"


@covers("update_row")
def test_update_row_keeps_name_and_path_together(backend: Backend) -> None:
    def edit(seeded_path: str, **changes: Any) -> dict[str, Any]:
        row_id = backend.files[seeded_path]
        reply = backend.call("update_row", table_name="files", row_id=row_id, updated_data=changes)
        assert reply["table"] == "files" and tuple(reply["row"]) == TABLE_BY_NAME["files"].column_names
        return reply["row"]

    renamed = edit("/home/alpha/Report.pdf", name="Summary.pdf")
    assert (renamed["name"], renamed["path"]) == ("Summary.pdf", "/home/alpha/Summary.pdf")
    moved = edit("/home/alpha/photos/cat.jpg", path="/srv/new/place.jpg")
    assert (moved["name"], moved["path"]) == ("place.jpg", "/srv/new/place.jpg")
    windows = edit("C:\\Users\\beta\\Notes.md", name="Todo.md")
    assert windows["path"] == "C:\\Users\\beta\\Todo.md"
    own_case = edit("/home/alpha/notes.txt", name="NOTES.txt")  # its own path in another case: no conflict
    assert own_case["path"] == "/home/alpha/NOTES.txt"
    both = edit("/srv/data/archive.tar", name="old.tar", path="/srv/data/old.tar")
    assert both["path"] == "/srv/data/old.tar"
    assert edit("/home/alpha/notes.txt", status="verified")["status"] == "verified"
    listed = {f["id"]: f for f in backend.call("get_files")["items"]}
    assert listed[backend.files["/home/alpha/Report.pdf"]]["path"] == "/home/alpha/Summary.pdf"
    assert [f["name"] for f in backend.call("get_files", filters={"search": "summary"})["items"]] == ["Summary.pdf"]
    assert [f["name"] for f in backend.call("get_files", filters={"status": "verified"})["items"]] == ["NOTES.txt"]
    assert backend.activity_types() == ["file_updated"] * 6


@covers("update_row", "delete_row")
@pytest.mark.parametrize(
    "table, row_id, expected",
    [
        ("clients", 5, "BAD_REQUEST"),  # ids of clients are strings
        ("files", 5, "BAD_REQUEST"),
        ("activity", "abc", "BAD_REQUEST"),  # ids of activity entries are integers, or their decimal text
        ("activity", "12abc", "BAD_REQUEST"),
        ("activity", 2**63, "BAD_REQUEST"),  # beyond any integer key
        ("activity", True, "BAD_REQUEST"),
        ("activity", 1.5, "BAD_REQUEST"),
        ("activity", None, "BAD_REQUEST"),
        ("clients", "nobody", "NOT_FOUND"),
        ("files", "../../etc/passwd", "NOT_FOUND"),
        ("activity", "999999", "NOT_FOUND"),
        ("activity", 999999, "NOT_FOUND"),
        ("activity", -1, "NOT_FOUND"),
    ],
)
def test_row_ids(reader: Backend, table: str, row_id: Any, expected: str) -> None:
    change = {"clients": {"name": "x"}, "files": {"name": "x"}, "activity": {"message": "x"}}[table]
    if table != "activity":
        assert reader.error("update_row", table_name=table, row_id=row_id, updated_data=change) == expected
    assert reader.error("delete_row", table_name=table, row_id=row_id) == expected


@covers("update_row")
def test_update_row_checks_in_order(reader: Backend) -> None:
    """Table name, then the changes, then the row: the first problem found is the one reported."""
    assert reader.error("update_row", table_name="clients", row_id="nobody", updated_data={}) == "BAD_REQUEST"
    assert reader.error("update_row", table_name="clients", row_id="nobody", updated_data={"id": "x"}) == "FORBIDDEN"
    assert reader.error("update_row", table_name="clients", row_id=5, updated_data={"id": "x"}) == "FORBIDDEN"
    assert reader.error("update_row", table_name="clients", row_id="nobody", updated_data={"name": "x"}) == "NOT_FOUND"
    activity_id = newest_activity_id(reader)
    assert reader.error("update_row", table_name="activity", row_id=activity_id, updated_data={"id": 1}) == "FORBIDDEN"


@covers("delete_row")
def test_delete_row(backend: Backend) -> None:
    alpha_id = backend.clients["alpha"]
    assert backend.call("delete_row", table_name="clients", row_id=alpha_id) == {
        "table": "clients",
        "row_id": alpha_id,
        "cascaded": {"files": 3},
    }
    assert backend.call("get_server_status")["files_total"] == 3
    file_id = backend.files["C:\\Users\\beta\\Notes.md"]
    assert backend.call("delete_row", table_name="files", row_id=file_id) == {
        "table": "files",
        "row_id": file_id,
        "cascaded": {"files": 0},
    }
    assert backend.client("Beta-Workstation")["files_count"] == 1
    assert backend.activity_types() == ["client_deleted", "file_deleted"]
    activity_id = newest_activity_id(backend)
    deleted = backend.call("delete_row", table_name="activity", row_id=activity_id)
    assert deleted == {"table": "activity", "row_id": activity_id, "cascaded": {"files": 0}}
    assert activity_id not in {str(r["id"]) for r in rows(backend, "activity")}
    assert backend.error("delete_row", table_name="activity", row_id=activity_id) == "NOT_FOUND"
    by_number = rows(backend, "activity")[0]["id"]  # the integer itself works too
    assert backend.call("delete_row", table_name="activity", row_id=by_number)["row_id"] == str(by_number)
    assert backend.activity_types() == ["row_deleted", "row_deleted"]
    for table, row_id in (("clients", alpha_id), ("files", file_id)):
        assert backend.error("delete_row", table_name=table, row_id=row_id) == "NOT_FOUND"


@covers("delete_row")
@pytest.mark.parametrize("table", sorted({t.name for t in TABLES} - DELETABLE))
def test_protected_tables_keep_their_rows(reader: Backend, table: str) -> None:
    """FORBIDDEN where the table is exposed (before the row is even looked up), NOT_FOUND where it is not."""
    expected = "FORBIDDEN" if table in BACKEND_TABLES[reader.mode] else "NOT_FOUND"
    assert reader.error("delete_row", table_name=table, row_id="accepting") == expected
    assert reader.error("delete_row", table_name=table, row_id="no-such-row") == expected
