"""Clients: listing (filters, sorts, pages), details, resolving, disconnecting, deleting with cascade."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.catalogue import CLIENT_SORTS
from protocol.shapes import SHAPE_BY_NAME
from tests.contract.harness import CLIENTS, FILES, START, Backend, covers

pytestmark = pytest.mark.timeout(30)


def names(page: dict[str, Any]) -> list[str]:
    return [c["name"] for c in page["items"]]


@covers("get_clients")
def test_clients_have_the_declared_shape_and_true_aggregates(reader: Backend) -> None:
    page = reader.call("get_clients")
    assert (page["total"], page["offset"], page["limit"]) == (4, 0, 1000)
    by_name = {c["name"]: c for c in page["items"]}
    for client in page["items"]:
        assert set(client) == SHAPE_BY_NAME["Client"].field_names
    alpha = by_name["alpha"]
    joined = CLIENTS["alpha"].joined
    assert (alpha["status"], alpha["connected_at"], alpha["last_seen"], alpha["created_at"]) == (
        "connected",
        joined,
        joined,
        joined,
    )
    assert (alpha["hostname"], alpha["ip_address"], alpha["platform"], alpha["agent_version"]) == (
        "alpha.lab.internal",
        "10.0.0.1",
        "Ubuntu 24.04",
        "1.4.0",
    )
    assert (alpha["files_count"], alpha["total_size"]) == (3, 11 + 300 + 5000)
    assert (by_name["gamma"]["status"], by_name["gamma"]["error_message"]) == ("error", "disk full")
    assert (by_name["Émile"]["files_count"], by_name["Émile"]["total_size"]) == (0, 0)
    beta = by_name["Beta-Workstation"]
    assert (beta["connected_at"], beta["last_seen"]) == (None, CLIENTS["Beta-Workstation"].joined)


@covers("get_clients")
@pytest.mark.parametrize("sort", CLIENT_SORTS)
def test_client_sorts(reader: Backend, sort: str) -> None:
    expected = {
        # Case folds for ASCII letters only (like SQLite's NOCASE): "É" sorts after "g".
        "name": ["alpha", "Beta-Workstation", "gamma", "Émile"],
        "last_seen": ["alpha", "Beta-Workstation", "gamma", "Émile"],
        "status": ["alpha", "Beta-Workstation|Émile", "Beta-Workstation|Émile", "gamma"],
        "total_size": ["Émile", "Beta-Workstation", "alpha", "gamma"],
    }[sort.lstrip("-")]
    got = names(reader.call("get_clients", sort=sort))
    if sort.startswith("-"):
        expected = list(reversed(expected))
    # The two disconnected clients tie on status: they follow their ids, whatever ids a backend gives.
    for name, want in zip(got, expected, strict=True):
        assert name in want.split("|"), (got, expected)
    if sort.lstrip("-") == "status":
        ids = [reader.clients[n] for n in got if n in ("Beta-Workstation", "Émile")]
        assert ids == sorted(ids, reverse=sort.startswith("-"))


@covers("get_clients")
@pytest.mark.parametrize(
    "args, expected",
    [
        ({"search": "BETA"}, ["Beta-Workstation"]),  # name and hostname, case-insensitive
        ({"search": "lab.internal"}, ["alpha"]),  # hostname
        ({"search": "10.0.0."}, ["alpha", "Beta-Workstation", "Émile"]),  # IP address
        ({"search": "192.168"}, ["gamma"]),
        ({"search": "ÉMILE"}, ["Émile"]),
        ({"search": "émile"}, []),  # only ASCII letters fold
        ({"search": "a\ng"}, []),  # no name, hostname or address holds a newline ("gamma", "gamma.srv...")
        ({"search": ""}, ["alpha", "Beta-Workstation", "gamma", "Émile"]),
        ({"search": None, "status": None}, ["alpha", "Beta-Workstation", "gamma", "Émile"]),
        ({"status": "disconnected"}, ["Beta-Workstation", "Émile"]),
        ({"status": "error"}, ["gamma"]),
        ({"status": "connected", "search": "gamma"}, []),
        ({"status": "disconnected", "search": "ws", "sort": "-name"}, ["Beta-Workstation"]),
    ],
)
def test_client_filters(reader: Backend, args: dict[str, Any], expected: list[str]) -> None:
    page = reader.call("get_clients", **args)
    assert names(page) == expected and page["total"] == len(expected)


@covers("get_clients")
def test_client_pages(reader: Backend) -> None:
    every = names(reader.call("get_clients"))
    page = reader.call("get_clients", offset=1, limit=2)
    assert names(page) == every[1:3] and (page["total"], page["offset"], page["limit"]) == (4, 1, 2)
    assert reader.call("get_clients", offset=4)["items"] == []
    filtered = reader.call("get_clients", search="AL", offset=1, limit=1)
    assert filtered["total"] == 3 and names(filtered) == ["gamma"]  # alpha, gamma (internal), Émile (local)
    assert reader.call("get_clients", offset=99, search="al") == {"items": [], "total": 3, "offset": 99, "limit": 1000}


@covers("get_client_details")
def test_client_details(reader: Backend) -> None:
    details = reader.call("get_client_details", client_id=reader.clients["alpha"])
    assert set(details) == {"client", "files_summary", "recent_files"}
    assert details["client"] == next(c for c in reader.call("get_clients")["items"] if c["name"] == "alpha")
    assert details["files_summary"] == {
        "count": 3,
        "total_size": 5311,
        "by_status": {"uploading": 0, "uploaded": 3, "verified": 0, "error": 0},
    }
    recent = details["recent_files"]
    assert [f["name"] for f in recent] == ["cat.jpg", "Report.pdf", "notes.txt"]  # newest modification first
    assert all(set(f) == SHAPE_BY_NAME["File"].field_names for f in recent)
    empty = reader.call("get_client_details", client_id=reader.clients["Émile"])
    assert empty["recent_files"] == [] and empty["files_summary"]["count"] == 0
    assert reader.error("get_client_details", client_id="no-such-client") == "NOT_FOUND"


@covers("resolve_client", "update_row")
def test_resolve_client(backend: Backend) -> None:
    alpha = backend.client("alpha")
    assert backend.call("resolve_client", client_id_or_name=alpha["id"]) == alpha
    assert backend.call("resolve_client", client_id_or_name="ALPHA") == alpha
    assert backend.call("resolve_client", client_id_or_name="ÉMILE")["name"] == "Émile"
    assert backend.error("resolve_client", client_id_or_name="émile") == "NOT_FOUND"  # ASCII folding only
    assert backend.error("resolve_client", client_id_or_name="nobody") == "NOT_FOUND"
    gamma_id = backend.clients["gamma"]
    backend.call("update_row", table_name="clients", row_id=gamma_id, updated_data={"name": "Alpha"})
    assert backend.error("resolve_client", client_id_or_name="alpha") == "CONFLICT"
    assert backend.call("resolve_client", client_id_or_name=gamma_id)["name"] == "Alpha"


@covers("disconnect_client")
def test_disconnect_client(backend: Backend) -> None:
    alpha_id = backend.clients["alpha"]
    client = backend.call("disconnect_client", client_id=alpha_id)["client"]
    assert set(client) == SHAPE_BY_NAME["Client"].field_names
    assert (client["status"], client["connected_at"], client["last_seen"]) == ("disconnected", None, START)
    assert backend.activity_types()[-1] == "client_disconnected"
    assert backend.call("get_server_status")["clients_connected"] == 0
    assert backend.error("disconnect_client", client_id=alpha_id) == "CONFLICT"
    assert backend.error("disconnect_client", client_id=backend.clients["gamma"]) == "CONFLICT"  # error: no session
    assert backend.error("disconnect_client", client_id="no-such-client") == "NOT_FOUND"


@covers("delete_client")
def test_delete_client_cascades_to_its_files(backend: Backend) -> None:
    alpha_id = backend.clients["alpha"]
    own = {backend.files[p] for p in FILES if p.startswith("/home/alpha/")}
    before = backend.call("get_server_status")
    assert backend.call("delete_client", client_id=alpha_id) == {
        "client_id": alpha_id,
        "deleted_files": 3,
        "freed_bytes": 5311,
    }
    events = backend.events()
    deleted = {d["file_id"] for t, d in events if t == "file.changed" and d["change"] == "deleted"}
    assert deleted == own
    assert ("client.changed", {"client_id": alpha_id, "change": "deleted", "client": None}) in events
    assert [d["type"] for t, d in events if t == "activity"][-1] == "client_deleted"
    after = backend.call("get_server_status")
    assert (after["clients_total"], after["files_total"]) == (3, before["files_total"] - 3)
    assert after["storage_used"] == before["storage_used"] - 5311
    assert not own & {f["id"] for f in backend.call("get_files", limit=1000)["items"]}
    assert backend.error("get_client_details", client_id=alpha_id) == "NOT_FOUND"
    assert backend.error("get_files", client_id=alpha_id) == "NOT_FOUND"
    assert backend.error("delete_client", client_id=alpha_id) == "NOT_FOUND"
    assert backend.call("delete_client", client_id=backend.clients["Émile"])["deleted_files"] == 0
