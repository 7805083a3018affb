"""The GUI's non-visual core against a real stack: facade, state store, view helpers, live events."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from client.async_connection import AsyncBridgeClient, ConnectionState
from client.async_events import AsyncEventFollower
from client.facade import ServerBridge
from client.sequencer import EventSequencer, Resync
from gui.live import LiveUpdates
from gui.operations import DEBOUNCE_S, ViewContext
from gui.state import StateStore
from protocol import responses
from protocol.catalogue import get_operation
from protocol.errors import ErrorCode
from protocol.events import BRIDGE_WRITE, FILE_CHANGED
from protocol.responses import Reply
from protocol.views import ViewKey
from tests.conftest import Stack, free_port, run_async

pytestmark = pytest.mark.timeout(90)


class RecordingNotifier:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bool, str | None]] = []

    async def notify(self, message: str, *, error: bool = False, error_code: str | None = None) -> None:
        self.messages.append((message, error, error_code))


async def wait_for_async(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def test_facade_sync_methods_keep_the_seed_names(shared_stack: Stack) -> None:
    bridge = ServerBridge(shared_stack.endpoint, connection=shared_stack.connection)
    try:
        clients = bridge.get_all_clients_from_db()
        assert clients["success"] and clients["mode"] == "mock" and clients["data"]["total"] >= 40
        first = clients["data"]["items"][0]
        files = bridge.get_client_files(first["id"])  # positional, as in the seed
        assert files["success"] and files["data"]["total"] == first["files_count"]
        missing = bridge.delete_file("no-such-file")
        assert not missing["success"] and missing["error_code"] == "NOT_FOUND"
    finally:
        bridge.close_sync()


def test_facade_async_methods_and_download(shared_stack: Stack, tmp_path: Path) -> None:
    async def scenario() -> None:
        bridge = await ServerBridge(shared_stack.endpoint, connection=shared_stack.connection).start()
        try:
            status = await bridge.get_server_status_async()
            assert status["success"] and "clients_total" in status["data"]
            got = await bridge.get_clients_async(limit=5)
            assert len(got["data"]["items"]) == 5
            file = (await bridge.get_files_async(limit=1, filters={"status": "verified"}))["data"]["items"][0]
            seen: list[int] = []
            reply = await bridge.download_file_async(
                file["id"], str(tmp_path / "f.bin"), progress=lambda done, total: seen.append(done)
            )
            assert reply["success"] and (tmp_path / "f.bin").stat().st_size == file["size"]
            assert seen and seen[-1] == file["size"]
        finally:
            await bridge.close()

    run_async(scenario)


def test_store_and_server_mediated_update_never_report_a_failure_as_success() -> None:
    async def scenario() -> None:
        store = StateStore()
        seen: list[Any] = []
        unsubscribe = store.subscribe("k", lambda key, value: seen.append(value))
        await store.set("k", [1])

        async def ok() -> Reply:
            return responses.as_reply(responses.success([2], mode="mock"))

        async def fails() -> Reply:
            return responses.as_reply(responses.error(ErrorCode.NOT_FOUND, "nope", mode="mock"))

        async def crashes() -> Reply:
            raise RuntimeError("bug")

        assert (await store.server_mediated_update("k", [9], ok))["success"]
        assert store.get("k") == [2]
        reply = await store.server_mediated_update("k", [9], fails)
        error = store.entry("k").error
        assert reply["success"] is False and store.get("k") == [2] and error and error["error_code"] == "NOT_FOUND"
        crashed = await store.server_mediated_update("k", [9], crashes)
        assert crashed["success"] is False and crashed["error_code"] == "INTERNAL" and store.get("k") == [2]
        unsubscribe()
        await store.set("k", [3])
        assert seen[0] == [1] and [3] not in seen

    run_async(scenario)


def test_view_helpers_load_act_notify_and_refresh(shared_stack: Stack) -> None:
    async def scenario() -> None:
        bridge = await ServerBridge(shared_stack.endpoint, connection=shared_stack.connection).start()
        notifier = RecordingNotifier()
        ctx = ViewContext(StateStore(), notifier)
        loads = {"n": 0}

        async def load_clients() -> Reply:
            loads["n"] += 1
            return await bridge.get_clients_async(limit=100)

        ctx.register_loader(ViewKey.CLIENTS, load_clients)
        loading_seen: list[bool] = []
        ctx.store.subscribe(ViewKey.CLIENTS, lambda k, v: loading_seen.append(ctx.store.entry(k).loading))
        reply = await ctx.load_data_operation(ViewKey.CLIENTS)
        assert reply["success"] and ctx.store.get(ViewKey.CLIENTS)["total"] >= 40
        assert True in loading_seen and ctx.store.entry(ViewKey.CLIENTS).loading is False
        victim = ctx.store.get(ViewKey.CLIENTS)["items"][-1]
        before = loads["n"]
        done = await ctx.action_operation(
            "Delete client", "delete_client", lambda: bridge.delete_client_async(victim["id"]), "Client deleted"
        )
        assert done["success"] and notifier.messages[-1] == ("Client deleted", False, None)
        assert loads["n"] == before + 1  # the catalogue's refreshes of delete_client include clients
        assert all(c["id"] != victim["id"] for c in ctx.store.get(ViewKey.CLIENTS)["items"])
        failed = await ctx.action_operation(
            "Delete client", "delete_client", lambda: bridge.delete_client_async(victim["id"])
        )
        message, is_error, code = notifier.messages[-1]
        assert not failed["success"] and is_error and code == "NOT_FOUND" and "NOT_FOUND" in message
        assert loads["n"] == before + 1  # no refresh after a failure
        bad = await ctx.load_data_operation(
            "broken", lambda: bridge.get_table_data_async(table_name="nope; drop"), fallback_data={"rows": []}
        )
        assert not bad["success"] and ctx.store.get("broken") == {"rows": []}
        error = ctx.store.entry("broken").error
        assert error and error["error_code"] == "BAD_REQUEST"
        await ctx.close()
        await bridge.close()

    run_async(scenario)


def test_a_write_reloads_each_key_it_changed_exactly_once() -> None:
    """The catalogue's refreshes decide; the writer's own bridge.write notice and the backend's
    change events that came before the reload add no second reload; another console's write does."""

    async def scenario() -> None:
        ctx = ViewContext(StateStore(), RecordingNotifier())
        live = LiveUpdates(ctx, lambda: "this-console")
        loads = dict.fromkeys(ViewKey, 0)

        def loader(key: ViewKey) -> Any:
            async def load() -> Reply:
                loads[key] += 1
                return responses.as_reply(responses.success({"items": [], "total": loads[key]}, mode="mock"))

            return load

        for key in ViewKey:
            ctx.register_loader(key, loader(key))

        def event(topic: str, data: dict[str, Any], mode: str = "mock") -> dict[str, Any]:
            return {"topic": topic, "data": data, "mode": mode, "seq": 1}

        async def delete_file() -> Reply:
            # The backend publishes its change before it answers, as both backends do.
            await live.on_delivery(event(FILE_CHANGED, {"file_id": "f1", "client_id": "c1", "change": "deleted"}))
            return responses.as_reply(responses.success({"file_id": "f1"}, mode="mock"))

        refreshes = set(get_operation("delete_file").refreshes)
        reply = await ctx.action_operation("Delete file", "delete_file", delete_file, "Deleted")
        assert reply["success"]
        notice = {"op": "delete_file", "ids": {"file_id": "f1"}, "session": "this-console", "mode": "mock"}
        await live.on_delivery(event(BRIDGE_WRITE, notice, mode="bridge"))
        await asyncio.sleep(DEBOUNCE_S * 4)
        assert loads == {key: int(key in refreshes) for key in ViewKey}

        # The same write by another console: its notice alone reloads the same keys, once.
        for _ in range(3):
            await live.on_delivery(event(BRIDGE_WRITE, {**notice, "session": "another-console"}, mode="bridge"))
        await asyncio.sleep(DEBOUNCE_S * 4)
        assert loads == {key: 2 * int(key in refreshes) for key in ViewKey}

        failed = await ctx.action_operation(
            "Delete file",
            "delete_file",
            lambda: asyncio.sleep(0, responses.as_reply(responses.error(ErrorCode.NOT_FOUND, "gone", mode="mock"))),
        )
        assert not failed["success"] and loads == {key: 2 * int(key in refreshes) for key in ViewKey}
        with pytest.raises(ValueError):
            await ctx.action_operation("Load", "get_clients", lambda: asyncio.sleep(0, failed))
        await ctx.close()

    run_async(scenario)


def test_sequencer_detects_gaps_duplicates_and_restarts() -> None:
    seq = EventSequencer("e1", 10)
    assert seq.live({"seq": 11, "epoch": "e1"}) == ([{"seq": 11, "epoch": "e1"}], False)
    assert seq.live({"seq": 11, "epoch": "e1"}) == ([], False)  # duplicate
    assert seq.live({"seq": 14, "epoch": "e1"}) == ([], True)  # gap: ask events_since
    page = {
        "epoch": "e1",
        "events": [{"seq": 12}, {"seq": 13}, {"seq": 14}],
        "latest_seq": 14,
        "oldest_seq": 1,
        "gap_too_old": False,
        "more": False,
    }
    delivered, again = seq.backfill(page)
    assert delivered == [{"seq": 12}, {"seq": 13}, {"seq": 14}] and not again and seq.last_seq == 14
    old = {"epoch": "e1", "events": [], "latest_seq": 900, "oldest_seq": 500, "gap_too_old": True, "more": True}
    delivered, again = seq.backfill(old)
    assert isinstance(delivered[0], Resync) and again and seq.last_seq == 499
    assert seq.live({"seq": 3, "epoch": "e2"}) == ([], True)
    restarted = {"epoch": "e2", "events": [], "latest_seq": 3, "oldest_seq": 1, "gap_too_old": False, "more": False}
    delivered, _ = seq.backfill(restarted)
    assert isinstance(delivered[0], Resync) and seq.epoch == "e2" and seq.last_seq == 3


def test_async_follower_fills_a_gap_from_the_ring(shared_stack: Stack) -> None:
    async def scenario() -> None:
        client = await AsyncBridgeClient(shared_stack.endpoint, connection=shared_stack.connection).start()
        got: list[Any] = []

        async def on_delivery(delivery: Any) -> None:
            got.append(delivery)

        follower = AsyncEventFollower(client, on_delivery)
        await follower.start()
        await wait_for_async(lambda: len(got) >= 2, 20, "two live events")
        assert follower.sequencer is not None
        follower.sequencer.last_seq -= 5  # as if five events had been dropped by the PUB socket
        mark = len(got)
        await wait_for_async(lambda: len(got) >= mark + 8, 30, "events after the gap")
        seqs = [d["seq"] for d in got if isinstance(d, dict)]
        after = seqs[mark:]
        assert after == list(range(after[0], after[0] + len(after))), "gap not filled in order"
        await follower.close()
        await client.close()

    run_async(scenario)


def test_not_connected_is_a_quick_local_error() -> None:
    async def scenario() -> None:
        client = await AsyncBridgeClient(f"tcp://127.0.0.1:{free_port()}").start()
        reply = await client.call("get_clients")
        assert reply["success"] is False and reply["error_code"] == "BACKEND_UNAVAILABLE" and reply["mode"] == "local"
        assert client.state is ConnectionState.DISCONNECTED
        await client.close()

    run_async(scenario)


def test_bridge_restart_reconnects_and_resyncs(make_stack) -> None:
    stack: Stack = make_stack("--tick", "0.5")

    async def scenario() -> None:
        client = await AsyncBridgeClient(stack.endpoint, connection=stack.connection).start()
        states: list[ConnectionState] = []
        client.add_state_listener(lambda s: states.append(s))
        got: list[Any] = []

        async def on_delivery(delivery: Any) -> None:
            got.append(delivery)

        follower = AsyncEventFollower(client, on_delivery)
        await follower.start()
        await wait_for_async(lambda: client.state is ConnectionState.CONNECTED and got, 20, "connected with events")
        os.kill(stack.child_pid("bridge"), signal.SIGKILL)
        await wait_for_async(lambda: ConnectionState.RECONNECTING in states, 10, "reconnecting")
        await wait_for_async(lambda: any(isinstance(d, Resync) for d in got), 30, "resync after the new epoch")
        assert states[-1] is ConnectionState.CONNECTED
        reply = await client.call("get_clients")
        assert reply["success"]
        await follower.close()
        await client.close()

    run_async(scenario)
