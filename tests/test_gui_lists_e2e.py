"""The console's lists in a real headless Chromium against a real stack: narrow windows, wide
tables, the files view's client column, paging, search, empty results, a failed download.

The stack's mock does not evolve during the module (a long tick), so a page holds the same rows
from one look to the next; no test writes, so a rerun on the same stack sees the same data.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from client.download import download
from tests.conftest import Stack
from tests.gui_harness import (
    FOCUS_SETTLE_MS,
    FletServer,
    by_id,
    click_button,
    click_nav,
    expect,
    fill_textbox,
    row_action,
    screenshot,
    select_dropdown,
    textbox,
    wait_no_text,
    wait_text,
)
from tests.gui_stack import SCREENSHOTS, admin_console, data, stack_with_gui

pytestmark = [pytest.mark.timeout(180)]

FILES = 2_500  # more than 1,000, so the thousands separator shows
NARROW = (800, 800)
# What a list takes to show after a click or a search on a machine busy with other tests.
SHOWN_MS = 20_000


@pytest.fixture(scope="module")
def lists_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, FletServer]]:
    root = tmp_path_factory.mktemp("gui-lists")
    with stack_with_gui(root, "--files", str(FILES), "--tick", "3600") as both:
        yield both


def assert_within_window(page: Any, locator: Any) -> None:
    """The control is drawn entirely inside the browser window (not cut off at its right edge)."""
    expect(locator).to_be_visible(timeout=SHOWN_MS)
    box = locator.bounding_box()
    width = page.viewport_size["width"]
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (box, width)


def test_a_narrow_window_keeps_the_row_actions_reachable(browser, lists_stack) -> None:
    stack, server = lists_stack
    page = admin_console(browser, stack, server, NARROW)
    client = data(stack, "get_clients", limit=1)["items"][0]
    click_nav(page, "Clients")
    wait_text(page, client["name"])
    assert_within_window(page, page.get_by_label("Refresh clients", exact=True))
    assert_within_window(page, by_id(page, f"actions-client-{client['name']}"))
    delete = row_action(page, f"delete-client-{client['name']}")
    assert_within_window(page, delete)
    screenshot(page, SCREENSHOTS / "clients-800px.png")
    delete.click()
    wait_text(page, re.compile(rf"^Delete client {re.escape(client['name'])}\?"), exact=False)
    click_button(page, "Cancel")
    wait_no_text(page, re.compile(rf"^Delete client {re.escape(client['name'])}\?"), exact=False)

    file = data(stack, "get_files", limit=1, filters={"sort": "name"})["items"][0]
    click_nav(page, "Files")
    assert_within_window(page, page.get_by_label("Refresh files", exact=True))
    assert_within_window(page, by_id(page, f"actions-file-{file['id']}"))
    delete = row_action(page, f"delete-file-{file['id']}")
    for action in ("verify", "download", "delete"):
        assert_within_window(page, by_id(page, f"{action}-file-{file['id']}"))
    screenshot(page, SCREENSHOTS / "files-800px.png")
    delete.click()
    wait_text(page, re.compile(rf"^Delete {re.escape(file['path'])} "), exact=False)
    click_button(page, "Cancel")
    wait_no_text(page, re.compile(rf"^Delete {re.escape(file['path'])} "), exact=False)
    page.context.close()


def test_a_wide_database_table_scrolls_sideways_with_its_scrollbar(browser, lists_stack) -> None:
    stack, server = lists_stack
    columns = [c["name"] for c in data(stack, "get_table_data", table_name="files", limit=1)["columns"]]
    page = admin_console(browser, stack, server)
    click_nav(page, "Database")
    wait_text(page, "Table clients")
    by_id(page, "db-table-files").click()
    wait_text(page, "Table files")
    first, last = (by_id(page, f"db-col-{name}") for name in (columns[0], columns[-1]))
    expect(first).to_be_in_viewport(timeout=SHOWN_MS)
    expect(last).to_have_count(1)  # every column is there...
    expect(last).not_to_be_in_viewport()  # ...and they do not all fit
    # The sideways scrollbar sits at the bottom of the table's area, in sight: drag its thumb right.
    area = by_id(page, "db-table-rows").bounding_box()
    assert area is not None
    bar_y = area["y"] + area["height"] - 5
    page.mouse.move(area["x"] + 20, bar_y)
    page.mouse.down()
    page.mouse.move(area["x"] + area["width"] + 100, bar_y, steps=10)
    page.mouse.up()
    expect(last).to_be_in_viewport(timeout=SHOWN_MS)
    expect(first).not_to_be_in_viewport(timeout=SHOWN_MS)
    screenshot(page, SCREENSHOTS / "database-scrolled.png")
    page.context.close()


def test_files_show_their_client_and_page_by_size_and_number(browser, lists_stack) -> None:
    stack, server = lists_stack
    total = data(stack, "get_files", limit=1)["total"]
    third_page = data(stack, "get_files", offset=50, limit=25, filters={"sort": "name"})["items"]
    owner = data(stack, "resolve_client", client_id_or_name=third_page[0]["client_id"])
    page = admin_console(browser, stack, server)
    click_nav(page, "Files")
    expect(by_id(page, "files-page")).to_have_text(f"1–100 of {total:,}", timeout=SHOWN_MS)
    select_dropdown(page, "files-page-size", "25")
    expect(by_id(page, "files-page")).to_have_text(f"1–25 of {total:,}", timeout=SHOWN_MS)
    expect(by_id(page, "files-pages")).to_have_text(f"of {-(-total // 25):,}", timeout=SHOWN_MS)
    fill_textbox(page, "Page", "3", submit=True)
    expect(by_id(page, "files-page")).to_have_text(f"51–75 of {total:,}", timeout=SHOWN_MS)
    # A row's plain cells are read together as its label, one per line.
    row = by_id(page, f"file-row-{third_page[0]['id']}")
    expect(row).to_have_attribute(
        "aria-label", re.compile(rf"(^|\n){re.escape(owner['name'])}(\n|$)"), timeout=SHOWN_MS
    )
    expect(by_id(page, "files-col-client")).to_be_visible(timeout=SHOWN_MS)
    fill_textbox(page, "Page", "99999", submit=True)
    wait_text(page, f"1 to {-(-total // 25):,}")  # said, not obeyed
    expect(by_id(page, "files-page")).to_have_text(f"51–75 of {total:,}", timeout=SHOWN_MS)
    screenshot(page, SCREENSHOTS / "files-paged.png")
    page.context.close()


def test_search_follows_typing_and_an_empty_result_says_so(browser, lists_stack) -> None:
    stack, server = lists_stack
    file = data(stack, "get_files", limit=1, filters={"sort": "-size"})["items"][0]
    matches = data(stack, "get_files", limit=1, filters={"search": file["path"]})["total"]
    page = admin_console(browser, stack, server)
    click_nav(page, "Files")
    expect(by_id(page, "files-page")).to_have_text(re.compile(r"^1–100 of "), timeout=SHOWN_MS)
    box = textbox(page, "Search files")
    box.click()
    page.wait_for_timeout(FOCUS_SETTLE_MS)  # Flutter takes input only a moment after focus (as fill_textbox)
    box.press_sequentially(file["path"], delay=20)  # faster than the debounce: one question at the end
    expect(box).to_have_value(file["path"])  # no keystroke lost while the list was asked
    expect(by_id(page, "files-page")).to_have_text(f"1–{matches} of {matches}", timeout=SHOWN_MS)
    expect(by_id(page, f"file-row-{file['id']}")).to_be_visible(timeout=SHOWN_MS)

    missing = f"no-such-file-{uuid.uuid4().hex[:8]}"
    fill_textbox(page, "Search files", missing)
    expect(by_id(page, "files-empty")).to_have_text(f"No files matching “{missing}”.", timeout=SHOWN_MS)
    expect(by_id(page, "files-col-name")).to_have_count(0)  # no bare headers
    expect(by_id(page, "files-page")).to_have_count(0)  # and no "0–0 of 0"
    screenshot(page, SCREENSHOTS / "files-empty.png")
    fill_textbox(page, "Search files", "")
    expect(by_id(page, "files-page")).to_have_text(re.compile(r"^1–100 of "), timeout=SHOWN_MS)
    expect(by_id(page, "files-empty")).to_have_count(0, timeout=SHOWN_MS)
    page.context.close()


def test_counts_read_in_words_with_separators(browser, lists_stack) -> None:
    stack, server = lists_stack
    files = data(stack, "get_files", limit=1)["total"]
    page = admin_console(browser, stack, server)
    click_nav(page, "Database")
    expect(by_id(page, "db-table-files")).to_have_text(re.compile(rf"^files\s+{files:,} rows · "), timeout=SHOWN_MS)
    for table in data(stack, "get_database_info")["tables"]:  # the activity table grows as we look
        expect(by_id(page, f"db-table-{table['name']}")).to_have_text(re.compile(r"\s\d{1,3}(,\d{3})* rows? · "))
    page.context.close()


def test_a_failed_download_keeps_its_dialog(browser, lists_stack, tmp_path: Path) -> None:
    stack, server = lists_stack
    damaged = None
    with stack.client() as c:
        candidates = c.call("get_files", {"limit": 50, "filters": {"status": "error"}})["data"]["items"]
        for f in candidates:
            got = download(c, "download_file", {"file_id": f["id"], "destination_path": str(tmp_path / f["id"])})
            if got.get("error_code") == "FILE_DAMAGED":
                damaged = f
                break
    assert damaged is not None, "the mock's dataset holds damaged files (about 4 % of verified ones)"
    matches = data(stack, "get_files", limit=1, filters={"search": damaged["path"]})["total"]
    page = admin_console(browser, stack, server)
    click_nav(page, "Files")
    expect(by_id(page, "files-page")).to_have_text(re.compile(r"^1–100 of "), timeout=SHOWN_MS)
    fill_textbox(page, "Search files", damaged["path"])
    expect(by_id(page, "files-page")).to_have_text(f"1–{matches} of {matches}", timeout=SHOWN_MS)
    row_action(page, f"download-file-{damaged['id']}").click()
    status = by_id(page, "download-status")
    expect(status).to_have_text(re.compile(r"^Download failed: .*\[FILE_DAMAGED\]$"), timeout=20_000)
    expect(page.get_by_role("alertdialog")).to_have_count(1)  # still open, saying why
    wait_text(page, f"Download {damaged['name']}")
    click_button(page, "Close")  # nothing left to cancel (gui/views/download.py)
    expect(page.get_by_role("alertdialog")).to_have_count(0)
    page.context.close()
