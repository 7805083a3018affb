"""The activity view's buttons in a real browser: pause and resume the feed, export to files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack
from tests.gui_harness import (
    FletServer,
    admin_password,
    click_button,
    click_nav,
    gui_args,
    open_signed_in,
    wait_text,
)

pytestmark = [pytest.mark.timeout(180)]


def test_pause_resume_and_export(browser: Any, tmp_path: Path) -> None:
    stack = Stack(tmp_path / "stack", "--tick", "1").start()
    exports = stack.data_dir / "exports"
    server = FletServer(module="gui", args=gui_args(stack.data_dir, stack.endpoint), log_path=tmp_path / "gui.log")
    try:
        url = server.start().url
        page = open_signed_in(browser, url, "admin", admin_password(stack.data_dir), "admin")
        click_nav(page, "Activity")
        wait_text(page, "Server logs")
        click_button(page, "Pause")
        wait_text(page, re.compile(r"^paused · \d+ new$"))
        click_button(page, "Resume")
        wait_text(page, "live")
        click_button(page, "Export CSV")
        wait_text(page, re.compile(r"^Exported \d+ activity entries"), exact=False)
        click_button(page, "Export JSON")
        wait_text(page, re.compile(r"^Exported \d+ activity entries.*\.json$"), exact=False)
        names = sorted(p.suffix for p in exports.iterdir())
        assert names.count(".csv") == 2 and names.count(".json") == 2, names
        page.context.close()
    finally:
        server.stop()
        stack.stop()
