"""runtime.fsutil: atomic writes leave either the old target or the whole new one, never a temporary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from runtime import fsutil
from runtime.fsutil import AtomicFile, atomic_write, atomic_write_bytes, remove_temporaries


class Boom(Exception):
    pass


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_atomic_write_bytes_replaces_the_target(tmp_path: Path) -> None:
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")
    atomic_write_bytes(target, b"new content")
    assert target.read_bytes() == b"new content"
    assert names(tmp_path) == {"state.bin"}


def test_the_target_appears_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "big.bin"
    with atomic_write(target) as out:
        out.write(b"a" * 1000)
        assert not target.exists()  # half-way: only the temporary exists
        (tmp_name,) = names(tmp_path)
        assert tmp_name.startswith(".big.bin.") and tmp_name.endswith(".part")
        out.write(b"b" * 1000)
    assert target.read_bytes() == b"a" * 1000 + b"b" * 1000
    assert names(tmp_path) == {"big.bin"}


def test_a_failure_mid_write_leaves_the_old_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")
    with pytest.raises(Boom), atomic_write(target) as out:
        out.write(b"partial")
        raise Boom
    assert target.read_bytes() == b"old"
    assert names(tmp_path) == {"state.bin"}


def test_a_failure_mid_write_leaves_no_target_when_there_was_none(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_write(tmp_path / "new.bin") as out:
        out.write(b"partial")
        raise KeyboardInterrupt  # not only Exceptions: an interrupt must clean up as well
    assert names(tmp_path) == set()


def test_a_failing_fsync_at_commit_removes_the_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(fsutil.os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="Input/output"), atomic_write(tmp_path / "x.bin") as out:
        out.write(b"data")
    assert names(tmp_path) == set()


def test_commit_syncs_the_file_and_then_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        steps.append("fsync-dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "fsync-file")
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        steps.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(fsutil.os, "fsync", fsync)
    monkeypatch.setattr(fsutil.os, "replace", replace)
    atomic_write_bytes(tmp_path / "x.bin", b"data")
    assert steps == ["fsync-file", "rename", "fsync-dir"]


def test_the_target_can_be_named_at_commit_from_another_directory(tmp_path: Path) -> None:
    staging, final_dir = tmp_path / "tmp", tmp_path / "ab"
    staging.mkdir()
    final_dir.mkdir()
    synced: list[Path] = []
    pending = AtomicFile(directory=staging, prefix="upload-", buffering=0, sync_dir=synced.append)
    pending.write(b"content")
    assert pending.commit(final_dir / "cdef") == final_dir / "cdef"
    assert (final_dir / "cdef").read_bytes() == b"content"
    assert names(staging) == set() and synced == [final_dir]
    pending.abort()  # after a commit: nothing to do, the committed file stays
    assert (final_dir / "cdef").exists()


def test_short_writes_of_an_unbuffered_file_are_completed(tmp_path: Path) -> None:
    class Trickle:
        """A raw file that takes at most 3 bytes per write, as a raw write may."""

        def __init__(self, raw: Any) -> None:
            self.raw = raw

        def write(self, data: memoryview) -> int:
            return int(self.raw.write(data[:3]))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.raw, name)

    pending = AtomicFile(tmp_path / "x.bin", buffering=0)
    pending.file = Trickle(pending.file)  # type: ignore[assignment]  # a stand-in that is not a BinaryIO
    pending.write(b"0123456789")
    pending.write(memoryview(b"abcdefgh"))
    pending.commit()
    assert (tmp_path / "x.bin").read_bytes() == b"0123456789abcdefgh"


def test_commit_without_any_target_is_refused_and_cleans_up(tmp_path: Path) -> None:
    pending = AtomicFile(directory=tmp_path)
    with pytest.raises(ValueError, match="target"):
        pending.commit()
    assert names(tmp_path) == set()
    with pytest.raises(ValueError, match="already"):
        pending.commit(tmp_path / "late")


def test_remove_temporaries_removes_only_the_targets_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "state.bin"
    for name in (".state.bin.abc.part", ".state.bin.def.part", ".other.bin.abc.part", "state.bin", "notes.part"):
        (tmp_path / name).write_bytes(b"x")
    assert remove_temporaries(target) == 2
    assert names(tmp_path) == {".other.bin.abc.part", "state.bin", "notes.part"}
    assert remove_temporaries(tmp_path / "missing-dir" / "x") == 0
