"""Snapshots end to end: the demo agent backs up its sample folder twice, a file changed between the runs,
and the console sees both runs, the folder as each run found it and both versions of the file."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from actors.agent.sample import ensure_sample
from client.connection import BridgeClient
from client.download import download
from tests.conftest import ok
from tests.test_server_e2e import RealServer, bridge_stack, client_named, server

__all__ = ["bridge_stack", "server"]  # the fixtures, imported for this module's tests

pytestmark = pytest.mark.timeout(120)


def browse(c: BridgeClient, snapshot_id: str, path: str) -> dict[str, dict[str, Any]]:
    reply = ok(c.call("browse_snapshot", {"snapshot_id": snapshot_id, "path": path}))
    return {e["name"]: e for e in reply["items"]}


def test_two_runs_of_the_demo_agent(server: RealServer, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    assert ensure_sample(sample)
    files = [p for p in sample.rglob("*") if p.is_file()]
    config = tmp_path / "agent"
    first = server.agent("backup", str(sample), "--name", "demo-agent", config=config).summary
    assert first["files"] == len(files)
    todo = sample / "todo.txt"
    todo.write_bytes(todo.read_bytes() + b"- check the snapshots\n")
    second = server.agent("backup", str(sample), "--name", "demo-agent", config=config).summary
    assert (second["sent"], second["unchanged"]) == (1, len(files) - 1)

    with server.stack.client() as c:
        client = client_named(c, "demo-agent")
        runs = ok(c.call("list_snapshots", {"client_id": client["id"]}))
        assert runs["total"] == 2
        newer, older = runs["items"]
        assert (older["status"], older["files_new"], older["files_total"]) == ("complete", len(files), len(files))
        assert (newer["status"], newer["files_changed"], newer["files_unchanged"]) == ("complete", 1, len(files) - 1)
        assert newer["root"] == str(sample) and newer["started_at"] >= older["ended_at"]

        top = browse(c, newer["id"], str(sample))
        assert set(top) == {p.name for p in sample.iterdir()}
        assert (top["documents"]["type"], top["documents"]["change"]) == ("dir", "unchanged")
        assert (top["todo.txt"]["change"], top["todo.txt"]["version"]) == ("changed", 2)
        photos = browse(c, older["id"], str(sample / "photos" / "2025"))
        assert len(photos) == 8 and {e["change"] for e in photos.values()} == {"new"}

        versions = ok(c.call("get_file_versions", {"client_id": client["id"], "path": str(todo)}))["items"]
        assert [(v["version"], v["snapshot_id"]) for v in versions] == [(2, newer["id"]), (1, older["id"])]
        assert versions[0]["sha256"] == hashlib.sha256(todo.read_bytes()).hexdigest()
        found = ok(c.call("find_files", {"query": "todo", "client_id": client["id"], "snapshot_id": older["id"]}))
        assert [(v["path"], v["version"]) for v in found["items"]] == [(str(todo), 1)]

        dest = tmp_path / "todo-then.txt"
        args = {"file_id": versions[1]["file_id"], "destination_path": str(dest), "version": 1}
        fetched = ok(download(c, "download_file", args))
        assert fetched["sha256"] == versions[1]["sha256"] == hashlib.sha256(dest.read_bytes()).hexdigest()
        assert not dest.read_bytes().endswith(b"- check the snapshots\n")
