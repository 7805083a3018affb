"""Sign-in, roles, the audit trail and browser downloads, in a real Chromium against a real stack."""

from __future__ import annotations

import hashlib
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from actors.bridge.auth import totp
from client.facade import ServerBridge
from runtime.credentials import ConnectionFile
from tests.conftest import Stack, ok, wait_until
from tests.gui_harness import (
    LOAD_TIMEOUT_MS,
    FletServer,
    button,
    by_id,
    click_button,
    click_nav,
    click_nav_if_shown,
    expect,
    fill_textbox,
    gui_args,
    open_login,
    open_signed_in,
    row_action,
    screenshot,
    sign_in,
    textbox,
    wait_text,
)

pytestmark = [pytest.mark.processes, pytest.mark.timeout(240)]

SCREENSHOTS = Path("/tmp/gui-trust")
VIEWER, VIEWER_PASSWORD = "vera", "viewer-password-1"
OPERATOR, OPERATOR_PASSWORD = "otto", "operator-password-1"


@dataclass
class Console:
    stack: Stack
    gui: FletServer
    admin_password: str

    def call(self, operation: str, /, **args: Any) -> Any:
        with self.stack.client() as c:
            return ok(c.call(operation, args))

    def gui_bridge(self) -> ServerBridge:
        """A facade with the GUI process's own key, as a crafted request from its sessions would come."""
        return ServerBridge(
            self.stack.endpoint, connection=ConnectionFile.load(self.stack.data_dir / "credentials" / "gui.json")
        )


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("gui-trust")
    stack = Stack(root / "stack", "--tick", "3600").start()
    gui = FletServer(module="gui", args=gui_args(stack.data_dir, stack.endpoint), log_path=root / "gui.log")
    try:
        password = (stack.data_dir / "credentials" / "admin-password").read_text().strip()
        made = Console(stack, gui.start(), password)
        made.call("user_add", name=VIEWER, role="viewer", password=VIEWER_PASSWORD)
        made.call("user_add", name=OPERATOR, role="operator", password=OPERATOR_PASSWORD)
        yield made
    finally:
        gui.stop()
        stack.stop()


def test_wrong_password_is_refused_then_the_right_one_signs_in(browser: Any, console: Console) -> None:
    page = open_login(browser, console.gui.url)
    screenshot(page, SCREENSHOTS / "login.png")
    expect(button(page, "Sign in")).to_be_visible()
    sign_in(page, "admin", "not-the-password")
    expect(by_id(page, "login-message")).to_have_text(re.compile("^Sign-in refused: "), timeout=15_000)
    expect(textbox(page, "Username")).to_have_value("admin")  # still the login page, nothing crashed
    expect(textbox(page, "Password")).to_have_value("")
    screenshot(page, SCREENSHOTS / "login-refused.png")
    sign_in(page, "admin", console.admin_password, "admin")
    expect(by_id(page, "server-state")).to_have_text("running", timeout=15_000)
    expect(button(page, "Sign out")).to_be_visible()
    screenshot(page, SCREENSHOTS / "dashboard.png")
    click_button(page, "Sign out")
    expect(by_id(page, "login-message")).to_have_text("You signed out")
    page.context.close()


def test_a_viewer_sees_delete_disabled_and_a_crafted_delete_is_refused(browser: Any, console: Console) -> None:
    victim = console.call("get_clients", limit=1)["items"][0]
    page = open_signed_in(browser, console.gui.url, VIEWER, VIEWER_PASSWORD, "viewer")
    expect(page.get_by_role("button", name=re.compile(r"^Audit(\s|$)"))).to_have_count(0)  # admins only
    expect(button(page, "Stop server")).to_be_disabled()
    click_nav(page, "Clients")
    wait_text(page, victim["name"])
    delete = row_action(page, f"delete-client-{victim['name']}")
    expect(delete).to_be_disabled()
    # A disabled entry is labelled with its tooltip (why), then its text.
    why = f"Delete {victim['name']} · Needs role admin"
    expect(delete).to_have_attribute("aria-label", re.compile(rf"^{re.escape(why)}\n"))
    screenshot(page, SCREENSHOTS / "viewer-clients.png")
    page.context.close()

    bridge = console.gui_bridge()
    try:
        login = bridge.login(VIEWER, VIEWER_PASSWORD)
        assert login["success"], login
        bridge.async_client.auth = login["data"]["token"]  # the sync calls act for the same session
        refused = bridge.delete_client(victim["id"])
        assert refused["error_code"] == "FORBIDDEN" and "admin" in refused["message"], refused
    finally:
        bridge.close_sync()
    assert console.call("get_client_details", client_id=victim["id"])["client"]["id"] == victim["id"]
    denial = console.call("get_audit_log", user=VIEWER, op="delete_client")["items"][0]
    assert denial["outcome"] == "FORBIDDEN", denial


def test_an_admins_delete_succeeds_and_the_audit_names_the_admin(browser: Any, console: Console) -> None:
    victim = console.call("get_clients", limit=3)["items"][2]
    page = open_signed_in(browser, console.gui.url, "admin", console.admin_password, "admin")
    click_nav(page, "Clients")
    wait_text(page, victim["name"])
    row_action(page, f"delete-client-{victim['name']}").click()
    click_button(page, "Delete")
    wait_text(page, re.compile(rf"^Deleted {re.escape(victim['name'])}"), exact=False)
    record = console.call("get_audit_log", op="delete_client", outcome="ok")["items"][0]
    assert record["who"]["user"] == "admin" and record["who"]["role"] == "admin", record
    assert victim["id"] in str(record["ids"]), record
    click_nav(page, "Audit")
    wait_text(page, "admin (admin)")
    wait_text(page, "delete_client")
    screenshot(page, SCREENSHOTS / "audit.png")
    page.context.close()


def test_the_download_button_gives_the_browser_the_file(browser: Any, console: Console) -> None:
    file = console.call("get_files", limit=1, filters={"status": "verified", "sort": "-size"})["items"][0]
    page = open_signed_in(browser, console.gui.url, OPERATOR, OPERATOR_PASSWORD, "operator")
    click_nav(page, "Files")
    fill_textbox(page, "Search files", file["path"])
    with page.expect_download(timeout=30_000) as started:
        row_action(page, f"download-file-{file['id']}").click()
    download = started.value
    assert download.suggested_filename == file["name"]
    assert hashlib.sha256(Path(download.path()).read_bytes()).hexdigest() == file["sha256"]
    wait_text(page, re.compile(rf"^Downloaded {re.escape(file['name'])} to your browser"), exact=False)
    expect(by_id(page, "signed-in-user")).to_have_text(f"{OPERATOR} (operator)")  # the console stayed
    # Served once, then gone from the GUI's disk.
    with pytest.raises(urllib.error.HTTPError) as again:
        urllib.request.urlopen(download.url, timeout=5)
    assert again.value.code == 410
    area = console.stack.data_dir / "gui-downloads"
    assert [p for p in area.rglob("*") if p.is_file()] == []
    page.context.close()


def test_a_user_with_totp_is_asked_for_the_code(browser: Any, console: Console) -> None:
    name, password = f"tina-{uuid.uuid4().hex[:6]}", "totp-password-1"  # a rerun adds its own user
    console.call("user_add", name=name, role="viewer", password=password)
    secret = console.call("user_totp", name=name, enable=True)["secret"]
    page = open_login(browser, console.gui.url)
    expect(textbox(page, "Code")).to_have_count(0)  # asked only of users who have TOTP
    sign_in(page, name, password)
    expect(by_id(page, "login-message")).to_have_text(re.compile("code"), timeout=15_000)
    fill_textbox(page, "Code", totp.code_at(secret, totp.step_of(time.time())))
    click_button(page, "Sign in")
    expect(by_id(page, "signed-in-user")).to_have_text(f"{name} (viewer)", timeout=15_000)
    page.context.close()


def test_a_session_the_bridge_ended_returns_the_tab_to_the_login_page(browser: Any, console: Console) -> None:
    name, password = f"sam-{uuid.uuid4().hex[:6]}", "short-lived-password"  # a rerun adds its own user
    console.call("user_add", name=name, role="viewer", password=password)
    page = open_signed_in(browser, console.gui.url, name, password, "viewer")
    console.call("user_passwd", name=name, password="another-password-2")  # ends the user's sessions
    # The tab learns it at its next request: the click below, or a background reload that got there
    # first, in which case the rail is already gone (on a loaded machine it often is).
    expired = by_id(page, "login-message")
    click_nav_if_shown(page, "Clients", timeout=LOAD_TIMEOUT_MS)  # a full suite's load: seen past 5 s
    expect(expired).to_have_text("Your session expired; sign in again", timeout=LOAD_TIMEOUT_MS)
    sign_in(page, name, "another-password-2", "viewer")
    page.context.close()


def test_the_theme_follows_the_user(browser: Any, console: Console) -> None:
    page = open_signed_in(browser, console.gui.url, OPERATOR, OPERATOR_PASSWORD, "operator")
    click_nav(page, "Settings")
    page.get_by_role("radio", name="Dark").click()
    expect(page.get_by_role("radio", name="Dark")).to_be_checked()
    bridge = console.gui_bridge()
    try:

        def theme() -> Any:
            login = bridge.login(OPERATOR, OPERATOR_PASSWORD)
            assert login["success"], login
            return login["data"]["settings"].get("theme")

        wait_until(lambda: theme() == "dark", 10, 0.2, "the theme saved as the user's setting")
    finally:
        bridge.close_sync()
    page.context.close()
    again = open_signed_in(browser, console.gui.url, OPERATOR, OPERATOR_PASSWORD, "operator")
    click_nav(again, "Settings")
    expect(again.get_by_role("radio", name="Dark")).to_be_checked()
    again.context.close()
