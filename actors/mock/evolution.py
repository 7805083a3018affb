"""The ticker: each tick applies one to three random, realistic changes to the world.

Clients come and go, uploads start and finish, verifications run, and now and then a
file's stored bytes rot (content version bumped, recorded hash kept) so that a later
verification fails honestly. Every draw comes from the world's seeded RNG and every
instant from its clock, so the same seed and clock give the same history. The file
count stays within ±10 % of the generated count.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from actors.backends.file_errors import upload_interrupted
from actors.mock.actions import delete_file, set_client_status, verify_file
from actors.mock.content import content_sha256
from actors.mock.records import Client, FileRecord
from actors.mock.state import MockWorld

# (change, weight while the server runs, weight while it is stopped)
_CHANGES: tuple[tuple[str, int, int], ...] = (
    ("connect", 18, 0),
    ("disconnect", 14, 30),
    ("client_error", 3, 0),
    ("upload_start", 24, 0),
    ("upload_finish", 24, 10),
    ("verify", 12, 0),
    ("corrupt", 2, 0),
    ("log_line", 8, 20),
    ("prune", 0, 0),  # weight set from how far the file count is above target
)
_PICK_TRIES = 12


class Evolution:
    def __init__(self, world: MockWorld) -> None:
        self.world = world
        self._apply: dict[str, Callable[[], bool]] = {
            "connect": self._connect,
            "disconnect": self._disconnect,
            "client_error": self._client_error,
            "upload_start": self._upload_start,
            "upload_finish": self._upload_finish,
            "verify": self._verify,
            "corrupt": self._corrupt,
            "log_line": self._log_line,
            "prune": self._prune,
        }

    def step(self) -> int:
        """Apply 1-3 changes; returns how many were applied."""
        rng = self.world.rng
        count = rng.randint(1, 3)
        for _ in range(count):
            change = rng.choices([c[0] for c in _CHANGES], weights=self._weights())[0]
            if not self._apply[change]():
                self._log_line()  # nothing to act on (no such client/file): a quiet log line instead
        return count

    def _weights(self) -> list[int]:
        w = self.world
        running = w.server.running
        weights = [run if running else stopped for _, run, stopped in _CHANGES]
        if running and w.target_files and len(w.files) > w.target_files * 1.05:
            weights[-1] = 30
        return weights

    # -- picking --

    def _pick_client(self, *statuses: str) -> Client | None:
        candidates = [c for c in self.world.clients.values() if c.status in statuses]
        return self.world.rng.choice(candidates) if candidates else None

    def _pick_file(self, accept: Callable[[FileRecord], bool], client: Client | None = None) -> FileRecord | None:
        w = self.world
        pool = list(w.files_by_client[client.id].values()) if client else list(w.files.values())
        if not pool:
            return None
        for _ in range(_PICK_TRIES):
            record = w.rng.choice(pool)
            if accept(record):
                return record
        return None

    # -- changes --

    def _connect(self) -> bool:
        client = self._pick_client("disconnected", "error")
        if client is None:
            return False
        set_client_status(self.world, client, "connected")
        self.world.record(
            "client_connected",
            "INFO",
            f"{client.name} connected from {client.ip_address} (agent {client.agent_version})",
            logger="backup.agent",
            client_id=client.id,
        )
        return True

    def _disconnect(self) -> bool:
        client = self._pick_client("connected")
        if client is None:
            return False
        set_client_status(self.world, client, "disconnected")
        self.world.record(
            "client_disconnected", "INFO", f"{client.name} disconnected", logger="backup.agent", client_id=client.id
        )
        return True

    def _client_error(self) -> bool:
        client = self._pick_client("connected")
        if client is None:
            return False
        message = self.world.gen.error_message()
        set_client_status(self.world, client, "error", message)
        self.world.record("error", "ERROR", f"{client.name}: {message}", logger="backup.agent", client_id=client.id)
        return True

    def _upload_start(self) -> bool:
        w = self.world
        client = self._pick_client("connected")
        if client is None:
            return False
        count, target = len(w.files), w.target_files
        may_grow = count + 1 <= target * 1.1
        new_share = 0.9 if count < target * 0.9 else 0.35 if count < target else 0.1
        if may_grow and (client.files_count == 0 or w.rng.random() < new_share):
            record = w.gen.new_upload(client, w.now(), w.taken_paths)
            w.add_file(record)
            change, what = "created", "new file"
        else:
            found = self._pick_file(lambda f: f.status != "uploading", client)
            if found is None:
                return False
            record = found
            w.update_file(record, status="uploading")
            change, what = "updated", "new version of"
        w.update_client(client, last_seen=w.now())
        w.history.begin(client.id, w.now())  # the client's backup run, if it has none under way
        w.file_changed(record, change)
        w.client_changed(client, "updated")
        w.record(
            "backup_started",
            "INFO",
            f"{client.name} started uploading {what} {record.path}",
            logger="backup.transfer",
            client_id=client.id,
            file_id=record.id,
        )
        return True

    def _upload_finish(self) -> bool:
        w = self.world
        if not w.uploading:
            return False
        # Sorted, not insertion order: a world rebuilt from a snapshot must pick the same file.
        record = w.files[w.rng.choice(sorted(w.uploading))]
        client = w.clients[record.client_id]
        if client.status != "connected" or not w.server.running:
            why = "server stopped" if not w.server.running else f"client {client.status}"
            w.update_file(record, status="error", error_message=upload_interrupted(why))
            w.history.failed(client.id, w.now(), record.size, record.id)
            w.history.maybe_close(w, client)
            w.file_changed(record, "updated")
            w.record(
                "backup_failed",
                "WARNING",
                f"Upload of {record.path} from {client.name} interrupted: {why}",
                logger="backup.transfer",
                client_id=client.id,
                file_id=record.id,
            )
            return True
        now = w.now()
        version = record.content_version + 1
        size = w.gen.next_size(record)
        modified = max(record.modified_at, now - timedelta(seconds=w.rng.randint(0, 3600)))
        w.history.freeze(record)
        w.update_file(
            record,
            status="uploaded",
            content_version=version,
            size=size,
            sha256=content_sha256(w.seed, record.id, version, size),
            modified_at=modified,
            last_backup=now,
            backup_count=record.backup_count + 1,
        )
        w.history.stored(record, now)
        w.history.maybe_close(w, client)
        w.update_client(client, last_seen=now)
        w.file_changed(record, "updated")
        w.client_changed(client, "updated")
        w.record(
            "backup_completed",
            "INFO",
            f"{client.name}: {record.path} backed up ({size} bytes, backup #{record.backup_count})",
            logger="backup.transfer",
            client_id=client.id,
            file_id=record.id,
        )
        return True

    def _verify(self) -> bool:
        record = self._pick_file(lambda f: f.status in ("uploaded", "verified"))
        if record is None:
            return False
        verify_file(self.world, record)
        return True

    def _corrupt(self) -> bool:
        w = self.world
        record = self._pick_file(lambda f: f.status in ("uploaded", "verified") and f.size > 0)
        if record is None:
            return False
        # The stored bytes change, the recorded hash does not: only a verification can tell.
        w.update_file(record, content_version=record.content_version + 1)
        client = w.clients[record.client_id]
        w.record(
            "error",
            "WARNING",
            f"Storage scrub: read errors in a segment holding data of {client.name}; run verify",
            logger="backup.storage",
            event="storage.read_error",
            client_id=client.id,
        )
        return True

    def _log_line(self) -> bool:
        w = self.world
        level, logger, event, message = w.gen.log_line()
        if level in ("WARNING", "ERROR"):
            w.record(level.lower(), level, message, logger=logger, event=event)
        else:
            w.log(level, logger, event, message)
        return True

    def _prune(self) -> bool:
        record = self._pick_file(lambda f: f.status != "uploading")
        if record is None:
            return False
        delete_file(self.world, record, reason=" by the retention policy")
        return True
