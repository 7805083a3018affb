"""What every generated ServerBridge method delegates to (client/facade.py is generated).

One blocking and one asyncio helper run any catalogue operation: a streaming one
(``Operation.streaming``) is written to its ``destination_path`` on this machine, any
other is one call. Both return the standard reply and never raise for transport
problems (client/errors.py).
"""

from __future__ import annotations

from typing import Any, Self

from client.async_connection import AsyncBridgeClient
from client.connection import BridgeClient, BridgeUnreachable
from client.download import Progress, download
from client.errors import unreachable_reply
from protocol.catalogue import get_operation
from protocol.responses import Reply
from runtime.credentials import ConnectionFile


class FacadeBase:
    """Use the ``_async`` methods from an event loop (the GUI) and the plain ones from scripts."""

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        connection: ConnectionFile | None = None,
        session: str | None = None,
        async_client: AsyncBridgeClient | None = None,
    ) -> None:
        self.async_client = async_client or AsyncBridgeClient(endpoint, connection=connection, session=session)
        self.endpoint = self.async_client.endpoint
        self._sync: BridgeClient | None = None

    @property
    def session(self) -> str:
        return self.async_client.session

    @property
    def sync_client(self) -> BridgeClient:
        if self._sync is None:
            self._sync = BridgeClient(
                self.endpoint, connection=self.async_client.connection, session=f"{self.async_client.session}-sync"
            )
        # Both clients act for the same signed-in user.
        self._sync.auth = self.async_client.auth
        return self._sync

    async def start(self) -> Self:
        await self.async_client.start()
        return self

    async def close(self) -> None:
        await self.async_client.close()
        self.close_sync()

    def close_sync(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    def _run(self, op: str, args: dict[str, Any], timeout: float | None, progress: Progress | None = None) -> Reply:
        try:
            if get_operation(op).streaming:
                return download(self.sync_client, op, args, progress=progress, timeout=timeout)
            return self.sync_client.call(op, args, timeout=timeout)
        except BridgeUnreachable as exc:
            return unreachable_reply(exc)

    async def _run_async(
        self, op: str, args: dict[str, Any], timeout: float | None, progress: Progress | None = None
    ) -> Reply:
        if get_operation(op).streaming:
            return await self.async_client.download(op, args, progress=progress, timeout=timeout)
        return await self.async_client.call(op, args, timeout=timeout)
