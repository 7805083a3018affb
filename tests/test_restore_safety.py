"""The agent's rules for writing a restore: nothing outside the destination, no link followed, verified bytes.

Pure pieces first (member paths, destinations, renamed names, the folder-relative atomic
writer, opening the destination and its folders), then the agent's JobRun against the
real server core in-process (no sockets), with hostile trees and a hostile server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.agent.restore_job import JobRun
from actors.agent.safe_fs import Placement, Refused, Tree, open_destination, place
from actors.agent.session import Identity, Session
from actors.server import restore_items
from actors.server.core import BackupServer
from protocol.agent_messages import SERVER_TO_AGENT, Message, decode_message, encode_message
from protocol.restore_rules import check_destination, member_parts, renamed
from runtime.fsutil import AtomicFileAt
from tests.contract.harness import FILES, Backend, close, content_of, make_backend
from tests.contract.runs import backup_run, seeded

pytestmark = pytest.mark.timeout(30)

NOTES, REPORT, CAT = "/home/alpha/notes.txt", "/home/alpha/Report.pdf", "/home/alpha/photos/cat.jpg"


# -- the rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    ["../x", "a/../../x", "/etc/passwd", "\\x", "C:/x", "a//b", "a/./b", "a/", "", "a\\..\\b", "a/\x00b", "..", "."],
)
def test_member_paths_that_could_leave_the_destination_are_refused(member: str) -> None:
    assert isinstance(member_parts(member), str)


def test_plain_member_paths_split_into_names() -> None:
    assert member_parts("docs/2024/report.pdf") == ["docs", "2024", "report.pdf"]
    assert member_parts("C/Users/notes.txt") == ["C", "Users", "notes.txt"]


@pytest.mark.parametrize("destination", ["relative", "/tmp/../etc", "", "/tmp/a\nb", "C:relative", "/a//b"])
def test_destinations_are_absolute_and_plain(destination: str) -> None:
    assert check_destination(destination) is not None


@pytest.mark.parametrize("destination", ["/", "/tmp/restore", "/tmp/restore/", "C:\\", "C:", "D:\\Restored\\"])
def test_usable_destinations(destination: str) -> None:
    assert check_destination(destination) is None


def test_renamed_names_keep_their_extension_and_fit() -> None:
    assert renamed("notes.txt", 1) == "notes (restored).txt"
    assert renamed("notes.txt", 2) == "notes (restored 2).txt"
    assert renamed(".bashrc", 1) == ".bashrc (restored)"
    assert renamed("Makefile", 3) == "Makefile (restored 3)"
    long = renamed("é" * 127 + ".txt", 12)
    assert len(long.encode()) <= 255 and long.endswith(" (restored 12).txt")


# -- the folder-relative atomic writer -------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


def test_atomic_file_at_commits_verified_bytes_and_leaves_no_temporary(tmp_path: Path, folder: int) -> None:
    out = AtomicFileAt(folder, "a.bin")
    out.write(b"hello")
    assert out.sha256() == (5, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    out.commit(replace=False)
    assert os.listdir(tmp_path) == ["a.bin"] and (tmp_path / "a.bin").read_bytes() == b"hello"


def test_atomic_file_at_never_clobbers_without_replace_and_keeps_its_bytes(tmp_path: Path, folder: int) -> None:
    (tmp_path / "a.bin").write_bytes(b"old")
    out = AtomicFileAt(folder, "a.bin")
    out.write(b"new")
    with pytest.raises(FileExistsError):
        out.commit(replace=False)
    assert (tmp_path / "a.bin").read_bytes() == b"old"
    out.commit(replace=False, name="b.bin")  # the temporary survived the refusal
    assert sorted(os.listdir(tmp_path)) == ["a.bin", "b.bin"] and (tmp_path / "b.bin").read_bytes() == b"new"


def test_replacing_a_link_replaces_the_link_not_its_target(tmp_path: Path, folder: int) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_bytes(b"precious")
    (tmp_path / "a.bin").symlink_to(outside)
    out = AtomicFileAt(folder, "a.bin")
    out.write(b"restored")
    out.commit(replace=True)
    assert outside.read_bytes() == b"precious"
    assert not (tmp_path / "a.bin").is_symlink() and (tmp_path / "a.bin").read_bytes() == b"restored"


def test_reading_back_lets_its_caller_keep_a_connection_alive(folder: int) -> None:
    out = AtomicFileAt(folder, "a.bin")
    out.write(b"x" * 10)
    calls: list[int] = []
    assert out.sha256(chunk=4, between=lambda: calls.append(1))[0] == 10
    assert len(calls) == 3  # after each of the 3 reads
    out.abort()


def test_an_aborted_file_leaves_nothing(tmp_path: Path, folder: int) -> None:
    out = AtomicFileAt(folder, "a.bin")
    out.write(b"partial")
    out.abort()
    assert os.listdir(tmp_path) == []


# -- the destination and its tree ------------------------------------------------------------


def test_a_destination_that_is_a_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "dest").symlink_to(target)
    with pytest.raises(Refused) as info:
        open_destination(str(tmp_path / "dest"))
    assert info.value.code == "UNSAFE_PATH"


def test_a_missing_destination_is_created_and_links_above_it_are_the_systems(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "above").symlink_to(real)
    fd = open_destination(str(tmp_path / "above" / "new" / "dest"))
    os.close(fd)
    assert (real / "new" / "dest").is_dir()


def test_the_tree_never_follows_a_link_planted_in_the_destination(tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "docs").symlink_to(outside)
    (dest / "file").write_bytes(b"x")
    tree = Tree(open_destination(str(dest)), str(dest))
    try:
        for member in ("docs/a.txt", "docs/sub/a.txt", "file/a.txt"):
            with pytest.raises(Refused) as info:
                tree.folder_of(member)
            assert info.value.code == "UNSAFE_PATH", member
        for member in ("../a.txt", "/etc/a.txt", "a/../../b"):
            with pytest.raises(Refused):
                tree.folder_of(member)
        _fd, name = tree.folder_of("new/deeper/a.txt")
        assert name == "a.txt" and (dest / "new" / "deeper").is_dir()
    finally:
        tree.close()
    assert list(outside.iterdir()) == []


def test_the_policy_decides_what_an_existing_entry_gets(tmp_path: Path, folder: int) -> None:
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "file")
    assert place(folder, "new", "skip", "new") is not None
    assert place(folder, "file", "skip", "file") is None
    assert place(folder, "file", "overwrite", "file") == Placement("file", True)
    for name in ("dir", "link"):
        with pytest.raises(Refused) as info:
            place(folder, name, "overwrite", name)
        assert info.value.code == "NOT_REGULAR"
    assert place(folder, "file", "rename", "file") == Placement("file (restored)", False)
    (tmp_path / "file (restored)").write_bytes(b"y")
    assert place(folder, "file", "rename", "file") == Placement("file (restored 2)", False)


# -- the agent's JobRun against the real server core -----------------------------------------


class FakeConnection:
    """The agent's Connection, wired straight to the server core's agent gateway (no sockets)."""

    endpoint = "in-process"

    def __init__(self, core: BackupServer, key: str) -> None:
        self.core = core
        self.key = key
        self.inbox: list[Message] = []

    def wait_up(self, timeout: float) -> None:
        return None

    def send(self, type_: str, body: bytes | memoryview = b"", /, **fields: object) -> None:
        self.core.agents.on_message(b"agent", encode_message(type_, body, **fields), self.key, "10.0.0.1")
        self.core.agents.end_of_batch()

    def recv(self, timeout: float) -> Message | None:
        """What the server sent, whatever caused it (the agent's messages, the console's requests)."""
        for _route, frames in self.core.agents.drain_outbox():
            self.inbox.append(decode_message([bytes(f) for f in frames], SERVER_TO_AGENT))
        return self.inbox.pop(0) if self.inbox else None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Backend]:
    backend = make_backend("real", tmp_path / "server")
    backup_run(backend, [seeded(NOTES), seeded(REPORT), seeded(CAT)])
    yield backend
    close(backend)


def run_job(backend: Backend, paths: list[str], destination: Path | str, overwrite: str = "skip") -> dict[str, Any]:
    """restore_to_agent, then alpha's agent (JobRun) carries it out; the job as it ended."""
    core = backend.core
    assert isinstance(core, BackupServer)
    session = Session(FakeConnection(core, "contract-key-alpha"), Identity("alpha"))  # type: ignore[arg-type]  # a stand-in Connection
    session.open(1.0)
    snapshot = backend.call("list_snapshots", client_id=backend.clients["alpha"])["items"][0]["id"]
    job = backend.call(
        "restore_to_agent", snapshot_id=snapshot, paths=paths, destination=str(destination), overwrite=overwrite
    )
    session.recv(0)  # the offer, kept for when the agent is free
    assert [j["job"] for j in session.jobs] == [job["id"]]
    JobRun(session, session.jobs.pop(0)).run()
    return backend.call("get_restore_job", job_id=job["id"])


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def test_the_agent_restores_verified_bytes_under_the_destination(server: Backend, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    job = run_job(server, ["/home/alpha"], dest)
    assert (job["status"], job["files_restored"], job["files_failed"], job["problems"]) == ("complete", 3, 0, [])
    for path, member in ((NOTES, "alpha/notes.txt"), (REPORT, "alpha/Report.pdf"), (CAT, "alpha/photos/cat.jpg")):
        written = dest / member
        assert written.read_bytes() == content_of(FILES[path])
        assert written.stat().st_mtime_ns == int(FILES[path].mtime.timestamp()) * 1_000_000_000
    assert temporaries(dest) == []


def test_a_link_planted_in_the_destination_is_not_followed(server: Backend, tmp_path: Path) -> None:
    dest, outside = tmp_path / "dest", tmp_path / "outside"
    (dest / "alpha").mkdir(parents=True)
    outside.mkdir()
    (dest / "alpha" / "photos").symlink_to(outside)
    job = run_job(server, ["/home/alpha"], dest)
    assert (job["status"], job["files_restored"], job["files_failed"]) == ("partial", 2, 1)
    assert [(p["path"], p["code"]) for p in job["problems"]] == [(CAT, "UNSAFE_PATH")]
    assert list(outside.iterdir()) == []


def test_a_destination_that_is_a_link_fails_the_job(server: Backend, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "dest").symlink_to(outside)
    job = run_job(server, ["/home/alpha"], tmp_path / "dest")
    assert job["status"] == "failed" and job["error"].startswith("UNSAFE_PATH")
    assert list(outside.iterdir()) == []


def test_a_hostile_server_cannot_make_the_agent_write_outside(
    server: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    honest = restore_items.batch

    def hostile(*args: Any) -> tuple[list[list[Any]], str, bool]:
        items, cursor, end = honest(*args)
        for item, member in zip(items, ("../escaped.txt", "/tmp/escaped.txt", "a/../../escaped.txt"), strict=True):
            item[1] = member
        return items, cursor, end

    monkeypatch.setattr(restore_items, "batch", hostile)
    dest = tmp_path / "deep" / "dest"
    job = run_job(server, ["/home/alpha"], dest)
    assert (job["status"], job["files_failed"]) == ("partial", 3)
    assert {p["code"] for p in job["problems"]} == {"UNSAFE_PATH"}
    assert list(tmp_path.rglob("escaped.txt")) == [] and list((tmp_path / "deep").rglob("*")) == [dest]


def test_existing_files_meet_the_policy(server: Backend, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    (dest / "alpha").mkdir(parents=True)
    (dest / "alpha" / "notes.txt").write_bytes(b"mine")
    skipped = run_job(server, [NOTES], dest / "alpha")
    assert (skipped["files_skipped"], skipped["problems"][0]["code"]) == (1, "EXISTS")
    assert (dest / "alpha" / "notes.txt").read_bytes() == b"mine"
    renamed_job = run_job(server, [NOTES], dest / "alpha", "rename")
    assert renamed_job["files_restored"] == 1
    assert (dest / "alpha" / "notes (restored).txt").read_bytes() == content_of(FILES[NOTES])
    run_job(server, [NOTES], dest / "alpha", "overwrite")
    assert (dest / "alpha" / "notes.txt").read_bytes() == content_of(FILES[NOTES])
    (dest / "alpha" / "Report.pdf").mkdir()
    refused = run_job(server, [REPORT], dest / "alpha", "overwrite")
    assert [p["code"] for p in refused["problems"]] == ["NOT_REGULAR"] and (dest / "alpha" / "Report.pdf").is_dir()


def test_content_that_does_not_hash_right_is_never_kept(server: Backend, tmp_path: Path) -> None:
    core = server.core
    assert isinstance(core, BackupServer)
    sha = core.conn.execute("SELECT sha256 FROM files WHERE id = ?", (server.files[CAT],)).fetchone()[0]
    core.blobs.path_for(sha).write_bytes(b"x" * FILES[CAT].size)  # same size, other bytes
    dest = tmp_path / "dest"
    job = run_job(server, [CAT], dest)
    assert (job["status"], job["files_failed"], job["problems"][0]["code"]) == ("partial", 1, "HASH_MISMATCH")
    assert not (dest / "cat.jpg").exists() and temporaries(dest) == []
