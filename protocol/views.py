"""The names of what a console shows (the GUI's state keys), declared where the catalogue can use them.

An operation's ``refreshes`` names the keys a console reloads after the write succeeded,
so the knowledge "delete_file changes files, clients, status and the tables" lives in one
place. ``CONNECTION`` and ``DATA_SOURCE`` are the console's own (no operation loads them).
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
    DATA_SOURCE = "data_source"
