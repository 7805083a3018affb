"""The names of what a console shows (the GUI's state keys), declared where the catalogue can use them.

An operation's ``refreshes`` names the keys a console reloads after the write succeeded,
so the knowledge "delete_file changes files, clients, status and the tables" lives in one
place. ``CONNECTION``, ``BRIDGE_STATE`` and ``PROVENANCE`` are the console's own (no write
changes them): the connection's state, the bridge's state the console follows (who answers,
its policy, since when the real server is unavailable), and where each shown value came from.
"""

from __future__ import annotations

from enum import StrEnum


class ViewKey(StrEnum):
    CLIENTS = "clients"
    FILES = "files"
    STATUS = "status"
    SYSTEM = "system"
    ACTIVITY = "activity"
    LOGS = "logs"
    DATABASE = "database"
    TABLE = "table"
    AUDIT = "audit"  # the audit trail: every write adds a record
    ACCESS = "access"  # users, API keys and the backend allow-list
    CONNECTION = "connection"
    BRIDGE_STATE = "bridge_state"
    PROVENANCE = "provenance"
