"""The agent's pieces without a server: paths, scanning, batching, flow control, messages, CLI errors."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from actors.agent.backup import (
    BatchRun,
    Entry,
    Limiter,
    Options,
    Summary,
    batches,
    file_sha256,
    open_scanned,
    scan,
    scanned_sha256,
)
from actors.agent.progress import Progress
from actors.agent.restore import _target, check_destination
from actors.agent.session import EXIT_FAILED, EXIT_STORAGE_FULL, EXIT_USAGE, AgentError, Session, error_of
from protocol.agent_messages import (
    AGENT_TO_SERVER,
    SERVER_TO_AGENT,
    STORAGE_FULL,
    AgentProtocolError,
    Credit,
    CreditLedger,
    Message,
    check_client_path,
    check_file_name,
    decode_message,
    encode_message,
    file_name_of,
    has_traversal,
)
from protocol.codec import encode
from runtime.curve_keys import enrollment_keypair, is_public_key, load_or_create
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    "path,ok",
    [
        ("/home/u/a.txt", True),
        ("C:\\Users\\u\\a.txt", True),
        ("D:/x/y", True),
        ("/a/ünï cødé/✓.txt", True),
        ("../../etc/passwd", False),
        ("/home/../etc/passwd", False),
        ("/a/./b", False),
        ("/a//b", False),
        ("/a/b/", False),
        ("relative/x", False),
        ("", False),
        ("/a\x00b", False),
        ("/a\nb", False),
        ("C:\\a\\..\\b", False),
        ("/" + "a" * 5000, False),
        ("\\\\server\\share\\x", False),
    ],
)
def test_client_paths(path: str, ok: bool) -> None:
    assert (check_client_path(path) is None) is ok


def test_names_and_traversal() -> None:
    assert file_name_of("/a/b/c.txt") == "c.txt" and file_name_of("C:\\x\\y.doc") == "y.doc"
    assert file_name_of("/a/b\\c") == "b\\c"  # a backslash is a legal POSIX name character
    for bad in ("..", ".", "a/b", "a\\b", "", "x\x01", "n" * 300):
        assert check_file_name(bad) is not None
    assert check_file_name("report (final).pdf") is None
    assert has_traversal("a/../b") and has_traversal("..\\x") and not has_traversal("/a/..b/c..")


def test_restore_destinations(tmp_path: Path) -> None:
    for bad in ("../x", str(tmp_path / ".." / "x"), "a/../../b", "", "a\x00b"):
        with pytest.raises(AgentError) as info:
            check_destination(bad)
        assert info.value.exit_code == EXIT_USAGE
    folder = check_destination(str(tmp_path))
    assert _target(folder, "ok.bin") == tmp_path / "ok.bin"
    for unsafe in ("../../etc/passwd", "a/b", "..", "/etc/passwd"):
        with pytest.raises(AgentError) as info:
            _target(folder, unsafe)
        assert info.value.exit_code == EXIT_FAILED
    assert _target(tmp_path / "new.bin", "../whatever") == tmp_path / "new.bin"  # a full path names the file itself
    with pytest.raises(AgentError):
        _target(tmp_path / "missing" / "x.bin", "x")


def test_scan_is_sorted_and_skips_links_and_specials(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "z.txt").write_text("z")
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    (tmp_path / "dirlink").symlink_to(tmp_path / "b")
    os.mkfifo(tmp_path / "pipe")
    summary = Summary(str(tmp_path))
    entries = list(scan(tmp_path, summary))
    assert [Path(e.path).relative_to(tmp_path).as_posix() for e in entries] == ["a.txt", "b/z.txt"]
    assert all(check_client_path(e.path) is None for e in entries)
    single = list(scan(tmp_path / "a.txt", summary))
    assert [(e.path, e.size) for e in single] == [(str(tmp_path / "a.txt"), 1)]
    assert file_sha256(str(tmp_path / "a.txt")) == "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"


def test_batches_bound_count_and_bytes() -> None:
    entries = [Entry(f"/p/{i:04d}", 1, 1) for i in range(1050)]
    sizes = [len(b) for b in batches(iter(entries), 500)]
    assert sizes == [500, 500, 50]
    long = [Entry("/" + "x" * 3000, 1, 1) for _ in range(200)]
    assert all(len(b) < 100 for b in batches(iter(long), 500))


def test_credit_window_and_ledger() -> None:
    credit = Credit(3)
    for _ in range(3):
        credit.spend()
    assert credit.available == 0
    credit.grant(10)  # more acks than sends must not inflate the window
    assert credit.available == 3
    ledger = CreditLedger(2)
    assert ledger.on_message() and ledger.on_message() and not ledger.on_message()
    ledger = CreditLedger(2)
    ledger.on_message()
    ledger.consumed()
    ledger.on_message()
    ledger.consumed()
    assert ledger.take_pending() == 2 and ledger.take_pending() == 0
    assert ledger.on_message() and ledger.on_message() and not ledger.on_message()


def test_limiter_paces() -> None:
    limiter = Limiter(1000)
    assert limiter.delay(0) == 0
    limiter.spent(1000)
    assert 0.5 < limiter.delay(500) <= 1.5
    assert Limiter(None).delay(10**9) == 0


def test_message_validation() -> None:
    frames = encode_message("chunk", b"data", u="x", i=0, o=0, last=True, path="/a", size=4, mtime_ns=1, sha256=None)
    msg = decode_message(frames, AGENT_TO_SERVER)
    assert (msg.type, msg.body, msg["last"]) == ("chunk", b"data", True)
    bad: list[list[bytes]] = [
        [encode({"v": 2, "t": "hello"}), b""],
        [encode({"v": 1, "t": "nope"}), b""],
        [encode({"v": 1, "t": "chunk", "u": "x", "i": True, "o": 0, "last": True}), b""],
        [encode({"v": 1, "t": "chunk", "u": "x", "i": 0, "o": 0, "last": True, "size": "4"}), b""],
        [encode({"v": 1, "t": "hello", "name": "n"}), b""],
        [encode([1, 2]), b""],
        [b"\xc1", b""],
        [encode({"v": 1, "t": "heartbeat"})],
    ]
    for malformed in bad:
        with pytest.raises(AgentProtocolError):
            decode_message(malformed, AGENT_TO_SERVER)
    with pytest.raises(AgentProtocolError):
        decode_message(encode_message("welcome", client_id="c"), SERVER_TO_AGENT)


def test_keys(tmp_path: Path) -> None:
    public, secret = load_or_create(tmp_path / "cfg", "agent")
    assert load_or_create(tmp_path / "cfg", "agent") == (public, secret)
    assert oct((tmp_path / "cfg" / "agent.key_secret").stat().st_mode & 0o777) == "0o600"
    assert is_public_key(public.decode()) and not is_public_key("x y" * 13 + "z") and not is_public_key("short")
    assert enrollment_keypair("t") == enrollment_keypair("t") != enrollment_keypair("u")


def run_agent(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "actors.agent", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.processes
def test_cli_errors_are_clear(tmp_path: Path) -> None:
    missing = run_agent(
        "backup", str(tmp_path / "nope"), "--server-key", str(tmp_path / "k"), "--config-dir", str(tmp_path)
    )
    assert missing.returncode == 2 and "path not found" in missing.stderr and "Traceback" not in missing.stderr
    no_key = run_agent("backup", str(tmp_path), "--config-dir", str(tmp_path / "c"))
    assert no_key.returncode == 2 and "--server-key FILE or --data-dir DIR" in no_key.stderr
    bad_key = run_agent(
        "restore",
        "f1",
        str(tmp_path / "x"),
        "--server-key",
        str(tmp_path / "nothing.key"),
        "--config-dir",
        str(tmp_path / "c"),
    )
    assert bad_key.returncode == 2 and "cannot read the server's public key" in bad_key.stderr
    traversal = run_agent("restore", "f1", "../x", "--server-key", str(tmp_path / "k"))
    assert traversal.returncode == 2 and "'..'" in traversal.stderr
    shown = run_agent("show-key", "--config-dir", str(tmp_path / "c"))
    assert shown.returncode == 0 and is_public_key(shown.stdout.strip())


class RecordingConnection:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, type_: str, body: bytes | memoryview = b"", /, **fields: Any) -> None:
        self.sent.append((type_, fields))


def batch_run(chunk_size: int = 1024) -> tuple[BatchRun, RecordingConnection, Summary]:
    """A BatchRun over a session that only records what it would send (credit is never short here)."""
    conn = RecordingConnection()
    session = SimpleNamespace(conn=conn, chunk_size=chunk_size, credit=Credit(16))
    summary = Summary("/")
    run = BatchRun(cast(Session, session), summary, Options(Path("/")), Progress("test", enabled=False), Limiter(None))
    return run, conn, summary


def scanned(folder: Path) -> dict[str, Entry]:
    return {Path(e.path).name: e for e in scan(folder, Summary(str(folder)))}


def test_a_file_swapped_for_a_symlink_after_the_scan_is_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "innocent.txt").write_text("harmless")
    secret = tmp_path / "secret.txt"
    secret.write_text("the link's target: must never be read under the innocent name")
    entry = scanned(folder)["innocent.txt"]
    (folder / "innocent.txt").unlink()
    (folder / "innocent.txt").symlink_to(secret)  # swapped in between the scan and the upload
    with pytest.raises(OSError, match="replaced by a symbolic link since the scan"):
        open_scanned(entry)
    run, conn, summary = batch_run()
    run._upload(entry)
    assert conn.sent == []  # not one byte of the target left
    assert summary.skipped_files == [[entry.path, "replaced by a symbolic link since the scan (not followed)"]]
    with pytest.raises(OSError, match="symbolic link"):
        scanned_sha256(entry)  # the hash the server may ask for is refused the same way


def test_a_file_swapped_for_another_file_or_a_fifo_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("scanned")
    (tmp_path / "b.txt").write_text("not scanned")
    (tmp_path / "c.txt").write_text("scanned too")
    entries = scanned(tmp_path)
    os.replace(tmp_path / "b.txt", tmp_path / "a.txt")  # a different file (inode) under the scanned name
    with pytest.raises(OSError, match="replaced by another file"):
        open_scanned(entries["a.txt"])
    (tmp_path / "c.txt").unlink()
    os.mkfifo(tmp_path / "c.txt")  # opening a FIFO without O_NONBLOCK would wait for a writer forever
    with pytest.raises(OSError, match="not a regular file"):
        open_scanned(entries["c.txt"])


def test_an_unchanged_file_is_uploaded_whole(tmp_path: Path) -> None:
    data = os.urandom(2500)
    (tmp_path / "same.bin").write_bytes(data)
    entry = scanned(tmp_path)["same.bin"]
    with open_scanned(entry) as f:
        assert f.read() == data
    run, conn, summary = batch_run(chunk_size=1000)
    run._upload(entry)
    assert [t for t, _ in conn.sent] == ["chunk"] * 3 and summary.skipped == 0
    assert conn.sent[-1][1]["sha256"] == scanned_sha256(entry) == hashlib.sha256(data).hexdigest()
    link = tmp_path / "link-to-same.bin"
    link.symlink_to(tmp_path / "same.bin")
    (single,) = scan(link, Summary(str(link)))  # a link named as the root stands for its target
    assert single.path == str(tmp_path / "same.bin")
    with open_scanned(single) as f:
        assert f.read() == data


def test_storage_full_from_the_server_is_its_own_exit_status() -> None:
    reply = Message("error", {"code": STORAGE_FULL, "message": "database or disk is full"})
    failure = error_of(reply)
    assert failure.exit_code == EXIT_STORAGE_FULL == 9
    assert failure.message.startswith("server storage full")
    run, conn, _ = batch_run()
    run.pending["u1"] = Entry("/x", 1, 1)
    with pytest.raises(AgentError) as info:
        run._handle(Message("failed", {"u": "u1", "code": STORAGE_FULL, "message": "cannot store /x"}))
    assert info.value.exit_code == EXIT_STORAGE_FULL and "server storage full" in info.value.message
    assert conn.sent == [] and run.pending == {}
    run.pending["u2"] = Entry("/y", 1, 1)
    with pytest.raises(AgentError):
        run._handle(Message("error", {"code": STORAGE_FULL, "message": "full", "ref": 1}))
    assert conn.sent == [("abort", {"u": "u2", "reason": "server storage full"})]  # the server drops its temporary
