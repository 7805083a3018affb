"""Moving between the console's views from inside one: a client's page, its files, its backups to restore.

The console owns what is shown; a view asks for another through the ``Navigator`` it finds on
its ``AppContext`` (``app.navigator``), so views never hold each other.
"""

from __future__ import annotations

from typing import Protocol


class Navigator(Protocol):
    async def clients(self) -> None:
        """Back to the list of clients."""

    async def open_client(self, client_id: str, name: str) -> None:
        """The page of one client: its backups, whether it is overdue, its files, restore."""

    async def client_files(self, client_id: str, name: str) -> None:
        """The Files view showing only this client's files."""

    async def restore(self, client_id: str, name: str) -> None:
        """The Restore view on this client's backups."""
