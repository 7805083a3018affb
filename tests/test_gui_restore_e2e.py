"""Restoring in a real headless Chromium against a real stack (bridge + evolving mock): the Restore
view from a client to a backup, a folder, a file's versions and an older version downloaded by the
browser (its SHA-256 checked), the folder as an archive relayed to the browser as it streams (each
member's bytes checked, nothing of it on the GUI's disk); and a client's page leading to it."""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.download import download
from tests.conftest import Stack, ok, wait_until
from tests.gui_harness import (
    FletServer,
    admin_password,
    by_id,
    click_button,
    click_nav,
    expect,
    fill_textbox,
    open_signed_in,
    row_action,
    screenshot,
    wait_text,
)
from tests.gui_stack import SCREENSHOTS, stack_with_gui

pytestmark = [pytest.mark.timeout(240)]

SEPARATORS = ("/", "\\")


@pytest.fixture(scope="module")
def restore_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, FletServer]]:
    root = tmp_path_factory.mktemp("gui-restore")
    with stack_with_gui(root, "--tick", "1") as both:
        yield both


class DiskWatch:
    """Every file that appears under a folder while it watches (polled every few ms from a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.002):
            try:
                self.seen |= {path.name for path in self.root.rglob("*") if path.is_file()}
            except OSError:  # a download's folder went while being walked
                continue

    def __enter__(self) -> DiskWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def below(folder: str, path: str) -> bool:
    return folder == "/" or (
        path.startswith(folder) and (folder.endswith(SEPARATORS) or path[len(folder)] in SEPARATORS)
    )


def intact(c: Any, file_id: str, version: int, into: Path) -> str | None:
    """The SHA-256 of a version's bytes as the bridge streams them, or None when they are damaged."""
    target = into / f"{file_id}-{version}"
    reply = download(c, "download_file", {"file_id": file_id, "destination_path": str(target), "version": version})
    return hashlib.sha256(target.read_bytes()).hexdigest() if reply["success"] else None


def member_hashes(archive: bytes) -> dict[str, str]:
    """Name -> SHA-256 of every regular file in a tar."""
    found: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is not None:
                found[member.name] = hashlib.sha256(handle.read()).hexdigest()
    return found


def files_below(c: Any, snapshot_id: str, folder: str) -> dict[str, str]:
    """Path -> SHA-256 of every file of a backup under ``folder``, as browse_snapshot gives them."""
    found: dict[str, str] = {}
    for entry in ok(c.call("browse_snapshot", {"snapshot_id": snapshot_id, "path": folder}))["items"]:
        if entry["type"] == "dir":
            found |= files_below(c, snapshot_id, entry["path"])
        else:
            found[entry["path"]] = entry["sha256"]
    return found


def a_file_with_versions(stack: Stack, into: Path) -> dict[str, Any] | None:
    """A client's newest settled backup, the entries from its top down to a file that has an older
    version whose bytes download intact, and that file's versions."""
    with stack.client() as c:
        newest = ok(c.call("find_files", {"query": "", "limit": 1000}))["items"]
        for found in sorted(newest, key=lambda v: -v["version"]):
            versions = ok(c.call("get_file_versions", {"file_id": found["file_id"]}))["items"]
            if len(versions) < 2:
                continue
            runs = ok(c.call("list_snapshots", {"client_id": found["client_id"], "limit": 5}))["items"]
            run = next((r for r in runs if r["status"] in ("complete", "partial")), None)
            if run is None:
                continue
            chain, folder = [], "/"
            while True:
                items = ok(c.call("browse_snapshot", {"snapshot_id": run["id"], "path": folder}))["items"]
                step = next((e for e in items if e["file_id"] == found["file_id"]), None) or next(
                    (e for e in items if e["type"] == "dir" and below(e["path"], found["path"])), None
                )
                if step is None:
                    break  # not in that backup (deleted since, say)
                chain.append(step)
                if step["type"] == "file":
                    older = versions[-1]
                    if intact(c, found["file_id"], older["version"], into) != older["sha256"]:
                        break
                    client = ok(c.call("get_client_details", {"client_id": found["client_id"]}))["client"]
                    return {"client": client, "run": run, "chain": chain, "versions": versions, "older": older}
                folder = step["path"]
    return None


def test_restore_a_files_older_version_to_the_browser(
    browser: Any, restore_stack: tuple[Stack, FletServer], tmp_path: Path
) -> None:
    stack, server = restore_stack
    # The mock keeps a second version once a run stores a file anew: its ticks bring one within a minute.
    wanted = wait_until(lambda: a_file_with_versions(stack, tmp_path), 90, 2.0, "a file with two versions in a backup")
    client, run, chain, older = wanted["client"], wanted["run"], wanted["chain"], wanted["older"]
    page = open_signed_in(browser, server.url, "admin", admin_password(stack.data_dir), "admin")
    click_nav(page, "Restore")
    expect(by_id(page, "restore-prompt")).to_be_visible()
    fill_textbox(page, "Client (name or id)", client["name"])
    by_id(page, f"pick-client-{client['name']}").click()
    expect(by_id(page, "restore-backup")).to_have_text(re.compile(r"^Backup of \d{4}-"), timeout=15_000)
    wait_text(page, f"Backups of {client['name']}")
    by_id(page, f"snapshot-{run['id']}").click()
    started = run["started_at"].strftime("%Y-%m-%d %H:%M:%S")
    expect(by_id(page, "restore-backup")).to_have_text(f"Backup of {started}")
    screenshot(page, SCREENSHOTS / "restore-backup.png")
    for entry in chain:
        by_id(page, f"entry-{entry['name']}").click()
    file = chain[-1]
    expect(by_id(page, "restore-versions-of")).to_have_text(f"Versions of {file['name']}", timeout=15_000)
    for version in wanted["versions"][:10]:
        expect(by_id(page, f"version-{version['version']}")).to_be_visible()
    # The row's texts make up its accessible name (Flutter merges them into aria-label).
    expect(by_id(page, f"version-{file['version']}")).to_have_attribute("aria-label", re.compile("in this backup"))
    screenshot(page, SCREENSHOTS / "restore-versions.png")

    staged = stack.data_dir / "gui-downloads"
    with DiskWatch(staged) as file_watch, page.expect_download(timeout=30_000) as download:
        by_id(page, f"download-version-{older['version']}").click()
    # A file is fetched whole (and checked) before the browser gets it: the watch does see staging.
    assert file["name"] in file_watch.seen
    received = Path(download.value.path()).read_bytes()
    assert hashlib.sha256(received).hexdigest() == older["sha256"] and len(received) == older["size"]
    assert download.value.suggested_filename == file["name"]
    wait_text(page, re.compile("^Downloaded "), exact=False)

    # The folder shown, as an archive: every file below it, named from the folder, with its bytes.
    assert len(chain) > 1, "the mock keeps every file in a folder"
    folder = chain[-2]
    with stack.client() as c:
        expected = {
            folder["name"] + path[len(folder["path"]) :]: sha
            for path, sha in files_below(c, run["id"], folder["path"]).items()
        }
    expect(by_id(page, "restore-target")).to_have_text(f"Takes {folder['path']}")
    with DiskWatch(staged) as archive_watch:  # from the click until the browser has it all
        with page.expect_download(timeout=30_000) as archive:
            click_button(page, "Download as archive")
        tar_bytes = Path(archive.value.path()).read_bytes()
        wait_text(page, re.compile("^Downloaded .*\\.tar to your browser"), exact=False)
    assert member_hashes(tar_bytes) == expected and archive.value.suggested_filename == f"{folder['name']}.tar"
    # Relayed as it streamed, verified whole by the GUI, and never written to the GUI's disk.
    assert not archive_watch.seen and not [p for p in staged.rglob("*") if p.is_file()]
    relayed = re.findall(r"gui\.archive_relayed\s.*bytes=(\d+).*ok=True", server.log(tail=1_000_000))
    assert relayed and int(relayed[-1]) == len(tar_bytes)
    screenshot(page, SCREENSHOTS / "restore-archived.png")

    # The file alone, restored onto the client's machine (the mock's agent carries the job out).
    by_id(page, f"select-{file['name']}").click()
    expect(by_id(page, "restore-target")).to_have_text("Takes 1 selected item")
    click_button(page, "Restore to client…")
    fill_textbox(page, "Destination on the client", "/tmp/restored-by-the-e2e-test")
    click_button(page, "Start restore")
    expect(by_id(page, "restore-status")).to_have_text(re.compile(r"^Done: 1 restored "), timeout=60_000)
    screenshot(page, SCREENSHOTS / "restore-to-client.png")
    click_button(page, "Close")
    with stack.client() as c:
        (job,) = ok(c.call("list_restore_jobs", {"client_id": client["id"]}))["items"][:1]
    assert (job["status"], job["paths"], job["destination"]) == (
        "complete",
        [file["path"]],
        "/tmp/restored-by-the-e2e-test",
    )

    # Again with the server stopped: the job waits queued, and "Cancel restore" ends it at once.
    with stack.client() as c:
        ok(c.call("stop_server", {}))
    try:
        click_button(page, "Restore to client…")
        fill_textbox(page, "Destination on the client", "/tmp/cancelled-by-the-e2e-test")
        click_button(page, "Start restore")
        expect(by_id(page, "restore-status")).to_have_text(re.compile(r"^Queued: "), timeout=15_000)
        click_button(page, "Cancel restore")
        cancelled = re.compile(r"^Cancelled after 0 of 1 file: 0 restored")
        expect(by_id(page, "restore-status")).to_have_text(cancelled, timeout=15_000)
        expect(page.get_by_role("button", name="Cancel restore")).to_have_count(0)
        screenshot(page, SCREENSHOTS / "restore-cancelled.png")
        click_button(page, "Close")
    finally:
        with stack.client() as c:
            ok(c.call("start_server", {}))
    with stack.client() as c:
        (latest,) = ok(c.call("list_restore_jobs", {"client_id": client["id"], "limit": 1}))["items"]
    assert (latest["status"], latest["destination"]) == ("cancelled", "/tmp/cancelled-by-the-e2e-test")
    page.context.close()


def test_the_client_page_shows_its_backups_and_opens_restore(
    browser: Any, restore_stack: tuple[Stack, FletServer]
) -> None:
    stack, server = restore_stack
    with stack.client() as c:
        client = ok(c.call("get_clients", {"limit": 1, "sort": "name"}))["items"][0]
        runs = ok(c.call("list_snapshots", {"client_id": client["id"], "limit": 1}))
    page = open_signed_in(browser, server.url, "admin", admin_password(stack.data_dir), "admin")
    click_nav(page, "Clients")
    fill_textbox(page, "Search clients", client["name"])
    row_action(page, f"details-client-{client['name']}").click()
    expect(by_id(page, "client-name")).to_have_text(client["name"], timeout=15_000)
    wait_text(page, "History of backups")
    # The marker, with its tooltip (the rule in full) as part of its accessible text.
    marker = re.compile(r"^Overdue: no complete backup within twice .*\n(Overdue|On schedule|No backup yet)$", re.S)
    expect(by_id(page, "client-overdue")).to_have_text(marker)
    if runs["total"]:
        expect(by_id(page, "client-runs-page")).to_have_text(re.compile(r"^1–\d+ of \d+$"))
    else:
        expect(by_id(page, "client-no-backups")).to_have_text("No backups yet for this client")
    screenshot(page, SCREENSHOTS / "client-page.png")

    click_button(page, f"Files of {client['name']}")
    wait_text(page, f"Showing files of {client['name']}")
    click_nav(page, "Clients")
    row_action(page, f"details-client-{client['name']}").click()
    click_button(page, "Restore…")
    wait_text(page, f"Backups of {client['name']}")
    screenshot(page, SCREENSHOTS / "restore-from-client-page.png")
    page.context.close()
