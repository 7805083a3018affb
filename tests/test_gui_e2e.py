"""The console in a real headless Chromium against a real stack (bridge + mock processes)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack
from tests.gui_harness import (
    FletServer,
    admin_password,
    by_id,
    click_button,
    click_nav,
    expect,
    fill_textbox,
    gui_args,
    row_action,
    screenshot,
    sign_in,
    wait_no_text,
    wait_text,
)
from tests.gui_stack import SCREENSHOTS, admin_console, data, stack_with_gui

pytestmark = [pytest.mark.timeout(180)]


def banner(page: Any, identifier: str) -> Any:
    return by_id(page, identifier)


@pytest.fixture(scope="module")
def gui_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, FletServer]]:
    root = tmp_path_factory.mktemp("gui")
    # The mock's world stands still here (a tick of an hour): these tests act on rows they picked, and
    # with the world evolving every second a picked client could disconnect, or a verified file start
    # uploading, before the click landed (under a full suite's load, about one run in three).
    with stack_with_gui(root, "--tick", "3600") as both:
        yield both


def test_every_view_opens_and_the_pill_says_demo_data(browser, gui_stack) -> None:
    stack, server = gui_stack
    page = admin_console(browser, stack, server)
    expect(banner(page, "connection-state")).to_have_text("connected", timeout=15_000)
    expect(banner(page, "data-source")).to_have_text("DEMO DATA", timeout=15_000)
    expect(by_id(page, "server-state")).to_have_text("running")
    screenshot(page, SCREENSHOTS / "dashboard.png")
    first_client = data(stack, "get_clients", limit=1)["items"][0]["name"]
    click_nav(page, "Clients")
    wait_text(page, first_client)
    screenshot(page, SCREENSHOTS / "clients.png")
    click_nav(page, "Files")
    expect(by_id(page, "files-page")).to_have_text(re.compile(r"^1–\d+ of \d+$"), timeout=15_000)
    screenshot(page, SCREENSHOTS / "files.png")
    click_nav(page, "Database")
    wait_text(page, "Table clients")
    screenshot(page, SCREENSHOTS / "database.png")
    click_nav(page, "Activity")
    wait_text(page, "Server logs")
    screenshot(page, SCREENSHOTS / "activity.png")
    click_nav(page, "Audit")
    wait_text(page, re.compile(r"^Newest first"), exact=False)
    screenshot(page, SCREENSHOTS / "audit.png")
    click_nav(page, "Settings")
    click_button(page, "Test connection")
    expect(by_id(page, "connection-test-result")).to_have_text(re.compile(r"^OK in .* mode mock$"))
    screenshot(page, SCREENSHOTS / "settings.png")
    page.context.close()


def test_delete_in_one_browser_shows_in_another(browser, gui_stack) -> None:
    # How fast is bench/bench_gui.py's business (about 0.3 s here): a test that failed past 2 s
    # failed on a loaded machine, not on behaviour.
    stack, server = gui_stack
    victim = data(stack, "get_clients", limit=3)["items"][2]
    pages = [admin_console(browser, stack, server) for _ in range(2)]
    for page in pages:
        click_nav(page, "Clients")
        wait_text(page, victim["name"])
    deleter, watcher = pages
    row_action(deleter, f"delete-client-{victim['name']}").click()
    wait_text(deleter, re.compile(rf"{victim['files_count']} files? \("), exact=False)  # the dialog says how many go
    click_button(deleter, "Delete")
    wait_no_text(watcher, victim["name"])
    wait_no_text(deleter, victim["name"])
    for page in pages:
        page.context.close()
    assert all(c["id"] != victim["id"] for c in data(stack, "get_clients")["items"])


def test_disconnect_verify_download_and_edit(browser, gui_stack) -> None:
    stack, server = gui_stack
    page = admin_console(browser, stack, server)
    connected = data(stack, "get_clients", status="connected", limit=1)["items"][0]
    click_nav(page, "Clients")
    fill_textbox(page, "Search clients", connected["name"])
    row_action(page, f"disconnect-client-{connected['name']}").click()
    wait_text(page, f"Disconnected {connected['name']}")
    assert data(stack, "get_client_details", client_id=connected["id"])["client"]["status"] != "connected"

    file = data(stack, "get_files", limit=1, filters={"status": "verified", "sort": "-size"})["items"][0]
    click_nav(page, "Files")
    fill_textbox(page, "Search files", file["path"])
    row_action(page, f"verify-file-{file['id']}").click()
    wait_text(page, re.compile(rf"^Verify {re.escape(file['name'])}: intact"), exact=False)

    with page.expect_download(timeout=20_000) as started:
        row_action(page, f"download-file-{file['id']}").click()
    assert hashlib.sha256(Path(started.value.path()).read_bytes()).hexdigest() == file["sha256"]
    wait_text(page, re.compile("^Downloaded "), exact=False)

    target = data(stack, "get_table_data", table_name="clients", limit=1)["rows"][0]
    click_nav(page, "Database")
    wait_text(page, "Table clients")
    row_action(page, f"edit-row-{target['id']}").click()
    fill_textbox(page, "name", "edited-in-the-gui")
    click_button(page, "Save")
    wait_text(page, f"Saved clients row {target['id']}")
    click_nav(page, "Clients")
    fill_textbox(page, "Search clients", "edited-in")
    wait_text(page, "edited-in-the-gui")
    page.context.close()


def test_bridge_killed_then_back_signs_in_again_without_reload(browser, make_stack, tmp_path: Path) -> None:
    stack: Stack = make_stack("--tick", "1")
    with FletServer(
        module="gui", args=gui_args(stack.data_dir, stack.endpoint), log_path=tmp_path / "gui.log"
    ) as server:
        page = admin_console(browser, stack, server)
        expect(banner(page, "connection-state")).to_have_text("connected", timeout=15_000)
        click_nav(page, "Clients")
        name = data(stack, "get_clients", limit=1)["items"][0]["name"]
        wait_text(page, name)
        os.kill(stack.child_pid("bridge"), signal.SIGKILL)
        expect(banner(page, "connection-state")).to_have_text(re.compile("reconnecting|disconnected"), timeout=10_000)
        screenshot(page, SCREENSHOTS / "bridge-killed.png")
        stack.wait_backend_alive("mock", 30)
        # The bridge keeps user sessions in memory only: once it is back, the tab's next request
        # is refused as UNAUTHENTICATED and the tab asks to sign in again, without a reload.
        expect(by_id(page, "login-message")).to_have_text("Your session expired; sign in again", timeout=20_000)
        sign_in(page, "admin", admin_password(stack.data_dir), "admin")
        expect(banner(page, "connection-state")).to_have_text("connected", timeout=20_000)
        expect(banner(page, "data-source")).to_have_text("DEMO DATA", timeout=10_000)
        click_nav(page, "Clients")
        wait_text(page, name, timeout=10_000)
        page.context.close()
