"""What a restore job's selection means, and how the real server hands its files out batch by batch.

The naming and selection rules are shared (actors/backends/restore_plan.py); the server
reads the files a batch at a time from a keyset cursor (restore_items.py) and must give
every file once, in the order the mock gives them, from any cursor it handed out, and a
server restarted mid-job puts the job back in the queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from actors.backends.restore_plan import components, contains, member_base, member_of, normalized
from actors.mock.core import MockCore
from actors.mock.restore_jobs import target_path
from actors.server import restore_items
from actors.server.core import BackupServer, ServerConfig
from protocol.errors import ProtocolError
from runtime.clock import SimulatedClock
from tests.contract.harness import CTX, FILES, START, Backend, close, make_backend
from tests.contract.restore_agent import RealAgent
from tests.contract.runs import RunFile, backup_run, seeded

pytestmark = pytest.mark.timeout(60)

# Folder names that sort around the separator ('-' and ' ' before '/', 'é' after all of ASCII); a run
# sends all its files at once, so at most one credit window (16) of them.
DIRS = ("a", "a b", "a-b", "é")
TREE = [f"/home/alpha/{d}/{f}.txt" for d in DIRS for f in ("a", "a-b", "Z")] + [
    "/home/alpha/a/b/deep.bin",
    "/home/alpha/a b/c/deep.bin",
    "/home/alpha/ab.txt",
]


def test_members_are_named_from_the_folder_holding_the_selection() -> None:
    assert components("/home/ada/docs") == ["home", "ada", "docs"] and components("/") == []
    assert components("C:\\Users\\ada") == ["C", "Users", "ada"] and components("C:\\") == ["C"]
    one = ["/home/ada/docs"]
    assert member_of("/home/ada/docs/2024/a.txt", member_base(one)) == "docs/2024/a.txt"
    assert member_of("/home/ada/x.txt", member_base(["/home/ada/x.txt"])) == "x.txt"
    both = ["/home/ada/docs", "/home/bob"]
    assert [member_of(p, member_base(both)) for p in ("/home/ada/docs/a", "/home/bob/b")] == ["ada/docs/a", "bob/b"]
    assert member_of("/home/ada/a", member_base(["/"])) == "home/ada/a"
    assert member_of("C:\\Users\\ada\\a.txt", member_base(["C:\\"])) == "C/Users/ada/a.txt"
    assert member_of("C:\\Users/ada\\a.txt", member_base(["C:\\Users"])) == "Users/ada/a.txt"


def test_an_item_inside_another_selected_one_is_taken_once() -> None:
    assert normalized(["/home/ada", "/home/ada/docs", "/home/ada/", "/home/adam"]) == ["/home/ada", "/home/adam"]
    assert normalized(["/home/ada/x.txt", "/"]) == ["/"]
    assert normalized(["C:\\Users\\ada", "C:\\Users"]) == ["C:\\Users"]
    assert contains("C:\\", "C:\\Users") and contains("C:\\Users", "C:\\Users/x") and not contains("/a", "/ab")
    with pytest.raises(ProtocolError):
        normalized(["relative"])


def test_targets_use_the_destinations_separators() -> None:
    assert target_path("/srv/r", "docs/a.txt") == "/srv/r/docs/a.txt"
    assert target_path("/", "home/a") == "/home/a"
    assert target_path("C:\\Restored", "docs/a.txt") == "C:\\Restored\\docs\\a.txt"
    assert target_path("C:\\", "a.txt") == "C:\\a.txt"


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Backend, Backend]]:
    """The same run of alpha's TREE in the real server and in the mock."""
    made = [make_backend(mode, tmp_path_factory.mktemp(mode)) for mode in ("real", "mock")]
    for backend in made:
        # The seeded files too: the mock's run holds every file of its client.
        seeds = [seeded(p) for p in FILES if p.startswith("/home/alpha/")]
        backup_run(backend, [*seeds, *(RunFile(p, p.encode(), START - timedelta(hours=1)) for p in TREE)])
    yield made[0], made[1]
    for backend in made:
        close(backend)


def _snapshot(backend: Backend) -> str:
    return str(backend.call("list_snapshots", client_id=backend.clients["alpha"])["items"][0]["id"])


def _server_items(backend: Backend, paths: list[str], cursor: str = "") -> tuple[list[tuple[str, str]], list[str]]:
    """(path, member) of every file from ``cursor`` on, batch by batch, and the cursors handed out on the way."""
    core = backend.core
    assert isinstance(core, BackupServer)
    snapshot = int(_snapshot(backend))
    selection = restore_items.select(core.conn, snapshot, str(snapshot), paths)
    items: list[tuple[str, str]] = []
    cursors = []
    while True:
        batch, cursor, end = restore_items.batch(core.conn, snapshot, selection, cursor)
        items.extend((i[0], i[1]) for i in batch)
        cursors.append(cursor)
        if end:
            return items, cursors


def _mock_items(backend: Backend, paths: list[str]) -> list[tuple[str, str]]:
    assert isinstance(backend.core, MockCore)
    job = backend.call("restore_to_agent", snapshot_id=_snapshot(backend), paths=paths, destination="/r")
    return [(i.path, i.member) for i in backend.core.world.restore_jobs.jobs[job["id"]].items]


SELECTIONS = (["/home/alpha"], ["/"], ["/home/alpha/a b", "/home/alpha/a/a.txt", "/home/alpha/é"], ["/home/alpha/a"])


@pytest.mark.parametrize("paths", SELECTIONS)
def test_every_file_once_in_the_mocks_order_from_any_cursor(
    both: tuple[Backend, Backend], monkeypatch: pytest.MonkeyPatch, paths: list[str]
) -> None:
    real, mock = both
    monkeypatch.setattr(restore_items, "ITEMS_PER_BATCH", 7)
    got, cursors = _server_items(real, paths)
    assert got and len(got) == len(set(got)) and {p for p, _ in got} <= set(TREE) | set(FILES)
    assert got == _mock_items(mock, paths)
    assert len(cursors) == -(-len(got) // 7)  # full batches of 7, the last one says it is the end
    for n, cursor in enumerate(cursors[:-1]):  # resuming anywhere gives exactly the rest
        assert _server_items(real, paths, cursor)[0] == got[7 * (n + 1) :]


def test_a_server_restarted_mid_job_queues_it_again(tmp_path: Path) -> None:
    backend = make_backend("real", tmp_path)
    backup_run(backend, [RunFile(p, p.encode(), START) for p in TREE[:5]])
    job = backend.call("restore_to_agent", snapshot_id=_snapshot(backend), paths=["/home/alpha"], destination="/r")
    RealAgent(backend).carry_out(job["id"], stop_after_batches=1)
    assert backend.call("get_restore_job", job_id=job["id"])["status"] == "running"
    backend.core.close()
    reopened = BackupServer(ServerConfig(tmp_path, log_file=False), SimulatedClock(START))
    try:
        reply = reopened.handle("get_restore_job", {"job_id": job["id"]}, CTX)
        assert isinstance(reply, dict)
        again = reply["data"]
        assert (again["status"], again["files_done"], again["started_at"] is not None) == ("queued", 0, True)
    finally:
        reopened.close()
