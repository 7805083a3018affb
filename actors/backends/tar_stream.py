"""A tar archive produced while it streams: headers and stored content in order, its size known up front.

``ArchivePlan`` holds what the archive will contain, compactly (parallel arrays: about
150 bytes a member, never any content), so its exact size is known before the first
byte. ``TarReader`` then produces the bytes in order as a stream sender asks for them,
reading each member's content from the backend only while it is being sent and hashing it
against its recorded SHA-256. The stream as a whole is not hashed: every member is checked
against the hash recorded at backup, CURVE authenticates every message on the way and each
chunk's index and offset prove their order, so a second pass over every byte would prove
nothing more (it cost a third of the server's CPU).

The format is POSIX.1-2001 (pax): a plain ustar header for the common member (ASCII name
of at most 100 bytes, size and time that fit its octal fields), written here directly;
any other member gets Python's tarfile pax header, which carries a long or non-ASCII
name, a size past 8 GiB or a time before 1970 exactly.
"""

from __future__ import annotations

import hashlib
import tarfile
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 10240: the archive is padded to whole records, as tar does
_OCTAL_LIMIT = 8**11  # what an 11-digit octal field holds
_FILE_MODE, _DIR_MODE = 0o644, 0o755
MISSING, DAMAGED = "missing", "damaged"

# (ref, sha256, size) -> the stored bytes in order; ending short means the content is gone
Content = Callable[[Any, str, int], Iterator[bytes]]


def _fits_ustar(name: str, size: int, mtime: int) -> bool:
    return len(name) <= 100 and name.isascii() and 0 <= size < _OCTAL_LIMIT and 0 <= mtime < _OCTAL_LIMIT


def header_size(name: str, size: int, mtime: int) -> int:
    """Bytes of the header (pax extension included) ``header`` writes for this member."""
    if _fits_ustar(name, size, mtime):
        return BLOCK
    return len(_tarfile_header(name, size, mtime))


def header(name: str, size: int, mtime: int) -> bytes:
    """The header of a file member, or of a folder when ``name`` ends with ``/``."""
    if not _fits_ustar(name, size, mtime):
        return _tarfile_header(name, size, mtime)
    is_dir = name.endswith("/")
    head = bytearray(BLOCK)
    head[0 : len(name)] = name.encode("ascii")
    head[100:108] = b"%07o\0" % (_DIR_MODE if is_dir else _FILE_MODE)
    head[108:124] = b"0000000\x000000000\x00"  # uid, gid
    head[124:136] = b"%011o\0" % size
    head[136:148] = b"%011o\0" % mtime
    head[148:156] = b"        "  # the checksum counts its own field as spaces
    head[156] = ord(tarfile.DIRTYPE if is_dir else tarfile.REGTYPE)
    head[257:265] = tarfile.POSIX_MAGIC  # "ustar\0" and version "00"
    head[148:156] = b"%06o\0 " % sum(head)
    return bytes(head)


def _tarfile_header(name: str, size: int, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, mtime
    if name.endswith("/"):
        info.type, info.mode = tarfile.DIRTYPE, _DIR_MODE
    else:
        info.mode = _FILE_MODE
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def padding(size: int) -> int:
    return -size % BLOCK


@dataclass(slots=True)
class ArchivePlan:
    """The members in order; a folder's name ends with ``/`` and its size is -1."""

    names: list[str] = field(default_factory=list)
    sizes: array[int] = field(default_factory=lambda: array("q"))
    mtimes: array[int] = field(default_factory=lambda: array("q"))
    digests: bytearray = field(default_factory=bytearray)  # 32 bytes a member: the recorded SHA-256
    refs: list[Any] = field(default_factory=list)  # the backend's handle of a file's content
    files: int = 0
    folders: int = 0
    content_bytes: int = 0
    total: int = 0  # the archive's size, end blocks and record padding included
    _body: int = 0

    def add_folder(self, name: str, mtime: int) -> None:
        self._add(name + "/", -1, mtime, bytes(32), None)
        self.folders += 1

    def add_file(self, name: str, size: int, mtime: int, sha256: str, ref: Any) -> None:
        self._add(name, size, mtime, bytes.fromhex(sha256), ref)
        self.files += 1
        self.content_bytes += size

    def _add(self, name: str, size: int, mtime: int, digest: bytes, ref: Any) -> None:
        self.names.append(name)
        self.sizes.append(size)
        self.mtimes.append(mtime)
        self.digests += digest
        self.refs.append(ref)
        content = max(size, 0)
        self._body += header_size(name, content, mtime) + content + padding(content)
        ended = self._body + 2 * BLOCK  # two zero blocks end an archive
        self.total = ended + (-ended % RECORD)

    def __len__(self) -> int:
        return len(self.names)

    def sha256(self, index: int) -> str:
        return self.digests[32 * index : 32 * index + 32].hex()


@dataclass(slots=True)
class Found:
    """A member whose content turned out missing or not to match its recorded hash."""

    index: int
    problem: str  # MISSING or DAMAGED
    actual_sha256: str  # "" when missing


class TarReader:
    """``read_at`` for a stream sender: the archive's bytes in order, made as they are asked for."""

    def __init__(self, plan: ArchivePlan, content: Content) -> None:
        self.plan = plan
        self.sent = 0
        self.found: list[Found] = []
        self._pieces = self._generate(content)
        self._left = memoryview(b"")

    def __call__(self, offset: int, length: int) -> bytes:
        if offset != self.sent:
            raise ValueError(f"an archive is read in order: asked for offset {offset}, next is {self.sent}")
        parts: list[memoryview] = []
        need = length
        while need > 0:
            if not self._left:
                piece = next(self._pieces, None)
                if piece is None:
                    break
                self._left = memoryview(piece)
            take = self._left[:need]
            parts.append(take)
            self._left = self._left[len(take) :]
            need -= len(take)
        data = b"".join(parts)
        self.sent += len(data)
        return data

    def _generate(self, content: Content) -> Iterator[bytes]:
        plan = self.plan
        for index, name in enumerate(plan.names):
            size, mtime = plan.sizes[index], plan.mtimes[index]
            if size < 0:
                yield header(name, 0, mtime)
                continue
            yield header(name, size, mtime)
            yield from self._member(index, content(plan.refs[index], plan.sha256(index), size), size)
            if padding(size):
                yield bytes(padding(size))
        written = plan._body + 2 * BLOCK
        yield bytes(2 * BLOCK + (-written % RECORD))

    def _member(self, index: int, pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
        """The member's stored bytes, exactly ``size`` of them (zeros stand in for content gone meanwhile)."""
        digest = hashlib.sha256()
        done = 0
        for piece in pieces:
            piece = piece[: size - done]
            digest.update(piece)
            done += len(piece)
            yield piece
            if done >= size:
                break
        if done < size:
            self.found.append(Found(index, MISSING, ""))
            while done < size:
                filler = min(size - done, 1 << 20)
                done += filler
                yield bytes(filler)
            return
        actual = digest.hexdigest()
        if actual != self.plan.sha256(index):
            self.found.append(Found(index, DAMAGED, actual))
