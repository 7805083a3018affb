"""Browser downloads: a file fetched through the bridge, handed to the browser once.

The browser user never chooses a path on the GUI's machine. A download is fetched (and
its SHA-256 verified by the client library) into a private folder of its own under the
GUI's data directory (folders 0700), then published under a random one-time link
(``/download/<token>``) that

* serves only to the browser of the tab it was made for (same IP and user agent as the
  tab's connection),
* serves once: the file is unlinked as soon as its response starts (the open handle
  streams it), so nothing stays on disk whatever the browser does next,
* expires after ``LINK_TTL_S`` seconds, and with the tab's sign-in (``revoke``).

A link may also serve content that is relayed while it streams instead of a file
(``publish_stream``: an archive, gui/archive_relay.py), with the same rules; it expires
within the stream's idle limit, since the stream waits for the browser meanwhile.

Anything a crashed GUI process left behind is wiped when a GUI starts.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

import structlog

from protocol.streaming import STREAM_IDLE_TIMEOUT_S
from runtime.credentials import private_dir

log = structlog.get_logger()

DOWNLOAD_PATH = "/download"  # the HTTP route's prefix (gui/server.py serves it)
LINK_TTL_S = 60.0
_FOLDER_PREFIX = "dl-"
_PROCESS_PREFIX = "gui-"
_UNSAFE = '/\\\0\r\n"'


@dataclass(frozen=True, slots=True)
class Requester:
    """Who may open a link: the browser whose tab asked for it."""

    ip: str
    user_agent: str


class StreamedContent(Protocol):
    """What a link relays instead of a file: its size up front, then its bytes as they come."""

    total: int
    media_type: str

    def body(self) -> AsyncIterator[bytes]: ...

    def cancel(self) -> None: ...


@dataclass(slots=True)
class DownloadLink:
    token: str
    path: Path | None  # the verified file, alone in its private folder (None: a stream)
    filename: str  # the name the browser saves it under
    owner: str  # the GUI session (tab) it was made for
    requester: Requester
    expires_at: float  # time.monotonic()
    on_served: Callable[[], None] | None = None
    stream: StreamedContent | None = None  # relayed instead of a file; it says itself how it ended


def _wipe_dead_processes(area: Path) -> None:
    """Remove what GUI processes that are no longer running left behind (a crash, kill -9)."""
    for folder in area.glob(f"{_PROCESS_PREFIX}*"):
        try:
            os.kill(int(folder.name.removeprefix(_PROCESS_PREFIX)), 0)
        except ValueError:
            continue  # not one of ours
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


def safe_filename(name: str) -> str:
    """A file name with no path in it (the backend's name is only a suggestion to the browser)."""
    cleaned = "".join("_" if ch in _UNSAFE else ch for ch in name).strip(" .")
    return cleaned or "download"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the exact UTF-8 name (RFC 6266 / 5987)."""
    ascii_name = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=utf-8''{quote(filename, safe='')}"


class DownloadLinks:
    """The GUI process's one-time links (one instance, shared by every tab)."""

    def __init__(self, area: Path, ttl_s: float = LINK_TTL_S) -> None:
        private_dir(area)  # 0700; mkdtemp makes each download's own folder 0700 too
        _wipe_dead_processes(area)
        # Several GUI processes may share ``area``: each works in a folder of its own.
        self.root = area / f"{_PROCESS_PREFIX}{os.getpid()}"
        shutil.rmtree(self.root, ignore_errors=True)  # a dead process with a reused pid
        private_dir(self.root)
        self.ttl_s = ttl_s
        self._links: dict[str, DownloadLink] = {}

    def staging_path(self, filename: str) -> Path:
        """Where to fetch a file to: a fresh private folder under ``root``."""
        folder = Path(tempfile.mkdtemp(prefix=_FOLDER_PREFIX, dir=self.root))
        return folder / safe_filename(filename)

    def discard(self, path: Path) -> None:
        """Remove a staged file and its folder (only ever one of ours)."""
        folder = path.parent
        if folder.parent == self.root and folder.name.startswith(_FOLDER_PREFIX):
            shutil.rmtree(folder, ignore_errors=True)

    def publish(
        self,
        path: Path,
        filename: str,
        owner: str,
        requester: Requester,
        on_served: Callable[[], None] | None = None,
    ) -> str:
        """A one-time link to ``path`` for ``requester``; returns its URL path."""
        return self._publish(DownloadLink("", path, safe_filename(filename), owner, requester, 0.0, on_served))

    def publish_stream(self, stream: StreamedContent, filename: str, owner: str, requester: Requester) -> str:
        """A one-time link relaying ``stream`` to ``requester``; returns its URL path. Unserved, it is
        cancelled when the link ends."""
        link = DownloadLink("", None, safe_filename(filename), owner, requester, 0.0, stream=stream)
        return self._publish(link, min(self.ttl_s, STREAM_IDLE_TIMEOUT_S))

    def _publish(self, link: DownloadLink, ttl_s: float | None = None) -> str:
        ttl = self.ttl_s if ttl_s is None else ttl_s
        link.token = secrets.token_urlsafe(32)
        link.expires_at = time.monotonic() + ttl
        self._links[link.token] = link
        asyncio.get_running_loop().call_later(ttl, self._expire, link.token)
        log.info(
            "gui.download_link", owner=link.owner[:8], filename=link.filename, ttl_s=ttl, streamed=bool(link.stream)
        )
        return f"{DOWNLOAD_PATH}/{link.token}"

    def take(self, token: str, requester: Requester) -> DownloadLink | None:
        """The link if it may be served now to ``requester``; it is gone from the registry either way
        once it is served. A wrong requester does not burn the link (the right browser may still come)."""
        link = self._links.get(token)
        if link is None:
            return None
        if link.expires_at <= time.monotonic():
            self._expire(token)
            return None
        if link.requester != requester:
            log.warning("gui.download_link_refused", reason="another browser", ip=requester.ip)
            return None
        del self._links[token]
        return link

    def served(self, link: DownloadLink) -> None:
        """The response has its open handle: remove the file now and tell the tab (a stream tells it itself)."""
        if link.path is not None:
            self.discard(link.path)
        if link.on_served is not None:
            try:
                link.on_served()
            except Exception:  # the tab may be gone; the download itself went through
                log.exception("gui.download_served_callback_failed")

    def revoke(self, owner: str) -> int:
        """End every link of one tab (sign-out, session end); returns how many."""
        tokens = [t for t, link in self._links.items() if link.owner == owner]
        for token in tokens:
            self._drop(self._links.pop(token))
        return len(tokens)

    def _drop(self, link: DownloadLink) -> None:
        if link.path is not None:
            self.discard(link.path)
        if link.stream is not None:
            link.stream.cancel()

    def _expire(self, token: str) -> None:
        link = self._links.pop(token, None)
        if link is not None:
            self._drop(link)
            log.info("gui.download_link_expired", owner=link.owner[:8], filename=link.filename)

    def __len__(self) -> int:
        return len(self._links)
