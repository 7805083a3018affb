"""Every write tells watchers the same story in either backend: the same topics, in the same order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.contract.harness import Backend, covers

pytestmark = pytest.mark.timeout(30)

NOTES = "/home/alpha/notes.txt"
Write = Callable[[Backend], Any]


def _newest_activity(b: Backend) -> str:
    return b.call("get_recent_activity", limit=1)["items"][0]["id"]


WRITES: list[tuple[str, Write, list[str]]] = [
    (
        "disconnect_client",
        lambda b: b.call("disconnect_client", client_id=b.clients["alpha"]),
        ["client.changed", "activity:client_disconnected", "server.changed"],
    ),
    (
        "delete_client",
        lambda b: b.call("delete_client", client_id=b.clients["Beta-Workstation"]),
        ["file.changed", "file.changed", "client.changed", "activity:client_deleted", "server.changed"],
    ),
    (
        "delete_file",
        lambda b: b.call("delete_file", file_id=b.files[NOTES]),
        ["file.changed", "client.changed", "activity:file_deleted", "server.changed"],
    ),
    (
        "verify_file",
        lambda b: b.call("verify_file", file_id=b.files[NOTES]),
        ["file.changed", "activity:verify_passed"],
    ),
    (
        "update_row clients",
        lambda b: b.call("update_row", table_name="clients", row_id=b.clients["gamma"], updated_data={"name": "g"}),
        ["client.changed", "activity:client_updated"],
    ),
    (
        "update_row ends a session",
        lambda b: b.call(
            "update_row", table_name="clients", row_id=b.clients["alpha"], updated_data={"status": "error"}
        ),
        [
            "client.changed",
            "activity:client_disconnected",
            "server.changed",
            "client.changed",
            "activity:client_updated",
        ],
    ),
    (
        "update_row files",
        lambda b: b.call("update_row", table_name="files", row_id=b.files[NOTES], updated_data={"name": "n.txt"}),
        ["file.changed", "activity:file_updated"],
    ),
    (
        "delete_row clients",
        lambda b: b.call("delete_row", table_name="clients", row_id=b.clients["gamma"]),
        ["file.changed", "client.changed", "activity:client_deleted", "server.changed"],
    ),
    (
        "delete_row files",
        lambda b: b.call("delete_row", table_name="files", row_id=b.files[NOTES]),
        ["file.changed", "client.changed", "activity:file_deleted", "server.changed"],
    ),
    (
        "delete_row activity",
        lambda b: b.call("delete_row", table_name="activity", row_id=_newest_activity(b)),
        ["activity:row_deleted"],
    ),
    (
        "stop_server",
        lambda b: b.call("stop_server"),
        [
            "client.changed",
            "activity:client_disconnected",
            "server.changed",
            "activity:server_stopped",
            "server.changed",
        ],
    ),
]


@covers("disconnect_client", "delete_client", "delete_file", "verify_file", "update_row", "delete_row", "stop_server")
@pytest.mark.parametrize("write, expected", [(w, e) for _, w, e in WRITES], ids=[name for name, _, _ in WRITES])
def test_write_events(backend: Backend, write: Write, expected: list[str]) -> None:
    backend.events()
    write(backend)
    got = [f"activity:{data['type']}" if topic == "activity" else topic for topic, data in backend.events()]
    assert got == expected


@covers("start_server")
def test_start_events(backend: Backend) -> None:
    backend.call("stop_server")
    backend.events()
    started = backend.call("start_server")
    assert backend.events()[-2:] == [
        ("activity", backend.call("get_recent_activity", limit=1)["items"][0]),
        ("server.changed", {"status": started}),
    ]
