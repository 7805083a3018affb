"""download_archive's pure parts: the list argument, tar headers, the plan's size, member names and order."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from actors.backends.archive import FileEntry, archive_stream
from actors.backends.tar_stream import BLOCK, RECORD, ArchivePlan, _tarfile_header, header, header_size
from client.bridgectl.calls import build_args
from protocol.errors import ErrorCode, ProtocolError
from protocol.operation import MAX_STRING, Arg, ArgType
from protocol.streaming import CHUNK_SIZE

pytestmark = pytest.mark.timeout(30)


# -- the list argument --


def test_a_list_argument_takes_strings_within_its_item_bounds() -> None:
    arg = Arg("paths", ArgType.STRINGS, "", minimum=1, maximum=3)
    assert arg.validate(["/a", "/b"]) == ["/a", "/b"]
    for bad in ([], ["/a"] * 4, "/a", [1], ["/a", None], ["x" * (MAX_STRING + 1)], {"a": 1}, 5):
        with pytest.raises(ProtocolError) as info:
            arg.validate(bad)
        assert info.value.code is ErrorCode.BAD_REQUEST and "'paths'" in info.value.message, bad


def test_bridgectl_takes_a_list_as_repeated_items_or_json() -> None:
    repeated = build_args("download_archive", ["paths=/home/ada", "paths=C:\\Users", "snapshot_id=3"], None)
    assert repeated == {"paths": ["/home/ada", "C:\\Users"], "snapshot_id": "3"}
    assert build_args("download_archive", ['paths=["/a", "/b"]'], None) == {"paths": ["/a", "/b"]}
    assert build_args("download_archive", ["paths=/a"], '{"paths": ["/z"]}') == {"paths": ["/z", "/a"]}


# -- headers --

NAMES = ["a", "dir/", "x" * 100, "x" * 101, "é.txt", "d" * 99 + "/", "sub/" * 40 + "deep"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("size", [0, 1, 8**11 - 1, 8**11])
@pytest.mark.parametrize("mtime", [0, 1_700_000_000, -1])
def test_headers_are_tarfiles_own_and_their_size_is_known(name: str, size: int, mtime: int) -> None:
    size = 0 if name.endswith("/") else size
    made = header(name, size, mtime)
    assert made == _tarfile_header(name, size, mtime)
    assert len(made) == header_size(name, size, mtime) and len(made) % BLOCK == 0


# -- a whole archive over an in-memory tree --


class Tree:
    """A SnapshotTree over a dict of paths to content (POSIX or drive paths)."""

    snapshot_id = "7"
    folder_mtime = 1_700_000_000

    def __init__(self, files: dict[str, bytes], damaged: frozenset[str] = frozenset()) -> None:
        self.files = files
        self.damaged = damaged  # streamed as other bytes than recorded
        self.folders = {"/"}
        for path in files:
            sep = "\\" if path[1:2] == ":" else "/"
            cut = path.rfind(sep)
            while cut > 0:
                self.folders.add(path[:cut] if path[:cut] != path[:2] else path[:3])
                cut = path.rfind(sep, 0, cut)
            if sep == "\\":
                self.folders.add(path[:3])

    def kind(self, path: str) -> str | None:
        return "dir" if path in self.folders else "file" if path in self.files else None

    def _parent(self, path: str) -> str:
        if len(path) == 3 and path[1] == ":":
            return "/"
        sep = "\\" if path[1:2] == ":" else "/"
        parent = path[: path.rfind(sep)]
        return parent or "/" if sep == "/" else parent if len(parent) > 2 else parent + "\\"

    def listing(self, path: str) -> tuple[list[tuple[str, str]], list[FileEntry]]:
        subs = sorted((self._name(f), f) for f in self.folders if f != "/" and self._parent(f) == path)
        files = sorted((self._name(f), f) for f in self.files if self._parent(f) == path)
        return subs, [self.file(f) for _, f in files]

    def _name(self, path: str) -> str:
        if len(path) == 3 and path[1] == ":":
            return path[:2]
        return path[max(path.rfind("/"), path.rfind("\\")) + 1 :]

    def file(self, path: str) -> FileEntry:
        data = self.files[path]
        return FileEntry(self._name(path), len(data), 1_600_000_000, hashlib.sha256(data).hexdigest(), path)

    def content(self, ref: Any, sha256: str, size: int) -> Iterator[bytes]:
        data = self.files[ref]
        yield (b"?" * len(data)) if ref in self.damaged else data

    def describe(self, ref: Any) -> tuple[str, str]:
        return f"id-{ref}", ref


def reply(data: Any, message: str) -> dict[str, Any]:
    return {"success": True, "message": message, "data": data}


def unpack(tree: Tree, paths: list[str], allow_damaged: bool = False) -> tuple[dict[str, bytes | None], Any]:
    stream = archive_stream(tree, paths, allow_damaged, "/tmp/out.tar", reply)
    data = b"".join(stream.read_at(o, min(CHUNK_SIZE, stream.total - o)) for o in range(0, stream.total, CHUNK_SIZE))
    assert len(data) == stream.total and stream.total % RECORD == 0
    members: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for m in archive.getmembers():
            assert tarfile.data_filter(m, "/dest") is not None  # nothing that unpacks outside
            extracted = archive.extractfile(m)
            members[m.name] = extracted.read() if extracted is not None else None
    return members, stream.final()


FILES = {
    "/home/ada/notes.txt": b"notes",
    "/home/ada/photos/cat.jpg": b"c" * 3000,
    "/home/ada/photos/2025/dog.jpg": b"d" * 70000,
    "/home/bob/todo": b"",
    "C:\\Users\\eve\\budget.xlsx": b"b" * 513,
}


def test_members_are_named_from_the_folder_holding_the_selection_and_ordered_depth_first() -> None:
    members, final = unpack(Tree(FILES), ["/home/ada"])
    assert list(members) == [
        "ada",
        "ada/notes.txt",
        "ada/photos",
        "ada/photos/cat.jpg",
        "ada/photos/2025",
        "ada/photos/2025/dog.jpg",
    ]
    assert members["ada/photos/2025/dog.jpg"] == FILES["/home/ada/photos/2025/dog.jpg"]
    assert final["data"]["name"] == "ada.tar" and final["data"]["files"] == 3 and final["data"]["folders"] == 3


def test_the_whole_snapshot_names_drives_without_their_colon() -> None:
    members, final = unpack(Tree(FILES), ["/"])
    assert members["C/Users/eve/budget.xlsx"] == b"b" * 513 and members["home/bob/todo"] == b""
    assert members["C"] is None and "home" in members
    assert final["data"]["name"] == "snapshot-7.tar" and final["data"]["bytes"] == sum(map(len, FILES.values()))


def test_an_item_inside_another_is_taken_once_and_files_alone_keep_their_name() -> None:
    members, _ = unpack(Tree(FILES), ["/home/ada/photos/cat.jpg", "/home/ada/photos", "/home/ada/photos/"])
    assert list(members) == ["photos", "photos/cat.jpg", "photos/2025", "photos/2025/dog.jpg"]
    members, final = unpack(Tree(FILES), ["/home/ada/notes.txt"])
    assert list(members) == ["notes.txt"] and final["data"]["name"] == "notes.txt.tar"
    members, _ = unpack(Tree(FILES), ["/home/ada/notes.txt", "/home/bob/todo"])
    assert list(members) == ["ada/notes.txt", "bob/todo"]


@pytest.mark.parametrize(
    "path, code",
    [
        ("", "BAD_REQUEST"),
        ("relative/path", "BAD_REQUEST"),
        ("/home/../etc/passwd", "BAD_REQUEST"),
        ("/home/./ada", "BAD_REQUEST"),
        ("/home//ada", "BAD_REQUEST"),
        ("/home/ada\x00", "BAD_REQUEST"),
        ("/home/ada\n/x", "BAD_REQUEST"),
        ("C:\\Users\\..\\x", "BAD_REQUEST"),
        ("\\\\server\\share", "BAD_REQUEST"),
        ("/home/nobody", "NOT_FOUND"),
        ("/home/ada/notes.txt/more", "NOT_FOUND"),
    ],
)
def test_hostile_and_unknown_paths(path: str, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        archive_stream(Tree(FILES), ["/home/ada", path], False, "/tmp/out.tar", reply)
    assert info.value.code.value == code, info.value.message


def test_content_that_streams_damaged_fails_the_archive_unless_allowed() -> None:
    tree = Tree(FILES, damaged=frozenset({"/home/ada/photos/cat.jpg"}))
    stream = archive_stream(tree, ["/home/ada"], False, "/tmp/out.tar", reply)
    for offset in range(0, stream.total, CHUNK_SIZE):
        stream.read_at(offset, min(CHUNK_SIZE, stream.total - offset))
    with pytest.raises(ProtocolError) as info:
        stream.final()
    assert info.value.code is ErrorCode.FILE_DAMAGED and info.value.details["damaged_total"] == 1
    assert info.value.details["path"] == "/home/ada/photos/cat.jpg" and "allow_damaged" in info.value.message
    members, final = unpack(tree, ["/home/ada"], allow_damaged=True)
    assert members["ada/photos/cat.jpg"] == b"?" * 3000
    (found,) = final["data"]["damaged"]
    assert (found["problem"], found["file_id"], final["data"]["damaged_total"]) == (
        "damaged",
        "id-/home/ada/photos/cat.jpg",
        1,
    )


def test_a_plans_size_is_what_streams() -> None:
    plan = ArchivePlan()
    plan.add_folder("d", 0)
    plan.add_file("d/" + "é" * 200, 10, -5, "00" * 32, None)
    assert plan.total % RECORD == 0 and plan.files == 1 and plan.folders == 1 and plan.content_bytes == 10


def test_a_selection_of_too_many_files_is_refused_before_streaming(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("actors.backends.archive.MAX_ARCHIVE_FILES", 4)
    assert unpack(Tree(FILES), ["/home"])[1]["data"]["files"] == 4
    with pytest.raises(ProtocolError) as info:
        archive_stream(Tree(FILES), ["/"], False, "/tmp/out.tar", reply)
    assert info.value.code is ErrorCode.BAD_REQUEST and info.value.details["limit"] == 4
