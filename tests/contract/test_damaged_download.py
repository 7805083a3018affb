"""Downloading a file whose stored content is damaged: FILE_DAMAGED from both backends, never
INTERNAL, and ``allow_damaged`` to fetch what is stored anyway (issue 10, item 9)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.backends.api import StreamReply
from actors.server.core import BackupServer
from protocol.errors import ErrorCode, ProtocolError
from protocol.streaming import CHUNK_SIZE
from tests.contract.harness import Backend, close, covers, make_backend

pytestmark = pytest.mark.timeout(30)

ARCHIVE = "/srv/data/archive.tar"  # 300,000 bytes: more than one chunk


def read_all(stream: StreamReply) -> bytes:
    """Every chunk, in order, as the worker's stream sender reads them."""
    return b"".join(stream.read_at(offset, CHUNK_SIZE) for offset in range(0, stream.total, CHUNK_SIZE))


def refusal(backend: Backend, **args: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        backend.run("download_file", args)
    return info.value


def download(backend: Backend, file_id: str, **args: Any) -> tuple[bytes, dict[str, Any]]:
    stream = backend.stream("download_file", file_id=file_id, destination_path="/tmp/out", **args)
    return read_all(stream), stream.final()


@covers("download_file")
def test_an_intact_file_says_so(backend: Backend) -> None:
    file = backend.file(ARCHIVE)
    content, final = download(backend, file["id"])
    assert hashlib.sha256(content).hexdigest() == file["sha256"]
    data = final["data"]
    assert (data["sha256"], data["expected_sha256"], data["damaged"]) == (file["sha256"], file["sha256"], False)


@covers("download_file")
@pytest.mark.parametrize("scrubbed", [False, True], ids=["damaged", "marked-by-scrub"])
def test_a_damaged_file_is_file_damaged_before_any_chunk(backend: Backend, scrubbed: bool) -> None:
    file = backend.file(ARCHIVE)
    backend.corrupt(file["id"])
    if scrubbed:
        backend.call("scrub_storage")
        assert backend.file(ARCHIVE)["status"] == "error"
    error = refusal(backend, file_id=file["id"], destination_path="/tmp/out")
    assert error.code is ErrorCode.FILE_DAMAGED
    assert error.details["problem"] == "damaged" and error.details["expected_sha256"] == file["sha256"]
    assert len(error.details["actual_sha256"]) == 64 and error.details["actual_sha256"] != file["sha256"]
    assert ARCHIVE in error.message and "allow_damaged" in error.message


@covers("download_file")
def test_allow_damaged_streams_what_is_stored_and_says_it_is_damaged(backend: Backend) -> None:
    file = backend.file(ARCHIVE)
    backend.corrupt(file["id"])
    content, final = download(backend, file["id"], allow_damaged=True)
    actual = hashlib.sha256(content).hexdigest()
    assert final["success"] is True and final["mode"] == backend.mode
    data = final["data"]
    assert data["damaged"] is True and "DAMAGED" in final["message"]
    assert (data["sha256"], data["expected_sha256"], data["size"]) == (actual, file["sha256"], len(content))
    assert actual != file["sha256"]
    assert backend.events() == []  # fetching it changes nothing


# -- the real server only: damage the mock cannot have (its content is generated, never lost) --


@pytest.fixture
def real(tmp_path: Path) -> Iterator[Backend]:
    made = make_backend("real", tmp_path)
    yield made
    close(made)


def blob_of(real: Backend, file: dict[str, Any]) -> Path:
    assert isinstance(real.core, BackupServer)
    return real.core.blobs.path_for(file["sha256"])


def test_damage_found_only_while_streaming_makes_the_final_reply_file_damaged(real: Backend) -> None:
    file = real.file(ARCHIVE)
    blob = blob_of(real, file)
    rotten = bytearray(blob.read_bytes())
    rotten[-1] ^= 0xFF  # same size, status still "uploaded": nothing to notice before the last byte
    blob.write_bytes(bytes(rotten))
    stream = real.stream("download_file", file_id=file["id"], destination_path="/tmp/out")
    assert read_all(stream) == bytes(rotten)
    with pytest.raises(ProtocolError) as info:
        stream.final()
    assert info.value.code is ErrorCode.FILE_DAMAGED
    assert info.value.details["actual_sha256"] == hashlib.sha256(rotten).hexdigest()
    _, final = download(real, file["id"], allow_damaged=True)
    assert final["data"]["damaged"] is True and final["data"]["sha256"] == hashlib.sha256(rotten).hexdigest()


@pytest.mark.parametrize("allow_damaged", [False, True])
def test_missing_content_is_file_damaged_even_when_damage_is_allowed(real: Backend, allow_damaged: bool) -> None:
    file = real.file(ARCHIVE)
    blob_of(real, file).unlink()
    error = refusal(real, file_id=file["id"], destination_path="/tmp/out", allow_damaged=allow_damaged)
    assert error.code is ErrorCode.FILE_DAMAGED
    assert (error.details["problem"], error.details["actual_sha256"]) == ("missing", "")


def test_a_file_marked_damaged_whose_content_was_healed_downloads_intact(real: Backend) -> None:
    file = real.file(ARCHIVE)
    blob = blob_of(real, file)
    good = blob.read_bytes()
    blob.write_bytes(b"rotten")
    real.call("scrub_storage")
    blob.write_bytes(good)  # a later upload of the same content replaced the blob
    assert real.file(ARCHIVE)["status"] == "error"
    content, final = download(real, file["id"])
    assert content == good and final["data"]["damaged"] is False
