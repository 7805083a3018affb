"""ServerBridge: the seed's method names over the wire protocol, generated from the catalogue.

For every operation ``op`` there is ``op(**args)`` (blocking) and ``op_async(**args)``
(asyncio), plus the seed's aliases (``get_all_clients_from_db``, ``get_clients_async``,
...). Every method returns the standard reply dict. ``download_file`` streams into
``destination_path`` on this machine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from client.async_connection import AsyncBridgeClient
from client.connection import BridgeClient, BridgeUnreachable
from client.download import download_file
from protocol import responses
from protocol.catalogue import OPERATIONS, Operation
from protocol.errors import ErrorCode


def _positional(op: Operation, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Map positional arguments onto the catalogue's argument order (seed style: get_files(client_id))."""
    if len(args) > len(op.args):
        raise TypeError(f"{op.name}() takes at most {len(op.args)} positional arguments")
    merged = {a.name: value for a, value in zip(op.args, args, strict=False)}
    merged.update(kwargs)
    return merged


def _make_async(op: Operation) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def method(self: ServerBridge, *args: Any, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        call_args = _positional(op, args, kwargs)
        if op.name == "download_file":
            return await self.async_client.download(
                call_args.get("file_id", ""),
                call_args.get("destination_path", ""),
                progress=call_args.pop("progress", None),
                timeout=timeout,
            )
        return await self.async_client.call(op.name, call_args, timeout=timeout)

    method.__name__ = f"{op.name}_async"
    method.__doc__ = f"{op.summary} (async; returns the standard reply)"
    return method


def _make_sync(op: Operation) -> Callable[..., dict[str, Any]]:
    def method(self: ServerBridge, *args: Any, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        call_args = _positional(op, args, kwargs)
        try:
            if op.name == "download_file":
                return download_file(
                    self.sync_client,
                    call_args.get("file_id", ""),
                    call_args.get("destination_path", ""),
                    progress=call_args.pop("progress", None),
                    timeout=timeout,
                )
            return self.sync_client.call(op.name, call_args, timeout=timeout)
        except BridgeUnreachable as exc:
            return responses.error(ErrorCode.BACKEND_UNAVAILABLE, str(exc), mode="local")

    method.__name__ = op.name
    method.__doc__ = f"{op.summary} (blocking; returns the standard reply)"
    return method


class ServerBridge:
    """Use the ``_async`` methods from an event loop (the GUI) and the plain ones from scripts."""

    def __init__(
        self, endpoint: str | None = None, *, session: str | None = None, async_client: AsyncBridgeClient | None = None
    ) -> None:
        self.async_client = async_client or AsyncBridgeClient(endpoint, session=session)
        self.endpoint = self.async_client.endpoint
        self._sync: BridgeClient | None = None

    @property
    def sync_client(self) -> BridgeClient:
        if self._sync is None:
            self._sync = BridgeClient(self.endpoint, session=f"{self.async_client.session}-sync")
        return self._sync

    async def start(self) -> ServerBridge:
        await self.async_client.start()
        return self

    async def close(self) -> None:
        await self.async_client.close()
        if self._sync is not None:
            self._sync.close()

    def close_sync(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None


def _install() -> None:
    for op in OPERATIONS:
        async_method, sync_method = _make_async(op), _make_sync(op)
        setattr(ServerBridge, f"{op.name}_async", async_method)
        setattr(ServerBridge, op.name, sync_method)
        for alias in op.aliases:
            setattr(ServerBridge, alias, async_method if alias.endswith("_async") else sync_method)


_install()

__all__ = ["ServerBridge"]
