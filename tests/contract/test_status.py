"""Server and system status, starting and stopping, the activity log, the server log, the round trip."""

from __future__ import annotations

import pytest

from protocol.catalogue import LOG_LEVELS
from protocol.shapes import SHAPE_BY_NAME
from tests.contract.harness import START, Backend, covers

pytestmark = pytest.mark.timeout(30)


@covers("get_server_status")
def test_server_status_totals(reader: Backend) -> None:
    status = reader.call("get_server_status")
    assert set(status) == SHAPE_BY_NAME["ServerStatus"].field_names
    assert status["running"] is True and status["started_at"] is not None and status["uptime_seconds"] >= 0
    assert (status["clients_total"], status["clients_connected"], status["files_total"]) == (4, 1, 6)
    assert status["storage_used"] == 11 + 300 + 5000 + 2048 + 42 + 300_000
    assert status["active_transfers"] == 0
    assert isinstance(status["host"], str) and isinstance(status["port"], int) and status["version"]


@covers("get_system_status")
def test_system_status_shape(reader: Backend) -> None:
    status = reader.call("get_system_status")
    assert set(status) == SHAPE_BY_NAME["SystemStatus"].field_names
    assert status["cpu_count"] >= 1 and len(status["load_average"]) == 3


@covers("start_server", "stop_server")
def test_stop_ends_every_session_and_start_resumes(backend: Backend) -> None:
    assert backend.error("start_server") == "CONFLICT"
    stopped = backend.call("stop_server")
    assert set(stopped) == SHAPE_BY_NAME["ServerStatus"].field_names
    assert (stopped["running"], stopped["started_at"], stopped["uptime_seconds"]) == (False, None, 0)
    assert stopped["clients_connected"] == 0
    alpha = backend.client("alpha")
    assert (alpha["status"], alpha["connected_at"], alpha["last_seen"]) == ("disconnected", None, START)
    events = backend.events()
    assert [d["type"] for t, d in events if t == "activity"] == ["client_disconnected", "server_stopped"]
    assert events[-1] == ("server.changed", {"status": stopped})
    assert backend.error("stop_server") == "CONFLICT"
    started = backend.call("start_server")
    assert (started["running"], started["started_at"], started["uptime_seconds"]) == (True, START, 0)
    events = backend.events()
    assert [d["type"] for t, d in events if t == "activity"] == ["server_started"]
    assert events[-1] == ("server.changed", {"status": started})
    assert backend.error("start_server") == "CONFLICT"


@covers("get_recent_activity")
def test_recent_activity_newest_first(backend: Backend) -> None:
    before = backend.call("get_recent_activity")
    assert set(before) == {"items", "total"} and before["total"] >= len(before["items"]) >= 1
    for entry in before["items"]:
        assert set(entry) == SHAPE_BY_NAME["Activity"].field_names and isinstance(entry["id"], str)
    ids = [int(e["id"]) for e in before["items"]]
    assert ids == sorted(ids, reverse=True)
    backend.call("disconnect_client", client_id=backend.clients["alpha"])
    after = backend.call("get_recent_activity", limit=2)
    assert len(after["items"]) == 2 and after["total"] == before["total"] + 1
    newest = after["items"][0]
    assert (newest["type"], newest["level"], newest["client_id"], newest["timestamp"]) == (
        "client_disconnected",
        "INFO",
        backend.clients["alpha"],
        START,
    )
    assert after["items"][1] == before["items"][0]


@covers("get_logs")
def test_logs_filter_and_page(backend: Backend) -> None:
    backend.call("stop_server")  # a WARNING line in either backend's log
    every = backend.call("get_logs", limit=1000)
    assert set(every) == {"items", "total", "offset", "limit"} and every["total"] == len(every["items"]) > 0
    for entry in every["items"]:
        assert set(entry) == SHAPE_BY_NAME["LogEntry"].field_names and entry["level"] in LOG_LEVELS
    warnings = backend.call("get_logs", level="WARNING", limit=1000)["items"]
    assert warnings and all(e["level"] in ("WARNING", "ERROR", "CRITICAL") for e in warnings)
    assert [e for e in every["items"] if e["level"] in ("WARNING", "ERROR", "CRITICAL")] == warnings
    found = backend.call("get_logs", text="AGENTS CAN NO LONGER", limit=1000)["items"]
    assert found and all("agents can no longer" in (e["event"] + e["message"]).lower() for e in found)
    assert backend.call("get_logs", text="no such line anywhere")["items"] == []
    page = backend.call("get_logs", offset=1, limit=2)
    assert page["items"] == every["items"][1:3] and (page["offset"], page["limit"]) == (1, 2)


@covers("test_connection")
def test_round_trip(reader: Backend) -> None:
    assert reader.call("test_connection") == {"pong": True, "backend": reader.core.name, "server_time": START}
