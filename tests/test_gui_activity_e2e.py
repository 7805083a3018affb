"""The activity view's buttons in a real browser: pause and resume the feed, export to files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack
from tests.gui_harness import FletServer, click_button, click_nav, new_page, wait_text

pytestmark = pytest.mark.timeout(180)


def test_pause_resume_and_export(browser: Any, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    stack = Stack(tmp_path / "stack", "--tick", "1").start()
    server = FletServer(
        module="gui", args=["--endpoint", stack.endpoint, "--export-dir", str(exports)], log_path=tmp_path / "gui.log"
    )
    try:
        page = new_page(browser, server.start().url, ready_text="Dashboard")
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
