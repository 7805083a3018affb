"""The client library survives what callers plug in, owns its tasks, and reports failures one way."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from client.async_connection import AsyncBridgeClient
from client.connection import BridgeClient, BridgeUnreachable
from client.facade import ServerBridge
from client.tasks import TaskSet
from protocol.errors import ErrorCode
from tests.conftest import Stack, free_port, run_async

pytestmark = pytest.mark.timeout(90)


def _a_file(stack: Stack) -> dict[str, Any]:
    with stack.client() as c:
        reply = c.call("get_files", {"limit": 1, "filters": {"status": "verified"}})
    assert reply["success"], reply
    file: dict[str, Any] = reply["data"]["items"][0]
    return file


def _disk_full(done: int, total: int | None) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failing_progress_callback_fails_only_its_own_download(shared_stack: Stack, tmp_path: Path) -> None:
    file = _a_file(shared_stack)

    async def scenario() -> None:
        bridge = await ServerBridge(shared_stack.endpoint, connection=shared_stack.connection).start()
        try:
            dest = tmp_path / "async.bin"
            reply = await bridge.download_file_async(file["id"], str(dest), progress=_disk_full)
            assert reply["success"] is False and reply["error_code"] == ErrorCode.INTERNAL
            assert reply["mode"] == "local" and "No space left on device" in reply["message"]
            assert not dest.exists() and not list(tmp_path.glob(".async.bin.*"))
            # The receive task lives on: the same connection answers the next calls.
            status = await bridge.get_server_status_async()
            assert status["success"], status
            again = await bridge.download_file_async(file["id"], str(dest))
            assert again["success"] and dest.stat().st_size == file["size"]
        finally:
            await bridge.close()

    run_async(scenario)


def test_a_failing_chunk_handler_fails_only_its_own_stream(shared_stack: Stack) -> None:
    file = _a_file(shared_stack)

    def broken(header: Any, body: bytes) -> list[bytes]:
        raise RuntimeError("handler bug")

    async def scenario() -> None:
        client = await AsyncBridgeClient(shared_stack.endpoint, connection=shared_stack.connection).start()
        try:
            args = {"file_id": file["id"], "destination_path": "/tmp/unused"}
            reply = await client.stream("download_file", args, broken)
            assert reply["error_code"] == ErrorCode.INTERNAL and "RuntimeError: handler bug" in reply["message"]
            assert (await client.call("test_connection"))["success"]
        finally:
            await client.close()

    run_async(scenario)


def test_the_blocking_client_cancels_a_stream_whose_handler_fails(shared_stack: Stack, tmp_path: Path) -> None:
    file = _a_file(shared_stack)
    bridge = ServerBridge(shared_stack.endpoint, connection=shared_stack.connection)
    try:
        dest = tmp_path / "sync.bin"
        reply = bridge.download_file(file["id"], str(dest), progress=_disk_full)
        assert reply["error_code"] == ErrorCode.INTERNAL and reply["mode"] == "local" and not dest.exists()
        assert bridge.get_clients(limit=1)["success"]
    finally:
        bridge.close_sync()


@pytest.fixture
def silent_bridge() -> Iterator[str]:
    """A ROUTER that takes requests and never answers: every call must time out."""
    router: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    port = free_port()
    router.bind(f"tcp://127.0.0.1:{port}")
    yield f"tcp://127.0.0.1:{port}"
    router.close(0)


def test_both_clients_report_no_reply_as_timeout_and_no_bridge_as_unavailable(silent_bridge: str) -> None:
    with BridgeClient(silent_bridge) as raw, pytest.raises(BridgeUnreachable) as raised:
        raw.call("test_connection", timeout=0.1)
    assert raised.value.code is ErrorCode.TIMEOUT
    unreachable = f"tcp://127.0.0.1:{free_port()}"
    with BridgeClient(unreachable, connect_timeout=0.2) as raw, pytest.raises(BridgeUnreachable) as raised:
        raw.call("test_connection")
    assert raised.value.code is ErrorCode.BACKEND_UNAVAILABLE

    async def scenario() -> list[tuple[str, str]]:
        outcomes = []
        for endpoint in (silent_bridge, unreachable):
            bridge = await ServerBridge(endpoint).start()
            bridge.sync_client.connect_timeout = 0.2
            try:
                for reply in (bridge.test_connection(timeout=0.1), await bridge.test_connection_async(timeout=0.1)):
                    assert reply["success"] is False and reply["mode"] == "local"
                    outcomes.append((endpoint, reply["error_code"]))
            finally:
                await bridge.close()
        return outcomes

    assert run_async(scenario) == [
        (silent_bridge, "TIMEOUT"),
        (silent_bridge, "TIMEOUT"),
        (unreachable, "BACKEND_UNAVAILABLE"),
        (unreachable, "BACKEND_UNAVAILABLE"),
    ]


def test_a_task_set_cancels_and_awaits_its_tasks_and_logs_failures() -> None:
    async def scenario() -> None:
        tasks = TaskSet("test")
        ended: list[str] = []

        async def forever() -> None:
            try:
                await asyncio.sleep(3600)
            finally:
                ended.append("forever")

        async def fails() -> None:
            raise ValueError("boom")

        running = tasks.spawn(forever(), "forever")
        failed = tasks.spawn(fails(), "fails")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert failed.done() and len(tasks) == 1  # a finished task is no longer held
        await tasks.close()
        assert running.cancelled() and ended == ["forever"] and len(tasks) == 0
        with pytest.raises(RuntimeError):
            tasks.spawn(forever(), "late")

    run_async(scenario)
