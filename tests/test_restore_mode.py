"""A restored file's mode: the permission bits its version was backed up with, given to the very file placed,
never setuid, setgid or sticky; the server keeps them per version from the agent's manifest and uploads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.agent.restore_job import Item
from actors.agent.safe_fs import Refused, set_mode
from actors.server.uploads import _entry
from protocol.agent_messages import AgentProtocolError, file_mode

SHA = "0" * 64


def test_the_permission_bits_are_set_on_the_file_written_and_nothing_more(tmp_path: Path) -> None:
    folder = os.open(tmp_path, os.O_RDONLY)
    try:
        placed = tmp_path / "placed"
        placed.write_bytes(b"x")
        placed.chmod(0o600)
        inode = placed.stat().st_ino
        assert set_mode(folder, "placed", inode, 0o6755)
        assert placed.stat().st_mode & 0o7777 == 0o755  # setuid and setgid dropped
        other = tmp_path / "other"
        other.write_bytes(b"y")
        other.chmod(0o600)
        assert not set_mode(folder, "other", inode, 0o644)  # another file is there by now: left as it is
        assert other.stat().st_mode & 0o777 == 0o600
        os.symlink(placed, tmp_path / "link")
        assert not set_mode(folder, "link", inode, 0o777)  # a link is never followed
        assert not set_mode(folder, "gone", inode, 0o644)
    finally:
        os.close(folder)


def test_an_item_may_carry_its_mode() -> None:
    base = ["/a/b", "b", "f1", 2, 10, SHA, 123]
    assert Item.of(base).mode is None  # from a server that sends none
    assert Item.of([*base, None]).mode is None  # a version backed up without one
    assert Item.of([*base, 0o640]).mode == 0o640
    for bad in ([*base, -1], [*base, "0644"], [*base, True], [*base, 1, 2]):
        with pytest.raises(Refused):
            Item.of(bad)


def test_the_server_keeps_only_permission_bits_and_takes_entries_without_a_mode() -> None:
    assert _entry(["/a", 1, 2, None]) == ("/a", 1, 2, None, None)
    assert _entry(["/a", 1, 2, SHA, 0o104755]) == ("/a", 1, 2, SHA, 0o755)  # a regular file with setuid
    assert file_mode(None) is None and file_mode(0o1777) == 0o777
    for bad in (["/a", 1, 2, None, -5], ["/a", 1, 2, None, "rw"], ["/a", 1, 2, None, 1, 2]):
        with pytest.raises(AgentProtocolError):
            _entry(bad)
