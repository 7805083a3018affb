"""How both backends lay files out as folders, and read a folder path to browse."""

from __future__ import annotations

import sqlite3

import pytest

from actors.backends.snapshot_paths import child_path, folder_to_browse, folders_of, parent_of, split
from actors.server.snapshot_queries import TREE_PATH
from protocol.errors import ProtocolError


@pytest.mark.parametrize(
    ("path", "folders", "folder", "name"),
    [
        ("/home/ada/notes.txt", ["/", "/home", "/home/ada"], "/home/ada", "notes.txt"),
        ("/d/a", ["/", "/d"], "/d", "a"),  # a one-letter top folder is not a drive
        ("/top.txt", ["/"], "/", "top.txt"),
        ("C:\\Users\\ada\\n.md", ["/", "C:\\", "C:\\Users", "C:\\Users\\ada"], "C:\\Users\\ada", "n.md"),
        ("C:\\n.md", ["/", "C:\\"], "C:\\", "n.md"),
        ("D:/mixed\\sep/x", ["/", "D:/", "D:/mixed", "D:/mixed\\sep"], "D:/mixed\\sep", "x"),
    ],
)
def test_a_file_sits_in_the_folders_of_its_own_path(path: str, folders: list[str], folder: str, name: str) -> None:
    chain = folders_of(path)
    assert [f.path for f in chain] == folders
    assert [f.parent for f in chain] == [None, *folders[:-1]]
    assert split(path) == (folder, name) and child_path(folder, name) == path
    assert all(parent_of(f.path) == f.parent for f in chain)
    assert chain[1:] == [] or chain[1].name in ("home", "d", "C:", "D:")


@pytest.mark.parametrize(
    ("asked", "folder"),
    [("", "/"), ("/", "/"), ("/home/ada/", "/home/ada"), ("/home", "/home"), ("C:", "C:\\"), ("C:\\", "C:\\")],
)
def test_a_folder_to_browse_is_named_like_the_tree_names_it(asked: str, folder: str) -> None:
    assert folder_to_browse(asked) == folder


@pytest.mark.parametrize("asked", ["home", "/a/../b", "//", "/a//b", "\\x", "/a\x00", "/" + "x" * 5000, "C:x"])
def test_a_path_no_folder_could_have_is_a_bad_request(asked: str) -> None:
    with pytest.raises(ProtocolError) as info:
        folder_to_browse(asked)
    assert info.value.code.value == "BAD_REQUEST"


@pytest.mark.parametrize("folder", ["/", "/home/ada", "C:\\", "C:\\Users", "D:/mixed", "/C:"])
def test_the_servers_sql_names_a_file_as_child_path_does(folder: str) -> None:
    conn = sqlite3.connect(":memory:")
    sql = f"SELECT {TREE_PATH} FROM (SELECT ? AS path) d, (SELECT ? AS name) s"
    assert conn.execute(sql, (folder, "n.txt")).fetchone()[0] == child_path(folder, "n.txt")
