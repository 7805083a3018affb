"""Several operators at once, in a real headless Chromium against a real stack (issue 11): tabs of
the console on one GUI process, each its own browser context (its own session), and writes made
elsewhere (through the bridge, as another console's would). Every tab on the Clients view shows
every write, its row's actions named after the new name; a tab on another view shows the latest
name once it opens the Clients view; a tab opened afterwards shows it too.

Each write waits until every tab shows it before the next, so nothing depends on timing; names are
made unique per run, so a rerun on the same stack starts from whatever name the client has then.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Stack
from tests.gui_harness import (
    FletServer,
    admin_password,
    by_id,
    click_nav,
    expect,
    open_signed_in,
    wait_text,
)
from tests.gui_stack import stack_with_gui

pytestmark = [pytest.mark.timeout(240)]

TABS = 3
WRITES = 4
SHOWN_MS = 20_000  # a machine busy with other tests


@pytest.fixture(scope="module")
def tabs_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, FletServer]]:
    # The mock's world stands still (a tick of an hour): the only changes are this module's writes.
    with stack_with_gui(tmp_path_factory.mktemp("gui-tabs"), "--tick", "3600") as both:
        yield both


def first_client(stack: Stack) -> dict[str, Any]:
    with stack.client() as c:
        reply = c.call("get_clients", {"limit": 1, "sort": "name"})
    assert reply["success"], reply
    client: dict[str, Any] = reply["data"]["items"][0]
    return client


def rename(stack: Stack, client_id: str, name: str) -> None:
    with stack.client() as c:
        reply = c.call("update_row", {"table_name": "clients", "row_id": client_id, "updated_data": {"name": name}})
    assert reply["success"], reply


def console(browser: Any, stack: Stack, server: FletServer) -> Any:
    return open_signed_in(browser, server.url, "admin", admin_password(stack.data_dir), "admin")


def shows_client(page: Any, name: str) -> None:
    """The Clients view shows ``name`` in its row, and the row's menu is named after it."""
    wait_text(page, name, timeout=SHOWN_MS)
    expect(by_id(page, f"actions-client-{name}")).to_have_count(1, timeout=SHOWN_MS)


def test_every_tab_shows_every_write(browser, tabs_stack) -> None:
    stack, server = tabs_stack
    target = first_client(stack)
    # "<its name>-tabs-<run>-<n>" sorts right after its name: the row stays first on the page.
    base = target["name"].split("-tabs-")[0]
    run = uuid.uuid4().hex[:6]
    watching, elsewhere = [], None
    try:
        for _ in range(TABS):
            page = console(browser, stack, server)
            watching.append(page)
            click_nav(page, "Clients")
            shows_client(page, target["name"])
        elsewhere = console(browser, stack, server)  # stays on the dashboard: its Clients view is hidden
        wait_text(elsewhere, "Dashboard")
        for n in range(WRITES):
            name = f"{base}-tabs-{run}-{n}"
            rename(stack, target["id"], name)
            for page in watching:
                shows_client(page, name)
        click_nav(elsewhere, "Clients")
        shows_client(elsewhere, name)
        late = console(browser, stack, server)
        watching.append(late)
        click_nav(late, "Clients")
        shows_client(late, name)
    finally:
        for page in [*watching, *([elsewhere] if elsewhere is not None else [])]:
            page.context.close()
