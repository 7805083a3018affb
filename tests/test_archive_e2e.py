"""download_archive end to end: the demo agent backs up its sample folder to the real server, and the folder
comes back through the bridge as a tar (client library and bridgectl) that unpacks to the very same files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors.agent.sample import ensure_sample
from client import lane
from client.async_connection import AsyncBridgeClient
from client.download import download
from gui.archive_relay import ArchiveOffer, offer_archive
from gui.downloads import DownloadLinks, Requester
from gui.server import build_app
from protocol.envelope import Header
from protocol.responses import Reply
from tests.conftest import ROOT, Stack, ok, run_async
from tests.test_server_e2e import RealServer, bridge_stack, client_named, server

__all__ = ["bridge_stack", "server"]  # the fixtures, imported for this module's tests

pytestmark = pytest.mark.timeout(120)


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def unpacked(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")  # refuses anything that would land outside ``into``
    return into


class LaneFetches:
    """client.lane.fetch, counted: the tickets the client redeemed on a backend's bulk lane."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tickets: list[Header] = []
        self._fetch = lane.fetch
        monkeypatch.setattr(lane, "fetch", self)

    def __call__(self, *args: Any, **kwargs: Any) -> Reply:
        self.tickets.append(args[3])
        return self._fetch(*args, **kwargs)


def redeemed(server: RealServer) -> list[str]:
    """The doors of the tickets the server's lane redeemed, from its log."""
    events = (json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{"))
    return [e["door"] for e in events if e.get("event") == "lane.ticket_redeemed"]


def test_the_mock_streams_its_archive_through_the_bridge_to_a_client_asking_for_the_lane(
    bridge_stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetches = LaneFetches(monkeypatch)
    with bridge_stack.client() as c:
        assert c.use_lane  # it asks; the mock announced no bulk lane, so the bridge streams as ever
        clients = ok(c.call("get_clients", {"limit": 5}))["items"]
        runs = [r for x in clients for r in ok(c.call("list_snapshots", {"client_id": x["id"]}))["items"]]
        ended = next(r for r in runs if r["status"] != "running" and r["files_total"])
        one = ok(c.call("find_files", {"query": "", "snapshot_id": ended["id"], "limit": 1}))["items"][0]["path"]
        dest = tmp_path / "mock.tar"
        data = ok(
            download(c, "download_archive", {"snapshot_id": ended["id"], "paths": [one], "destination_path": str(dest)})
        )
    assert data["size"] == dest.stat().st_size and data["files"] == 1 and fetches.tickets == []
    with tarfile.open(dest) as tar:
        assert [m.name for m in tar.getmembers() if m.isfile()] == [one.rsplit("/", 1)[1]]


def test_the_real_server_hands_the_archive_over_its_bulk_lane_the_same_as_through_the_bridge(
    server: RealServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = tmp_path / "sample"
    assert ensure_sample(sample)
    server.agent("backup", str(sample), "--name", "demo-agent", config=tmp_path / "agent")
    fetches = LaneFetches(monkeypatch)
    with server.stack.client() as c:
        client = client_named(c, "demo-agent")
        (snapshot,) = ok(c.call("list_snapshots", {"client_id": client["id"]}))["items"]
        args: dict[str, Any] = {"snapshot_id": snapshot["id"], "paths": [str(sample)]}
        lane_data = ok(download(c, "download_archive", {**args, "destination_path": str(tmp_path / "lane.tar")}))
        c.use_lane = False
        bridge_data = ok(download(c, "download_archive", {**args, "destination_path": str(tmp_path / "bridge.tar")}))
    (ticket,) = fetches.tickets
    registered = server.stack.backend("server")
    assert registered is not None and ticket.get("server_key") == server.stack.connection_of("server").public_key
    assert ticket.get("endpoint", "").startswith("tcp://127.0.0.1:") and ticket.get("endpoint") != server.agents
    # On the server's host, as its user: the same-host door in its data dir.
    assert ticket.get("ipc_endpoint") == f"ipc://{(server.data_dir / 'server' / 'run' / 'lane.sock').absolute()}"
    assert redeemed(server) == ["ipc"]
    assert (tmp_path / "lane.tar").read_bytes() == (tmp_path / "bridge.tar").read_bytes()
    assert {k: v for k, v in lane_data.items() if k != "destination_path"} == {
        k: v for k, v in bridge_data.items() if k != "destination_path"
    }
    assert tree(unpacked(tmp_path / "lane.tar", tmp_path / "out") / "sample") == tree(sample)


def test_a_lane_this_machine_cannot_reach_costs_a_moment_then_the_bridge_streams_it(
    bridge_stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Announced on an address nothing listens on (bound on 127.0.0.1 only): a client elsewhere, in effect.
    real = RealServer(bridge_stack, tmp_path / "data").start(
        "--bulk", "tcp://127.0.0.1:0", "--bulk-host", "127.0.0.2", "--bulk-ipc", "none"
    )
    try:
        sample = tmp_path / "sample"
        assert ensure_sample(sample)
        real.agent("backup", str(sample), "--name", "demo-agent", config=tmp_path / "agent")
        fetches = LaneFetches(monkeypatch)
        with bridge_stack.client() as c:
            (snapshot,) = ok(c.call("list_snapshots", {"client_id": client_named(c, "demo-agent")["id"]}))["items"]
            dest = tmp_path / "fallback.tar"
            args = {"snapshot_id": snapshot["id"], "paths": [str(sample)], "destination_path": str(dest)}
            ok(download(c, "download_archive", args))
        (ticket,) = fetches.tickets
        assert ticket.get("endpoint", "").startswith("tcp://127.0.0.2:")
        assert tree(unpacked(dest, tmp_path / "out") / "sample") == tree(sample)
    finally:
        real.stop()


def test_a_backed_up_folder_comes_back_as_a_tar_through_the_bridge(server: RealServer, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    assert ensure_sample(sample)
    server.agent("backup", str(sample), "--name", "demo-agent", config=tmp_path / "agent")
    with server.stack.client() as c:
        client = client_named(c, "demo-agent")
        (snapshot,) = ok(c.call("list_snapshots", {"client_id": client["id"]}))["items"]
        dest = tmp_path / "sample.tar"
        args: dict[str, Any] = {"snapshot_id": snapshot["id"], "paths": [str(sample)], "destination_path": str(dest)}
        data = ok(download(c, "download_archive", args))
        assert data["size"] == dest.stat().st_size and "sha256" not in data  # each member is checked instead
        assert (data["files"], data["bytes"], data["name"]) == (
            snapshot["files_total"],
            snapshot["bytes_total"],
            "sample.tar",
        )
        assert tree(unpacked(dest, tmp_path / "out") / "sample") == tree(sample)

        photos = sample / "photos" / "2025"
        picked = [str(photos), str(sample / "todo.txt")]
        partial = tmp_path / "partial.tar"
        ok(download(c, "download_archive", {**args, "paths": picked, "destination_path": str(partial)}))
        got = tree(unpacked(partial, tmp_path / "partial"))
        assert got == {
            "todo.txt": (sample / "todo.txt").read_bytes(),
            **{f"photos/2025/{k}": v for k, v in tree(photos).items()},
        }

        hostile = {**args, "paths": [str(sample / ".." / "etc")], "destination_path": str(tmp_path / "x")}
        refused = download(c, "download_archive", hostile)
        assert refused["error_code"] == "BAD_REQUEST" and not (tmp_path / "x").exists()
        missing = download(
            c, "download_archive", {**args, "paths": [str(sample / "nope")], "destination_path": str(tmp_path / "y")}
        )
        assert missing["error_code"] == "NOT_FOUND" and not (tmp_path / "y").exists()

    # bridgectl's convention for streamed operations: --arg destination_path=FILE, repeat --arg paths=
    out = tmp_path / "ctl.tar"
    ctl = subprocess.run(
        [
            sys.executable,
            "-m",
            "client.bridgectl",
            "call",
            "download_archive",
            "--arg",
            f"snapshot_id={snapshot['id']}",
            "--arg",
            f"paths={sample / 'todo.txt'}",
            "--arg",
            f"paths={photos}",
            "--arg",
            f"destination_path={out}",
        ],
        cwd=ROOT,
        env=server.stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ctl.returncode == 0, ctl.stderr
    assert json.loads(ctl.stdout)["data"]["size"] == out.stat().st_size
    assert tree(unpacked(out, tmp_path / "ctl")) == got


BROWSER = Requester("127.0.0.1", "Mozilla/5.0 test")


async def never_called(page: Any) -> None:
    raise AssertionError("no Flet session in these tests")


def test_the_guis_archive_relay_takes_the_bulk_lane_same_host_door_first(server: RealServer, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    assert ensure_sample(sample)
    server.agent("backup", str(sample), "--name", "demo-agent", config=tmp_path / "agent")
    with server.stack.client() as c:
        (snapshot,) = ok(c.call("list_snapshots", {"client_id": client_named(c, "demo-agent")["id"]}))["items"]
    links = DownloadLinks(tmp_path / "area")

    async def browser_download(client: AsyncBridgeClient) -> bytes:
        made = await offer_archive(
            links, client, snapshot_id=snapshot["id"], paths=[str(sample)], owner="tab-1", requester=BROWSER
        )
        assert isinstance(made, ArchiveOffer), made
        transport = httpx.ASGITransport(app=build_app(never_called, links), client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gui") as http:
            got = await http.get(made.url, headers={"user-agent": BROWSER.user_agent})
        final = await made.done
        assert got.status_code == 200 and final["success"] and final["data"]["size"] == len(got.content)
        return got.content

    async def body() -> list[bytes]:
        client = await AsyncBridgeClient(server.stack.endpoint, connection=server.stack.connection).start()
        try:
            assert client.use_lane and await client.wait_connected(10)
            first = await browser_download(client)
            socket_file = server.data_dir / "server" / "run" / "lane.sock"
            socket_file.chmod(0)  # the GUI may not use it now (root: nor trust a socket not its own)
            if os.geteuid() == 0:
                os.chown(socket_file, 65534, 65534)
            return [first, await browser_download(client)]
        finally:
            await client.close()

    archives = run_async(body)
    assert redeemed(server) == ["ipc", "tcp"]  # the relay's acks went to the lane socket each came by
    for n, archive in enumerate(archives):
        (tmp_path / f"{n}.tar").write_bytes(archive)
        assert tree(unpacked(tmp_path / f"{n}.tar", tmp_path / f"out{n}") / "sample") == tree(sample)
